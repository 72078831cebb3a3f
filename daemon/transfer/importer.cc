#include "daemon/transfer/importer.h"

#include "daemon/util/fs.h"

namespace nfsdh::transfer {
namespace {

recovery::ScopeState StateOf(const std::optional<store::ScopeRow>& row) {
  recovery::ScopeState s;
  if (row) {
    s.boot_time = row->boot_time;
    s.new_boot_time = row->new_boot_time;
    s.old_boot_time = row->old_boot_time;
    s.max_instance = row->max_instance;
  }
  return s;
}

}  // namespace

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

std::string RefusalReason(const std::string& scope,
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

Importer::Importer(store::Store* store, std::string scope, int64_t now)
    : store_(store), scope_(std::move(scope)), now_(now) {}

Importer::~Importer() {
  if (store_->in_transaction()) store_->Rollback();
}

Status Importer::Begin() {
  Status s = store_->Begin();
  if (s.ok()) s = store_->GetScope(scope_, &row_);
  if (!s.ok()) {
    if (store_->in_transaction()) store_->Rollback();
    return s;
  }
  plan_ = recovery::PlanImport(StateOf(row_));
  if (plan_.verdict == recovery::ImportVerdict::kRefused) {
    refusal_ = RefusalReason(scope_, row_);
    store_->Rollback();
  }
  return Status::Ok();
}

Status Importer::Add(const std::string& id, const std::string& princhash,
                     int minor) {
  Status s = CheckRecord(id, princhash, minor);
  if (!s.ok()) return s;
  store::ClientRow row;
  row.scope = scope_;
  row.id = id;
  row.princhash = princhash;
  row.minor = minor;
  row.instance = plan_.stamp;
  row.first_seen = row.last_seen = now_;
  bool inserted = false;
  s = store_->InsertClientIfAbsent(row, &inserted);
  if (s.ok() && inserted && queue_callouts_)
    s = store_->QueueCallout(scope_, true, id, now_);
  if (!s.ok()) return s;
  ++(inserted ? imported_ : kept_);
  return Status::Ok();
}

Status Importer::Commit() {
  if (!row_) {
    store::ScopeRow fresh;
    fresh.name = scope_;
    Status s = store_->PutScope(fresh);
    if (!s.ok()) return s;
  }
  return store_->Commit();
}

}  // namespace nfsdh::transfer
