// helper-ctl export: writes a scope's client records in the export format
// (ctl/EXPORT-FORMAT.md), for `helper-ctl import` on the server that takes
// the scope over (man/helper-ctl.8, HA TAKE-OVER).
//
// It reads the database itself, read-only, in one read transaction: the file
// is one snapshot of the scope, and, the database being in WAL mode, reading
// it neither blocks nor waits for a running nfsd-helper. Without --db it
// reads the records the running daemon serves (asked over the control
// socket), else the default database. In cluster mode it reads etcd itself,
// read-only, at one revision (etcd::EtcdStore::BeginRead), so that a scope
// is moved out of etcd with no daemon running. Records are written as they are read, so a
// large scope costs no memory. --output FILE is written to a temporary file
// that is synced and renamed into place: FILE is whole or absent. It is
// created 0600, like the database.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <streambuf>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/etcd_access.h"
#include "ctl/export_format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

using store::ClientRow;
using store::Store;

// Writes the scope to `out`; sets *count.
Status WriteExport(store::Backend& st, const std::string& scope,
                   const char* source, std::ostream& out, int64_t* count,
                   bool* no_scope) {
  Status s = st.BeginRead();
  if (!s.ok()) return s;
  std::optional<store::ScopeRow> row;
  s = st.GetScope(scope, &row);
  if (s.ok() && !row) *no_scope = true;
  if (s.ok() && row) {
    ExportHeader h;
    h.scope = scope;
    h.exported = time(nullptr);
    h.source = source;
    out << ExportHeaderLine(h);
    int64_t n = 0;
    s = st.ForEachClient(scope, [&](const ClientRow& c) {
      out << ExportRecordLine(c);
      ++n;
      return static_cast<bool>(out);
    });
    if (s.ok()) out << ExportEndLine(n);
    *count = n;
  }
  st.EndRead();
  return s;
}

// An output stream buffer over a file descriptor (std::ofstream cannot
// create a file with a mode of our choosing). The first write error is kept
// in error().
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd) { setp(buf_, buf_ + sizeof buf_); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override {
    if (!Flush()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return Flush() ? 0 : -1; }

 private:
  bool Flush() {
    const char* p = pbase();
    while (error_ == 0 && p < pptr()) {
      ssize_t n = write(fd_, p, pptr() - p);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 ? errno : EIO;
        break;
      }
      p += n;
    }
    setp(buf_, buf_ + sizeof buf_);
    return error_ == 0;
  }

  int fd_;
  int error_ = 0;
  char buf_[64 * 1024];
};

