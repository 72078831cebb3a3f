#include "daemon/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "daemon/util/fs.h"

namespace nfsdh::store {
namespace {

// Schema migrations: kMigrations[v] takes a database from user_version v to
// v + 1. Version 0 is an empty file. Each step runs in the same transaction
// as the user_version update that records it.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema. Meanings: PROTOCOL.md §4, FORMAT.md.
    R"sql(
CREATE TABLE scopes (
  name TEXT PRIMARY KEY NOT NULL,
  boot_time INTEGER,
  new_boot_time INTEGER,
  old_boot_time INTEGER,
  max_instance INTEGER NOT NULL DEFAULT 0,
  kernel_boot_time INTEGER,
  grace_started INTEGER,
  grace_ended INTEGER
) STRICT;
CREATE TABLE v4clients (
  scope TEXT NOT NULL,
  id BLOB NOT NULL,
  princhash BLOB,
  minor INTEGER NOT NULL,
  instance INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (scope, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX v4clients_by_instance ON v4clients (scope, instance);
)sql",
    // 1 -> 2: the record of an import from nfsdcld or nfsdcltrack
    // (daemon/migrate/), one per scope, so that it is never repeated.
    R"sql(
CREATE TABLE imports (
  scope TEXT PRIMARY KEY NOT NULL,
  imported_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  current_epoch INTEGER,
  recovery_epoch INTEGER,
  clients INTEGER NOT NULL
) STRICT;
)sql",
    // 2 -> 3: the HA callout's outbox (daemon/callout/callout.h), written
    // in the transaction of the change each entry reports. AUTOINCREMENT:
    // a seq is never reused, so "after seq N" stays right once the table
    // was emptied.
    R"sql(
CREATE TABLE callouts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scope TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('add-client', 'del-client')),
  id BLOB NOT NULL,
  queued_at INTEGER NOT NULL
) STRICT;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion,
              "one migration per schema version");

// What a lock held by another connection means here: the daemon is the only
// writer its database expects.
constexpr char kBusyHint[] =
    ": another process holds the database's write lock (a helper-ctl "
    "command that writes it, or a second nfsd-helper?)";

bool IsBusy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

bool IsCorruption(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// Whether the header on disk of the file at `path` says it is an nfsd-helper
// database: SQLite's magic string and our application_id (big-endian at
// offset 68). For a file SQLite cannot read: the header may still be intact.
bool HeaderSaysOurs(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  unsigned char h[72];
  ssize_t n = pread(fd, h, sizeof h, 0);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof h) ||
      std::memcmp(h, "SQLite format 3", 16) != 0)
    return false;
  uint32_t id = (uint32_t{h[68]} << 24) | (uint32_t{h[69]} << 16) |
                (uint32_t{h[70]} << 8) | uint32_t{h[71]};
  return id == static_cast<uint32_t>(kApplicationId);
}

std::optional<int64_t> ColumnOptInt(sqlite3_stmt* st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(st, col);
}

