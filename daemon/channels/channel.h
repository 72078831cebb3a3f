// Channels: one upcall file each, served by a handler from the table below.
//
// Every request that is pending when the daemon wakes is handled inside one
// SQLite transaction (a Batch). Handlers apply their request to the store
// and queue their reply; the replies are written only after COMMIT has
// returned, and a reply that promised durability turns into -EIO if the
// commit failed. This is the group commit of the design: a reclaim storm
// costs one fsync per wake-up, not one per client.
#ifndef DAEMON_CHANNELS_CHANNEL_H_
#define DAEMON_CHANNELS_CHANNEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/recovery/engine.h"
#include "daemon/store/store.h"
#include "daemon/util/status.h"
#include "nfsdfs-proto/message.h"

namespace nfsdh {

// Converts between the stored scope row and the engine's view of it.
recovery::ScopeState ToScopeState(const store::ScopeRow& row);
void SetScopeState(const recovery::ScopeState& s, store::ScopeRow* row);

// Per-kind request counters, for logs and status.
struct ChannelCounters {
  uint64_t requests = 0;
  uint64_t ok = 0;
  uint64_t malformed = 0;
  uint64_t stale = 0;
  uint64_t failed = 0;  // -EIO
};

// What the served scope looks like as of the last commit, for status
// (helper-ctl status). The handlers keep it up to date inside the batch; the
// daemon puts back its copy from before the batch if the batch rolls back.
struct ScopeStats {
  int64_t clients = 0;  // records of the scope
  // The start of the current server instance, if this process answered it.
  bool start_seen = false;
  int64_t start_instance = 0;
  int64_t start_time = 0;  // wall clock
  int64_t allowed = 0;     // clients on its allow list
  // Of those, how many were created again in that instance (reclaimed). A
  // record stamped with an older instance than the current one is on the
  // allow list of the current instance: every older record that survived
  // the start was sent, and no record is ever stamped with an older one.
  int64_t reclaimed = 0;
};

class Batch {
 public:
  // REQUIRES: store->in_transaction(); `row` and `stats` are the scope's row
  // and counts as of the start of the transaction.
  Batch(store::Store* store, store::ScopeRow* row, ScopeStats* stats,
        int64_t now);

  store::Store& store() { return *store_; }
  store::ScopeRow& row() { return *row_; }
  ScopeStats& stats() { return *stats_; }
  const std::string& scope() const { return row_->name; }
  int64_t now() const { return now_; }

  // Records the first storage failure of the batch: the transaction will be
  // rolled back and every success reply queued in it becomes -EIO.
  void Fail(const Status& s);
  bool failed() const { return !failure_.ok(); }
  const Status& failure() const { return failure_; }

  // A record of the scope was added (a create of a new client) or removed
  // (an expire). When the daemon runs an HA callout, the event goes into
  // the outbox in this batch's transaction (daemon/callout/callout.h), so
  // it is durable exactly when the change is; a failure to write it fails
  // the batch.
  void NoteChange(bool added, const std::string& client_id);
  // Whether the daemon runs an HA callout. When not, NoteChange and
  // PurgeOlderThan write no outbox entry.
  void set_track_changes(bool on) { track_changes_ = on; }
  bool track_changes() const { return track_changes_; }
  // The outbox entries written in this batch (they count only if it
  // commits).
  int64_t callouts_queued() const { return callouts_queued_; }

  // A cld GraceDone tried to end the grace period of `instance` in this
  // batch. The stock kernel ends its grace period whatever the answer, so
  // if the batch does not commit the daemon must still record the end
  // (daemon.h: the pending grace end).
  // `instance` is 0 when the scope had no instance in grace (nfsd may run
  // one whose start the database missed).
  void NoteGraceEndAttempt(int64_t instance) { grace_end_attempt_ = instance; }
  const std::optional<int64_t>& grace_end_attempt() const {
    return grace_end_attempt_;
  }
  // A cld GraceStart was handled in this batch; `recorded` once its new
  // instance is in the batch and its answer is 0. nfsd runs the instance
  // whatever the answer, so a start that was not recorded (or whose batch
  // does not commit) must be recorded later (daemon.h).
  void NoteStartAttempt(bool recorded) {
    start_attempted_ = true;
    start_recorded_ = recorded;
  }
  bool start_attempted() const { return start_attempted_; }
  bool start_recorded() const { return start_recorded_; }

  // Removes the scope's records stamped with an instance older than
  // `older_than` (a start or a grace end) and, when changes are tracked,
  // queues a del-client for each with one INSERT ... SELECT: a purge of
  // 1,000,000 records holds none of them in memory. Does not Fail() the
  // batch: the caller decides what a failure means.
  Status PurgeOlderThan(int64_t older_than, int64_t* purged);

