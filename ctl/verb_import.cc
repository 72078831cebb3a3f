// helper-ctl import: adds the client records of an export file
// (ctl/EXPORT-FORMAT.md) to a scope, so that those clients may reclaim their
// state at the scope's next start on this server (HA take-over, seed 002).
//
// Safety (RFC 7530 §9.6.3) is recovery::PlanImport's rule: a scope accepts an
// import only while its grace period is open or has not yet begun, and the
// records count for the grace period of its next start. The file is checked
// as it is read (header, version, every record, the count in the end line);
// any problem, or a refusal, imports nothing: the records go into the
// database in one transaction.
//
// When nfsd-helper runs on the same database (or serves the scope from
// etcd), the import goes through it (CTL_IMPORT, records in pages), so that
// its view of the scope it serves stays right; in cluster mode with no
// daemon serving the scope, helper-ctl writes etcd itself as the scope's
// owner for the while (ctl/etcd_access.h); otherwise it writes the database itself
// (through a tracker::Transaction, as the daemon would; synchronous=FULL). Either way the file is streamed;
// only the daemon stages the records in memory until the commit.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include "common/scope_name.h"
#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/etcd_access.h"
#include "ctl/export_format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"
#include "daemon/tracker/tracker.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

// The records of one CTL_IMPORT call stay under the daemon's 8 KiB request
// limit with room for the call header.
constexpr size_t kPageBytes = 6 * 1024;

struct Summary {
  std::string via;  // "daemon" or "database"
  std::string db;
  int64_t records = 0;
  int64_t imported = 0;
  int64_t kept = 0;
  bool fresh = false;
  int64_t stamp = 0;
};

// What went wrong, as one line; the verb prints it and exits 1.
struct Failure {
  std::string message;
  bool refused = false;
};

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string FileError(const std::string& file, const Status& s) {
  return nfsdfs::EscapeForLog(file) + ": " + s.message() + "; nothing imported";
}

// Imports into `st` in one tracker transaction; `check` (if set) is asked
// before the commit.
bool IntoStore(store::Backend* st, const std::string& scope,
               const std::string& file, ExportReader& reader,
               const std::function<Status()>& check, Summary* sum,
               Failure* fail) {
  tracker::Tracker records(st, scope);
  tracker::Transaction t(&records, time(nullptr));
  tracker::Transaction::ImportTarget target;
  if (!t.PlanImport(scope, &target)) {
    fail->message =
        "import failed: " + t.failure().ToString() + "; nothing imported";
    return false;
  }
  if (target.plan.verdict == recovery::ImportVerdict::kRefused) {
    fail->message = "refusing to import into scope " + scope + ": " +
                    target.refusal + "; nothing imported";
    fail->refused = true;
    return false;
  }
  for (;;) {
    store::ClientRow c;
    bool end = false;
    Status s = reader.Next(&c, &end);
    if (!s.ok()) {
      fail->message = FileError(file, s);
      return false;
    }
    if (end) break;
    ++sum->records;
    bool inserted = false;
    if (!t.Import(target, c.id, c.princhash, c.minor, &inserted)) {
      fail->message =
          "import failed: " + t.failure().ToString() + "; nothing imported";
      return false;
    }
    ++(inserted ? sum->imported : sum->kept);
  }
  Status s = check ? check() : Status::Ok();
  if (s.ok()) s = t.Commit();
  if (!s.ok()) {
    fail->message = "import failed: " + s.ToString() + "; nothing imported";
    return false;
  }
  sum->fresh = target.plan.verdict == recovery::ImportVerdict::kFresh;
  sum->stamp = target.plan.stamp;
  return true;
}

bool ViaDatabase(const std::string& db, const std::string& scope,
                 const std::string& file, ExportReader& reader, Summary* sum,
                 Failure* fail) {
  sum->via = "database";
  sum->db = db;
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(db, store::Store::Mode::kReadWrite, &st);
  if (!s.ok()) {
    fail->message = "cannot open the database " + nfsdfs::EscapeForLog(db) +
                    ": " + s.ToString();
    return false;
  }
  return IntoStore(st.get(), scope, file, reader, nullptr, sum, fail);
}

