// helper-ctl export-nfsdcld: hands a scope's clients back to nfsdcld
// (daemon/migrate/nfsdcld_export.h), the reverse of import-nfsdcld: when
// nfsd-helper is removed, nfsdcld's database is written so that nfsdcld,
// started on it, lets exactly the clients reclaim that nfsd-helper's next
// start would.
//
// It reads nfsd-helper's database directly, read-only, while no nfsd-helper
// serves the scope: it holds the scope's lock file for the whole run (as a
// helper would), so that no helper changes the records or starts meanwhile.
// nfsdcld must be stopped too (it holds no lock; a process that has the
// target open is a refusal).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>

#include "common/defaults.h"
#include "common/scope_name.h"
#include "ctl/args.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/config/conf.h"
#include "daemon/migrate/nfsdcld_export.h"
#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/store/scope_lock.h"
#include "daemon/store/store.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

std::string Shown(const std::string& s) { return nfsdfs::EscapeForLog(s); }

// Where nfsdcld keeps its database: [nfsdcld] storagedir of the nfs.conf
// file nfsdcld reads (as it expands it), else its default.
std::string NfsdcldDbFromConfig(const std::string& config) {
  config::Conf conf;
  if (!config::LoadConf(config, false, &conf).ok())
    return kDefaultNfsdcldDb;
  const config::Assignment* a = conf.Find("nfsdcld", "storagedir");
  std::string dir;
  if (!a || !conf.Expand(*a, &dir).ok() || dir.empty())
    return kDefaultNfsdcldDb;
  return dir + "/main.sqlite";
}

std::string PendingText(const recovery::PendingStep& p) {
  return p.start      ? "start"
         : p.instance ? "end " + std::to_string(*p.instance)
                      : "end";
}

void Text(const migrate::Handback& h, const migrate::NfsdcldWrite& w,
          const std::string& db, const std::string& target, std::ostream& out) {
  out << "handed back " << h.clients.size() << " client(s) of scope "
      << Shown(h.scope) << " from " << Shown(db) << " to " << Shown(target)
      << "\n";
  out << "  selected          " << h.allowed_from << "\n";
  out << "  left out          " << h.left_out
      << " record(s) the next start would purge\n";
  out << "  nfsdcld database  schema 4, current epoch " << w.current_epoch
      << ", recovery epoch 0 (not in grace)\n";
  out << "  replaced          "
      << (w.replaced.empty() ? std::string("nothing (a new file)") : w.replaced)
      << "\n";
  if (!h.clients.empty()) {
    out << "\n  PRINCHASH" << std::string(64 - 9, ' ') << "  ID\n";
    for (const migrate::HandbackClient& c : h.clients) {
      std::string hash = PrinchashCell(c.princhash);
      out << "  " << hash << std::string(64 - hash.size(), ' ') << "  "
          << IdCell(c.id) << "\n";
    }
  }
  out << "\nnfsdcld offers them to nfsd at its next grace start (the next "
         "start of nfsd).\n";
}

Json AsJson(const migrate::Handback& h, const migrate::NfsdcldWrite& w,
            const std::string& db, const std::string& target) {
  Json j;
  j["database"] = db;
  j["scope"] = h.scope;
  j["nfsdcld_db"] = target;
  j["schema_version"] = 4;
  j["current_epoch"] = w.current_epoch;
  j["recovery_epoch"] = 0;
  j["replaced"] = w.replaced.empty() ? Json() : Json(w.replaced);
  j["replaced_foreign"] = w.replaced_foreign;
  j["keep_from"] = OptInt(h.plan.keep_from);
  j["in_grace"] = h.state.in_grace();
  Json pending = Json::array();
  for (const recovery::PendingStep& p : h.pending)
    pending.push_back(PendingText(p));
  j["pending_steps"] = std::move(pending);
  j["kernel_ended_grace"] = h.kernel_ended_grace;
  j["allowed_from"] = h.allowed_from;
  j["left_out"] = h.left_out;
  Json clients = Json::array();
  for (const migrate::HandbackClient& c : h.clients) {
    Json e;
    e["id"] = IdCell(c.id);
    e["princhash"] =
        c.princhash.empty() ? Json() : Json(PrinchashCell(c.princhash));
    clients.push_back(std::move(e));
  }
  j["clients"] = std::move(clients);
  return j;
}

// --retire: once nfsdcld's database is durable, nfsd-helper's own database
// (and its WAL files and pending-steps files) is renamed to
// DB.handed-back-<time>, so that nfsd-helper, if it is installed again,
// starts from an empty database and imports nfsdcld's records then, newer
// than its own. The file is kept for inspection, never deleted.
Status RetireDatabase(const std::string& db, std::string* aside) {
  *aside = db + ".handed-back-" + IsoTime(time(nullptr));
  std::vector<std::string> suffixes = {"", "-wal", "-shm", "-journal"};
  const std::string dir = DirName(db);
  const std::string base = db.substr(db.rfind('/') + 1);
  const std::string pending = base + ".grace-end.";
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.compare(0, pending.size(), pending) == 0)
        suffixes.push_back(name.substr(base.size()));
    }
    closedir(d);
  }
  for (const std::string& suffix : suffixes) {
    std::string from = db + suffix, to = *aside + suffix;
    if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno("cannot move " + from + " aside to " + to,
                               errno);
  }
  return SyncDir(dir);
}

constexpr OptionSpec kExportNfsdcldOptions[] = {
    {"--db", "PATH"},         {"--scope", "NAME"},  kConfigOption,
    {"--nfsdcld-db", "PATH"}, {"--nfsdfs", "PATH"}, {"--force", nullptr},
    {"--retire", nullptr},    {"--json", nullptr},
};

