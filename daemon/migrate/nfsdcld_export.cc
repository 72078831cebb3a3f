#include "daemon/migrate/nfsdcld_export.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/store/pending_steps.h"
#include "daemon/tracker/tracker.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::migrate {
namespace {

std::string Shown(const std::string& s) { return nfsdfs::EscapeForLog(s); }

std::string Instance(const std::optional<int64_t>& i) {
  return i ? "instance " + std::to_string(*i) : std::string("none");
}

// The first line of a small file of nfsd's, without its newline.
Status ReadNfsdFile(const std::string& path, std::string* value) {
  Status s = ReadSmallFile(path, 64, value);
  if (!s.ok()) return s;
  size_t nl = value->find('\n');
  if (nl != std::string::npos) value->resize(nl);
  return Status::Ok();
}

// Asks nfsd whether the grace period of `what` (an instance the database
// has in grace, or one whose start it missed) has ended. *ended true: it
// has; false: nfsd is stopped during it. kInvalid otherwise.
Status AskNfsd(const std::string& nfsdfs, const std::string& what,
               bool* ended) {
  *ended = false;
  const std::string grace = nfsdfs + "/v4_end_grace";
  std::string value;
  Status s = ReadNfsdFile(grace, &value);
  if (!s.ok()) {
    return Status::Invalid(
        "the database has " + what +
        " in its grace period, and whether nfsd has ended it cannot be "
        "told (" +
        s.message() +
        "); nothing written. If nfsd is not running, run again with "
        "--nfsdfs none");
  }
  if (value == "Y") {
    *ended = true;
    return Status::Ok();
  }
  const std::string threads_path = nfsdfs + "/threads";
  std::string threads;
  s = ReadNfsdFile(threads_path, &threads);
  if (s.ok() && threads == "0") return Status::Ok();  // stopped in grace
  return Status::Invalid(
      "nfsd may be running the grace period of " + what + " (" + grace +
      " says " + Shown(value) + ", " + threads_path + " " +
      (s.ok() ? "says " + Shown(threads) : "cannot be read: " + s.message()) +
      "): nfsdcld would take the end of that grace period for the end of its "
      "own, or never hear of it; nothing written. Stop nfs-server.service, "
      "or wait until the grace period has ended (" +
      grace + " says Y), and run again");
}

std::string EpochTable(uint64_t epoch) {
  char name[32];
  snprintf(name, sizeof name, "rec-%016" PRIx64, epoch);
  return name;
}

// An SQLite connection closed on destruction.
class Db {
 public:
  ~Db() {
    if (db_) sqlite3_close_v2(db_);
  }
  Status Open(const std::string& path) {
    path_ = path;
    int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return Error("open", rc);
    sqlite3_extended_result_codes(db_, 1);
    return Status::Ok();
  }
  Status Exec(const std::string& sql) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error("write", rc);
  }
  Status Insert(const std::string& table,
                const std::vector<HandbackClient>& clients) {
    sqlite3_stmt* st = nullptr;
    const std::string sql =
        "INSERT INTO \"" + table + "\" (id, princhash) VALUES (?, ?)";
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    if (rc != SQLITE_OK) return Error("write", rc);
    for (const HandbackClient& c : clients) {
      sqlite3_bind_blob(st, 1, c.id.data(), static_cast<int>(c.id.size()),
                        SQLITE_STATIC);
      if (c.princhash.empty()) {
        sqlite3_bind_null(st, 2);
      } else {
        sqlite3_bind_blob(st, 2, c.princhash.data(),
                          static_cast<int>(c.princhash.size()), SQLITE_STATIC);
      }
      rc = sqlite3_step(st);
      sqlite3_reset(st);
      if (rc != SQLITE_DONE) break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || clients.empty() ? Status::Ok()
                                                : Error("write", rc);
  }
  Status Close() {
    int rc = sqlite3_close(db_);
    if (rc != SQLITE_OK) return Error("close", rc);
    db_ = nullptr;
    return Status::Ok();
  }

 private:
  Status Error(const char* what, int rc) {
    return Status::Io(std::string(what) + " " + Shown(path_) + ": " +
                      (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
  }
  sqlite3* db_ = nullptr;
  std::string path_;
};

// Fills `tmp` (a new, empty file) with nfsdcld's schema 4 and `clients`.
Status FillDatabase(const std::string& tmp, int64_t epoch,
                    const std::vector<HandbackClient>& clients) {
  Db db;
  Status s = db.Open(tmp);
  // The file is private and thrown away on any failure: no journal (which
  // would be a second file beside TARGET to clean up after a crash).
  if (s.ok()) s = db.Exec("PRAGMA journal_mode = OFF");
  const std::string table = EpochTable(static_cast<uint64_t>(epoch));
  // nfsdcld's own statements (sqlite_maindb_init_v4), with our epoch and
  // first_time 0.
  if (s.ok())
    s = db.Exec(
        "BEGIN EXCLUSIVE;"
        "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE grace (current INTEGER , recovery INTEGER);"
        "INSERT INTO grace VALUES (" +
        std::to_string(epoch) +
        ", 0);"
        "CREATE TABLE \"" +
        table +
        "\" (id BLOB PRIMARY KEY, princhash BLOB);"
        "INSERT INTO parameters VALUES ('version', '4');"
        "INSERT INTO parameters VALUES ('first_time', '0');");
  if (s.ok()) s = db.Insert(table, clients);
  if (s.ok()) s = db.Exec("COMMIT");
  if (s.ok()) s = db.Close();
  return s;
}

Status SyncFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  Status s;
  if (fsync(fd) != 0) s = Status::FromErrno("fsync " + path, errno);
  close(fd);
  return s;
}

bool NonEmpty(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && st.st_size > 0;
}

}  // namespace

Status SelectHandback(store::Backend* store, const std::string& db,
                      const std::string& scope, const std::string& nfsdfs,
                      Handback* out) {
  *out = Handback();
  out->scope = scope;
  Status s = store->BeginRead();
  if (!s.ok()) return s;
  std::optional<store::ScopeRow> row;
  s = store->GetScope(scope, &row);
  if (s.ok() && !row)
    s = Status::NotFound("no scope '" + Shown(scope) + "' in the database " +
                         Shown(db));
  if (s.ok()) {
    out->state = tracker::StateOf(*row);
    s = store::ReadPendingSteps(store::PendingStepsPath(db, scope),
                                &out->pending);
    if (!s.ok() && s.code() == Status::Code::kInvalid)
      s = Status::Invalid(s.message() + "; nothing written");
  }
  if (s.ok()) {
    std::optional<recovery::PendingStep> end =
        recovery::KernelGraceEnd(out->state, out->pending);
    if (end && nfsdfs != kNone) {
      const std::string what =
          end->instance ? Instance(end->instance)
                        : std::string("the instance whose start it missed");
      bool ended = false;
      s = AskNfsd(nfsdfs, what, &ended);
      if (s.ok() && ended) {
        out->pending.push_back(*end);
        out->kernel_ended_grace = true;
      }
    }
  }
  if (s.ok()) {
    out->plan = recovery::PlanNextStart(out->state, out->pending);
    const auto& keep = out->plan.keep_from;
    s = store->ForEachClient(scope, [&](const store::ClientRow& c) {
      if (keep && c.instance < *keep) {
        ++out->left_out;
      } else {
        out->clients.push_back({c.id, c.princhash});
      }
      return true;
    });
  }
  store->EndRead();
  if (!s.ok()) return s;

  const recovery::ScopeState& after = out->plan.after_pending;
  std::string how;
  if (!out->plan.keep_from) {
    how = "every record: no grace period of the scope has ended yet";
  } else {
    how = "the records stamped with instance " +
          std::to_string(*out->plan.keep_from) +
          " or later, the last instance whose grace period ended";
  }
  if (after.in_grace()) {
    how += " (the scope is in the grace period of " +
           Instance(after.new_boot_time) + "; a restart in grace keeps them)";
  }
  if (!out->pending.empty()) {
    how += "; after " + std::to_string(out->pending.size()) +
           " step(s) of nfsd the database had not recorded" +
           (out->kernel_ended_grace ? " (nfsd's v4_end_grace says Y)" : "");
  }
  out->allowed_from = how;
  return Status::Ok();
}

std::vector<std::string> ProcessesWithFileOpen(const std::string& path) {
  std::vector<std::string> out;
  struct stat target;
  if (stat(path.c_str(), &target) != 0) return out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (struct dirent* p = readdir(proc)) {
    char* end = nullptr;
    long pid = strtol(p->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == getpid()) continue;
    const std::string fd_dir = std::string("/proc/") + p->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    bool found = false;
    while (struct dirent* f = readdir(fds)) {
      if (f->d_name[0] == '.') continue;
      struct stat st;
      if (stat((fd_dir + "/" + f->d_name).c_str(), &st) == 0 &&
          st.st_dev == target.st_dev && st.st_ino == target.st_ino) {
        found = true;
        break;
      }
    }
    closedir(fds);
    if (!found) continue;
    std::string comm;
    if (!ReadNfsdFile(std::string("/proc/") + p->d_name + "/comm", &comm).ok())
      comm = "?";
    out.push_back(Shown(comm) + " (pid " + p->d_name + ")");
  }
  closedir(proc);
  return out;
}

Status WriteNfsdcld(const std::string& path,
                    const std::vector<HandbackClient>& clients, bool force,
                    NfsdcldWrite* out) {
  *out = NfsdcldWrite();
  const std::string where = Shown(path);
  struct stat st;
  bool exists = lstat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT)
    return Status::FromErrno("stat " + path, errno);
  if (exists && !S_ISREG(st.st_mode))
    return Status::Invalid(where +
                           " is not a regular file (nfsdcld's database "
                           "is one); nothing written");
  const std::vector<std::string> journals = {path + "-journal", path + "-wal"};
  if (exists) {
    std::vector<std::string> users = ProcessesWithFileOpen(path);
    if (!users.empty()) {
      std::string who;
      for (const std::string& u : users) who += (who.empty() ? "" : ", ") + u;
      return Status::Invalid(
          where + " is open in " + who +
          ": stop nfsdcld.service (and whatever else uses it) first; "
          "nothing written");
    }
    for (const std::string& j : journals) {
      if (NonEmpty(j) && !force)
        return Status::Invalid(
            where + " has a journal of its own, " + Shown(j) +
            ", which SQLite would apply to the new file: open " + where +
            " once with sqlite3 (or start and stop nfsdcld) to recover it, "
            "and run again; nothing written (--force deletes it)");
    }
    Source old;
    Status s = ReadSource(path, kNone, &old);
    if (s.ok() && old.kind == SourceKind::kNfsdcld) {
      out->replaced = "an nfsdcld database (schema " +
                      std::to_string(old.schema_version) + ", " +
                      std::to_string(old.clients.size()) +
                      " client(s) it would allow)";
      if (old.current_epoch && *old.current_epoch > 0 &&
          *old.current_epoch < std::numeric_limits<int64_t>::max())
        out->current_epoch = *old.current_epoch + 1;
    } else {
      const std::string what =
          s.ok() ? "an nfsdcltrack database, not nfsdcld's" : s.message();
      if (!force)
        return Status::Invalid(where + " is not an nfsdcld database (" + what +
                               "); nothing written (--force replaces it)");
      out->replaced = "a file that was not an nfsdcld database (" + what + ")";
      out->replaced_foreign = true;
    }
  }