std::string ColumnBlob(sqlite3_stmt* st, int col) {
  const void* p = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

void BindOptInt(sqlite3_stmt* st, int idx, const std::optional<int64_t>& v) {
  if (v)
    sqlite3_bind_int64(st, idx, *v);
  else
    sqlite3_bind_null(st, idx);
}

void BindText(sqlite3_stmt* st, int idx, const std::string& s) {
  sqlite3_bind_text(st, idx, s.data(), static_cast<int>(s.size()),
                    SQLITE_TRANSIENT);
}

void BindBlobOrNull(sqlite3_stmt* st, int idx, const std::string& s,
                    bool empty_is_null) {
  if (s.empty() && empty_is_null)
    sqlite3_bind_null(st, idx);
  else
    sqlite3_bind_blob(st, idx, s.data(), static_cast<int>(s.size()),
                      SQLITE_TRANSIENT);
}

// Resets a statement on scope exit so a cached statement never stays busy.
struct Resetter {
  sqlite3_stmt* st = nullptr;
  ~Resetter() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
};

const char kScopeColumns[] =
    "name, boot_time, new_boot_time, old_boot_time, max_instance, "
    "kernel_boot_time, grace_started, grace_ended";

ScopeRow ReadScope(sqlite3_stmt* st) {
  ScopeRow r;
  r.name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  r.boot_time = ColumnOptInt(st, 1);
  r.new_boot_time = ColumnOptInt(st, 2);
  r.old_boot_time = ColumnOptInt(st, 3);
  r.max_instance = sqlite3_column_int64(st, 4);
  r.kernel_boot_time = ColumnOptInt(st, 5);
  r.grace_started = ColumnOptInt(st, 6);
  r.grace_ended = ColumnOptInt(st, 7);
  return r;
}

const char kClientColumns[] =
    "scope, id, princhash, minor, instance, first_seen, last_seen";

ClientRow ReadClient(sqlite3_stmt* st) {
  ClientRow r;
  r.scope = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  r.id = ColumnBlob(st, 1);
  r.princhash = ColumnBlob(st, 2);
  r.minor = sqlite3_column_int(st, 3);
  r.instance = sqlite3_column_int64(st, 4);
  r.first_seen = sqlite3_column_int64(st, 5);
  r.last_seen = sqlite3_column_int64(st, 6);
  return r;
}

}  // namespace

Store::Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Store::~Store() {
  if (in_txn_) Rollback();
  for (sqlite3_stmt* st : stmts_) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
}

Status Store::Error(const char* what) const {
  int rc = sqlite3_extended_errcode(db_);
  std::string m = std::string(what) + " (" + path_ + "): " + sqlite3_errmsg(db_);
  if (IsCorruption(rc)) return Status::Corrupt(m);
  if (IsBusy(rc)) m += kBusyHint;
  return Status::Io(m);
}

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string m = std::string(err ? err : sqlite3_errstr(rc)) + " (" + path_ +
                  ")";
  sqlite3_free(err);
  if (IsCorruption(rc)) return Status::Corrupt(m);
  if (IsBusy(rc)) m += kBusyHint;
  return Status::Io(m);
}

Status Store::Prepare(const char* sql, sqlite3_stmt** stmt) {
  // Statements are prepared once and reused; a handful exist in all.
  for (sqlite3_stmt* st : stmts_) {
    if (std::strcmp(sqlite3_sql(st), sql) == 0) {
      *stmt = st;
      return Status::Ok();
    }
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         nullptr) != SQLITE_OK)
    return Error("prepare");
  stmts_.push_back(st);
  *stmt = st;
  return Status::Ok();
}

