// helper-ctl metrics: the running nfsd-helper's counters (CTL_STATUS) in the
// Prometheus text exposition format (ctl/metrics.h), on the standard output
// for a scraper that runs commands, or with --textfile FILE as the file
// node_exporter's textfile collector reads.
//
// The file is replaced atomically (a temporary file in the same directory,
// synced, renamed over it), so the collector never reads half of it, and
// it is removed when the daemon cannot be asked: values that stopped
// changing would otherwise look current for ever.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/metrics.h"
#include "ctl/verbs.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

// Replaces `path` with `text`: written to a temporary file beside it (a
// hidden name that does not end in .prom, which the collector skips),
// mode 0644 whatever the umask, synced, renamed over `path`, and the
// directory synced.
Status WriteTextfile(const std::string& path, const std::string& text) {
  const std::string dir = DirName(path);
  const size_t slash = path.rfind('/');
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = dir + "/." + base + ".XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0)
    return Status::FromErrno("create a temporary file in " + dir, errno);
  Status s;
  size_t done = 0;
  while (s.ok() && done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      s = Status::FromErrno("write " + tmp, errno);
    else
      done += static_cast<size_t>(n);
  }
  if (s.ok() && fchmod(fd, 0644) != 0)
    s = Status::FromErrno("chmod " + tmp, errno);
  if (s.ok() && fsync(fd) != 0) s = Status::FromErrno("fsync " + tmp, errno);
  if (close(fd) != 0 && s.ok()) s = Status::FromErrno("close " + tmp, errno);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    s = Status::FromErrno("rename " + tmp + " to " + path, errno);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

// The daemon could not be asked: no values are better than old ones.
void RemoveTextfile(const std::string& path, std::ostream& err) {
  if (unlink(path.c_str()) == 0) {
    err << kProgram << ": removed " << nfsdfs::EscapeForLog(path) << "\n";
  } else if (errno != ENOENT) {
    err << kProgram << ": cannot remove " << nfsdfs::EscapeForLog(path) << ": "
        << strerror(errno) << "\n";
  }
}

constexpr OptionSpec kMetricsOptions[] = {kCtlSocketOption,
                                          {"--textfile", "FILE"}};

int RunMetrics(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  const bool to_file = parsed.has("--textfile");
  const std::string textfile = parsed.value("--textfile");

  std::unique_ptr<ControlClient> client;
  int rc = ConnectOrReport(CtlSocket(parsed), &client, err);
  DaemonStatus d;
  if (rc == kExitOk) {
    Status s = client->GetStatus(&d);
    if (!s.ok()) rc = ReportCallError(s, err);
  }
  if (rc != kExitOk) {
    if (to_file) RemoveTextfile(textfile, err);
    return rc;
  }
  if (!d.message.empty()) err << kProgram << ": warning: " << d.message << "\n";
  const std::string text = MetricsText(d);
  if (!to_file) {
    out << text;
    return FinishOutput(out, err);
  }
  Status s = WriteTextfile(textfile, text);
  if (!s.ok()) {
    err << kProgram << ": cannot write " << nfsdfs::EscapeForLog(textfile)
        << ": " << s.message() << "\n";
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

const Verb kMetricsVerb = {
    "metrics",
    "show the running nfsd-helper's counters in the Prometheus text format",
    "[--ctl-socket PATH] [--textfile FILE]",
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --textfile FILE    write FILE (for node_exporter's textfile\n"
    "                     collector, a name ending in .prom) instead of\n"
    "                     the standard output: atomically, mode 0644;\n"
    "                     FILE is removed when nfsd-helper cannot be asked\n"
    "\n"
    "Every metric is named nfsd_helper_* (helper-ctl(8), METRICS).\n"
    "Exit status 3 if nfsd-helper is not running.\n",
    {kMetricsOptions},
    RunMetrics,
};

}  // namespace nfsdh::ctl
