#include "daemon/migrate/nfsdcld_import.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <set>

#include "daemon/util/fs.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::migrate {
namespace {

constexpr size_t kMaxIdLen = 1024;
constexpr size_t kPrinchashLen = 32;
// How many skipped rows the daemon logs one by one.
constexpr size_t kMaxSkippedLogged = 20;

std::string Shown(const std::string& s) { return nfsdfs::EscapeForLog(s); }

// A read-only connection to a source database, closed on destruction.
class SourceDb {
 public:
  ~SourceDb() {
    if (db_) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      sqlite3_close_v2(db_);
    }
  }

  Status Open(const std::string& path) {
    path_ = path;
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
      return Status::FromErrno("open " + path, errno);
    if (!S_ISREG(st.st_mode))
      return Status::Invalid(Shown(path) + " is not a regular file");
    if (st.st_size == 0)
      return Status::Invalid(Shown(path) +
                             " is empty: not an nfsdcld or nfsdcltrack "
                             "database");
    // The header says whether this is an SQLite file at all, and its
    // journal mode (byte 18: 1 rollback journal, 2 WAL).
    unsigned char header[100];
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + path, errno);
    ssize_t n = pread(fd, header, sizeof header, 0);
    int err = errno;
    close(fd);
    if (n < 0) return Status::FromErrno("read " + path, err);
    if (n < static_cast<ssize_t>(sizeof header) ||
        std::memcmp(header, "SQLite format 3", 16) != 0)
      return Status::Corrupt(Shown(path) + " is not an SQLite database");
    bool wal = header[18] == 2;
    std::string uri = "file:";
    for (unsigned char c : path) {
      if (std::isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_') {
        uri += static_cast<char>(c);
      } else {
        char hex[4];
        snprintf(hex, sizeof hex, "%%%02X", c);
        uri += hex;
      }
    }
    uri += "?mode=ro";
    if (wal) {
      struct stat ws;
      if (stat((path + "-wal").c_str(), &ws) == 0 && ws.st_size > 0)
        return Status::Invalid(
            Shown(path) + " has a write-ahead log (" + Shown(path) +
            "-wal) that is not checkpointed; stop the program that uses it, "
            "then import");
      // Nothing but the file itself holds data: read it without the
      // shared-memory index a WAL reader would create beside it.
      uri += "&immutable=1";
    }
    int rc = sqlite3_open_v2(
        uri.c_str(), &db_,
        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return Error("open", rc);
    sqlite3_extended_result_codes(db_, 1);
    // nfsdcld holds its lock for one short transaction at a time.
    sqlite3_busy_timeout(db_, 10000);
    // One snapshot for every read.
    rc = sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK)
      rc = sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr,
                        nullptr, nullptr);
    if (rc != SQLITE_OK) return Error("read", rc);
    std::string verdict;
    Status s = Query("PRAGMA quick_check", [&](sqlite3_stmt* st) {
      if (verdict.size() < 300) {
        if (!verdict.empty()) verdict += "; ";
        const unsigned char* t = sqlite3_column_text(st, 0);
        verdict += t ? reinterpret_cast<const char*>(t) : "?";
      }
    });
    if (!s.ok()) return s;
    if (verdict != "ok")
      return Status::Corrupt(Shown(path) +
                             " fails PRAGMA quick_check: " + verdict);
    return Status::Ok();
  }

  // Runs `sql`, calling `row` for each result row.
  template <typename F>
  Status Query(const std::string& sql, F row) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    if (rc != SQLITE_OK) return Error("read", rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? Status::Ok() : Error("read", rc);
  }

  std::set<std::string> Tables() {
    std::set<std::string> out;
    Query("SELECT name FROM sqlite_master WHERE type = 'table'",
          [&](sqlite3_stmt* st) {
            const unsigned char* t = sqlite3_column_text(st, 0);
            if (t) out.insert(reinterpret_cast<const char*>(t));
          });
    return out;
  }

  std::set<std::string> Columns(const std::string& table) {
    std::set<std::string> out;
    Query("PRAGMA table_info(" + Quote(table) + ")", [&](sqlite3_stmt* st) {
      const unsigned char* t = sqlite3_column_text(st, 1);
      if (t) out.insert(reinterpret_cast<const char*>(t));
    });
    return out;
  }

  // A quoted SQL identifier.
  static std::string Quote(const std::string& name) {
    std::string q = "\"";
    for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }

  sqlite3* db() { return db_; }

 private:
  Status Error(const char* what, int rc) {
    std::string m = std::string(what) + " " + Shown(path_) + ": " +
                    (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    int primary = rc & 0xff;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
      return Status::Corrupt(m);
    if (rc == SQLITE_READONLY_ROLLBACK)
      return Status::Invalid(
          m +
          " (a program using it was interrupted in a transaction; run it "
          "once, or open the file with sqlite3, to roll that back)");
    if (primary == SQLITE_PERM || primary == SQLITE_AUTH)
      return Status::Permission(m);
    return Status::Io(m);
  }

  sqlite3* db_ = nullptr;
  std::string path_;
};

