// CTL_END_GRACE: where helper-ctl writes "Y" to end nfsd's grace period:
// <nfsdfs>/v4_end_grace (Linux 4.20 and later), and whether the scope is in
// grace.
//
// Rationale. The kernel answers that write by sending grace_done (or, on the
// cld pipe, GraceDone) to this daemon. Kernels that end the grace period
// from the write itself (older Linux 6.1 releases; newer ones hand it to the
// laundromat and return) wait for the answer before the write returns, on
// the cld path with no timeout at all. A daemon that wrote the file from its
// event loop would wait for an upcall only that same loop can read: a
// deadlock. So the daemon only says which file, and
// helper-ctl writes it from its own process while the loop serves the
// upcall the write causes. This procedure changes nothing.
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
  ctl_stat stat = CTL_OK;
  std::string message, path;
  if (h.Info().nfsdfs == "none") {  // --nfsdfs none
    stat = CTL_ERR_NO_FILE;
    message =
        "nfsd-helper serves no nfsd filesystem (--nfsdfs none), so it "
        "cannot tell where v4_end_grace is";
  } else {
    path = h.Info().nfsdfs + "/v4_end_grace";
    if (access(path.c_str(), F_OK) != 0) {
      int err = errno;
      stat = err == ENOENT ? CTL_ERR_NO_FILE : CTL_ERR_IO;
      message = path + ": " + strerror(err);
    }
  }
  bool in_grace = h.ServedScope().new_boot_time.has_value();
  if (stat == CTL_OK) {
    LOG_NOTICE("control: helper-ctl ends nfsd's grace period through %s "
               "(scope %s %s)",
               path.c_str(), h.ServedScope().name.c_str(),
               in_grace ? "is in grace" : "is not in grace");
  } else {
    LOG_WARNING("control: helper-ctl cannot end the grace period: %s",
                message.c_str());
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
