#include "daemon/tracker/tracker.h"

#include <utility>

#include "daemon/store/pending_steps.h"
#include "daemon/util/fs.h"
#include "daemon/util/log.h"

namespace nfsdh::tracker {
namespace {

void SetState(const recovery::ScopeState& s, store::ScopeRow* row) {
  row->boot_time = s.boot_time;
  row->new_boot_time = s.new_boot_time;
  row->old_boot_time = s.old_boot_time;
  row->max_instance = s.max_instance;
}

}  // namespace

recovery::ScopeState StateOf(const store::ScopeRow& row) {
  recovery::ScopeState s;
  s.boot_time = row.boot_time;
  s.new_boot_time = row.new_boot_time;
  s.old_boot_time = row.old_boot_time;
  s.max_instance = row.max_instance;
  return s;
}

recovery::ScopeState StateOf(const std::optional<store::ScopeRow>& row) {
  return row ? StateOf(*row) : recovery::ScopeState();
}

std::string DescribeInstance(const std::optional<int64_t>& inst) {
  return inst ? "instance " + std::to_string(*inst) : "no instance";
}

Status CheckRecord(const std::string& id, const std::string& princhash,
                   int minor) {
  if (id.empty() || id.size() > 1024)
    return Status::Invalid("a client id must be 1 to 1024 bytes, not " +
                           std::to_string(id.size()));
  if (!princhash.empty() && princhash.size() != 32)
    return Status::Invalid("a principal hash must be 32 bytes (or none), not " +
                           std::to_string(princhash.size()));
  if (minor != 0 && minor != 1 && minor != -1)
    return Status::Invalid(
        "minor must be 0 (NFSv4.0), 1 (NFSv4.1 and later) or -1 (not "
        "known), not " +
        std::to_string(minor));
  return Status::Ok();
}

std::string ImportRefusal(const std::string& scope,
                          const std::optional<store::ScopeRow>& row) {
  if (recovery::PlanImport(StateOf(row)).verdict !=
      recovery::ImportVerdict::kRefused)
    return "";
  // Refused means a boot_time is set and no grace period is open. The
  // instance id is not shown as a date: it may be later than the time its
  // grace period ended (ids only grow, even when the clock steps back or
  // instances start within one second), which would read as a contradiction.
  std::string when =
      row->grace_ended ? " at " + IsoTime(*row->grace_ended) : std::string();
  return "the grace period of scope " + scope + " (instance id " +
         std::to_string(row->boot_time.value_or(0)) +
         ", not a time: instance ids only order a scope's server instances)"
         " ended" +
         when +
         ": a client that held no state here since then may not reclaim, "
         "because conflicting state may have been granted. Import before "
         "the scope's first start, or while its grace period is open, and "
         "then restart nfsd for it";
}

// --- Tracker ---

Tracker::Tracker(store::Backend* store, std::string scope) : store_(store) {
  row_.name = std::move(scope);
}

Status Tracker::Load() {
  std::optional<store::ScopeRow> row;
  Status s = store_->GetScope(row_.name, &row);
  if (!s.ok()) return s;
  if (row) {
    row_ = *row;
  } else {
    std::string name = row_.name;
    row_ = store::ScopeRow();
    row_.name = name;
  }
  stats_ = ScopeStats();
  return store_->CountClients(row_.name, &stats_.clients);
}

void Tracker::set_callouts(bool on, std::function<void(int64_t)> committed) {
  callouts_ = on;
  callouts_committed_ = std::move(committed);
}

Status Tracker::OpenPending(std::string path) {
  pending_path_ = std::move(path);
  std::vector<recovery::PendingStep> steps;
  Status s = store::ReadPendingSteps(pending_path_, &steps);
  if (!s.ok() || steps.empty()) return s;
  pending_ = steps;
  LOG_WARNING("scope %s: the previous nfsd-helper could not record what "
              "nfsd did (%s: %zu step(s)); recording it before anything "
              "else",
              scope().c_str(), pending_path_.c_str(), steps.size());
  return Status::Ok();
}

void Tracker::AddPending(const recovery::PendingStep& step) {
  if (!step.start && grace_end_pending()) return;  // already pending
  // Two starts with no grace end between them are one restart during
  // grace: the start rules give the same records either way.
  if (step.start && !pending_.empty() && pending_.back().start) return;
  pending_.push_back(step);
  SavePending();
}

void Tracker::SavePending() {
  if (pending_path_.empty()) return;
  Status s = pending_.empty()
                 ? RemoveDurably(pending_path_)
                 : WriteFileDurably(pending_path_,
                                    store::FormatPendingSteps(pending_));
  if (!s.ok()) {
    LOG_ERROR("scope %s: cannot keep what nfsd did and the database missed "
              "on disk (%s): if nfsd-helper stops before it is recorded, the "
              "next one may not know of it",
              scope().c_str(), s.ToString().c_str());
  }
}

void Tracker::Committed(const Transaction& t) {
  row_ = t.row_;
  stats_ = t.stats_;
  if (t.settled_ && !pending_.empty()) {
    pending_.clear();
    SavePending();
  }
  if (t.events_ > 0 && callouts_committed_) callouts_committed_(t.events_);
}

void Tracker::NoteUnrecorded(const Transaction& t, bool committed) {
  // nfsd ends the grace period whatever GraceDone gets back, and a cld
  // GraceStart that failed leaves it running an instance without an allow
  // list (it falls back to Check upcalls).
  if (t.start_attempted_ && (!committed || !t.start_recorded_)) {
    AddPending(recovery::PendingStep{true, std::nullopt});
    LOG_ERROR("scope %s: nfsd runs a server instance whose start this "
              "database could not record; it is recorded before anything "
              "else, and every upcall is answered -EIO until then",
              scope().c_str());
  }
  if (t.grace_end_attempt_ && !committed) {
    bool unrecorded = !pending_.empty() && pending_.back().start;
    std::optional<int64_t> instance;
    if (!unrecorded) instance = *t.grace_end_attempt_;
    if (unrecorded || *instance != 0) {
      AddPending(recovery::PendingStep{false, instance});
      LOG_ERROR("scope %s: nfsd ends the grace period of %s whatever its "
                "GraceDone upcall is answered; until the end is recorded "
                "every upcall is answered -EIO and no client may reclaim; "
                "retrying",
                scope().c_str(),
                unrecorded ? "the instance whose start was not recorded"
                           : DescribeInstance(instance).c_str());
    }
  }
}

// --- Transaction ---

Transaction::Transaction(Tracker* tracker, int64_t now)
    : tracker_(tracker),
      store_(*tracker->store_),
      now_(now),
      row_(tracker->row_),
      stats_(tracker->stats_) {
  // Two at once would each commit the other's statements and overwrite
  // the other's row and counts.
  if (tracker_->in_transaction_)
    FATAL("scope %s: a transaction began inside another", scope().c_str());
  tracker_->in_transaction_ = true;
  Status s = store_.Begin();
  if (!s.ok()) {
    Fail(s);
    return;
  }
  open_ = true;
  // What nfsd did that the database missed (an unrecorded start, a grace
  // end) comes first, so that a GraceStart in this transaction sees it; if
  // it cannot be recorded the whole transaction fails.
  if (!tracker_->pending_.empty()) settled_ = Settle();
}

Transaction::~Transaction() {
  if (!ended_ && store_.in_transaction()) store_.Rollback();
  tracker_->in_transaction_ = false;
}

void Transaction::Fail(const Status& s) {
  if (failure_.ok()) failure_ = s;
}

bool Transaction::Applied(const Status& s) {
  if (s.ok()) return true;
  Fail(s);
  return false;
}

bool Transaction::Queue(const std::string& scope, bool added,
                        const std::string& id) {
  if (!tracker_->callouts_) return true;
  if (!Applied(store_.QueueCallout(scope, added, id, now_))) return false;
  ++events_;
  return true;
}

bool Transaction::PurgeOlderThan(const std::string& scope, int64_t older_than,
                                 int64_t* purged) {
  // The del-client events first, with one INSERT ... SELECT: a purge of
  // 1,000,000 records holds none of them in memory.
  *purged = 0;
  int64_t queued = 0;
  Status s;
  if (tracker_->callouts_)
    s = store_.QueuePurgeCallouts(scope, older_than, now_, &queued);
  if (s.ok()) s = store_.PurgeOlderThan(scope, older_than, purged);
  if (!Applied(s)) return false;
  events_ += queued;
  return true;
}

bool Transaction::Settle() {
  std::optional<int64_t> started;
  for (const recovery::PendingStep& step : tracker_->pending_) {
    if (step.start) {
      Started st;
      if (Start(StartSpec{std::nullopt, true}, nullptr, &st) !=
          StartResult::kStarted)
        return false;
      LOG_WARNING("scope %s: started server instance %lld for the nfsd "
                  "instance whose GraceStart was not recorded (%lld stale "
                  "record(s) removed); its clients reclaim through Check",
                  scope().c_str(), static_cast<long long>(st.instance),
                  static_cast<long long>(st.purged));
      started = st.instance;
      continue;
    }
    std::optional<int64_t> target = step.instance ? step.instance : started;
    recovery::ScopeState st = state();
    if (!target || st.new_boot_time != target) {
      LOG_INFO("scope %s: the grace end of %s is no longer pending (%s%s)",
               scope().c_str(), DescribeInstance(target).c_str(),
               DescribeInstance(st.current()).c_str(),
               st.in_grace() ? ", in grace" : "");
      continue;
    }
    if (!EndGrace(*target, "recorded after nfsd ended it")) return false;
  }
  return !failed();
}

Transaction::StartResult Transaction::Start(const StartSpec& spec,
                                            AllowList* list, Started* out) {
  *out = Started();
  if (failed()) return StartResult::kFailed;
  recovery::ScopeState before = state();
  recovery::StartPlan plan = recovery::PlanStart(before, now_);
  if (!spec.adopted && list) {
    bool delivered = true;
    Status s = store_.ForEachClient(scope(), [&](const store::ClientRow& r) {
      if (plan.purge_older_than && r.instance < *plan.purge_older_than)
        return true;  // purged below
      switch (list->Add(r)) {
        case AllowList::Offer::kAllowed:
          ++out->allowed;
          return true;
        case AllowList::Offer::kWithheld:
          ++out->withheld;
          return true;
        case AllowList::Offer::kUndelivered:
          break;
      }
      delivered = false;
      return false;
    });
    if (s.ok() && delivered) delivered = list->Close();
    if (!s.ok()) {
      LOG_ERROR("scope %s: cannot read the allow list, no client may "
                "reclaim: %s",
                scope().c_str(), s.ToString().c_str());
      Fail(s);
      return StartResult::kFailed;
    }
    if (!delivered) return StartResult::kUndelivered;
  }
  int64_t purged = 0;
  bool ok = !plan.purge_older_than ||
            PurgeOlderThan(scope(), *plan.purge_older_than, &purged);
  store::ScopeRow next = row_;
  SetState(plan.next, &next);
  next.kernel_boot_time = spec.kernel_boot_time;
  next.grace_started = now_;
  if (ok) ok = Applied(store_.PutScope(next));
  if (!ok) {
    LOG_ERROR("scope %s: cannot start a server instance, no client may "
              "reclaim: %s",
              scope().c_str(), failure_.ToString().c_str());
    return StartResult::kFailed;
  }
  row_ = next;
  stats_.clients -= purged;
  if (spec.adopted) {
    stats_.start_seen = false;
  } else {
    stats_.start_seen = true;
    stats_.start_instance = plan.instance;
    stats_.start_time = now_;
    stats_.allowed = out->allowed;
    stats_.reclaimed = 0;
  }
  out->instance = plan.instance;
  out->purged = purged;
  out->restart_in_grace = plan.restart_in_grace;
  return StartResult::kStarted;
}

recovery::Verdict Transaction::CheckInstance(int64_t instance) const {
  return recovery::CheckInstance(state(), instance);
}

bool Transaction::Record(int64_t instance, const std::string& id,
                         const std::string& princhash,
                         std::optional<int> minor, Recorded* out) {
  if (failed()) return false;
  std::optional<store::ClientRow> before;
  if (!Applied(store_.GetClient(scope(), id, &before))) return false;
  store::ClientRow row;
  row.scope = scope();
  row.id = id;
  row.princhash = princhash;
  row.minor = minor ? *minor : before ? before->minor : 0;
  row.instance = instance;
  row.first_seen = row.last_seen = now_;
  if (!Applied(store_.UpsertClient(row))) return false;
  Recorded r = Recorded::kRefreshed;
  if (!before) {
    ++stats_.clients;
    if (!Queue(scope(), true, id)) return false;
    r = Recorded::kNew;
  } else if (before->instance < instance && stats_.start_seen &&
             stats_.start_instance == instance) {
    // Stamped older than the instance that sent this allow list: it was
    // on the list (ScopeStats).
    ++stats_.reclaimed;
    r = Recorded::kReclaimed;
  }
  if (out) *out = r;
  return true;
}

bool Transaction::Lookup(const std::string& id,
                         std::optional<store::ClientRow>* out) {
  out->reset();
  if (failed()) return false;
  return Applied(store_.GetClient(scope(), id, out));
}

bool Transaction::Remove(const std::string& id, bool* existed) {
  *existed = false;
  if (failed()) return false;
  if (!Applied(store_.DeleteClient(scope(), id, existed))) return false;
  if (*existed) {
    --stats_.clients;
    return Queue(scope(), false, id);
  }
  return true;
}

bool Transaction::EndGrace(int64_t instance, const std::string& who) {
  if (failed()) return false;
  recovery::GraceDonePlan plan = recovery::PlanGraceDone(state(), instance);
  int64_t purged = 0;
  bool ok = PurgeOlderThan(scope(), plan.purge_older_than, &purged);
  store::ScopeRow next = row_;
  SetState(plan.next, &next);
  next.grace_ended = now_;
  if (ok) ok = Applied(store_.PutScope(next));
  if (!ok) {
    LOG_ERROR("scope %s: cannot end the grace period of instance %lld (%s): "
              "%s",
              scope().c_str(), static_cast<long long>(instance), who.c_str(),
              failure_.ToString().c_str());
    return false;
  }
  row_ = next;
  stats_.clients -= purged;
  LOG_NOTICE("scope %s: instance %lld ended its grace period (%s); %lld "
             "client(s) that did not reclaim were removed",
             scope().c_str(), static_cast<long long>(instance), who.c_str(),
             static_cast<long long>(purged));
  return true;
}

void Transaction::NoteStartAttempt(bool recorded) {
  start_attempted_ = true;
  start_recorded_ = recorded;
}

void Transaction::NoteGraceEndAttempt(int64_t instance) {
  grace_end_attempt_ = instance;
}

Transaction::PurgeResult Transaction::Purge(
    const std::string& scope, const std::string& id,
    std::optional<store::ClientRow>* removed) {
  removed->reset();
  if (failed()) return PurgeResult::kFailed;
  std::optional<store::ScopeRow> row;
  if (!Applied(store_.GetScope(scope, &row))) return PurgeResult::kFailed;
  if (!row) return PurgeResult::kNoScope;
  if (!Applied(store_.GetClient(scope, id, removed)))
    return PurgeResult::kFailed;
  if (!*removed) return PurgeResult::kNoClient;
  bool existed = false;
  if (!Applied(store_.DeleteClient(scope, id, &existed)) ||
      (existed && !Queue(scope, false, id))) {
    removed->reset();
    return PurgeResult::kFailed;
  }
  if (!existed) {
    removed->reset();
    return PurgeResult::kNoClient;
  }
  if (scope == this->scope()) --stats_.clients;
  return PurgeResult::kPurged;
}

bool Transaction::PlanImport(const std::string& scope, ImportTarget* out) {
  *out = ImportTarget();
  out->scope = scope;
  if (failed()) return false;
  if (!Applied(store_.GetScope(scope, &out->row))) return false;
  out->plan = recovery::PlanImport(StateOf(out->row));
  if (out->plan.verdict == recovery::ImportVerdict::kRefused) {
    out->refusal = ImportRefusal(scope, out->row);
    return true;
  }
  if (!out->row) {
    store::ScopeRow fresh;
    fresh.name = scope;
    if (!Applied(store_.PutScope(fresh))) return false;
  }
  return true;
}

bool Transaction::Import(const ImportTarget& target, const std::string& id,
                         const std::string& princhash, int minor,
                         bool* inserted) {
  *inserted = false;
  if (failed()) return false;
  if (!Applied(CheckRecord(id, princhash, minor))) return false;
  store::ClientRow row;
  row.scope = target.scope;
  row.id = id;
  row.princhash = princhash;
  row.minor = minor;
  row.instance = target.plan.stamp;
  row.first_seen = row.last_seen = now_;
  if (!Applied(store_.InsertClientIfAbsent(row, inserted))) return false;
  if (!*inserted) return true;
  if (target.scope == scope()) ++stats_.clients;
  return Queue(target.scope, true, id);
}

Status Transaction::Commit() {
  if (ended_) return committed_ ? Status::Ok() : failure_;
  ended_ = true;
  if (open_ && !failed() && Applied(store_.Commit())) committed_ = true;
  if (!committed_ && store_.in_transaction()) store_.Rollback();
  if (committed_) tracker_->Committed(*this);
  if (tracker_->note_unrecorded_) tracker_->NoteUnrecorded(*this, committed_);
  return committed_ ? Status::Ok() : failure_;
}

}  // namespace nfsdh::tracker