int RunExportNfsdcld(const ParsedArgs& parsed, std::ostream& out,
                     std::ostream& err) {
  const std::string scope = parsed.value("--scope", kDefaultScope);
  if (!ValidScopeName(scope))
    return UsageError(kExportNfsdcldVerb,
                      "--scope '" + Shown(scope) + "': " + kScopeNameRule, err);
  CtlDefaults defaults;
  int rc = LoadCtlDefaults(parsed, &defaults, err);
  if (rc != kExitOk) return rc;
  const std::string& db = defaults.db;
  const std::string nfsdfs = parsed.value("--nfsdfs", defaults.nfsdfs);
  const std::string target = parsed.has("--nfsdcld-db")
                                 ? parsed.value("--nfsdcld-db")
                                 : NfsdcldDbFromConfig(parsed.value(
                                       kConfigOption.name, kDefaultConfig));
  if (target == kNone)
    return UsageError(kExportNfsdcldVerb,
                      "--nfsdcld-db must name the file nfsdcld reads", err);

  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(db, store::Store::Mode::kReadOnly, &st);
  if (!s.ok()) {
    err << kProgram << ": cannot read the database " << Shown(db) << ": "
        << s.ToString() << "; nothing written\n";
    return kExitError;
  }
  // No helper may serve the scope meanwhile, nor start.
  std::unique_ptr<store::ScopeLock> lock;
  s = store::ScopeLock::Acquire(db, scope, geteuid(), &lock);
  if (!s.ok()) {
    std::string why = s.message();
    size_t cut = why.find("; only one helper may serve");
    if (cut != std::string::npos) why.resize(cut);
    err << kProgram << ": " << why << "\n"
        << kProgram << ": stop nfsd-helper (systemctl stop nfsd-helper) "
        << "before handing its clients back; nothing written\n";
    return kExitError;
  }

  // --retire moves the database aside: not under another scope's helper.
  std::unique_ptr<store::DatabaseLock> db_lock;
  if (parsed.has("--retire")) {
    s = store::DatabaseLock::AcquireShared(db, geteuid(), &db_lock);
    if (s.ok()) s = db_lock->TryExclusive();
    if (!s.ok()) {
      err << kProgram << ": --retire: " << s.message()
          << "; stop every nfsd-helper of the database first; nothing "
             "written\n";
      return kExitError;
    }
  }

  migrate::Handback h;
  s = migrate::SelectHandback(st.get(), db, scope, nfsdfs, &h);
  migrate::NfsdcldWrite w;
  if (s.ok())
    s = migrate::WriteNfsdcld(target, h.clients, parsed.has("--force"), &w);
  if (!s.ok()) {
    err << kProgram << ": " << s.message() << "\n";
    return kExitError;
  }
  std::string retired;
  if (parsed.has("--retire")) {
    st.reset();
    s = RetireDatabase(db, &retired);
    if (!s.ok()) {
      err << kProgram << ": the nfsdcld database " << Shown(target)
          << " was written, but " << s.message() << "\n";
      return kExitError;
    }
  }
  try {
    if (parsed.has("--json")) {
      Json j = AsJson(h, w, db, target);
      j["retired"] = retired.empty() ? Json() : Json(retired);
      out << DumpJson(j, 2) << "\n";
    } else {
      Text(h, w, db, target, out);
      if (!retired.empty())
        out << "nfsd-helper's database was moved to " << Shown(retired)
            << "\n";
    }
  } catch (const std::exception& e) {
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err, " (the nfsdcld database was written)");
}

}  // namespace

const Verb kExportNfsdcldVerb = {
    "export-nfsdcld",
    "hand a scope's clients back to nfsdcld: write its database",
    "[--db PATH] [--scope NAME] [--config FILE] [--nfsdcld-db PATH] "
    "[--nfsdfs PATH|none] [--force] [--retire] [--json]",
    "  --db PATH          nfsd-helper's database (default: db of\n"
    "                     [nfsd-helper] in nfs.conf, else\n"
    "                     /var/lib/nfs/nfsd-helper/state.sqlite)\n"
    "  --scope NAME       the scope to hand back (default \"default\")\n"
    "  --config FILE      nfs.conf file for the defaults (default\n"
    "                     /etc/nfs.conf)\n"
    "  --nfsdcld-db PATH  the nfsdcld database to write (default:\n"
    "                     storagedir of [nfsdcld] in nfs.conf +\n"
    "                     /main.sqlite, else "
    "/var/lib/nfs/nfsdcld/main.sqlite)\n"
    "  --nfsdfs PATH|none nfsd's filesystem, asked whether a grace period\n"
    "                     the database has open has ended (default: nfsdfs\n"
    "                     of [nfsd-helper], else /proc/fs/nfsd); none: nfsd\n"
    "                     is known to be stopped\n"
    "  --force            replace a file that is not an nfsdcld database,\n"
    "                     and a journal of the old one\n"
    "  --retire           then move nfsd-helper's database aside\n"
    "                     (DB.handed-back-TIME), so that a later start\n"
    "                     imports nfsdcld's records afresh\n"
    "  --json             describe what was written as JSON\n"
    "\n"
    "Writes exactly the clients nfsd-helper's next server start of the\n"
    "scope would allow, so that nfsdcld offers them at its next grace start.\n"
    "The file is replaced atomically (mode 0600). nfsd-helper (the scope)\n"
    "and nfsdcld must be stopped; nfsd must not be in a grace period the\n"
    "database has open.\n",
    {kExportNfsdcldOptions},
    RunExportNfsdcld,
};

}  // namespace nfsdh::ctl
