// Store: the helper's stable storage, one SQLite database (format in
// daemon/store/FORMAT.md).
//
// Rationale. Every acknowledgement the helper sends promises durability, so
// the database runs in WAL mode with synchronous=FULL and every change is made
// inside an explicit transaction (Begin ... Commit). The caller batches all
// pending requests into one transaction (group commit) and answers them only
// after Commit() returned OK.
//
// Thread affinity: a Store is used by one thread. Several processes may open
// the same file; readers (helper-ctl) never block the writer (WAL).
#ifndef DAEMON_STORE_STORE_H_
#define DAEMON_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/util/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace nfsdh::store {

// The schema version this build writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 3;
// PRAGMA application_id of every nfsd-helper database: "NFSH".
inline constexpr int32_t kApplicationId = 0x4e465348;

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
  std::optional<int64_t> grace_ended;    // wall clock (s): boot_time's grace end
};

struct ClientRow {
  std::string scope;
  std::string id;         // the client owner, 1..1024 bytes of binary
  std::string princhash;  // empty or 32 bytes
  int minor = 0;          // 0: NFSv4.0, 1: NFSv4.1 or later
  int64_t instance = 0;   // instance that last created or refreshed it
  int64_t first_seen = 0;  // wall clock seconds
  int64_t last_seen = 0;   // wall clock seconds
};

// The import of another tracker's database into a scope
// (daemon/migrate/nfsdcld_import.h): at most one per scope.
struct ImportRow {
  std::string scope;
  int64_t imported_at = 0;  // wall clock seconds
  std::string source;       // the path of the imported file
  std::string kind;         // "nfsdcld" or "nfsdcltrack"
  int schema_version = 0;   // the source's parameters.version
  std::optional<int64_t> current_epoch;   // nfsdcld's grace.current
  std::optional<int64_t> recovery_epoch;  // nfsdcld's grace.recovery
  int64_t clients = 0;      // records imported
};

// One entry of the HA callout's outbox (FORMAT.md, `callouts`).
struct CalloutRow {
  int64_t seq = 0;        // the outbox's order; never reused
  std::string scope;
  bool added = false;     // add-client; false: del-client
  std::string id;         // the client owner, binary
  int64_t queued_at = 0;  // wall clock seconds
};

class Store {
 public:
  enum class Mode {
    kReadWrite,  // create the file (0600) and its directory (0700) if missing
    kReadOnly,   // never create or change anything
    // kReadOnly without PRAGMA quick_check: for a second connection of a
    // process that has already opened and checked the file (it would cost
    // a full scan of a large database on the daemon's event loop).
    kReadOnlyChecked,
  };

  // Opens `path`. Returns kCorrupt only for a file that is recognisably
  // ours (application_id kApplicationId, as SQLite reads it or, when SQLite
  // cannot read the file, as its header on disk says) and that SQLite cannot
  // read or that fails PRAGMA quick_check: the only kind the daemon sets
  // aside. Returns kInvalid for a file that is not an nfsd-helper database
  // (whether SQLite can read it or not: text, another program's database,
  // damaged or not), is empty (kReadOnly), or has a schema newer than this
  // build; kNotFound if it does not exist in kReadOnly mode; kPermission if
  // it cannot be read.
  // Older schemas are migrated in kReadWrite mode, refused in kReadOnly mode.
  // kReadOnly never changes the database; like every WAL reader it may create
  // the -wal and -shm companion files (with the database's mode) if the
  // writer is not running.
  static Status Open(const std::string& path, Mode mode,
                     std::unique_ptr<Store>* out);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  // How long a statement waits for a lock another connection holds
  // (default 10 s: right for helper-ctl's offline tools, which may wait). A
  // statement still locked out then fails with kIo, its message saying that
  // another process holds the write lock.
  void SetBusyTimeout(int ms);

  // The value of a PRAGMA on this connection ("journal_mode" -> "wal").
  Status Pragma(const std::string& name, std::string* value);

