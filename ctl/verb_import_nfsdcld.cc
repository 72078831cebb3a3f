// helper-ctl import-nfsdcld: imports an nfsdcld or nfsdcltrack database into
// a scope of nfsd-helper's database (daemon/migrate/nfsdcld_import.h), the
// import nfsd-helper makes by itself at its first start.
//
// It writes the database itself, so it refuses while the nfsd-helper serving
// that database runs: the daemon keeps its scope in memory and would not see
// the import. The scope must never have been used (no instance, no record, no
// earlier import); nothing is merged or replaced.
#include <sys/stat.h>

#include <memory>

#include "common/defaults.h"
#include "common/scope_name.h"
#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/store/store.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void Text(const migrate::Source& src, const std::string& scope,
          const std::string& db, bool dry_run, std::ostream& out) {
  out << (dry_run ? "would import " : "imported ") << src.clients.size()
      << " client(s) into scope " << nfsdfs::EscapeForLog(scope) << " of "
      << nfsdfs::EscapeForLog(db) << "\n";
  out << "  source            " << nfsdfs::EscapeForLog(src.path) << " ("
      << migrate::KindName(src.kind) << ", schema version "
      << src.schema_version << ")\n";
  if (src.current_epoch) {
    out << "  epochs            current " << *src.current_epoch << ", recovery "
        << *src.recovery_epoch
        << (*src.recovery_epoch != 0 ? " (in grace)" : " (not in grace)")
        << "\n";
  }
  out << "  allowed           " << src.allowed_from << "\n";
  if (!src.skipped.empty()) {
    out << "  left out          " << src.skipped.size() << "\n";
    for (const std::string& s : src.skipped) out << "    " << s << "\n";
  }
  if (!src.clients.empty()) {
    out << "\n  MINOR  PRINCHASH" << std::string(64 - 9, ' ') << "  ID\n";
    for (const migrate::SourceClient& c : src.clients) {
      std::string minor = c.minor < 0 ? "?" : MinorName(c.minor);
      std::string hash = PrinchashCell(c.princhash);
      out << "  " << minor << std::string(5 - minor.size(), ' ') << "  " << hash
          << std::string(64 - hash.size(), ' ') << "  " << IdCell(c.id) << "\n";
    }
  }
}

Json AsJson(const migrate::Source& src, const std::string& scope,
            const std::string& db, bool dry_run) {
  Json j;
  j["database"] = db;
  j["scope"] = scope;
  j["dry_run"] = dry_run;
  j["source"] = src.path;
  j["kind"] = migrate::KindName(src.kind);
  j["schema_version"] = src.schema_version;
  j["current_epoch"] = OptInt(src.current_epoch);
  j["recovery_epoch"] = OptInt(src.recovery_epoch);
  j["allowed_from"] = src.allowed_from;
  j["skipped"] = src.skipped;
  Json clients = Json::array();
  for (const migrate::SourceClient& c : src.clients) {
    Json e;
    e["id"] = IdCell(c.id);
    e["princhash"] =
        c.princhash.empty() ? Json() : Json(PrinchashCell(c.princhash));
    e["minor"] = c.minor;
    e["time"] = OptInt(c.time);
    clients.push_back(std::move(e));
  }
  j["clients"] = std::move(clients);
  return j;
}

constexpr OptionSpec kImportNfsdcldOptions[] = {
    {"--scope", "NAME"},    {"--db", "PATH"}, {"--nfsdcltrack-db", "PATH"},
    kCtlSocketOption,       kConfigOption,    {"--json", nullptr},
    {"--dry-run", nullptr},
};

