// helper-ctl dump: shows every scope of an nfsd-helper database and its client
// records, as an aligned table or as one JSON document.
//
// It asks the running nfsd-helper first (CTL_DUMP over the control socket,
// one page of records per call), and reads the database itself when no
// daemon answers, or when --db names another database than the daemon's.
// Either way the records are written as they are read, so a scope with
// millions of records costs no memory. The database is opened read-only
// (Store::Mode::kReadOnly), which is safe while the daemon runs: in WAL mode
// a reader neither blocks the writer nor sees its uncommitted changes.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

using store::ClientRow;
using store::ScopeRow;
using store::Store;
using ClientFn = std::function<bool(const ClientRow&)>;

// Where the scopes and records come from: the database file, or the
// running daemon.
class Source {
 public:
  virtual ~Source() = default;
  virtual Status ListScopes(std::vector<ScopeRow>* out) = 0;
  virtual Status GetScope(const std::string& name,
                          std::optional<ScopeRow>* out) = 0;
  virtual Status CountClients(const std::string& scope, int64_t* out) = 0;
  // In id order; stops early when `fn` returns false.
  virtual Status ForEachClient(const std::string& scope,
                               const ClientFn& fn) = 0;
};

class StoreSource : public Source {
 public:
  explicit StoreSource(Store* store) : store_(store) {}
  Status ListScopes(std::vector<ScopeRow>* out) override {
    return store_->ListScopes(out);
  }
  Status GetScope(const std::string& name,
                  std::optional<ScopeRow>* out) override {
    return store_->GetScope(name, out);
  }
  Status CountClients(const std::string& scope, int64_t* out) override {
    return store_->CountClients(scope, out);
  }
  Status ForEachClient(const std::string& scope, const ClientFn& fn) override {
    return store_->ForEachClient(scope, fn);
  }

 private:
  Store* store_;
};

// Records per CTL_DUMP call (the daemon may return fewer).
constexpr uint32_t kPageSize = 1000;

// The daemon's answers, one page at a time. Not one snapshot: a record
// created or removed during the dump may or may not be shown, but every
// record that exists throughout is shown exactly once. The daemon closes a
// connection that stays idle (a dump piped into a pager that waits for its
// reader), so a page that finds the connection gone is asked again on a new
// one: it resumes after the last id shown, like any page.
class DaemonSource : public Source {
 public:
  DaemonSource(std::unique_ptr<ControlClient> client,
               std::vector<std::string> scopes)
      : client_(std::move(client)), scopes_(std::move(scopes)) {}
  Status ListScopes(std::vector<ScopeRow>* out) override {
    out->clear();
    for (const std::string& name : scopes_) {
      std::optional<ScopeRow> row;
      Status s = GetScope(name, &row);
      if (!s.ok()) return s;
      if (row) out->push_back(*row);  // unless removed since
    }
    return Status::Ok();
  }
  Status GetScope(const std::string& name,
                  std::optional<ScopeRow>* out) override {
    DumpPage page;
    Status s = Page(name, "", 0, &page);
    if (!s.ok()) return s;
    if (page.stat == DaemonStat::kNoScope) {
      out->reset();
      return Status::Ok();
    }
    if (page.stat != DaemonStat::kOk) return DaemonError(page);
    *out = page.scope;
    counts_[name] = page.count.value_or(0);
    return Status::Ok();
  }
  Status CountClients(const std::string& scope, int64_t* out) override {
    auto it = counts_.find(scope);
    if (it == counts_.end()) {
      std::optional<ScopeRow> row;
      Status s = GetScope(scope, &row);
      if (!s.ok()) return s;
      it = counts_.find(scope);
      if (it == counts_.end()) return Status::NotFound("no scope " + scope);
    }
    *out = it->second;
    return Status::Ok();
  }
  Status ForEachClient(const std::string& scope, const ClientFn& fn) override {
    std::string after;
    for (;;) {
      DumpPage page;
      Status s = Page(scope, after, kPageSize, &page);
      if (!s.ok()) return s;
      if (page.stat != DaemonStat::kOk) return DaemonError(page);
      for (const ClientRow& c : page.clients)
        if (!fn(c)) return Status::Ok();
      if (!page.more || page.clients.empty()) return Status::Ok();
      after = page.clients.back().id;
    }
  }

 private:
  static Status DaemonError(const DumpPage& page) {
    return Status::Io("nfsd-helper: " + page.message);
  }
  // One CTL_DUMP call, made again once on a new connection if the first
  // could not be made or answered.
  Status Page(const std::string& scope, const std::string& after, uint32_t max,
              DumpPage* page) {
    Status s = client_->Dump(scope, after, max, page);
    if (s.ok() || s.code() != Status::Code::kIo) return s;
    std::unique_ptr<ControlClient> again;
    if (!ControlClient::Connect(client_->socket_path(), &again).ok()) return s;
    client_ = std::move(again);
    return client_->Dump(scope, after, max, page);
  }

