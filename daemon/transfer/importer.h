// Importer: adds client records moved from another server to a scope, in one
// transaction (helper-ctl import, and CTL_IMPORT in the daemon).
//
// Rationale. An HA take-over moves a scope's records from node A to node B so
// that A's clients may reclaim on B. Whether that is safe, and how the records
// are stamped, is recovery::PlanImport's decision (engine.h): the records are
// allowed at the scope's next start, and only while the scope's grace period
// is open or has not yet begun (once it ended, conflicting state may have
// been granted to others). The importer applies that plan:
//  - Begin() opens the write transaction (BEGIN IMMEDIATE) and decides, on
//    the scope row as it is inside that transaction, so no grace_done can
//    slip in between the check and the writes;
//  - Add() inserts each record unless the scope already has one with its id
//    (an existing record is left exactly as it is: it is already on the next
//    allow list, stamped with the instance it last held state in);
//  - Commit() writes the scope row if the scope had none (so dump shows it)
//    and commits with synchronous=FULL; nothing is visible before, and any
//    failure, a refusal or a bad record rolls back everything.
//
// Thread affinity: that of the Store.
#ifndef DAEMON_TRANSFER_IMPORTER_H_
#define DAEMON_TRANSFER_IMPORTER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/recovery/engine.h"
#include "daemon/store/store.h"
#include "daemon/util/status.h"

namespace nfsdh::transfer {

// Checks one record as it will be stored: an id of 1..1024 bytes, a
// principal hash of 0 or 32 bytes, minor 0, 1 or -1 (not known: a record
// that came from nfsdcld, daemon/store/FORMAT.md). Returns kInvalid with a
// reason otherwise.
Status CheckRecord(const std::string& id, const std::string& princhash,
                   int minor);

// Why an import into `row` (unset: no such scope) is refused, in an
// operator's words; "" if it is not.
std::string RefusalReason(const std::string& scope,
                          const std::optional<store::ScopeRow>& row);

class Importer {
 public:
  // REQUIRES: `store` is open read-write, not in a transaction, and
  // outlives the importer.
  Importer(store::Store* store, std::string scope, int64_t now);
  // Rolls back whatever was not committed.
  ~Importer();
  Importer(const Importer&) = delete;
  Importer& operator=(const Importer&) = delete;

  // Opens the transaction and plans. When the plan is kRefused the
  // transaction is rolled back at once and Add/Commit must not be called;
  // refusal() says why.
  Status Begin();
  recovery::ImportVerdict verdict() const { return plan_.verdict; }
  int64_t stamp() const { return plan_.stamp; }
  const std::string& refusal() const { return refusal_; }
  // The scope row as it was when the import began (unset: no such scope).
  const std::optional<store::ScopeRow>& scope_row() const { return row_; }

  // With `on`, Add queues an add-client in the HA callout's outbox for
  // each record it inserts, in the import's transaction (the daemon sets
  // it when it runs a callout). REQUIRES: before Begin().
  void set_queue_callouts(bool on) { queue_callouts_ = on; }
  int64_t callouts_queued() const { return queue_callouts_ ? imported_ : 0; }

  // REQUIRES: Begin() returned OK and the verdict is not kRefused.
  Status Add(const std::string& id, const std::string& princhash, int minor);
  Status Commit();  // durable once this returns OK

  int64_t imported() const { return imported_; }  // new records
  int64_t kept() const { return kept_; }          // already present

 private:
  store::Store* store_;
  std::string scope_;
  int64_t now_;
  recovery::ImportPlan plan_;
  std::optional<store::ScopeRow> row_;
  std::string refusal_;
  int64_t imported_ = 0;
  int64_t kept_ = 0;
  bool queue_callouts_ = false;
};

}  // namespace nfsdh::transfer

#endif  // DAEMON_TRANSFER_IMPORTER_H_
