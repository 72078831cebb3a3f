// helper-ctl end-grace: ask the kernel to end its NFSv4 grace period now,
// by writing "Y" to v4_end_grace in the nfsd filesystem the running
// nfsd-helper serves (it names the file: CTL_END_GRACE). Clients that have
// not reclaimed by then lose their state. The write returns once nfsd has
// sent grace_done (or GraceDone) to nfsd-helper and had its answer, which is
// why helper-ctl writes the file and the daemon does not
// (daemon/control/proc_end_grace.cc).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

// Whether `path` (v4_end_grace) reads "Y": nfsd's grace period is over.
bool ReadsY(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  if (fd < 0) return false;
  char c = 0;
  ssize_t n;
  do {
    n = read(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  return n == 1 && c == 'Y';
}

constexpr OptionSpec kEndGraceOptions[] = {kCtlSocketOption,
                                           {"--json", nullptr}};

int RunEndGrace(const ParsedArgs& parsed, std::ostream& out,
                std::ostream& err) {
  std::unique_ptr<ControlClient> client;
  int rc = ConnectOrReport(CtlSocket(parsed), &client, err);
  if (rc != kExitOk) return rc;
  EndGraceResult res;
  Status s = client->EndGrace(&res);
  if (!s.ok()) return ReportCallError(s, err);
  const std::string path = nfsdfs::EscapeForLog(res.path);
  if (res.stat == DaemonStat::kNoFile && !res.path.empty()) {
    err << kProgram << ": " << path << " does not exist: this kernel's nfsd "
        << "cannot end its grace period early (Linux 4.20 or later can)\n";
    return kExitError;
  }
  if (res.stat != DaemonStat::kOk) {
    err << kProgram << ": cannot end the grace period: " << res.message << "\n";
    return kExitError;
  }
  // Never created: only the file the kernel provides is written.
  int fd = open(res.path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  if (fd < 0) {
    int e = errno;
    err << kProgram << ": cannot end the grace period: open " << path << ": "
        << strerror(e) << "\n";
    return kExitError;
  }
  ssize_t n;
  do {
    n = write(fd, "Y", 1);
  } while (n < 0 && errno == EINTR);
  int write_errno = n < 0 ? errno : EIO;
  close(fd);
  // nfsd refuses the write with EBUSY when there is nothing to end: its
  // grace period is over (the file then reads Y), or it is not running.
  bool already_ended = n != 1 && write_errno == EBUSY &&
                       ReadsY(res.path);
  if (n != 1 && !already_ended) {
    err << kProgram << ": cannot end the grace period: write " << path << ": "
        << strerror(write_errno)
        << (write_errno == EBUSY
                ? " (nfsd is not running, or tracks no clients)"
                : "")
        << "\n";
    return kExitError;
  }
  try {
    if (parsed.has("--json")) {
      Json j;
      j["file"] = res.path;
      j["written"] = "Y";
      j["already_ended"] = already_ended;
      j["was_in_grace"] = res.was_in_grace;
      out << DumpJson(j, 2) << "\n";
    } else if (already_ended) {
      out << "nfsd's grace period had already ended (" << path
          << " reads Y)\n";
    } else {
      out << "wrote Y to " << path << ": the kernel ends its grace period now";
      if (!res.was_in_grace) out << " (nfsd-helper's scope was not in grace)";
      out << "\n";
    }
  } catch (const std::exception& e) {
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err);
}

}  // namespace

const Verb kEndGraceVerb = {
    "end-grace",
    "ask the kernel to end its NFSv4 grace period now",
    "[--ctl-socket PATH] [--json]",
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --json             describe what was done as JSON\n"
    "\n"
    "Writes Y to v4_end_grace in the nfsd filesystem nfsd-helper serves.\n"
    "Clients that have not reclaimed their state by then lose it.\n"
    "Exit status 3 if nfsd-helper is not running.\n",
    {kEndGraceOptions},
    RunEndGrace,
};

}  // namespace nfsdh::ctl