// Into etcd, helper-ctl owning the scope meanwhile (ctl/etcd_access.h): a
// scope another node serves is refused, naming it. The commit is etcd
// transactions of at most EtcdStore::kMaxOpsPerTxn operations, the scope's
// own key in the first, each conditional on the ownership (ETCD.md, Order
// of a batch's transactions). A failure part way leaves the records of the
// transactions before it: clients without their record would only be
// refused a reclaim, never allowed one wrongly, and the same import run
// again keeps those and adds the rest.
bool ViaEtcd(const Options& o, const std::string& scope,
             const std::string& file, ExportReader& reader, Summary* sum,
             Failure* fail) {
  sum->via = "etcd";
  sum->db = "etcd cluster " + o.cluster + " (" + o.etcd_endpoints + ")";
  std::unique_ptr<EtcdScopeWriter> w;
  Status s = EtcdScopeWriter::Open(o, scope, &w);
  if (!s.ok()) {
    fail->refused = s.code() == Status::Code::kPermission;
    fail->message = (fail->refused ? "refusing to import into scope " + scope +
                                         ": " + s.message() +
                                         " (import there, through its "
                                         "nfsd-helper)"
                                   : "cannot reach " + sum->db + ": " +
                                         s.message()) +
                    "; nothing imported";
    return false;
  }
  return IntoStore(&w->store(), scope, file, reader,
                   [&w] { return w->CheckLease(); }, sum, fail);
}

bool DaemonFailed(const ImportReply& r, const std::string& scope,
                  Failure* fail) {
  if (r.stat == DaemonStat::kOk) return false;
  fail->refused = r.stat == DaemonStat::kRefused;
  fail->message =
      (fail->refused ? "refusing to import into scope " + scope + ": "
                     : std::string("nfsd-helper could not import: ")) +
      r.message;
  if (fail->refused) fail->message += "; nothing imported";
  return true;
}

bool ViaDaemon(ControlClient& client, const std::string& db,
               const std::string& scope, const std::string& file,
               ExportReader& reader, Summary* sum, Failure* fail) {
  sum->via = "daemon";
  sum->db = db;
  // An empty first call: a refused scope is known before the file is read.
  ImportReply r;
  Status s = client.Import(scope, 0, {}, false, &r);
  if (!s.ok()) {
    fail->message = s.message();
    return false;
  }
  if (DaemonFailed(r, scope, fail)) return false;
  const uint64_t session = r.session;
  std::vector<ImportRecord> page;
  size_t bytes = 0;
  for (;;) {
    store::ClientRow c;
    bool end = false;
    s = reader.Next(&c, &end);
    if (!s.ok()) {
      // The daemon drops the session unused.
      fail->message = FileError(file, s);
      return false;
    }
    if (!end) {
      ++sum->records;
      ImportRecord rec{c.id, c.princhash, c.minor};
      size_t size = ControlClient::ImportRecordSize(rec);
      if (!page.empty() && bytes + size > kPageBytes) {
        s = client.Import(scope, session, page, false, &r);
        if (!s.ok()) {
          fail->message = s.message() + "; nothing imported";
          return false;
        }
        if (DaemonFailed(r, scope, fail)) return false;
        page.clear();
        bytes = 0;
      }
      page.push_back(std::move(rec));
      bytes += size;
      continue;
    }
    s = client.Import(scope, session, page, true, &r);
    if (!s.ok()) {
      fail->message = s.message() +
                      "; whether the records were imported is not known: "
                      "check with helper-ctl dump";
      return false;
    }
    if (DaemonFailed(r, scope, fail)) return false;
    break;
  }
  sum->imported = r.imported;
  sum->kept = r.kept;
  sum->fresh = r.fresh;
  sum->stamp = r.stamp;
  return true;
}

constexpr OptionSpec kImportOptions[] = {
    {"--scope", "NAME", "name the scope to import into"},
    {"--db", "PATH"},
    kCtlSocketOption,
    kConfigOption,
    {"--json", nullptr},
    NFSDH_CTL_ETCD_OPTIONS,
};