Status Store::Open(const std::string& path, Mode mode,
                   std::unique_ptr<Store>* out) {
  int flags = SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::kReadWrite) {
    Status s = EnsurePrivateDir(DirName(path));
    if (!s.ok()) return s;
    // Create the file ourselves so it is 0600 from the first instant; SQLite
    // gives its -wal and -shm files the same mode.
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      // A new file: its directory entry must be durable before anything in
      // it is acknowledged.
      close(fd);
      s = SyncDir(DirName(path));
      if (!s.ok()) return s;
    } else if (errno != EEXIST) {
      return Status::FromErrno("open " + path, errno);
    } else {
      fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return Status::FromErrno("open " + path, errno);
      close(fd);
    }
    flags |= SQLITE_OPEN_READWRITE;
  } else {  // kReadOnly, kReadOnlyChecked
    if (access(path.c_str(), F_OK) != 0)
      return Status::FromErrno("open " + path, errno);
    flags |= SQLITE_OPEN_READONLY;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK && access(path.c_str(),
                                mode == Mode::kReadOnly ? R_OK
                                                        : R_OK | W_OK) != 0) {
    int err = errno;
    sqlite3_close_v2(db);
    return Status::FromErrno("open " + path, err);
  }
  if (rc != SQLITE_OK) {
    std::string m = "open " + path + ": " +
                    (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return IsCorruption(rc) ? Status::Corrupt(m) : Status::Io(m);
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Store> store(new Store(db, path));
  Status s = store->Init(mode);
  if (!s.ok()) return s;
  *out = std::move(store);
  return Status::Ok();
}

Status Store::Init(Mode mode) {
  sqlite3_busy_timeout(db_, 10000);
  auto pragma_int = [this](const char* sql, int64_t* v) -> Status {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK)
      return Error(sql);
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? Status::Ok() : Error(sql);
  };

  // Reading the header is where a file that is not a database fails. A
  // file SQLite cannot read is corrupt only if it is recognisably ours: its
  // application_id, as SQLite read it (through the WAL) or as the header on
  // disk says it. Anything else is not ours, and the daemon never sets
  // aside what is not ours.
  int64_t app_id = 0, version = 0, tables = 0;
  Status s = pragma_int("PRAGMA application_id", &app_id);
  if (s.ok()) s = pragma_int("PRAGMA user_version", &version);
  if (s.ok())
    s = pragma_int("SELECT count(*) FROM sqlite_schema", &tables);
  if (s.code() == Status::Code::kCorrupt && app_id != kApplicationId &&
      !HeaderSaysOurs(path_)) {
    return Status::Invalid(path_ + " is not an nfsd-helper database (SQLite "
                           "cannot read it: " + s.message() +
                           ", and it has no nfsd-helper application_id); "
                           "it is left as it is");
  }
  if (!s.ok()) return s;

  bool fresh = app_id == 0 && version == 0 && tables == 0;
  if (!fresh && app_id != kApplicationId) {
    // Someone else's database (nfsdcld's main.sqlite, say): never touch it.
    return Status::Invalid(path_ + " is not an nfsd-helper database "
                           "(application_id " + std::to_string(app_id) + ")");
  }
  if (version > kSchemaVersion) {
    return Status::Invalid(path_ + " has schema version " +
                           std::to_string(version) + "; this nfsd-helper "
                           "understands versions up to " +
                           std::to_string(kSchemaVersion));
  }
  if (!fresh && mode != Mode::kReadOnlyChecked) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA quick_check", -1, &st, nullptr) !=
        SQLITE_OK)
      return Error("quick_check");
    std::string verdict;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st, 0);
      if (verdict.size() < 500) {
        if (!verdict.empty()) verdict += "; ";
        verdict += t ? reinterpret_cast<const char*>(t) : "?";
      }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return Error("quick_check");
    if (verdict != "ok")
      return Status::Corrupt(path_ + " fails PRAGMA quick_check: " + verdict);
  }

  if (mode != Mode::kReadWrite) {
    if (fresh) return Status::Invalid(path_ + " is an empty file");
    if (version < kSchemaVersion)
      return Status::Invalid(path_ + " has schema version " +
                             std::to_string(version) +
                             "; start nfsd-helper once to upgrade it");
    return Status::Ok();
  }

  // WAL keeps readers (helper-ctl) from blocking the writer; FULL makes every
  // COMMIT durable before it returns, which every reply relies on.
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA journal_mode=WAL", -1, &st, nullptr) !=
      SQLITE_OK)
    return Error("journal_mode");
  std::string jm;
  if (sqlite3_step(st) == SQLITE_ROW)
    jm = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (jm != "wal")
    return Status::Io(path_ + ": cannot switch to WAL mode (got '" + jm + "')");
  s = Exec("PRAGMA synchronous=FULL");
  if (!s.ok()) return s;

  while (version < kSchemaVersion) {
    s = Exec("BEGIN IMMEDIATE");
    if (!s.ok()) return s;
    // Re-read under the write lock: another process may have migrated.
    int64_t v = 0;
    s = pragma_int("PRAGMA user_version", &v);
    if (s.ok() && v == version) {
      s = Exec(kMigrations[version]);
      std::string set = "PRAGMA user_version=" + std::to_string(version + 1) +
                        "; PRAGMA application_id=" +
                        std::to_string(kApplicationId);
      if (s.ok()) s = Exec(set.c_str());
    }
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) {
      Exec("ROLLBACK");
      return s;
    }
    s = pragma_int("PRAGMA user_version", &version);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

