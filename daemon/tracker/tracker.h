// Tracker: what happens when a client is recorded or removed, or a grace
// period starts or ends. The one place where the recovery engine's plans
// (daemon/recovery/engine.h) are applied to the store.
//
// Rationale. Every way into the records (the four upcall files, the cld
// pipe, helper-ctl purge and import, a grace end nfsd made that the database
// missed) must change the same things in one transaction: the records, the
// scope row, the HA callout's outbox (an event is durable exactly when its
// change is) and the counts helper-ctl status shows. So the channel handlers
// and the control procedures do not touch the store's rows; they call the
// verbs of a Transaction (start, record, remove, end grace, purge, import),
// as NFS-Ganesha's recovery backends offer read clients, add, remove and end
// grace. A Tracker keeps the served scope's row and counts as of the last
// commit; a Transaction works on copies of them, which replace the
// Tracker's only once COMMIT returned. A transaction that fails, or is
// abandoned, leaves nothing to put back by hand.
//
// What nfsd did that the database could not record (on the cld pipe, a
// start whose GraceStart failed, and the end of a grace period, which nfsd
// makes whatever its GraceDone gets back) is kept by the Tracker as pending
// steps, in a file beside the database (<db>.grace-end.<scope>,
// daemon/store/FORMAT.md) since the database may be what fails. Every
// Transaction applies them first; a transaction that cannot fails whole, so
// nothing is answered from a scope that is wrongly in grace.
//
// Thread affinity: that of the store::Backend. At most one Transaction at a time.
#ifndef DAEMON_TRACKER_TRACKER_H_
#define DAEMON_TRACKER_TRACKER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/recovery/engine.h"
#include "daemon/stats.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::tracker {

// The engine's view of a stored scope row (no row: a scope never started).
recovery::ScopeState StateOf(const store::ScopeRow& row);
recovery::ScopeState StateOf(const std::optional<store::ScopeRow>& row);
// "instance 1763771860" or "no instance", for logs.
std::string DescribeInstance(const std::optional<int64_t>& inst);

// Checks one record as it will be stored: an id of 1..1024 bytes, a
// principal hash of 0 or 32 bytes, minor 0, 1 or -1 (not known: a record
// that came from nfsdcld, daemon/store/FORMAT.md). kInvalid with a reason
// otherwise.
Status CheckRecord(const std::string& id, const std::string& princhash,
                   int minor);
// Why an import into `row` (unset: no such scope) is refused, in an
// operator's words; "" if it is not (recovery::PlanImport).
std::string ImportRefusal(const std::string& scope,
                          const std::optional<store::ScopeRow>& row);

class Transaction;

class Tracker {
 public:
  // The served scope `scope` of `store`. REQUIRES: `store` is open
  // read-write and outlives the Tracker.
  Tracker(store::Backend* store, std::string scope);
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  // Reads the served scope's row (a fresh one if the database has none)
  // and counts its records. REQUIRES: no transaction open.
  Status Load();

  const std::string& scope() const { return row_.name; }
  // As of the last commit.
  const store::ScopeRow& row() const { return row_; }
  const ScopeStats& stats() const { return stats_; }
  recovery::ScopeState state() const { return StateOf(row_); }
  // For reads between transactions (dump, status).
  store::Backend& store() { return *store_; }

  // The HA callout: when on, every record added or removed queues an event
  // in the outbox in the same transaction, and `committed` hears how many
  // once that transaction committed. Off: no event is written.
  void set_callouts(bool on, std::function<void(int64_t)> committed = {});
  bool queues_callouts() const { return callouts_; }

  // --- what nfsd did that the database could not record (cld pipe) ---
  // Keeps the pending steps in `path` and loads those an earlier process
  // left there; a file that does not parse is an error (fail closed: the
  // helper must not start, since the database alone cannot tell what nfsd
  // did).
  Status OpenPending(std::string path);
  // Whether, after each transaction, what nfsd did in it and the database
  // did not record becomes pending: on for the cld pipe served alone,
  // whose kernel acts whatever the answer; the four files' kernel waits
  // for it.
  void set_note_unrecorded(bool on) { note_unrecorded_ = on; }
  const std::vector<recovery::PendingStep>& pending() const {
    return pending_;
  }
  bool grace_end_pending() const {
    return !pending_.empty() && !pending_.back().start;
  }
  // nfsd ran `step` and the database has not recorded it: kept on disk
  // at once, applied first by every later transaction. A grace end after
  // a pending grace end, and a start after a pending start (one restart in
  // grace, which the start rules treat alike), add nothing.
  void AddPending(const recovery::PendingStep& step);

 private:
  friend class Transaction;
  void SavePending();
  void Committed(const Transaction& t);
  void NoteUnrecorded(const Transaction& t, bool committed);

  store::Backend* store_;
  store::ScopeRow row_;
  ScopeStats stats_;
  bool callouts_ = false;
  std::function<void(int64_t)> callouts_committed_;
  std::string pending_path_;  // empty: steps are kept in memory only
  bool note_unrecorded_ = false;
  std::vector<recovery::PendingStep> pending_;
  bool in_transaction_ = false;
};

// What a start offers the kernel, record by record (an allow list).
class AllowList {
 public:
  enum class Offer {
    kAllowed,      // on the list
    kWithheld,     // not on it (a version-1 cld kernel, a principal hash)
    kUndelivered,  // the list could not be written: abandon the start
  };
  virtual ~AllowList() = default;
  virtual Offer Add(const store::ClientRow& record) = 0;
  // After the last record; false if the list was not wholly delivered.
  virtual bool Close() { return true; }
};