std::string ColumnBytes(sqlite3_stmt* st, int col) {
  const void* p = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

std::string IdForLog(const std::string& id) {
  std::string shown = Shown(id.substr(0, 64));
  return "\"" + shown + (id.size() > 64 ? "...\"" : "\"");
}

// Adds one row to `out` unless the tracker or the kernel would not allow
// it; then says why in out->skipped. `id_col` and `hash_col` index `st`
// (hash_col < 0: no principal hash).
void AddRow(sqlite3_stmt* st, int id_col, int hash_col, const char* where,
            std::set<std::string>* seen, SourceClient c, Source* out) {
  int type = sqlite3_column_type(st, id_col);
  std::string why;
  if (type == SQLITE_NULL) {
    why = "a NULL id (nfsdcld skips it)";
  } else if (type != SQLITE_BLOB && type != SQLITE_TEXT) {
    why = "an id that is a number, not a client id";
  } else {
    c.id = ColumnBytes(st, id_col);
    if (c.id.empty()) {
      why = "an empty id (nfsdcld skips it)";
    } else if (c.id.size() > kMaxIdLen) {
      why = "an id of " + std::to_string(c.id.size()) +
            " bytes (the kernel takes at most 1024)";
    }
  }
  if (why.empty() && hash_col >= 0 &&
      sqlite3_column_type(st, hash_col) != SQLITE_NULL) {
    c.princhash = ColumnBytes(st, hash_col);
    if (!c.princhash.empty() && c.princhash.size() != kPrinchashLen)
      why = "a principal hash of " + std::to_string(c.princhash.size()) +
            " bytes, not 32: its principal could not be checked";
  }
  if (why.empty() && !seen->insert(c.id).second) why = "a duplicate id";
  if (!why.empty()) {
    out->skipped.push_back(
        std::string(where) + ": left out " +
        (c.id.empty() ? std::string("a row") : "client " + IdForLog(c.id)) +
        " with " + why);
    return;
  }
  out->clients.push_back(std::move(c));
}

// Reads a `clients` table in nfsdcltrack's layout (schema 1: id, time;
// schema 2: id, time, has_session).
Status ReadClientsTable(SourceDb& db, const char* where, Source* out) {
  if (db.Tables().count("clients") == 0)
    return Status::Invalid(std::string(where) + " has no table clients");
  std::set<std::string> cols = db.Columns("clients");
  if (cols.count("id") == 0)
    return Status::Invalid(std::string(where) +
                           ": table clients has no column id");
  std::string sql = "SELECT id, ";
  sql += cols.count("time") ? "time, " : "NULL, ";
  sql += cols.count("has_session") ? "has_session" : "NULL";
  sql += " FROM clients";
  std::set<std::string> seen;
  return db.Query(sql, [&](sqlite3_stmt* st) {
    SourceClient c;
    if (sqlite3_column_type(st, 1) == SQLITE_INTEGER &&
        sqlite3_column_int64(st, 1) > 0)
      c.time = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) == SQLITE_INTEGER) {
      int64_t v = sqlite3_column_int64(st, 2);
      c.minor = v == 1 ? 1 : v == 0 ? 0 : -1;
    }
    AddRow(st, 0, -1, where, &seen, std::move(c), out);
  });
}

// parameters.value of `key`, if the row exists.
Status Parameter(SourceDb& db, const std::string& key,
                 std::optional<std::string>* out) {
  out->reset();
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.db(), "SELECT value FROM parameters WHERE key = ?",
                         -1, &st, nullptr) != SQLITE_OK)
    return Status::Invalid(std::string("cannot read table parameters: ") +
                           sqlite3_errmsg(db.db()));
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    *out = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE
             ? Status::Ok()
             : Status::Io("read parameters: " +
                          std::string(sqlite3_errmsg(db.db())));
}

// A whole decimal number, as nfsdcld writes its parameters.
bool ParseInt(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  *v = std::stoll(s);
  return true;
}