int RunImportNfsdcld(const ParsedArgs& parsed, std::ostream& out,
                     std::ostream& err) {
  const std::string path = parsed.operands[0];
  const std::string scope = parsed.value("--scope", kDefaultScope);
  if (!ValidScopeName(scope))
    return UsageError(
        kImportNfsdcldVerb,
        "--scope '" + nfsdfs::EscapeForLog(scope) + "': " + kScopeNameRule,
        err);
  const std::string cltrack =
      parsed.value("--nfsdcltrack-db", kDefaultNfsdcltrackDb);
  const bool dry_run = parsed.has("--dry-run");
  CtlDefaults defaults;
  int rc = LoadCtlDefaults(parsed, &defaults, err);
  if (rc != kExitOk) return rc;
  const std::string& db = defaults.db;

  // The daemon serving this database keeps its scope in memory.
  std::unique_ptr<ControlClient> client;
  DaemonStatus status;
  Status cs = ControlClient::Connect(defaults.ctl_socket, &client);
  if (cs.ok()) cs = client->GetStatus(&status);
  if (cs.ok() && status.cluster.enabled && !parsed.has("--db")) {
    err << kProgram << ": nfsd-helper (pid " << status.pid
        << ") keeps its records in etcd (cluster " << status.cluster.cluster
        << "), and import-nfsdcld writes only a database file: give --db "
           "to write one; nothing imported\n";
    return kExitError;
  }
  if (cs.ok() && SameFile(db, status.database)) {
    err << kProgram << ": nfsd-helper (pid " << status.pid << ") serves "
        << nfsdfs::EscapeForLog(db)
        << "; stop it before importing, or let it import by itself at its "
           "first start (--nfsdcld-db); nothing imported\n";
    return kExitError;
  }
  client.reset();

  migrate::Source src;
  Status s = migrate::ReadSource(path, cltrack, &src);
  if (!s.ok()) {
    err << kProgram << ": cannot import " << nfsdfs::EscapeForLog(path) << ": "
        << s.message() << "; nothing imported\n";
    return kExitError;
  }

  std::unique_ptr<store::Store> st;
  struct stat sb;
  if (!dry_run) {
    s = store::Store::Open(db, store::Store::Mode::kReadWrite, &st);
    if (s.ok())
      s = migrate::WriteImport(st.get(), scope, src,
                               static_cast<int64_t>(time(nullptr)), false);
  } else if (stat(db.c_str(), &sb) == 0) {
    // Check without writing: the scope must be unused.
    s = store::Store::Open(db, store::Store::Mode::kReadOnly, &st);
    std::string why;
    if (s.ok()) s = migrate::ScopeInUse(st.get(), scope, &why);
    if (s.ok() && !why.empty())
      s = Status::Invalid("scope " + nfsdfs::EscapeForLog(scope) + " " + why +
                          "; nothing would be imported");
  }
  if (!s.ok()) {
    err << kProgram << ": " << s.message() << "\n";
    return kExitError;
  }
  try {
    if (parsed.has("--json")) {
      out << DumpJson(AsJson(src, scope, db, dry_run), 2) << "\n";
    } else {
      Text(src, scope, db, dry_run, out);
      if (!dry_run)
        out << "\nThey may reclaim their state at nfsd-helper's first server "
               "start of scope "
            << nfsdfs::EscapeForLog(scope) << ".\n";
    }
  } catch (const std::exception& e) {
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err, dry_run ? "" : " (the import was made)");
}

}  // namespace

const Verb kImportNfsdcldVerb = {
    "import-nfsdcld",
    "import the records of an nfsdcld or nfsdcltrack database",
    "[--scope NAME] [--db PATH] [--nfsdcltrack-db PATH|none] "
    "[--ctl-socket PATH] [--config FILE] [--json] [--dry-run] PATH",
    "  --scope NAME       the scope to import into (default \"default\"); it\n"
    "                     must never have been used\n"
    "  --db PATH          nfsd-helper's database (default: db of\n"
    "                     [nfsd-helper] in nfs.conf, else\n"
    "                     /var/lib/nfs/nfsd-helper/state.sqlite)\n"
    "  --nfsdcltrack-db PATH|none\n"
    "                     the nfsdcltrack database nfsdcld would copy at its\n"
    "                     first start (default\n"
    "                     /var/lib/nfs/nfsdcltrack/main.sqlite)\n"
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --config FILE      nfs.conf file to read --db from\n"
    "                     (default /etc/nfs.conf)\n"
    "  --json             describe the import as JSON\n"
    "  --dry-run          show what would be imported; change nothing\n"
    "\n"
    "PATH is nfsdcld's main.sqlite (schema 1 to 4) or nfsdcltrack's. The\n"
    "clients imported are exactly those nfsdcld would allow at its next\n"
    "grace start. PATH is opened read-only and never changed. Refused while\n"
    "the nfsd-helper serving the database runs.\n",
    {kImportNfsdcldOptions,
     {1, 1, "name the nfsdcld or nfsdcltrack database (PATH)"}},
    RunImportNfsdcld,
};

}  // namespace nfsdh::ctl