  std::unique_ptr<ControlClient> client_;
  std::vector<std::string> scopes_;
  std::map<std::string, int64_t> counts_;
};

// True if `a` and `b` name the same file (or, if either cannot be looked
// at, the same path).
bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Says what went wrong with the database at `db`, in words an operator can
// act on. Returns kExitError.
int ReportError(const std::string& db, const Status& s, std::ostream& err) {
  const std::string shown = nfsdfs::EscapeForLog(db);
  err << kProgram << ": ";
  switch (s.code()) {
    case Status::Code::kNotFound:
      err << "no database at " << shown
          << ": is nfsd-helper configured to use another --db?\n";
      break;
    case Status::Code::kPermission:
      err << "permission denied: " << s.message() << "\n"
          << kProgram << ": the database is readable by root only; run "
          << kProgram << " as root\n";
      break;
    case Status::Code::kCorrupt:
      err << "the database " << shown << " is corrupt: " << s.message() << "\n"
          << kProgram << ": nfsd-helper sets a corrupt database aside (renames"
          << " it to " << shown << ".corrupt-DATE) and starts an empty one"
          << " the next time it starts\n";
      break;
    case Status::Code::kInvalid:
      // "... is not an nfsd-helper database", "... has schema version 99".
      err << s.message() << "\n";
      break;
    default: {
      // SQLite says only "unable to open database file" or "attempt to
      // write a readonly database"; find out why.
      struct stat st;
      const std::string dir = DirName(db);
      if (stat(db.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        err << shown << " is a directory, not a database\n";
      } else if (stat((db + "-shm").c_str(), &st) != 0 && errno == ENOENT &&
                 access(dir.c_str(), W_OK) != 0) {
        // No process has the database open, and SQLite cannot create the
        // shared-memory index a reader of a WAL database needs.
        err << "cannot read " << shown << ": SQLite needs to create "
            << nfsdfs::EscapeForLog(db) << "-shm to read a database in WAL "
            << "mode, and " << nfsdfs::EscapeForLog(dir)
            << " is not writable; run " << kProgram
            << " as root, or copy the database to a writable directory\n";
      } else {
        err << "cannot read " << shown << ": " << s.ToString() << "\n";
      }
    }
  }
  return kExitError;
}

// --- the table ---

constexpr int kKeyWidth = 18;

void KeyLine(std::ostream& out, const char* key, const std::string& value) {
  std::string k = key;
  out << "  " << k << std::string(kKeyWidth - k.size(), ' ') << value << "\n";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

constexpr size_t kMinorWidth = 7;       // "unknown" (nfsdcld's records)
constexpr size_t kTimeWidth = 20;       // 2025-11-22T00:37:40Z
constexpr size_t kPrinchashWidth = 64;  // 32 bytes of hex

// The client rows: INSTANCE, MINOR, LAST_SEEN and ID fit 100 columns for
// the ids Linux sends ("Linux NFSv4.0 192.168.100.123/192.168.100.1 tcp");
// `wide` adds FIRST_SEEN and the 64-digit PRINCHASH (--wide, as --json has
// them).
Status TableScope(Source& store, const ScopeRow& scope, bool wide,
                  std::ostream& out) {
  int64_t count = 0;
  Status s = store.CountClients(scope.name, &count);
  if (!s.ok()) return s;

  out << "scope " << nfsdfs::EscapeForLog(scope.name) << "\n";
  KeyLine(out, "boot_time", TimeCell(scope.boot_time));
  KeyLine(out, "new_boot_time", TimeCell(scope.new_boot_time));
  KeyLine(out, "old_boot_time", TimeCell(scope.old_boot_time));
  KeyLine(out, "max_instance", std::to_string(scope.max_instance));
  KeyLine(out, "kernel_boot_time", TimeCell(scope.kernel_boot_time));
  std::string grace;
  if (scope.new_boot_time) {
    grace = scope.grace_started ? "open since " + IsoTime(*scope.grace_started)
                                : "open (start time unknown)";
  } else {
    grace = scope.grace_ended
                ? "closed, last ended " + IsoTime(*scope.grace_ended)
                : "closed, none has ended yet";
  }
  KeyLine(out, "grace", grace);
  KeyLine(out, "grace_started", TimeCell(scope.grace_started));
  KeyLine(out, "grace_ended", TimeCell(scope.grace_ended));
  KeyLine(out, "clients", std::to_string(count));

  // Every column but the last (the id) has a width known before the first
  // row: instances are at most max_instance, times and hashes are fixed.
  const size_t iw =
      std::max<size_t>(8, std::to_string(scope.max_instance).size());
  bool any = false;
  s = store.ForEachClient(scope.name, [&](const ClientRow& c) {
    if (!any) {
      out << "\n  " << PadLeft("INSTANCE", iw) << "  "
          << Pad("MINOR", kMinorWidth) << "  ";
      if (wide) out << Pad("FIRST_SEEN", kTimeWidth) << "  ";
      out << Pad("LAST_SEEN", kTimeWidth) << "  ";
      if (wide) out << Pad("PRINCHASH", kPrinchashWidth) << "  ";
      out << "ID\n";
      any = true;
    }
    out << "  " << PadLeft(std::to_string(c.instance), iw) << "  "
        << Pad(MinorName(c.minor), kMinorWidth) << "  ";
    if (wide) out << Pad(IsoTime(c.first_seen), kTimeWidth) << "  ";
    out << Pad(IsoTime(c.last_seen), kTimeWidth) << "  ";
    if (wide) out << Pad(PrinchashCell(c.princhash), kPrinchashWidth) << "  ";
    out << IdCell(c.id) << "\n";
    return static_cast<bool>(out);
  });
  return s;
}

Status Table(Source& store, const std::string& db, const std::string& schema,
             const std::vector<ScopeRow>& scopes, bool wide,
             std::ostream& out) {
  out << "database " << nfsdfs::EscapeForLog(db) << " (schema version "
      << schema << ")\n";
  if (scopes.empty())
    out << "no scopes: nfsd-helper has not started a server instance with "
           "this database yet\n";
  for (const ScopeRow& scope : scopes) {
    out << "\n";
    Status s = TableScope(store, scope, wide, out);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// --- JSON ---
//
// Written as it is read: the scope fields and each client are serialized by
// nlohmann::json, the surrounding structure here, one client per line.

Status JsonScope(Source& store, const ScopeRow& scope, std::ostream& out) {
  out << "    {";
  const Json fields = ScopeJson(scope);
  for (const auto& [key, value] : fields.items())
    out << "\n      " << DumpJson(key) << ": " << DumpJson(value) << ",";
  out << "\n      \"clients\": [";
  int64_t n = 0;
  Status s = store.ForEachClient(scope.name, [&](const ClientRow& c) {
    out << (n++ ? ",\n        " : "\n        ") << DumpJson(ClientJson(c));
    return static_cast<bool>(out);
  });
  if (!s.ok()) return s;
  // Counted from the rows written, so it always matches the array.
  out << (n ? "\n      ]" : "]") << ",\n      \"client_count\": " << n
      << "\n    }";
  return Status::Ok();
}

Status JsonDocument(Source& store, const std::string& db, int64_t schema,
                    const char* source, const std::vector<ScopeRow>& scopes,
                    std::ostream& out) {
  out << "{\n  \"database\": " << DumpJson(db)
      << ",\n  \"schema_version\": " << schema << ",\n  \"source\": \""
      << source << "\",\n  \"scopes\": [";
  for (size_t i = 0; i < scopes.size(); ++i) {
    out << (i ? ",\n" : "\n");
    Status s = JsonScope(store, scopes[i], out);
    if (!s.ok()) return s;
  }
  out << (scopes.empty() ? "]" : "\n  ]") << "\n}\n";
  return Status::Ok();
}

// --- the verb ---

constexpr OptionSpec kDumpOptions[] = {
    {"--db", "PATH"}, {"--scope", "NAME"}, kCtlSocketOption,
    kConfigOption,    {"--wide", nullptr}, {"--json", nullptr},
};

int RunDump(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  if (parsed.has("--wide") && parsed.has("--json"))
    return UsageError(kDumpVerb,
                      "--wide is for the table; --json always has every field",
                      err);
  // --db and --ctl-socket, else the keys of nfs.conf, else the defaults.
  CtlDefaults defaults;
  int rc = LoadCtlDefaults(parsed, &defaults, err);
  if (rc != kExitOk) return rc;
  const bool db_given = parsed.has("--db");
  std::string db = defaults.db;
  const std::string socket = defaults.ctl_socket;

  // Live from the daemon if one answers and serves this database.
  std::unique_ptr<ControlClient> client;
  DaemonStatus status;
  Status cs = ControlClient::Connect(socket, &client);
  if (cs.ok()) cs = client->GetStatus(&status);
  std::string note;
  const bool live = cs.ok() && (!db_given || SameFile(db, status.database));
  if (live) {
    db = status.database;
    note = "(read from nfsd-helper on " + nfsdfs::EscapeForLog(socket) + ")";
  } else if (cs.ok()) {
    note = "(read from the database: the daemon serves another one, " +
           nfsdfs::EscapeForLog(status.database) + ")";
  } else if (cs.code() == Status::Code::kNotFound) {
    note = "(read from the database: the daemon is not running)";
  } else {
    note =
        "(read from the database: cannot ask the daemon: " + cs.message() + ")";
  }
  if (!live) client.reset();

  std::unique_ptr<Store> store;
  std::unique_ptr<Source> source;
  std::string schema;
  auto report = [&](const Status& s) {
    return live ? ReportCallError(s, err) : ReportError(db, s, err);
  };
  if (live) {
    if (status.scopes_truncated && !parsed.has("--scope")) {
      err << kProgram << ": the database has more scopes than nfsd-helper "
          << "lists; only the first " << status.scopes.size()
          << " are shown (use --scope NAME)\n";
    }
    source = std::make_unique<DaemonSource>(std::move(client), status.scopes);
    schema = std::to_string(status.schema_version);
  } else {
    Status s = Store::Open(db, Store::Mode::kReadOnly, &store);
    if (!s.ok()) return ReportError(db, s, err);
    // One snapshot for the whole dump, so that counts and rows agree even
    // while the daemon writes.
    s = store->BeginRead();
    if (s.ok()) s = store->Pragma("user_version", &schema);
    if (!s.ok()) return ReportError(db, s, err);
    source = std::make_unique<StoreSource>(store.get());
  }

  std::vector<ScopeRow> scopes;
  if (parsed.has("--scope")) {
    const std::string name = parsed.value("--scope");
    std::optional<ScopeRow> row;
    Status s = source->GetScope(name, &row);
    if (!s.ok()) return report(s);
    if (!row) {
      std::vector<ScopeRow> all;
      s = source->ListScopes(&all);
      if (!s.ok()) return report(s);
      std::vector<std::string> names;
      names.reserve(all.size());
      for (const ScopeRow& r : all) names.push_back(r.name);
      err << kProgram << ": no scope '" << nfsdfs::EscapeForLog(name) << "' in "
          << nfsdfs::EscapeForLog(db);
      if (auto near = Nearest(name, names)) {
        err << "; did you mean '" << nfsdfs::EscapeForLog(*near) << "'?\n";
      } else if (names.empty()) {
        err << "; it has no scopes yet\n";
      } else {
        err << "; its scopes are:";
        for (const std::string& n : names)
          err << " " << nfsdfs::EscapeForLog(n);
        err << "\n";
      }
      return kExitError;
    }
    scopes.push_back(std::move(*row));
  } else {
    Status s = source->ListScopes(&scopes);
    if (!s.ok()) return report(s);
  }

  // Say where the table comes from; JSON says it in "source".
  if (!parsed.has("--json")) err << note << "\n";
  Status s;
  try {
    s = parsed.has("--json")
            ? JsonDocument(*source, db, std::stoll(schema),
                           live ? "daemon" : "database", scopes, out)
            : Table(*source, db, schema, scopes, parsed.has("--wide"), out);
  } catch (const std::exception& e) {  // nlohmann::json reports by throwing
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  if (FinishOutput(out, err) != kExitOk) return kExitError;
  if (!s.ok()) return report(s);
  return kExitOk;
}

}  // namespace

const Verb kDumpVerb = {
    "dump",
    "show the scopes and client records of nfsd-helper's database",
    "[--db PATH] [--scope NAME] [--ctl-socket PATH] [--config FILE] [--wide] "
    "[--json]",
    "  --db PATH          the database to read if nfsd-helper does not answer\n"
    "                     (default: the db key of nfs.conf, else\n"
    "                     /var/lib/nfs/nfsd-helper/state.sqlite)\n"
    "  --scope NAME       show this scope only (default: every scope)\n"
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --config FILE      nfs.conf file for the defaults (default\n"
    "                     /etc/nfs.conf)\n"
    "  --wide             add the FIRST_SEEN and PRINCHASH columns to the\n"
    "                     table (lines of about 170 columns)\n"
    "  --json             write one JSON document instead of a table\n"
    "\n"
    "The records are asked from the running nfsd-helper; when none answers,\n"
    "or --db names another database than its own, the database is read\n"
    "directly (read-only, which is safe while nfsd-helper runs). A line on\n"
    "the standard error, or the JSON key \"source\", says which.\n"
    "\n"
    "Client ids made only of printable ASCII are shown in double quotes, with\n"
    "'\"' and '\\' escaped by a backslash; other ids in hex after \"0x\".\n"
    "Times are seconds since the epoch and UTC dates; \"-\" marks an unset "
    "value.\n"
    "boot_time, new_boot_time, old_boot_time, max_instance and INSTANCE are\n"
    "instance ids, not times: numbers that only order a scope's server\n"
    "instances. An id is usually the second its instance started, so it is\n"
    "shown as a date too, but it may be later (ids only grow, even when\n"
    "the clock steps back): a grace period may end before the date of its\n"
    "instance's id.\n",
    {kDumpOptions},
    RunDump,
};

}  // namespace nfsdh::ctl
