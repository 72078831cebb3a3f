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
// logged once. All of that is a loop::ReopeningChannel
// (daemon/loop/reopening_channel.h) in its inotify mode; this class adds
// the pipe's read discipline and counters.
//
// The pipe keeps message boundaries: one read() returns one upcall, one
// write() is one downcall. An empty pipe reads 0 bytes.
//
// Loop affinity: everything runs on the loop the CldPipe was made with.
#ifndef DAEMON_CHANNELS_CLD_PIPE_H_
#define DAEMON_CHANNELS_CLD_PIPE_H_

#include <functional>
#include <string>
#include <vector>

#include "daemon/loop/loop.h"
#include "daemon/loop/reopening_channel.h"
#include "daemon/util/status.h"

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
  // REQUIRES: `loop` outlives the CldPipe.
  CldPipe(loop::Loop& loop, std::string path, std::function<void()> on_readable,
          std::function<void()> on_change);
  CldPipe(const CldPipe&) = delete;
  CldPipe& operator=(const CldPipe&) = delete;

  // Sets up the inotify watch and opens the pipe if it is there. Fails only
  // if inotify cannot be used at all.
  Status Start() { return pipe_.Start(); }

  const std::string& path() const { return pipe_.path(); }
  bool is_open() const { return pipe_.is_open(); }
  int fd() const { return pipe_.fd(); }
  // True when the pipe is open or a watch will notice it appear.
  bool ready() const { return pipe_.ready(); }

  // Reads every pending upcall into `out` (at most `max`); closes the pipe
  // if it turned out to be gone.
  void Drain(std::vector<std::string>* out, size_t max);

 private:
  loop::ReopeningChannel pipe_;
};

}  // namespace nfsdh

#endif  // DAEMON_CHANNELS_CLD_PIPE_H_