// Creates `path` for writing, mode 0600 whatever the umask, and also when
// it exists already (the temporary file of an interrupted export): the
// records are as private as the database they come from. Never follows a
// symbolic link.
int CreatePrivate(const std::string& path) {
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 && fchmod(fd, 0600) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

constexpr OptionSpec kExportOptions[] = {
    {"--scope", "NAME", "name the scope to export"},
    {"--output", "FILE"},
    {"--db", "PATH"},
    kCtlSocketOption,
    kConfigOption,
    {"--json", nullptr},
    NFSDH_CTL_ETCD_OPTIONS,
};

int RunExport(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  const std::string scope = parsed.value("--scope");
  std::string output = parsed.value("--output", "-");
  if (parsed.has("--json") && output == "-")
    return UsageError(kExportVerb,
                      "--json describes the file written; it needs --output "
                      "FILE (the standard output carries the records)",
                      err);
  CtlDefaults defaults;
  int rc = LoadCtlDefaults(parsed, &defaults, err);
  if (rc != kExitOk) return rc;

  // The records are in etcd when --db is not given and the running daemon
  // keeps them there, or (no daemon answers, or --etcd-endpoints) the etcd
  // options say so; else in a database file.
  std::string db = defaults.db;
  Options& o = defaults.options;
  bool from_etcd = false;
  if (!parsed.has("--db")) {
    std::unique_ptr<ControlClient> client;
    DaemonStatus status;
    Status cs = ControlClient::Connect(defaults.ctl_socket, &client);
    if (cs.ok()) cs = client->GetStatus(&status);
    if (cs.ok() && status.cluster.enabled && o.etcd_endpoints.empty()) {
      o.etcd_endpoints = status.cluster.endpoints;
      o.cluster = status.cluster.cluster;
    }
    // A running daemon says where its records are, unless the command
    // line names an etcd.
    from_etcd = cs.ok() && !parsed.has("--etcd-endpoints")
                    ? status.cluster.enabled
                    : !o.etcd_endpoints.empty();
    if (cs.ok() && !status.cluster.enabled) db = status.database;
  }
  std::unique_ptr<store::Backend> st;
  std::string shown;  // where the records are, for messages
  Status s;
  if (from_etcd) {
    std::unique_ptr<etcd::EtcdStore> es;
    s = OpenEtcdReader(o, 0, &es);
    if (!s.ok()) return UsageError(kExportVerb, s.message(), err);
    shown = "etcd cluster " + o.cluster + " (" + o.etcd_endpoints + ")";
    st = std::move(es);
  } else {
    std::unique_ptr<Store> file;
    s = Store::Open(db, Store::Mode::kReadOnly, &file);
    if (!s.ok()) {
      err << kProgram << ": cannot read the database "
          << nfsdfs::EscapeForLog(db) << ": " << s.ToString() << "\n";
      return kExitError;
    }
    shown = nfsdfs::EscapeForLog(db);
    st = std::move(file);
  }
  const char* source = from_etcd ? "etcd" : "database";

  int64_t count = 0;
  bool no_scope = false;
  if (output == "-") {
    s = WriteExport(*st, scope, source, out, &count, &no_scope);
  } else {
    const std::string tmp = output + ".tmp";
    int fd = CreatePrivate(tmp);
    if (fd < 0) {
      err << kProgram << ": cannot create " << nfsdfs::EscapeForLog(tmp) << ": "
          << strerror(errno) << "\n";
      return kExitError;
    }
    FdBuf buf(fd);
    std::ostream file(&buf);
    s = WriteExport(*st, scope, source, file, &count, &no_scope);
    file.flush();
    if (s.ok() && !no_scope && (!file || buf.error() != 0))
      s = Status::FromErrno("write " + tmp, buf.error() ? buf.error() : EIO);
    if (s.ok() && !no_scope && fsync(fd) != 0)
      s = Status::FromErrno("fsync " + tmp, errno);
    if (close(fd) != 0 && s.ok() && !no_scope)
      s = Status::FromErrno("close " + tmp, errno);
    if (s.ok() && !no_scope && rename(tmp.c_str(), output.c_str()) != 0)
      s = Status::FromErrno("rename " + tmp + " to " + output, errno);
    if (s.ok() && !no_scope) s = SyncDir(DirName(output));
    if (!s.ok() || no_scope) unlink(tmp.c_str());
  }
  if (no_scope) {
    err << kProgram << ": no scope '" << nfsdfs::EscapeForLog(scope)
        << "' in " << (from_etcd ? "" : "the database ") << shown << "\n";
    return kExitError;
  }
  if (!s.ok()) {
    err << kProgram << ": export failed: " << s.ToString() << "\n";
    return kExitError;
  }
  if (output == "-") return FinishOutput(out, err);
  if (parsed.has("--json")) {
    Json j;
    j["scope"] = scope;
    j["source"] = source;
    j["database"] = from_etcd ? Json(nullptr) : Json(db);
    j["cluster"] = from_etcd ? Json(o.cluster) : Json(nullptr);
    j["output"] = output;
    j["format"] = kExportFormatName;
    j["version"] = kExportFormatVersion;
    j["clients"] = count;
    out << DumpJson(j, 2) << "\n";
  } else {
    out << "exported " << count << " client record(s) of scope "
        << nfsdfs::EscapeForLog(scope) << " from " << shown
        << " to " << nfsdfs::EscapeForLog(output) << "\n";
  }
  return FinishOutput(out, err, " (the export was written)");
}

}  // namespace

const Verb kExportVerb = {
    "export",
    "write a scope's client records to a file, for import on another server",
    "--scope NAME [--output FILE] [--db PATH] [--ctl-socket PATH] "
    "[--config FILE] [--json] [--etcd-endpoints URLS] [--cluster NAME] "
    "[--etcd-cacert FILE] [--etcd-cert FILE] [--etcd-key FILE] "
    "[--etcd-user NAME] [--etcd-password-file FILE]",
    "  --scope NAME       the scope to export (required)\n"
    "  --output FILE      write the records to FILE (atomically: it is\n"
    "                     whole or absent; mode 0600); default: the\n"
    "                     standard output\n"
    "  --db PATH          the database to read (default: the records the\n"
    "                     running nfsd-helper serves, in its database or\n"
    "                     in etcd; else etcd if etcd-endpoints is set;\n"
    "                     else the db key of nfs.conf, else "
    "/var/lib/nfs/nfsd-helper/state.sqlite)\n"
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --config FILE      nfs.conf file for the defaults (default\n"
    "                     /etc/nfs.conf)\n"
    "  --json             describe the file written as JSON (needs --output)\n"
    NFSDH_CTL_ETCD_OPTIONS_HELP
    "\n"
    "The file is JSON lines, format \"nfsd-helper-clients\" version 1, one\n"
    "snapshot of the scope (helper-ctl(8), EXPORT FORMAT). From etcd it\n"
    "reads the scope at one revision, with no running nfsd-helper needed.\n",
    {kExportOptions},
    RunExport,
};

}  // namespace nfsdh::ctl
