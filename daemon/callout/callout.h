// Callout: runs the HA callout program (--ha-callout PROG) after a client
// record was durably added or removed, as rpc.statd -H does for NSM:
//
//   PROG add-client SCOPE CLIENT-ID-HEX
//   PROG del-client SCOPE CLIENT-ID-HEX
//
// Rationale. A cluster keeps its own copy of who may reclaim where; the
// callout tells it, and a lost del-client leaves an expired client allowed
// on the node that takes over. So an event is never lost, yet the callout
// never slows down or endangers the upcalls that the kernel waits for:
//  - events live in the database's outbox (store `callouts`, FORMAT.md),
//    written in the same transaction as the change (tracker::Transaction,
//    the one way to change a record, whatever asked for it): an
//    event exists exactly when its change is durable, and survives a crash
//    or a restart, kill -9 included;
//  - the Callout runs them oldest first, one at a time, reading one entry
//    at a time (a grace end that purged 1,000,000 records costs no memory);
//  - an entry is deleted only after its callout exited 0; a failure (exec
//    failure, nonzero exit, death by a signal, the timeout) is logged with
//    its status and retried after 1 s, doubling to 5 min, never dropped,
//    and nothing behind it runs before it succeeds (an add-client then a
//    del-client of the same client arrive in that order);
//  - deletes of finished entries are grouped (every kFlushEvery successes,
//    when the outbox is drained, before a retry wait, at exit), so a crash
//    may run a few finished callouts again: delivery is at least once;
//  - PROG is started with posix_spawn, never through a shell (a client id
//    is untrusted data; it is passed as hex, one argv word), with standard
//    input from /dev/null and SIGPIPE back at its default;
//  - its end is learnt from SIGCHLD on the event loop (a loop::ChildWatch),
//    never by waiting; a child still running after the timeout is killed
//    with SIGKILL, which is logged and retried like any failure.
//
// Loop affinity: the event loop's thread only, between batches: the store
// is never inside a transaction when the Callout uses it. The Callout reaps
// only the children it started (waitpid on their pids).
#ifndef DAEMON_CALLOUT_CALLOUT_H_
#define DAEMON_CALLOUT_CALLOUT_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/loop/loop.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

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
  // The wait before the first retry of a failed callout; it doubles at
  // each failure up to kMaxRetrySeconds, and starts again at a success.
  static constexpr int kFirstRetrySeconds = 1;
  static constexpr int kMaxRetrySeconds = 300;
  // Finished entries deleted in one statement at most.
  static constexpr int kFlushEvery = 64;

  // `program` is an absolute path. `loop` and `store` must outlive the
  // Callout.
  Callout(loop::Loop& loop, store::Backend* store, std::string program,
          int timeout_seconds = kDefaultTimeoutSeconds);
  // Kills a child still running (SIGKILL) and reaps it (its entry stays in
  // the outbox and runs again at the next start); deletes the finished
  // entries.
  ~Callout();
  Callout(const Callout&) = delete;
  Callout& operator=(const Callout&) = delete;

  // Resumes the outbox as the database has it (entries a previous process
  // left). REQUIRES: called once, first.
  Status Start();

  // `queued` entries were added to the outbox by a transaction that has
  // committed: runs the next one unless one runs or a retry waits.
  void Kick(int64_t queued);

  // Called after each run (for tests).
  void set_on_outcome(std::function<void(const Outcome&)> fn) {
    on_outcome_ = std::move(fn);
  }
  // Nothing runs, no retry waits, and the outbox had nothing more.
  bool idle() const { return child_ <= 0 && !waiting_ && drained_; }
  // The entries not yet delivered (counted at Start, then kept in memory).
  int64_t pending() const { return pending_; }

 private:
  void RunNext();
  void Finish(Outcome::End end, int code);
  void Retry();  // arms the back-off timer
  void Flush();  // deletes the finished entries
  void OnChild(int status, int error);
  void OnTimeout();
  void OnRetry();

  loop::Loop& loop_;
  store::Backend* store_;
  std::string program_;
  int timeout_seconds_;
  loop::Timer timer_;        // the running child's timeout
  loop::Timer retry_timer_;  // the back-off after a failure
  std::unique_ptr<loop::ChildWatch> child_watch_;  // of child_
  pid_t child_ = -1;
  store::CalloutRow running_;
  bool killed_ = false;    // the running child was killed at the timeout
  bool waiting_ = false;   // a retry is armed
  bool drained_ = false;   // the last look found no entry
  int retry_delay_ = kFirstRetrySeconds;
  int attempts_ = 0;        // failed runs of running_ so far
  int64_t done_through_ = 0;     // every entry <= this one has succeeded
  int64_t deleted_through_ = 0;  // and every entry <= this one is deleted
  int64_t pending_ = 0;
  std::function<void(const Outcome&)> on_outcome_;
};

}  // namespace nfsdh::callout

#endif  // DAEMON_CALLOUT_CALLOUT_H_
