// Callout: runs the HA callout program (--ha-callout PROG) after a client
// record was durably added or removed, as rpc.statd -H does for NSM:
//
//   PROG add-client SCOPE CLIENT-ID-HEX
//   PROG del-client SCOPE CLIENT-ID-HEX
//
// Rationale. A cluster keeps its own copy of who may reclaim where; the
// callout tells it, but must never slow down or endanger the upcalls that
// the kernel waits for. So:
//  - events are queued only after the COMMIT that made the change durable,
//    and run one at a time, in order, from a bounded queue (an overflow
//    drops the event and is logged: the database stays the authority);
//  - PROG is started with posix_spawn, never through a shell (a client id
//    is untrusted data; it is passed as hex, one argv word), with standard
//    input from /dev/null and SIGPIPE back at its default;
//  - its end is learnt from SIGCHLD on the event loop (an evsignal), never
//    by waiting; a child still running after the timeout is killed with
//    SIGKILL and that is logged;
//  - a failure (exec failure, nonzero exit, death by a signal) is logged,
//    never fatal, and the next event runs.
//
// Loop affinity: the event loop's thread only. The Callout reaps only the
// children it started (waitpid on their pids).
#ifndef DAEMON_CALLOUT_CALLOUT_H_
#define DAEMON_CALLOUT_CALLOUT_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include "daemon/util/status.h"

struct event_base;
struct event;

namespace nfsdh::callout {

enum class Kind { kAddClient, kDelClient };
const char* KindName(Kind k);  // "add-client", "del-client"

struct Event {
  Kind kind = Kind::kAddClient;
  std::string scope;
  std::string client_id;  // binary; passed as lower-case hex
};

// How one run ended, for logs and tests.
struct Outcome {
  Event event;
  enum class End {
    kExited,
    kSignaled,
    kTimedOut,
    kSpawnFailed
  } end = End::kExited;
  int code = 0;  // exit status, signal number, or errno of the spawn
};

class Callout {
 public:
  static constexpr int kDefaultTimeoutSeconds = 10;
  static constexpr size_t kDefaultMaxQueue = 10000;

  // `program` is an absolute path. `base` must outlive the Callout.
  Callout(struct event_base* base, std::string program,
          int timeout_seconds = kDefaultTimeoutSeconds,
          size_t max_queue = kDefaultMaxQueue);
  // Kills a child still running (SIGKILL) and reaps it; logs how many
  // queued events were never run.
  ~Callout();
  Callout(const Callout&) = delete;
  Callout& operator=(const Callout&) = delete;

  // Installs the SIGCHLD event. REQUIRES: called once, before Enqueue.
  Status Start();

  // Queues an event and starts it if nothing runs. False (and logged) if
  // the queue is full.
  bool Enqueue(Event ev);

  // Called after each run (for tests).
  void set_on_outcome(std::function<void(const Outcome&)> fn) {
    on_outcome_ = std::move(fn);
  }
  bool idle() const { return child_ <= 0 && queue_.empty(); }
  size_t queued() const { return queue_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  void RunNext();
  void Finish(Outcome::End end, int code);
  static void OnChild(int sig, short what, void* arg);
  static void OnTimeout(int fd, short what, void* arg);

  struct event_base* base_;
  std::string program_;
  int timeout_seconds_;
  size_t max_queue_;
  struct event* sigchld_ = nullptr;
  struct event* timer_ = nullptr;
  std::deque<Event> queue_;
  pid_t child_ = -1;
  Event running_;
  bool killed_ = false;  // the running child was killed at the timeout
  uint64_t dropped_ = 0;
  std::function<void(const Outcome&)> on_outcome_;
};

}  // namespace nfsdh::callout

#endif  // DAEMON_CALLOUT_CALLOUT_H_
