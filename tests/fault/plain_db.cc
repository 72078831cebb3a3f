#include "tests/fault/plain_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "daemon/store/store.h"

namespace nfsdh::faulttest {
namespace {

std::string ColumnBytes(sqlite3_stmt* st, int col) {
  const void* p = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

std::optional<int64_t> ColumnOpt(sqlite3_stmt* st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(st, col);
}

bool CopyFile(const std::string& from, const std::string& to) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return false;
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    close(in);
    return false;
  }
  char buf[65536];
  bool ok = true;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 || write(out, buf, n) != n) {
      ok = false;
      break;
    }
  }
  close(in);
  close(out);
  return ok;
}

}  // namespace

ScopeTuple TupleOf(const store::ScopeRow& r) {
  return {r.boot_time,        r.new_boot_time, r.old_boot_time, r.max_instance,
          r.kernel_boot_time, r.grace_started, r.grace_ended};
}

PlainView ReadPlain(const std::string& path, const std::string& scope,
                    bool read_write) {
  PlainView v;
  if (access(path.c_str(), F_OK) != 0) return v;
  v.exists = true;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      read_write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, "unix");
  sqlite3_stmt* st = nullptr;
  auto fail = [&](const char* what) {
    v.error = std::string(what) + ": " +
              (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return v;
  };
  if (rc != SQLITE_OK) return fail("open");
  sqlite3_busy_timeout(db, 5000);

  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) !=
      SQLITE_OK)
    return fail("integrity_check");
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!v.integrity.empty()) v.integrity += "; ";
    const unsigned char* t = sqlite3_column_text(st, 0);
    v.integrity += t ? reinterpret_cast<const char*>(t) : "?";
  }
  if (rc != SQLITE_DONE) return fail("integrity_check");
  sqlite3_finalize(st);
  st = nullptr;

  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) !=
          SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW)
    return fail("user_version");
  v.user_version = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = nullptr;

  int64_t tables = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM sqlite_schema WHERE type = "
                         "'table' AND name IN ('v4clients', 'scopes')",
                         -1, &st, nullptr) != SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW)
    return fail("schema");
  tables = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  st = nullptr;
  if (tables == 0) {  // the first migration never committed: empty
    sqlite3_close_v2(db);
    return v;
  }

  if (sqlite3_prepare_v2(db,
                         "SELECT id, princhash, minor, instance, first_seen, "
                         "last_seen FROM v4clients WHERE scope = ?1",
                         -1, &st, nullptr) != SQLITE_OK)
    return fail("clients");
  sqlite3_bind_text(st, 1, scope.c_str(), -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Rec r;
    r.princhash = ColumnBytes(st, 1);
    r.minor = sqlite3_column_int(st, 2);
    r.instance = sqlite3_column_int64(st, 3);
    r.first_seen = sqlite3_column_int64(st, 4);
    r.last_seen = sqlite3_column_int64(st, 5);
    v.state.clients[ColumnBytes(st, 0)] = r;
  }
  if (rc != SQLITE_DONE) return fail("clients");
  sqlite3_finalize(st);
  st = nullptr;

  if (sqlite3_prepare_v2(db,
                         "SELECT boot_time, new_boot_time, old_boot_time, "
                         "max_instance, kernel_boot_time, grace_started, "
                         "grace_ended FROM scopes WHERE name = ?1",
                         -1, &st, nullptr) != SQLITE_OK)
    return fail("scopes");
  sqlite3_bind_text(st, 1, scope.c_str(), -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    v.state.scope = ScopeTuple{ColumnOpt(st, 0), ColumnOpt(st, 1),
                               ColumnOpt(st, 2), sqlite3_column_int64(st, 3),
                               ColumnOpt(st, 4), ColumnOpt(st, 5),
                               ColumnOpt(st, 6)};
    rc = sqlite3_step(st);
  }
  if (rc != SQLITE_DONE) return fail("scopes");
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return v;
}

Status ReadStore(store::Store* st, const std::string& scope, DbState* out) {
  *out = DbState();
  Status s = st->ForEachClient(scope, [&](const store::ClientRow& c) {
    Rec r;
    r.princhash = c.princhash;
    r.minor = c.minor;
    r.instance = c.instance;
    r.first_seen = c.first_seen;
    r.last_seen = c.last_seen;
    out->clients[c.id] = r;
    return true;
  });
  if (!s.ok()) return s;
  std::optional<store::ScopeRow> row;
  s = st->GetScope(scope, &row);
  if (s.ok() && row) out->scope = TupleOf(*row);
  return s;
}

bool CopyCrashImage(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    unlink((to + suffix).c_str());
  if (!CopyFile(from, to)) return false;
  for (const char* suffix : {"-wal", "-journal"}) {
    if (access((from + suffix).c_str(), F_OK) == 0 &&
        !CopyFile(from + suffix, to + suffix))
      return false;
  }
  return true;
}

TempDir::TempDir() {
  struct stat st;
  std::string base =
      stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/nfsdh-fault-XXXXXX";
  if (!mkdtemp(tmpl.data())) std::abort();  // the test cannot run at all
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::string cmd = "rm -rf '" + path_ + "'";
  if (std::system(cmd.c_str()) != 0) {
    // A leftover temporary directory is harmless.
  }
}

}  // namespace nfsdh::faulttest
