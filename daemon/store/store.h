// Store: the helper's stable storage on one server, one SQLite database
// (format in daemon/store/FORMAT.md); the default store::Backend.
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

#include "daemon/store/backend.h"
#include "daemon/util/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace nfsdh::store {

// The schema version this build writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 3;
// PRAGMA application_id of every nfsd-helper database: "NFSH".
inline constexpr int32_t kApplicationId = 0x4e465348;

class Store final : public Backend {
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
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const override { return path_; }
  // How long a statement waits for a lock another connection holds
  // (default 10 s: right for helper-ctl's offline tools, which may wait). A
  // statement still locked out then fails with kIo, its message saying that
  // another process holds the write lock.
  void SetBusyTimeout(int ms);

  // The value of a PRAGMA on this connection ("journal_mode" -> "wal").
  Status Pragma(const std::string& name, std::string* value);

  // store::Backend. Notes for SQLite: ForEachClientAfter is a seek on the
  // key; ForEachClientOlderThan uses the (scope, instance) index; Begin is
  // BEGIN IMMEDIATE; QueuePurgeCallouts is one INSERT ... SELECT (nothing
  // is held in memory, however many records there are); a read transaction
  // never blocks the writer (WAL).
  Status GetScope(const std::string& name,
                  std::optional<ScopeRow>* out) override;
  Status ListScopes(std::vector<ScopeRow>* out) override;
  Status CountClients(const std::string& scope, int64_t* out) override;
  Status ForEachClient(
      const std::string& scope,
      const std::function<bool(const ClientRow&)>& fn) override;
  Status ForEachClientAfter(
      const std::string& scope, const std::string& after,
      const std::function<bool(const ClientRow&)>& fn) override;
  Status ForEachClientOlderThan(
      const std::string& scope, int64_t instance,
      const std::function<bool(const ClientRow&)>& fn) override;
  Status GetClient(const std::string& scope, const std::string& id,
                   std::optional<ClientRow>* out) override;
  Status BeginRead() override;
  void EndRead() override;
  Status Begin() override;
  Status Commit() override;
  void Rollback() override;
  bool in_transaction() const override { return in_txn_; }
  Status PutScope(const ScopeRow& row) override;
  Status UpsertClient(const ClientRow& row) override;
  Status InsertClientIfAbsent(const ClientRow& row, bool* inserted) override;
  Status DeleteClient(const std::string& scope, const std::string& id,
                      bool* existed) override;
  Status PutImport(const ImportRow& row) override;
  Status GetImport(const std::string& scope,
                   std::optional<ImportRow>* out) override;
  Status PurgeOlderThan(const std::string& scope, int64_t instance,
                        int64_t* deleted) override;
  Status QueueCallout(const std::string& scope, bool added,
                      const std::string& id, int64_t now) override;
  Status QueuePurgeCallouts(const std::string& scope, int64_t instance,
                            int64_t now, int64_t* queued) override;
  Status NextCallout(int64_t after, std::optional<CalloutRow>* out) override;
  Status CountCallouts(int64_t* out) override;
  Status DeleteCalloutsThrough(int64_t seq) override;

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
