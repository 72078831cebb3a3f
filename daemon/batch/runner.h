// Runner: the requests pending at one wake-up, handled as one batch.
//
// Rationale. This is the group commit of the design: every request read at a
// wake-up, from every upcall file and the cld pipe, is applied in one
// transaction (tracker::Transaction), and the replies are written only after
// COMMIT returned; a reply that promised durability turns into -EIO if the
// commit failed. A reclaim storm costs one fsync per wake-up, not one per
// client. The runner parses and counts each request once, answers a
// malformed one once (-EINVAL when its sequence number is readable, else a
// log line only), hands the handlers (daemon/channels/handlers.h) typed
// requests and a Reply, and commits.
//
// Thread affinity: that of the Tracker.
#ifndef DAEMON_BATCH_RUNNER_H_
#define DAEMON_BATCH_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemon/channels/reply.h"
#include "daemon/stats.h"
#include "daemon/tracker/tracker.h"
#include "daemon/util/status.h"

namespace nfsdh::batch {

// One request as read: what one read() of the endpoint returned
// (PROTOCOL.md §1; one message of the cld pipe).
struct Upcall {
  channels::Endpoint* from = nullptr;
  std::string bytes;
  // The first piece of a request longer than the read buffer: refused by
  // its sequence number, never parsed (its rest is discarded unread).
  bool overlong = false;
};

class Runner {
 public:
  // REQUIRES: `tracker` outlives the Runner.
  explicit Runner(tracker::Tracker* tracker) : tracker_(tracker) {}

  // Test failpoints (NFSD_HELPER_TEST_CRASH, daemon.cc): `before` runs just
  // before COMMIT, `after` just after it returned, before any reply.
  void set_commit_hooks(std::function<void()> before,
                        std::function<void()> after) {
    before_commit_ = std::move(before);
    after_commit_ = std::move(after);
  }

  struct Result {
    bool committed = false;
    Status failure;  // why it did not commit
    size_t requests = 0;
  };
  // Handles `upcalls` (none: a batch that only applies the tracker's
  // pending steps) in one transaction stamped `now`, and writes every
  // reply. Counts the batch in stats().
  Result Run(const std::vector<Upcall>& upcalls, int64_t now);

  const BatchStats& stats() const { return stats_; }

 private:
  void Handle(tracker::Transaction& t, const Upcall& up);
  void Finish(bool committed);

  tracker::Tracker* tracker_;
  std::function<void()> before_commit_, after_commit_;
  std::vector<channels::QueuedReply> queue_;
  BatchStats stats_;
};

}  // namespace nfsdh::batch

#endif  // DAEMON_BATCH_RUNNER_H_