class Transaction {
 public:
  // BEGIN IMMEDIATE on the tracker's store, then the tracker's pending
  // steps; a failure of either fails the transaction (every verb then does
  // nothing and returns false). `now` is the wall clock for every stamp.
  // REQUIRES: no other Transaction of `tracker` is open.
  Transaction(Tracker* tracker, int64_t now);
  // Rolls back what was not committed: the Tracker is as it was.
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  int64_t now() const { return now_; }
  const std::string& scope() const { return row_.name; }
  // The served scope as this transaction has changed it.
  const store::ScopeRow& row() const { return row_; }
  const ScopeStats& stats() const { return stats_; }
  recovery::ScopeState state() const { return StateOf(row_); }

  // The first failure: the transaction will not commit.
  void Fail(const Status& s);
  bool failed() const { return !failure_.ok(); }
  const Status& failure() const { return failure_; }
  // Events queued for the HA callout (they count once committed).
  int64_t events() const { return events_; }

  // --- the served scope ---
  struct StartSpec {
    // What allow_client says; unset on the cld pipe.
    std::optional<int64_t> kernel_boot_time;
    // No allow list: nfsd runs an instance whose start was not announced
    // (or not recorded); its clients reclaim through cld Check.
    bool adopted = false;
  };
  struct Started {
    int64_t instance = 0;
    int64_t allowed = 0;
    int64_t withheld = 0;
    int64_t purged = 0;  // stale records removed
    bool restart_in_grace = false;
  };
  enum class StartResult { kStarted, kUndelivered, kFailed };
  // Starts a server instance (recovery::PlanStart). Unless adopted, offers
  // `list` every record the start keeps, in id order, before anything is
  // changed; then removes the records the start drops and writes the scope
  // row. kUndelivered: the list was not wholly delivered, nothing of the
  // start is applied and the transaction is not failed (the kernel, left
  // without an instance, starts again). kFailed: a storage failure, logged
  // and recorded in the transaction.
  StartResult Start(const StartSpec& spec, AllowList* list, Started* out);

  // Whether requests tagged with `instance` may change records
  // (create_client, expire_client): kStale unless it is current.
  recovery::Verdict CheckInstance(int64_t instance) const;

  enum class Recorded { kNew, kReclaimed, kRefreshed };
  // Records that client `id` holds state in `instance` (the current one):
  // inserts it, or refreshes its stamp, principal hash and minor (`minor`
  // unset: the record's own, 0 for a new one). False after a storage
  // failure.
  bool Record(int64_t instance, const std::string& id,
              const std::string& princhash, std::optional<int> minor,
              Recorded* out = nullptr);
  // The record of `id` in the served scope. False after a storage failure.
  bool Lookup(const std::string& id, std::optional<store::ClientRow>* out);
  // Removes the record of `id`; a record that does not exist is no error.
  bool Remove(const std::string& id, bool* existed);
  // Ends the grace period of `instance`, the instance in grace
  // (PROTOCOL.md §3.4): boot_time becomes `instance` and every record
  // stamped older is removed, so that a client that did not reclaim in
  // this grace period can never reclaim later. `who` says what told the
  // helper, for the log. False after a storage failure (logged).
  // REQUIRES: state().new_boot_time == instance.
  bool EndGrace(int64_t instance, const std::string& who);

  // nfsd ran these whatever the database makes of them (cld): if the
  // transaction does not commit, or (for a start) was not recorded, the
  // Tracker keeps them pending. `instance` 0: no instance was in grace.
  void NoteStartAttempt(bool recorded);
  void NoteGraceEndAttempt(int64_t instance);

  // --- any scope of the database (helper-ctl) ---
  enum class PurgeResult { kPurged, kNoScope, kNoClient, kFailed };
  // Removes client `id` from `scope` exactly as expire_client would, with
  // the record it removed in *removed.
  PurgeResult Purge(const std::string& scope, const std::string& id,
                    std::optional<store::ClientRow>* removed);

  // An import into `scope` (recovery::PlanImport), planned on the scope as
  // this transaction sees it: no grace_done can slip in between the check
  // and the writes. A scope without a row gets one, so that dump shows it.
  struct ImportTarget {
    std::string scope;
    std::optional<store::ScopeRow> row;  // as the import began
    recovery::ImportPlan plan;
    std::string refusal;  // set when plan.verdict is kRefused
  };
  // False after a storage failure. A refused import changes nothing.
  bool PlanImport(const std::string& scope, ImportTarget* out);
  // Adds one record stamped with the plan's stamp unless `scope` already
  // has one with its id (which is left exactly as it is). An invalid
  // record (CheckRecord) fails the transaction. REQUIRES: the target's
  // verdict is not kRefused.
  bool Import(const ImportTarget& target, const std::string& id,
              const std::string& princhash, int minor, bool* inserted);

  // Commits, unless the transaction failed (then rolls back); durable once
  // this returns OK, and only then does the Tracker take this
  // transaction's row and counts and hear of its events. Returns the
  // failure otherwise. Ends the transaction.
  Status Commit();
  bool committed() const { return committed_; }

 private:
  friend class Tracker;
  bool Settle();
  bool PurgeOlderThan(const std::string& scope, int64_t older_than,
                      int64_t* purged);
  bool Queue(const std::string& scope, bool added, const std::string& id);
  bool Applied(const Status& s);

  Tracker* tracker_;
  store::Backend& store_;
  int64_t now_;
  store::ScopeRow row_;
  ScopeStats stats_;
  Status failure_;
  int64_t events_ = 0;
  bool open_ = false;       // BEGIN succeeded
  bool ended_ = false;      // Commit() was called
  bool settled_ = false;    // the pending steps were applied
  bool committed_ = false;
  bool start_attempted_ = false;
  bool start_recorded_ = false;
  std::optional<int64_t> grace_end_attempt_;
};

}  // namespace nfsdh::tracker

#endif  // DAEMON_TRACKER_TRACKER_H_