int RunImport(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  const std::string scope = parsed.value("--scope");
  if (!ValidScopeName(scope))
    return UsageError(
        kImportVerb,
        "--scope '" + nfsdfs::EscapeForLog(scope) + "': " + kScopeNameRule,
        err);
  const std::string file = parsed.operands[0];
  CtlDefaults defaults;
  int rc = LoadCtlDefaults(parsed, &defaults, err);
  if (rc != kExitOk) return rc;

  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (file != "-") {
    in_file.open(file, std::ios::binary);
    if (!in_file) {
      err << kProgram << ": cannot open " << nfsdfs::EscapeForLog(file) << ": "
          << strerror(errno) << "\n";
      return kExitError;
    }
    in = &in_file;
  }
  ExportReader reader(in);
  ExportHeader header;
  Status s = reader.ReadHeader(&header);
  if (!s.ok()) {
    err << kProgram << ": " << FileError(file, s) << "\n";
    return kExitError;
  }

  // Through the daemon if one runs on this database, or serves this scope
  // from etcd; else into etcd itself in cluster mode (the running daemon's
  // etcd, or the etcd options); else into the database.
  std::unique_ptr<ControlClient> client;
  DaemonStatus status;
  Status cs = ControlClient::Connect(defaults.ctl_socket, &client);
  if (cs.ok()) cs = client->GetStatus(&status);
  if (!cs.ok() && cs.code() == Status::Code::kPermission)
    return ReportCallError(cs, err);
  Options& o = defaults.options;
  bool live = false, to_etcd = false;
  if (parsed.has("--db")) {
    live = cs.ok() && !status.cluster.enabled &&
           SameFile(defaults.db, status.database);
  } else if (cs.ok() && status.cluster.enabled) {
    live = status.scope.name == scope;
    to_etcd = !live;
    if (o.etcd_endpoints.empty()) {
      o.etcd_endpoints = status.cluster.endpoints;
      o.cluster = status.cluster.cluster;
    }
  } else if (cs.ok() && !parsed.has("--etcd-endpoints")) {
    live = true;
  } else {
    to_etcd = !o.etcd_endpoints.empty();
  }
  if (to_etcd) {
    // The etcd options are checked before anything is asked of etcd.
    std::unique_ptr<etcd::EtcdStore> unused;
    Status os = OpenEtcdReader(o, 0, &unused);
    if (!os.ok()) return UsageError(kImportVerb, os.message(), err);
  }
  Summary sum;
  Failure fail;
  bool ok = live      ? ViaDaemon(*client, status.database, scope, file, reader,
                                  &sum, &fail)
            : to_etcd ? ViaEtcd(o, scope, file, reader, &sum, &fail)
                      : ViaDatabase(defaults.db, scope, file, reader, &sum,
                                    &fail);
  if (!ok) {
    err << kProgram << ": " << fail.message << "\n";
    return kExitError;
  }
  const char* when = sum.fresh ? "at the scope's first start"
                               : "when nfsd restarts for the scope (its grace "
                                 "period is open)";
  try {
    if (parsed.has("--json")) {
      Json j;
      j["scope"] = scope;
      j["file"] = file;
      j["source_scope"] = header.scope;
      j["exported"] = IsoTime(header.exported);
      j["via"] = sum.via;
      j["database"] = sum.via == "etcd" ? Json(nullptr) : Json(sum.db);
      j["cluster"] = sum.via == "etcd" ? Json(o.cluster) : Json(nullptr);
      j["records"] = sum.records;
      j["imported"] = sum.imported;
      j["kept"] = sum.kept;
      j["scope_state"] = sum.fresh ? "fresh" : "in_grace";
      j["stamp"] = sum.stamp;
      out << DumpJson(j, 2) << "\n";
    } else {
      out << "imported " << sum.imported << " of " << sum.records
          << " client record(s) from scope "
          << nfsdfs::EscapeForLog(header.scope) << " (exported "
          << IsoTime(header.exported) << ") into scope "
          << nfsdfs::EscapeForLog(scope) << " (" << sum.kept
          << " already present, kept); they may reclaim " << when << "\n";
    }
  } catch (const std::exception& e) {
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err, " (the records were imported)");
}

}  // namespace

const Verb kImportVerb = {
    "import",
    "add the client records of an export file to a scope (HA take-over)",
    "--scope NAME [--db PATH] [--ctl-socket PATH] [--config FILE] [--json] "
    "[--etcd-endpoints URLS] [--cluster NAME] [--etcd-cacert FILE] "
    "[--etcd-cert FILE] [--etcd-key FILE] [--etcd-user NAME] "
    "[--etcd-password-file FILE] FILE",
    "  --scope NAME       the scope to import into (required)\n"
    "  --db PATH          the database to write (default: the db key of\n"
    "                     nfs.conf, else "
    "/var/lib/nfs/nfsd-helper/state.sqlite)\n"
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --config FILE      nfs.conf file for the defaults (default\n"
    "                     /etc/nfs.conf)\n"
    "  --json             describe the import as JSON\n"
    NFSDH_CTL_ETCD_OPTIONS_HELP
    "\n"
    "FILE is a file written by export; '-' reads the standard input. The\n"
    "scope must have no server instance yet, or one in its grace period;\n"
    "the records may reclaim at the scope's next start. Through nfsd-helper\n"
    "if it runs on that database (or serves that scope from etcd), else\n"
    "into the database directly, all records or none; in cluster mode\n"
    "(etcd-endpoints set, no --db) into etcd, as the scope's owner for the\n"
    "time of the import. Exit status 1 if the scope's grace period ended\n"
    "or another node serves it.\n",
    {kImportOptions,
     {1, 1, "name the FILE to import ('-': the standard input)"}},
    RunImport,
};

}  // namespace nfsdh::ctl