void Store::SetBusyTimeout(int ms) { sqlite3_busy_timeout(db_, ms); }

Status Store::Pragma(const std::string& name, std::string* value) {
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      return Status::Invalid("bad pragma name");
  std::string sql = "PRAGMA " + name;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    return Error("pragma");
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    *value = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? Status::Ok() : Error("pragma");
}

Status Store::BeginRead() {
  // A deferred BEGIN takes its snapshot at the first read: make one now.
  Status s = Exec("BEGIN");
  if (s.ok()) s = Exec("SELECT count(*) FROM scopes");
  if (!s.ok()) Rollback();
  return s;
}

void Store::EndRead() { Rollback(); }

Status Store::Begin() {
  Status s = Exec("BEGIN IMMEDIATE");
  if (s.ok()) in_txn_ = true;
  return s;
}

Status Store::Commit() {
  Status s = Exec("COMMIT");
  if (s.ok()) {
    in_txn_ = false;
  } else {
    Rollback();
  }
  return s;
}

void Store::Rollback() {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  in_txn_ = false;
}

Status Store::GetScope(const std::string& name, std::optional<ScopeRow>* out) {
  static const std::string sql =
      std::string("SELECT ") + kScopeColumns + " FROM scopes WHERE name = ?";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, name);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = ReadScope(st);
    return Status::Ok();
  }
  if (rc == SQLITE_DONE) {
    out->reset();
    return Status::Ok();
  }
  return Error("read scope");
}

Status Store::ListScopes(std::vector<ScopeRow>* out) {
  static const std::string sql =
      std::string("SELECT ") + kScopeColumns + " FROM scopes ORDER BY name";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  out->clear();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) out->push_back(ReadScope(st));
  return rc == SQLITE_DONE ? Status::Ok() : Error("list scopes");
}

Status Store::CountClients(const std::string& scope, int64_t* out) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare("SELECT count(*) FROM v4clients WHERE scope = ?", &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  if (sqlite3_step(st) != SQLITE_ROW) return Error("count clients");
  *out = sqlite3_column_int64(st, 0);
  return Status::Ok();
}

Status Store::ForEachClient(const std::string& scope,
                            const std::function<bool(const ClientRow&)>& fn) {
  static const std::string sql = std::string("SELECT ") + kClientColumns +
                                 " FROM v4clients WHERE scope = ? ORDER BY id";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!fn(ReadClient(st))) return Status::Ok();
  }
  return rc == SQLITE_DONE ? Status::Ok() : Error("read clients");
}

Status Store::ForEachClientAfter(
    const std::string& scope, const std::string& after,
    const std::function<bool(const ClientRow&)>& fn) {
  static const std::string sql =
      std::string("SELECT ") + kClientColumns +
      " FROM v4clients WHERE scope = ? AND id > ? ORDER BY id";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  // An empty blob sorts before every id (ids are 1 to 1024 bytes).
  BindBlobOrNull(st, 2, after, false);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!fn(ReadClient(st))) return Status::Ok();
  }
  return rc == SQLITE_DONE ? Status::Ok() : Error("read clients");
}

Status Store::ForEachClientOlderThan(
    const std::string& scope, int64_t instance,
    const std::function<bool(const ClientRow&)>& fn) {
  static const std::string sql =
      std::string("SELECT ") + kClientColumns +
      " FROM v4clients WHERE scope = ? AND instance < ?";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  sqlite3_bind_int64(st, 2, instance);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!fn(ReadClient(st))) return Status::Ok();
  }
  return rc == SQLITE_DONE ? Status::Ok() : Error("read clients");
}

Status Store::GetClient(const std::string& scope, const std::string& id,
                        std::optional<ClientRow>* out) {
  static const std::string sql = std::string("SELECT ") + kClientColumns +
                                 " FROM v4clients WHERE scope = ? AND id = ?";
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(sql.c_str(), &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  BindBlobOrNull(st, 2, id, false);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = ReadClient(st);
    return Status::Ok();
  }
  if (rc == SQLITE_DONE) {
    out->reset();
    return Status::Ok();
  }
  return Error("read client");
}

