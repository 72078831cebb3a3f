// CldPipe: the stock kernel's cld pipe (<rpc_pipefs>/nfsd/cld), kept open
// across nfsd restarts.
//
// Rationale. The kernel creates the pipe when nfsd starts in a network
// namespace and removes it when nfsd stops. At start it waits only about a
// second for a tracker to open it, then falls back to another tracking
// method for the whole server instance. So the pipe's directory is watched
// with inotify, and the pipe opened the moment it appears; its removal
// (IN_DELETE, or a read failing with EPIPE, or a hang-up) closes it until it
// appears again. Where the directory itself is missing (rpc_pipefs not
// mounted yet, which inotify cannot see), its parent is watched and a
// one-second timer looks again; nothing ever spins. Each open and close is
// logged once.
//
// The pipe keeps message boundaries: one read() returns one upcall, one
// write() is one downcall. An empty pipe reads 0 bytes.
//
// Loop affinity: everything runs on the libevent loop the CldPipe was made
// with.
#ifndef DAEMON_CHANNELS_CLD_PIPE_H_
#define DAEMON_CHANNELS_CLD_PIPE_H_

#include <functional>
#include <string>
#include <vector>

#include "daemon/util/status.h"

struct event_base;
struct event;

namespace nfsdh {

// What ReadCldMessages found.
enum class CldRead {
  kDrained,  // every pending message was read (or `max` was reached)
  kClosed,   // the pipe is gone or broken: close it
};

// Reads the messages pending on `fd` (one read() each, with a buffer one
// byte larger than the largest message, so an oversized one shows as such)
// and appends them to `out`, at most `max` of them. On kClosed, *error (if
// given) is the errno of the failed read.
CldRead ReadCldMessages(int fd, std::vector<std::string>* out, size_t max,
                        int* error = nullptr);

class CldPipe {
 public:
  // `on_readable` runs when upcalls are pending (it should call Drain);
  // `on_change` runs after the pipe was opened or closed.
  // REQUIRES: `base` outlives the CldPipe.
  CldPipe(struct event_base* base, std::string path,
          std::function<void()> on_readable, std::function<void()> on_change);
  ~CldPipe();
  CldPipe(const CldPipe&) = delete;
  CldPipe& operator=(const CldPipe&) = delete;

  // Sets up the inotify watch and opens the pipe if it is there. Fails only
  // if inotify cannot be used at all.
  Status Start();

  const std::string& path() const { return path_; }
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // True when the pipe is open or a watch will notice it appear.
  bool ready() const { return fd_ >= 0 || dir_wd_ >= 0; }

  // Reads every pending upcall into `out` (at most `max`); closes the pipe
  // if it turned out to be gone.
  void Drain(std::vector<std::string>* out, size_t max);

 private:
  void Close(const char* why);
  void TryOpen();
  void Rewatch();
  void ArmTimer();
  static void OnInotify(int fd, short what, void* arg);
  static void OnReadable(int fd, short what, void* arg);
  static void OnTimer(int fd, short what, void* arg);

  struct event_base* base_;
  std::string path_, dir_, dir_parent_, name_, dir_name_;
  std::function<void()> on_readable_, on_change_;
  int fd_ = -1;
  struct event* ev_ = nullptr;
  int inotify_fd_ = -1;
  struct event* inotify_ev_ = nullptr;
  int dir_wd_ = -1;     // watch on the pipe's directory
  int parent_wd_ = -1;  // watch on its parent while the directory is missing
  struct event* timer_ = nullptr;
  int empty_wakeups_ = 0;
  // What was last logged, so that a state is logged once.
  int last_open_errno_ = 0;
  bool logged_dir_missing_ = false;
};

}  // namespace nfsdh

#endif  // DAEMON_CHANNELS_CLD_PIPE_H_