  const std::string dir = DirName(path);
  if (mkdir(dir.c_str(), 0700) == 0) {
    Status s = SyncDir(DirName(dir));
    if (!s.ok()) return s;
  } else if (errno != EEXIST) {
    return Status::FromErrno("create the directory " + dir, errno);
  }
  // What an earlier run left (a crash before its rename), and a journal
  // SQLite would apply to the new file.
  const std::string tmp = path + ".new";
  for (const std::string& stale : {tmp, tmp + "-journal"}) {
    if (unlink(stale.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno("remove " + stale, errno);
  }
  int fd = open(tmp.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  Status s;
  if (fchmod(fd, 0600) != 0) s = Status::FromErrno("chmod " + tmp, errno);
  close(fd);
  if (s.ok()) s = FillDatabase(tmp, out->current_epoch, clients);
  if (s.ok()) s = SyncFile(tmp);
  // Journals of the old file go before the rename: after it, SQLite would
  // roll one back into the new file.
  for (size_t i = 0; s.ok() && i < journals.size(); ++i) {
    if (unlink(journals[i].c_str()) != 0 && errno != ENOENT)
      s = Status::FromErrno("remove " + journals[i], errno);
  }
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    s = Status::FromErrno("rename " + tmp + " to " + path, errno);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

}  // namespace nfsdh::migrate