Status Store::PutScope(const ScopeRow& row) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO scopes (name, boot_time, new_boot_time, old_boot_time, "
      "max_instance, kernel_boot_time, grace_started, grace_ended) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
      "boot_time = excluded.boot_time, new_boot_time = excluded.new_boot_time, "
      "old_boot_time = excluded.old_boot_time, "
      "max_instance = excluded.max_instance, "
      "kernel_boot_time = excluded.kernel_boot_time, "
      "grace_started = excluded.grace_started, "
      "grace_ended = excluded.grace_ended",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, row.name);
  BindOptInt(st, 2, row.boot_time);
  BindOptInt(st, 3, row.new_boot_time);
  BindOptInt(st, 4, row.old_boot_time);
  sqlite3_bind_int64(st, 5, row.max_instance);
  BindOptInt(st, 6, row.kernel_boot_time);
  BindOptInt(st, 7, row.grace_started);
  BindOptInt(st, 8, row.grace_ended);
  return sqlite3_step(st) == SQLITE_DONE ? Status::Ok() : Error("write scope");
}

Status Store::UpsertClient(const ClientRow& row) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO v4clients (scope, id, princhash, minor, instance, "
      "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (scope, id) DO UPDATE SET princhash = excluded.princhash, "
      "minor = excluded.minor, instance = excluded.instance, "
      "last_seen = excluded.last_seen",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, row.scope);
  BindBlobOrNull(st, 2, row.id, false);
  BindBlobOrNull(st, 3, row.princhash, true);
  sqlite3_bind_int(st, 4, row.minor);
  sqlite3_bind_int64(st, 5, row.instance);
  sqlite3_bind_int64(st, 6, row.first_seen);
  sqlite3_bind_int64(st, 7, row.last_seen);
  return sqlite3_step(st) == SQLITE_DONE ? Status::Ok()
                                         : Error("write client");
}

Status Store::InsertClientIfAbsent(const ClientRow& row, bool* inserted) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO v4clients (scope, id, princhash, minor, instance, "
      "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (scope, id) DO NOTHING",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, row.scope);
  BindBlobOrNull(st, 2, row.id, false);
  BindBlobOrNull(st, 3, row.princhash, true);
  sqlite3_bind_int(st, 4, row.minor);
  sqlite3_bind_int64(st, 5, row.instance);
  sqlite3_bind_int64(st, 6, row.first_seen);
  sqlite3_bind_int64(st, 7, row.last_seen);
  if (sqlite3_step(st) != SQLITE_DONE) return Error("insert client");
  if (inserted) *inserted = sqlite3_changes(db_) > 0;
  return Status::Ok();
}

Status Store::DeleteClient(const std::string& scope, const std::string& id,
                           bool* existed) {
  sqlite3_stmt* st = nullptr;
  Status s =
      Prepare("DELETE FROM v4clients WHERE scope = ? AND id = ?", &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  BindBlobOrNull(st, 2, id, false);
  if (sqlite3_step(st) != SQLITE_DONE) return Error("delete client");
  if (existed) *existed = sqlite3_changes(db_) > 0;
  return Status::Ok();
}

Status Store::PutImport(const ImportRow& row) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO imports (scope, imported_at, source, kind, "
      "schema_version, current_epoch, recovery_epoch, clients) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, row.scope);
  sqlite3_bind_int64(st, 2, row.imported_at);
  BindText(st, 3, row.source);
  BindText(st, 4, row.kind);
  sqlite3_bind_int(st, 5, row.schema_version);
  BindOptInt(st, 6, row.current_epoch);
  BindOptInt(st, 7, row.recovery_epoch);
  sqlite3_bind_int64(st, 8, row.clients);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return Status::Ok();
  if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT)
    return Status::Invalid("scope " + row.scope +
                           " already has an import");
  return Error("write import");
}