  // --- reads (inside or outside a transaction) ---
  Status GetScope(const std::string& name, std::optional<ScopeRow>* out);
  Status ListScopes(std::vector<ScopeRow>* out);  // ordered by name
  Status CountClients(const std::string& scope, int64_t* out);
  // Calls `fn` for every client of `scope`, ordered by id, streaming (never
  // loads the table whole). Stops early if `fn` returns false.
  Status ForEachClient(const std::string& scope,
                       const std::function<bool(const ClientRow&)>& fn);
  // The same, for the clients whose id sorts after `after` only (all of
  // them if `after` is empty): a seek on the key, for paged reads.
  Status ForEachClientAfter(const std::string& scope, const std::string& after,
                            const std::function<bool(const ClientRow&)>& fn);
  // The records of `scope` stamped with an instance < `instance` (those
  // PurgeOlderThan would delete), in no particular order, through the
  // (scope, instance) index.
  Status ForEachClientOlderThan(
      const std::string& scope, int64_t instance,
      const std::function<bool(const ClientRow&)>& fn);
  Status GetClient(const std::string& scope, const std::string& id,
                   std::optional<ClientRow>* out);

  // A read transaction: every read between BeginRead() and EndRead() sees
  // one snapshot, and the writer is never blocked (WAL).
  Status BeginRead();
  void EndRead();

  // --- writes: only between Begin() and Commit() ---
  Status Begin();   // BEGIN IMMEDIATE
  Status Commit();  // durable once this returns OK
  void Rollback();  // safe to call after a failed statement or Commit
  bool in_transaction() const { return in_txn_; }

  Status PutScope(const ScopeRow& row);  // insert or replace
  // Inserts the record or refreshes it: instance, princhash, minor and
  // last_seen are replaced; first_seen is kept.
  Status UpsertClient(const ClientRow& row);
  // Inserts the record unless one with its (scope, id) exists, which is
  // left unchanged; *inserted says which.
  Status InsertClientIfAbsent(const ClientRow& row, bool* inserted);
  Status DeleteClient(const std::string& scope, const std::string& id,
                      bool* existed);
  // Records the import into row.scope; kInvalid if the scope has one.
  Status PutImport(const ImportRow& row);
  Status GetImport(const std::string& scope, std::optional<ImportRow>* out);
  // Deletes every record of `scope` stamped with an instance < `instance`.
  Status PurgeOlderThan(const std::string& scope, int64_t instance,
                        int64_t* deleted);

  // --- the HA callout's outbox (daemon/callout/callout.h) ---
  // Appends an event, after every entry already there. REQUIRES: inside the
  // transaction of the change it reports.
  Status QueueCallout(const std::string& scope, bool added,
                      const std::string& id, int64_t now);
  // Appends a del-client for every record PurgeOlderThan(scope, instance)
  // would delete, in one INSERT ... SELECT (nothing is held in memory,
  // however many there are); *queued gets their number. REQUIRES: inside
  // the transaction, before that purge.
  Status QueuePurgeCallouts(const std::string& scope, int64_t instance,
                            int64_t now, int64_t* queued);
  // The oldest entry whose seq is > `after` (unset: none).
  Status NextCallout(int64_t after, std::optional<CalloutRow>* out);
  // The entries of the outbox (a scan of the table).
  Status CountCallouts(int64_t* out);
  // Deletes every entry with a seq <= `seq`. Outside a transaction it is a
  // transaction of its own.
  Status DeleteCalloutsThrough(int64_t seq);

 private:
  Store(sqlite3* db, std::string path);
  Status Init(Mode mode);
  Status Exec(const char* sql);
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Error(const char* what) const;

  sqlite3* db_ = nullptr;
  std::string path_;
  bool in_txn_ = false;
  std::vector<sqlite3_stmt*> stmts_;  // cached, finalized in ~Store
};

}  // namespace nfsdh::store

#endif  // DAEMON_STORE_STORE_H_