std::string EpochTable(uint64_t epoch) {
  char name[32];
  snprintf(name, sizeof name, "rec-%016" PRIx64, epoch);
  return name;
}

// The table nfsdcld keeps `epoch`'s records in. nfsdcld's start-up health
// check renames a table whose name lacks the zero padding if it belongs to
// the current or recovery epoch, and refuses to start if another does.
Status FindEpochTables(const std::set<std::string>& tables, uint64_t current,
                       uint64_t recovery, std::string* current_table,
                       std::string* recovery_table) {
  *current_table = EpochTable(current);
  *recovery_table = EpochTable(recovery);
  for (const std::string& t : tables) {
    if (t.compare(0, 4, "rec-") != 0 || t.size() >= 20) continue;
    uint64_t v = 0;
    if (sscanf(t.c_str() + 4, "%" SCNx64, &v) != 1)
      return Status::Invalid("table " + Shown(t) +
                             " is not named after an epoch; nfsdcld's health "
                             "check refuses such a database");
    if (v == current && tables.count(*current_table) == 0) {
      *current_table = t;
    } else if (v == recovery && tables.count(*recovery_table) == 0) {
      *recovery_table = t;
    } else {
      return Status::Invalid(
          "table " + Shown(t) + " is for epoch " + std::to_string(v) +
          ", neither the current nor the recovery epoch; nfsdcld's health "
          "check refuses such a database (see nfsdclddb fix-table-names)");
    }
  }
  return Status::Ok();
}