  // Queues "<seq> <status>". A status of 0 is a promise of durability: it is
  // sent only if the batch commits.
  void ReplyStatus(int fd, uint64_t seq, int status, ChannelCounters* c);
  // Queues "<seq> done <status> <instance>" under the same rule.
  void ReplyAllowDone(int fd, uint64_t seq, int status, int64_t instance,
                      ChannelCounters* c);
  // Logs a malformed request and, if its sequence number is readable,
  // queues the -EINVAL reply for it.
  void Malformed(int fd, nfsdfs::Channel ch, std::string_view line,
                 const nfsdfs::ParseError& err, ChannelCounters* c);
  // For create_client and expire_client: if `instance` is not the scope's
  // current instance, logs it, queues -ESTALE and returns true.
  bool RefuseIfStale(nfsdfs::Channel ch, int fd, uint64_t seq,
                     int64_t instance, ChannelCounters* c);
  // Queues a binary reply (a cld downcall) whose status field says
  // `status`. A status of 0 is a promise of durability: if the batch does
  // not commit, `on_failure` (the same message saying -EIO) is written
  // instead. A reply that promises nothing passes itself as `on_failure`.
  void ReplyMessage(int fd, uint64_t seq, int status, std::string reply,
                    std::string on_failure, ChannelCounters* c);
  // Writes `data` to `fd` at once (the allow list, before the commit; the
  // kernel ignores it unless "done 0" follows). False if the write failed.
  bool WriteNow(int fd, const std::string& data);

  // Writes every queued reply. `committed` says whether COMMIT succeeded.
  void Finish(bool committed);

 private:
  struct Pending {
    int fd;
    uint64_t seq;
    bool allow_done;
    int status;
    int64_t instance;
    ChannelCounters* counters;
    // A binary reply: written as it is, or `on_failure` if it promised
    // durability and the batch did not commit.
    bool binary = false;
    std::string reply = {};
    std::string on_failure = {};
  };
  store::Store* store_;
  store::ScopeRow* row_;
  ScopeStats* stats_;
  int64_t now_;
  Status failure_;
  std::vector<Pending> pending_;
  int64_t callouts_queued_ = 0;
  bool track_changes_ = true;
  std::optional<int64_t> grace_end_attempt_;
  bool start_attempted_ = false;
  bool start_recorded_ = false;
};

// Ends the grace period of `instance`, the scope's instance in grace, in the
// batch's transaction (PROTOCOL.md §3.4): boot_time becomes `instance` and
// every record stamped older is removed, so a client that did not reclaim
// in this grace period can never reclaim later. `who` says what told the
// helper, for the log ("grace_done 19", "cld GraceDone 7", "the kernel's
// v4_end_grace"). Returns false after recording a storage failure in the
// batch (and logging it).
// REQUIRES: ToScopeState(b.row()).new_boot_time == instance; !b.failed().
bool EndGrace(Batch& b, int64_t instance, const std::string& who);

// A channel handler: applies one request line (as read, with its '\n') to
// the batch and queues its reply.
struct ChannelEntry {
  nfsdfs::Channel channel;
  void (*handle)(Batch& batch, int fd, std::string_view line,
                 ChannelCounters* counters);
};

extern const ChannelEntry kAllowClientChannel;
extern const ChannelEntry kCreateClientChannel;
extern const ChannelEntry kExpireClientChannel;
extern const ChannelEntry kGraceDoneChannel;

// Every channel the daemon serves, in the order a batch handles them.
inline const ChannelEntry* const kChannelTable[] = {
    &kAllowClientChannel,
    &kCreateClientChannel,
    &kExpireClientChannel,
    &kGraceDoneChannel,
};

// The stock kernel's cld pipe (daemon/channels/cld.cc): applies one upcall,
// exactly as one read() of the pipe returned it, to the batch and queues its
// downcall (the streamed allow list of GraceStart is written at once).
void HandleCldMessage(Batch& batch, int fd, std::string_view msg,
                      ChannelCounters* counters);

// Starts, in the batch, a server instance for the one nfsd runs although
// its cld GraceStart was not recorded (no allow list was delivered with it;
// PlanStart's rules, as for a restart). Returns the new instance, or nullopt
// after recording a storage failure in the batch.
std::optional<int64_t> AdoptUnrecordedStart(Batch& b);

// "instance 1763771860" or "no instance" for logs.
std::string DescribeInstance(const std::optional<int64_t>& inst);

}  // namespace nfsdh

#endif  // DAEMON_CHANNELS_CHANNEL_H_