Status Store::GetImport(const std::string& scope,
                        std::optional<ImportRow>* out) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "SELECT scope, imported_at, source, kind, schema_version, "
      "current_epoch, recovery_epoch, clients FROM imports WHERE scope = ?",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    out->reset();
    return Status::Ok();
  }
  if (rc != SQLITE_ROW) return Error("read import");
  ImportRow row;
  row.scope = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  row.imported_at = sqlite3_column_int64(st, 1);
  row.source = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
  row.kind = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
  row.schema_version = sqlite3_column_int(st, 4);
  row.current_epoch = ColumnOptInt(st, 5);
  row.recovery_epoch = ColumnOptInt(st, 6);
  row.clients = sqlite3_column_int64(st, 7);
  *out = row;
  return Status::Ok();
}

Status Store::QueueCallout(const std::string& scope, bool added,
                           const std::string& id, int64_t now) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO callouts (scope, kind, id, queued_at) VALUES (?, ?, ?, ?)",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  sqlite3_bind_text(st, 2, added ? "add-client" : "del-client", -1,
                    SQLITE_STATIC);
  BindBlobOrNull(st, 3, id, false);
  sqlite3_bind_int64(st, 4, now);
  return sqlite3_step(st) == SQLITE_DONE ? Status::Ok()
                                         : Error("queue callout");
}

Status Store::QueuePurgeCallouts(const std::string& scope, int64_t instance,
                                 int64_t now, int64_t* queued) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "INSERT INTO callouts (scope, kind, id, queued_at) "
      "SELECT scope, 'del-client', id, ? FROM v4clients "
      "WHERE scope = ? AND instance < ?",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  sqlite3_bind_int64(st, 1, now);
  BindText(st, 2, scope);
  sqlite3_bind_int64(st, 3, instance);
  if (sqlite3_step(st) != SQLITE_DONE) return Error("queue callouts");
  if (queued) *queued = sqlite3_changes64(db_);
  return Status::Ok();
}

Status Store::NextCallout(int64_t after, std::optional<CalloutRow>* out) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "SELECT seq, scope, kind, id, queued_at FROM callouts WHERE seq > ? "
      "ORDER BY seq LIMIT 1",
      &st);
  if (!s.ok()) return s;
  Resetter r{st};
  sqlite3_bind_int64(st, 1, after);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    out->reset();
    return Status::Ok();
  }
  if (rc != SQLITE_ROW) return Error("read callout");
  CalloutRow row;
  row.seq = sqlite3_column_int64(st, 0);
  row.scope = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
  row.added = std::strcmp(reinterpret_cast<const char*>(
                              sqlite3_column_text(st, 2)),
                          "add-client") == 0;
  row.id = ColumnBlob(st, 3);
  row.queued_at = sqlite3_column_int64(st, 4);
  *out = std::move(row);
  return Status::Ok();
}

Status Store::CountCallouts(int64_t* out) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare("SELECT count(*) FROM callouts", &st);
  if (!s.ok()) return s;
  Resetter r{st};
  if (sqlite3_step(st) != SQLITE_ROW) return Error("count callouts");
  *out = sqlite3_column_int64(st, 0);
  return Status::Ok();
}

Status Store::DeleteCalloutsThrough(int64_t seq) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare("DELETE FROM callouts WHERE seq <= ?", &st);
  if (!s.ok()) return s;
  Resetter r{st};
  sqlite3_bind_int64(st, 1, seq);
  return sqlite3_step(st) == SQLITE_DONE ? Status::Ok()
                                         : Error("delete callouts");
}

Status Store::PurgeOlderThan(const std::string& scope, int64_t instance,
                             int64_t* deleted) {
  sqlite3_stmt* st = nullptr;
  Status s = Prepare(
      "DELETE FROM v4clients WHERE scope = ? AND instance < ?", &st);
  if (!s.ok()) return s;
  Resetter r{st};
  BindText(st, 1, scope);
  sqlite3_bind_int64(st, 2, instance);
  if (sqlite3_step(st) != SQLITE_DONE) return Error("purge clients");
  if (deleted) *deleted = sqlite3_changes64(db_);
  return Status::Ok();
}

}  // namespace nfsdh::store
