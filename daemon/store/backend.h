// Backend: what the helper needs from its stable storage, whichever it is.
//
// Rationale. The channels and the control socket reach storage only through
// the tracker (daemon/tracker/), the HA callout's outbox and a few reads; all
// of it is this interface, so that one server keeps its records in a SQLite
// file (store::Store, the default) and a cluster keeps them in etcd, with the
// same group commit: the caller batches every pending request into one
// transaction (Begin ... Commit) and answers them only after Commit()
// returned OK, which means durable (SQLite: synchronous=FULL; etcd: committed
// at the quorum).
//
// A backend is used by one thread. Rows and their meanings: PROTOCOL.md §4
// and daemon/store/FORMAT.md.
#ifndef DAEMON_STORE_BACKEND_H_
#define DAEMON_STORE_BACKEND_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/util/status.h"

namespace nfsdh::store {

// One scope: a set of nfsd instances that share client records (one network
// namespace, or one HA service). Field meanings: PROTOCOL.md §4.
struct ScopeRow {
  std::string name;
  std::optional<int64_t> boot_time;      // last instance that completed grace
  std::optional<int64_t> new_boot_time;  // running instance while in grace
  std::optional<int64_t> old_boot_time;  // boot_time before that
  int64_t max_instance = 0;              // largest instance ever issued
  std::optional<int64_t> kernel_boot_time;  // kernel's boot_time, current inst.
  std::optional<int64_t> grace_started;  // wall clock (s): current inst. start
  std::optional<int64_t> grace_ended;  // wall clock (s): boot_time's grace end
};

struct ClientRow {
  std::string scope;
  std::string id;          // the client owner, 1..1024 bytes of binary
  std::string princhash;   // empty or 32 bytes
  int minor = 0;           // 0: NFSv4.0, 1: NFSv4.1 or later
  int64_t instance = 0;    // instance that last created or refreshed it
  int64_t first_seen = 0;  // wall clock seconds
  int64_t last_seen = 0;   // wall clock seconds
};

// The import of another tracker's database into a scope
// (daemon/migrate/nfsdcld_import.h): at most one per scope.
struct ImportRow {
  std::string scope;
  int64_t imported_at = 0;                // wall clock seconds
  std::string source;                     // the path of the imported file
  std::string kind;                       // "nfsdcld" or "nfsdcltrack"
  int schema_version = 0;                 // the source's parameters.version
  std::optional<int64_t> current_epoch;   // nfsdcld's grace.current
  std::optional<int64_t> recovery_epoch;  // nfsdcld's grace.recovery
  int64_t clients = 0;                    // records imported
};

// One entry of the HA callout's outbox (FORMAT.md, `callouts`).
struct CalloutRow {
  int64_t seq = 0;  // the outbox's order; never reused
  std::string scope;
  bool added = false;     // add-client; false: del-client
  std::string id;         // the client owner, binary
  int64_t queued_at = 0;  // wall clock seconds
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Where the records live, for logs ("/var/lib/nfs/nfsd-helper/db.sqlite").
  virtual const std::string& path() const = 0;

  // --- reads (inside or outside a transaction) ---
  virtual Status GetScope(const std::string& name,
                          std::optional<ScopeRow>* out) = 0;
  virtual Status ListScopes(std::vector<ScopeRow>* out) = 0;  // by name
  virtual Status CountClients(const std::string& scope, int64_t* out) = 0;
  // Calls `fn` for every client of `scope`, ordered by id, streaming (never
  // loads the records whole). Stops early if `fn` returns false.
  virtual Status ForEachClient(
      const std::string& scope,
      const std::function<bool(const ClientRow&)>& fn) = 0;
  // The same, for the clients whose id sorts after `after` only (all of
  // them if `after` is empty), for paged reads.
  virtual Status ForEachClientAfter(
      const std::string& scope, const std::string& after,
      const std::function<bool(const ClientRow&)>& fn) = 0;
  // The records of `scope` stamped with an instance < `instance` (those
  // PurgeOlderThan would delete), in no particular order.
  virtual Status ForEachClientOlderThan(
      const std::string& scope, int64_t instance,
      const std::function<bool(const ClientRow&)>& fn) = 0;
  virtual Status GetClient(const std::string& scope, const std::string& id,
                           std::optional<ClientRow>* out) = 0;

  // A read transaction: every read between BeginRead() and EndRead() sees
  // one snapshot, and the writer is never blocked.
  virtual Status BeginRead() = 0;
  virtual void EndRead() = 0;

  // --- writes: only between Begin() and Commit() ---
  virtual Status Begin() = 0;
  // Durable once this returns OK; on failure nothing of the transaction
  // may be taken as stored.
  virtual Status Commit() = 0;
  // Safe to call after a failed statement or Commit.
  virtual void Rollback() = 0;
  virtual bool in_transaction() const = 0;

  virtual Status PutScope(const ScopeRow& row) = 0;  // insert or replace
  // Inserts the record or refreshes it: instance, princhash, minor and
  // last_seen are replaced; first_seen is kept.
  virtual Status UpsertClient(const ClientRow& row) = 0;
  // Inserts the record unless one with its (scope, id) exists, which is
  // left unchanged; *inserted says which.
  virtual Status InsertClientIfAbsent(const ClientRow& row, bool* inserted) = 0;
  virtual Status DeleteClient(const std::string& scope, const std::string& id,
                              bool* existed) = 0;
  // Records the import into row.scope; kInvalid if the scope has one.
  virtual Status PutImport(const ImportRow& row) = 0;
  virtual Status GetImport(const std::string& scope,
                           std::optional<ImportRow>* out) = 0;
  // Deletes every record of `scope` stamped with an instance < `instance`.
  virtual Status PurgeOlderThan(const std::string& scope, int64_t instance,
                                int64_t* deleted) = 0;

  // --- the HA callout's outbox (daemon/callout/callout.h) ---
  // Appends an event, after every entry already there. REQUIRES: inside the
  // transaction of the change it reports.
  virtual Status QueueCallout(const std::string& scope, bool added,
                              const std::string& id, int64_t now) = 0;
  // Appends a del-client for every record PurgeOlderThan(scope, instance)
  // would delete; *queued gets their number. REQUIRES: inside the
  // transaction, before that purge.
  virtual Status QueuePurgeCallouts(const std::string& scope, int64_t instance,
                                    int64_t now, int64_t* queued) = 0;
  // The oldest entry whose seq is > `after` (unset: none).
  virtual Status NextCallout(int64_t after, std::optional<CalloutRow>* out) = 0;
  virtual Status CountCallouts(int64_t* out) = 0;
  // Deletes every entry with a seq <= `seq`. Outside a transaction it is a
  // transaction of its own.
  virtual Status DeleteCalloutsThrough(int64_t seq) = 0;
};

}  // namespace nfsdh::store

#endif  // DAEMON_STORE_BACKEND_H_
