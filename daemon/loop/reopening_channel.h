// ReopeningChannel: one kernel upcall file, kept open for as long as the
// daemon runs, whatever the kernel does to it. Used for the four
// client-tracking files (daemon.cc), the two ID-mapping cache channels
// (idmap/idmap_service.cc) and the stock kernel's cld pipe
// (channels/cld_pipe.cc).
//
// Rationale. What it takes to keep such a file served, in one place, so
// that every upcall file gets all of it:
//  - Open: O_NONBLOCK | O_CLOEXEC, and O_RDWR (the replies go to the same
//    file, and a cache channel makes upcalls only while it has a writer). A missing file is looked for every second
//    (Appearance::kPoll), or, where the kernel waits only about a second
//    for a reader (the cld pipe, see channels/cld_pipe.h), its directory is
//    watched with inotify and the file opened the moment it appears
//    (Appearance::kInotify; a missing directory is looked for every second,
//    since a file system mounted there raises no event). Nothing ever
//    spins: every retry waits a second.
//  - Why an open fails is logged once per distinct errno, except a shortage
//    of file descriptors (EMFILE, ENFILE): that is not the file's fault,
//    and is named as what it is, at level error, at every retry (once a
//    second: nfsd-helper(8), RESOURCE SHORTAGES).
//  - A second reader: each upcall goes to whichever reader reads it first,
//    so after every open the processes that also hold the file open are
//    looked for (channel_owners.h: a walk of /proc, at each open only) and
//    named in an error.
//  - Close and retry a second later when a read fails (EPIPE: the kernel
//    removed the pipe), on a hang-up (POLLHUP, POLLERR), and when the file
//    keeps waking the loop with nothing to read (kMaxEmptyWakeups wake-ups
//    in a row), which a level-triggered watch would otherwise turn into a
//    spin. A wake-up counts as empty only if one of its reads found
//    nothing and nothing was read from the file since its previous
//    wake-up, so that a file drained from another file's wake-up, or left
//    unread by an owner with no room, is never taken for broken.
//  - on_change runs after every open and every close.
//
// Reads (Framing): one read() returns one request or message, or as much
// of one as the buffer holds; reads are joined, or not, as the file's
// protocol says (see Framer).
//
// Loop affinity: everything runs on the Loop the channel was made with.
// The callbacks may read the channel, but neither may destroy it.
#ifndef DAEMON_LOOP_REOPENING_CHANNEL_H_
#define DAEMON_LOOP_REOPENING_CHANNEL_H_

#include <fcntl.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/loop/loop.h"
#include "daemon/util/status.h"

namespace nfsdh::loop {

// What a reader gets: one request or message.
struct Message {
  std::string data;
  // kRequest: the first piece of a request longer than the buffer (the rest
  // is discarded unread by the caller). kJoined: bytes dropped because they
  // never ended in a newline. Either way not a request to handle.
  bool overlong = false;
};

// How the reads of one open file make messages. Pure logic, no I/O.
class Framer {
 public:
  enum class Kind {
    // One read() is one message, whatever its length (an rpc_pipefs pipe:
    // the cld pipe). A buffer one byte larger than the largest message
    // shows an oversized one as such.
    kMessage,
    // PROTOCOL.md §1 (the four files): one read() is one request. A read
    // that fills the buffer without ending in '\n' begins an over-long
    // request: that first piece is returned, overlong, and the reads that
    // follow are discarded up to and including the first one that is
    // shorter than the buffer (a read of 0 included) or ends in '\n'.
    kRequest,
    // A sunrpc cache channel (the idmap channels): a read that fills the
    // buffer without ending in '\n' goes on in the next read, joined to it;
    // any other read ends the message, newline or not (the caller drops a
    // message without its newline alone: it is never joined to the next
    // upcall). Bytes that pass twice the buffer without a newline are
    // returned overlong, and joining starts again.
    kJoined,
  };

  Framer(Kind kind, size_t buffer) : kind_(kind), buffer_(buffer) {}

