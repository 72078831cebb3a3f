// CTL_END_GRACE: ask the kernel to end its grace period now, by writing "Y"
// to <nfsdfs>/v4_end_grace (Linux 4.20 and later). The kernel then sends
// grace_done, which the daemon handles as always; this procedure changes no
// record itself.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/control/procedure.h"
#include "daemon/util/log.h"

namespace nfsdh::control {
namespace {

void ServeEndGrace(Context& ctx, SVCXPRT* xprt) {
  if (!svc_getargs(xprt, ctl_proto::XdrProc(xdr_void), nullptr)) {
    svcerr_decode(xprt);
    return;
  }
  Host& h = *ctx.host;
  const std::string path = h.Info().nfsdfs + "/v4_end_grace";
  ctl_stat stat = CTL_OK;
  std::string message;
  // Never created: only a file the kernel (or a test) provides is written.
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    stat = err == ENOENT ? CTL_ERR_NO_FILE : CTL_ERR_IO;
    message = "open " + path + ": " + strerror(err);
  } else {
    ssize_t n;
    do {
      n = write(fd, "Y", 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      int err = n < 0 ? errno : EIO;
      stat = CTL_ERR_IO;
      message = "write " + path + ": " + strerror(err);
      if (err == EBUSY) message += " (nfsd is not running)";
    }
    close(fd);
  }
  bool in_grace = h.ServedScope().new_boot_time.has_value();
  if (stat == CTL_OK) {
    std::string note =
        in_grace ? "" : " (scope " + h.ServedScope().name + " is not in grace)";
    LOG_NOTICE(
        "control: wrote Y to %s for helper-ctl: the kernel ends its "
        "grace period%s",
        path.c_str(), note.c_str());
  } else {
    LOG_WARNING("control: cannot end the grace period: %s", message.c_str());
  }
  XdrArena arena;
  ctl_end_grace_res res = {};
  res.stat = stat;
  res.message = arena.Str(message, CTL_MAX_TEXT);
  res.path = arena.Str(path, CTL_MAX_PATH);
  res.was_in_grace = in_grace;
  svc_sendreply(xprt, ctl_proto::XdrProc(xdr_ctl_end_grace_res),
                reinterpret_cast<char*>(&res));
}

}  // namespace

const Procedure kEndGraceProcedure = {CTL_END_GRACE, "end_grace",
                                      ServeEndGrace};

}  // namespace nfsdh::control