// nfsdcld's first-start copy of nfsdcltrack's ids; false if nfsdcld could
// not have made it (no such file, or not readable as one).
bool ReadFirstTimeCopy(const std::string& path, const std::string& nfsdcld,
                       Source* out) {
  if (path.empty() || path == kNone) return false;
  struct stat a, b;
  if (stat(path.c_str(), &a) != 0) return false;
  if (stat(nfsdcld.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    return false;
  SourceDb db;
  Source copy;
  Status s = db.Open(path);
  if (s.ok()) s = ReadClientsTable(db, "nfsdcltrack's database", &copy);
  if (!s.ok()) {
    out->skipped.push_back("nfsdcltrack's database " + Shown(path) +
                           " cannot be read (" + s.message() +
                           "); nfsdcld would not copy it either");
    return false;
  }
  out->clients = std::move(copy.clients);
  for (std::string& line : copy.skipped) out->skipped.push_back(line);
  out->allowed_from = "nfsdcltrack's clients in " + Shown(path) +
                      ", which nfsdcld copies at its first start";
  return true;
}

}  // namespace

const char* KindName(SourceKind kind) {
  return kind == SourceKind::kNfsdcld ? "nfsdcld" : "nfsdcltrack";
}

Status ReadSource(const std::string& path, const std::string& nfsdcltrack_db,
                  Source* out) {
  *out = Source();
  out->path = path;
  SourceDb db;
  Status s = db.Open(path);
  if (!s.ok()) return s;
  const std::string where = Shown(path);
  std::set<std::string> tables = db.Tables();
  if (tables.count("parameters") == 0)
    return Status::Invalid(where +
                           " has no table parameters: not an nfsdcld or "
                           "nfsdcltrack database");
  std::optional<std::string> version;
  s = Parameter(db, "version", &version);
  if (!s.ok()) return s;
  int64_t v = 0;
  if (!version)
    return Status::Invalid(where +
                           " records no schema version "
                           "(parameters has no row \"version\")");
  if (!ParseInt(*version, &v) || v < 1 || v > 4)
    return Status::Invalid(where + " has schema version '" + Shown(*version) +
                           "'; nfsd-helper imports versions 1 to 4");
  out->schema_version = static_cast<int>(v);

  if (v == 2) {
    // nfsdcltrack's layout: every row may reclaim (see the header).
    out->kind = SourceKind::kNfsdcltrack;
    out->allowed_from = "every row of table clients";
    return ReadClientsTable(db, where.c_str(), out);
  }

  out->kind = SourceKind::kNfsdcld;
  std::optional<std::string> first_time;
  s = Parameter(db, "first_time", &first_time);
  if (!s.ok()) return s;
  if (v == 1) {
    // nfsdcld's upgrade: epoch 1 holds the clients, recovery 0, first_time.
    out->current_epoch = 1;
    out->recovery_epoch = 0;
    out->first_time = true;
    if (ReadFirstTimeCopy(nfsdcltrack_db, path, out)) return Status::Ok();
    out->allowed_from =
        "table clients (schema 1: becomes epoch 1 when nfsdcld upgrades it)";
    return ReadClientsTable(db, where.c_str(), out);
  }

  // Schema 3 or 4: the epochs.
  if (tables.count("grace") == 0)
    return Status::Invalid(where + " has schema version " + std::to_string(v) +
                           " but no table grace");
  int rows = 0;
  int64_t cur = 0, rec = 0;
  bool ints = true;
  s = db.Query("SELECT current, recovery FROM grace", [&](sqlite3_stmt* st) {
    ++rows;
    ints = ints && sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
           sqlite3_column_type(st, 1) == SQLITE_INTEGER;
    cur = sqlite3_column_int64(st, 0);
    rec = sqlite3_column_int64(st, 1);
  });
  if (!s.ok()) return Status::Invalid(where + ": " + s.message());
  if (rows != 1 || !ints)
    return Status::Invalid(where +
                           ": table grace must hold one row of two "
                           "integers (it has " +
                           std::to_string(rows) + " row(s))");
  if (cur == 0) return Status::Invalid(where + ": the current epoch is 0");
  out->current_epoch = cur;
  out->recovery_epoch = rec;
  if (!first_time) {
    if (v == 4)
      return Status::Invalid(where +
                             " has no parameter first_time; nfsdcld "
                             "refuses to start with it");
    out->first_time = true;  // nfsdcld's upgrade from 3 adds first_time=1
  } else {
    int64_t ft = 0;
    out->first_time = ParseInt(*first_time, &ft) && ft != 0;
  }

  std::string cur_table, rec_table;
  s = FindEpochTables(tables, static_cast<uint64_t>(cur),
                      static_cast<uint64_t>(rec), &cur_table, &rec_table);
  if (!s.ok()) return Status::Invalid(where + ": " + s.message());
  std::string table;
  if (rec == 0) {
    if (out->first_time && ReadFirstTimeCopy(nfsdcltrack_db, path, out))
      return Status::Ok();
    table = cur_table;
    out->allowed_from = "table " + Shown(table) +
                        " (the current epoch; the last grace period ended)";
  } else {
    table = rec_table;
    out->allowed_from = "table " + Shown(table) +
                        " (the recovery epoch; nfsd stopped during its grace "
                        "period)";
  }
  if (tables.count(table) == 0)
    return Status::Invalid(where + " has no table " + Shown(table) +
                           " for epoch " +
                           std::to_string(rec == 0 ? cur : rec));
  std::set<std::string> cols = db.Columns(table);
  if (cols.count("id") == 0)
    return Status::Invalid(where + ": table " + Shown(table) +
                           " has no column id");
  bool hash = cols.count("princhash") > 0;
  if (v == 4 && !hash)
    return Status::Invalid(where + ": table " + Shown(table) +
                           " has no column princhash (schema 4 has one)");
  std::set<std::string> seen;
  const std::string label = "table " + Shown(table);
  s = db.Query(std::string("SELECT id") + (hash ? ", princhash" : "") +
                   " FROM " + SourceDb::Quote(table),
               [&](sqlite3_stmt* st) {
                 AddRow(st, 0, hash ? 1 : -1, label.c_str(), &seen,
                        SourceClient(), out);
               });
  return s;
}

Status ScopeInUse(store::Backend* store, const std::string& scope,
                  std::string* why) {
  why->clear();
  std::optional<store::ImportRow> imp;
  Status s = store->GetImport(scope, &imp);
  if (!s.ok()) return s;
  if (imp) {
    *why = "was already imported from " +
           std::string(KindName(imp->kind == "nfsdcltrack"
                                    ? SourceKind::kNfsdcltrack
                                    : SourceKind::kNfsdcld)) +
           " database " + Shown(imp->source) + " at " +
           IsoTime(imp->imported_at);
    return Status::Ok();
  }
  std::optional<store::ScopeRow> row;
  s = store->GetScope(scope, &row);
  if (!s.ok()) return s;
  if (row && (row->boot_time || row->new_boot_time || row->old_boot_time ||
              row->max_instance > 0)) {
    *why = "has had server instances (the latest has instance id " +
           std::to_string(row->max_instance) + ")";
    return Status::Ok();
  }
  int64_t n = 0;
  s = store->CountClients(scope, &n);
  if (!s.ok()) return s;
  if (n > 0) *why = "has " + std::to_string(n) + " client record(s)";
  return Status::Ok();
}

Status WriteImport(store::Backend* store, const std::string& scope,
                   const Source& src, int64_t now, bool dry_run) {
  Status s = store->Begin();
  if (!s.ok()) return s;
  std::string why;
  s = ScopeInUse(store, scope, &why);
  if (s.ok() && !why.empty()) {
    store->Rollback();
    return Status::Invalid("scope " + Shown(scope) + " " + why +
                           "; nothing imported");
  }
  std::optional<store::ScopeRow> row;
  if (s.ok()) s = store->GetScope(scope, &row);
  if (s.ok() && !row) {
    store::ScopeRow fresh;  // no instance: the first start allows them all
    fresh.name = scope;
    s = store->PutScope(fresh);
  }
  for (size_t i = 0; s.ok() && i < src.clients.size(); ++i) {
    const SourceClient& c = src.clients[i];
    store::ClientRow r;
    r.scope = scope;
    r.id = c.id;
    r.princhash = c.princhash;
    r.minor = c.minor;
    r.instance = 0;
    r.first_seen = r.last_seen = c.time.value_or(now);
    s = store->UpsertClient(r);
  }
  if (s.ok()) {
    store::ImportRow imp;
    imp.scope = scope;
    imp.imported_at = now;
    imp.source = src.path;
    imp.kind = KindName(src.kind);
    imp.schema_version = src.schema_version;
    imp.current_epoch = src.current_epoch;
    imp.recovery_epoch = src.recovery_epoch;
    imp.clients = static_cast<int64_t>(src.clients.size());
    s = store->PutImport(imp);
  }
  if (!s.ok() || dry_run) {
    store->Rollback();
    return s;
  }
  return store->Commit();
}

void ImportAtFirstStart(store::Backend* store, const std::string& scope,
                        const std::string& nfsdcld_db,
                        const std::string& nfsdcltrack_db, int64_t now) {
  // Only a database nfsd-helper has never served from: otherwise nfsdcld's
  // records are older than nfsd-helper's and may name clients that have
  // since expired.
  std::vector<store::ScopeRow> scopes;
  Status s = store->ListScopes(&scopes);
  std::vector<std::string> names = {scope};
  for (const store::ScopeRow& r : scopes) names.push_back(r.name);
  for (const std::string& name : names) {
    std::string why;
    if (s.ok()) s = ScopeInUse(store, name, &why);
    if (!s.ok()) {
      LOG_ERROR("cannot tell whether to import nfsdcld's records: %s",
                s.ToString().c_str());
      return;
    }
    if (!why.empty()) {
      LOG_DEBUG("not importing from nfsdcld or nfsdcltrack: scope %s %s",
                Shown(name).c_str(), why.c_str());
      return;
    }
  }
  std::string path;
  for (const std::string& p : {nfsdcld_db, nfsdcltrack_db}) {
    struct stat st;
    if (!p.empty() && p != kNone && stat(p.c_str(), &st) == 0) {
      path = p;
      break;
    }
  }
  if (path.empty()) {
    LOG_DEBUG("no nfsdcld or nfsdcltrack database to import");
    return;
  }
  Source src;
  s = ReadSource(path, path == nfsdcld_db ? nfsdcltrack_db : "", &src);
  if (s.ok()) s = WriteImport(store, scope, src, now, false);
  if (!s.ok()) {
    LOG_ERROR(
        "cannot import %s: %s; nothing was imported, so no client may "
        "reclaim state it held under nfsdcld or nfsdcltrack (fix the "
        "file and import it with helper-ctl import-nfsdcld before the "
        "first server start, or set nfsdcld-db and nfsdcltrack-db to "
        "none)",
        Shown(path).c_str(), s.ToString().c_str());
    return;
  }
  for (size_t i = 0; i < src.skipped.size() && i < kMaxSkippedLogged; ++i)
    LOG_WARNING("import of %s: %s", Shown(path).c_str(),
                src.skipped[i].c_str());
  if (src.skipped.size() > kMaxSkippedLogged)
    LOG_WARNING("import of %s: %zu more row(s) left out", Shown(path).c_str(),
                src.skipped.size() - kMaxSkippedLogged);
  std::string epochs;
  if (src.current_epoch)
    epochs = ", current epoch " + std::to_string(*src.current_epoch) +
             ", recovery epoch " + std::to_string(*src.recovery_epoch);
  LOG_NOTICE(
      "imported %zu client(s) from the %s database %s (schema "
      "version %d%s: %s) into scope %s; they may reclaim at the first "
      "server start",
      src.clients.size(), KindName(src.kind), Shown(path).c_str(),
      src.schema_version, epochs.c_str(), src.allowed_from.c_str(),
      Shown(scope).c_str());
}

}  // namespace nfsdh::migrate