  // One read() returned `piece` (not empty). True when it completes a
  // message, which is then in *out; false when it is part of a longer one
  // or discarded.
  bool Piece(std::string_view piece, Message* out);
  // A read() returned 0: nothing is pending, not even the rest of a
  // request (kRequest stops discarding).
  void ReadZero();
  // The file was closed: what was joined or discarded is forgotten.
  void Reset();

  bool discarding() const { return discarding_; }

 private:
  Kind kind_;
  size_t buffer_;
  bool discarding_ = false;  // kRequest
  std::string partial_;      // kJoined
};

class ReopeningChannel {
 public:
  // Wake-ups in a row that found the file readable but nothing to read
  // before it is taken for broken (and opened again a second later).
  static constexpr int kMaxEmptyWakeups = 3;
  static constexpr Duration kRetry = Duration(1000);

  enum class Appearance { kPoll, kInotify };

  struct Options {
    std::string path;
    Framer::Kind framing = Framer::Kind::kRequest;
    size_t read_buffer = 8192;
    Appearance appearance = Appearance::kPoll;
    // Starts every line logged ("idmap: ", "cld: ").
    std::string log_prefix;
    // kPoll: ends the warning that the file cannot be opened (" (is nfsd
    // loaded?)"). kInotify: ends the line saying the file is waited for.
    std::string missing_hint;
    // kInotify: ends the warning that the directory cannot be watched.
    std::string missing_dir_hint;
    // Each open and close logged at level notice ("cld: opened ..."), for
    // a file that comes and goes with nfsd; otherwise only what goes
    // wrong is logged.
    bool log_open_close = false;
    // O_RDWR, or O_RDONLY in a test that wants a FIFO whose writer went
    // away to show as a hang-up.
    int access = O_RDWR;
  };

  ReopeningChannel(Loop& loop, Options opts, std::function<void()> on_readable,
                   std::function<void()> on_change);
  // Closes the file; neither callback runs.
  ~ReopeningChannel();
  ReopeningChannel(const ReopeningChannel&) = delete;
  ReopeningChannel& operator=(const ReopeningChannel&) = delete;

  // Opens the file if it is there, and otherwise starts looking for it.
  // Fails only if inotify cannot be used at all (kInotify).
  // REQUIRES: called once.
  Status Start();

  const std::string& path() const { return opts_.path; }
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Open, or (kInotify) watched so that it is opened the moment it appears.
  bool ready() const;

  enum class ReadResult {
    kMessage,  // *out holds one
    kNone,     // nothing pending now
    kClosed,   // not open, or closed by this read (on_change has run)
  };
  // Reads until one message is complete (one read() per piece).
  ReadResult Read(Message* out);

  // Stops and resumes watching for readability, for an owner that cannot
  // take more for now (the idmap channels' queue is full). The file stays
  // open; a reopened one starts paused if paused.
  void Pause();
  void Resume();

 private:
  class DirWatch;

  void TryOpen();
  void LogOpenFailure(int err);
  // Closes the file. `why` is logged; `error` (an errno, or -1 for a
  // broken file) makes it an error where opens and closes are not logged;
  // `retry` looks again in a second.
  void Close(const std::string& why, int error, bool retry);
  void OnWatch();
  void OnRetry();
  // DirWatch's events.
  void OnAppeared();
  void OnRemoved();

  Loop& loop_;
  Options opts_;
  std::function<void()> on_readable_, on_change_;
  Framer framer_;
  std::vector<char> buf_;
  int fd_ = -1;
  FdWatch watch_;
  Timer retry_;
  std::unique_ptr<DirWatch> dir_watch_;  // kInotify
  bool paused_ = false;
  int last_errno_ = 0;  // of the last failed open logged
  int empty_wakeups_ = 0;
  bool read_nothing_ = false;  // in this wake-up
  bool got_data_ = false;      // since the previous wake-up
};

}  // namespace nfsdh::loop

#endif  // DAEMON_LOOP_REOPENING_CHANNEL_H_
