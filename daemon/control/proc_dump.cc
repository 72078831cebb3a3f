// CTL_DUMP: one page of a scope's client records (client_pages.h), so that
// a dump of any size costs the daemon one page of memory at a time, and a
// reply always fits in the connection's socket buffer (server.h).
#include <memory>
#include <vector>

#include "daemon/control/procedure.h"
#include "daemon/util/log.h"

namespace nfsdh::control {
namespace {

// A page holds at most this many bytes of ids and hashes; with the fixed
// fields, a reply stays under Server::kMaxReply.
constexpr size_t kPageBytes = 40 * 1024;

void ServeDump(Context& ctx, SVCXPRT* xprt) {
  ctl_dump_args args = {};
  if (!svc_getargs(xprt, ctl_proto::XdrProc(xdr_ctl_dump_args),
                   reinterpret_cast<char*>(&args))) {
    svcerr_decode(xprt);
    return;
  }
  const std::string scope = args.scope ? args.scope : "";
  const std::string after(args.after.ctl_client_id_val,
                          args.after.ctl_client_id_len);
  size_t max = args.max < CTL_MAX_PAGE ? args.max : CTL_MAX_PAGE;
  svc_freeargs(xprt, ctl_proto::XdrProc(xdr_ctl_dump_args),
               reinterpret_cast<char*>(&args));

  XdrArena arena;
  ctl_dump_res res = {};
  res.stat = CTL_OK;
  res.message = arena.Str("", 0);
  FillScope(store::ScopeRow(), &arena, &res.scope);

  ClientPages::Page page;
  Status s;
  if (!ValidScope(scope.c_str())) {
    res.stat = CTL_ERR_INVALID;
    res.message = arena.Str("invalid scope name", CTL_MAX_TEXT);
  } else {
    if (!ctx.pages && ctx.host->Cluster().enabled)
      ctx.pages = std::make_unique<ClientPages>(&ctx.host->Database());
    else if (!ctx.pages)
      s = ClientPages::Open(ctx.host->Info().db, &ctx.pages);
    if (s.ok())
      s = ctx.pages->Read(scope, after, max, kPageBytes, after.empty(), &page);
    if (!s.ok()) {
      LOG_WARNING("control: dump of scope %s: %s", scope.c_str(),
                  s.ToString().c_str());
      ctx.pages.reset();  // reopen next time
      res.stat = CTL_ERR_STORAGE;
      res.message = arena.Str(s.ToString(), CTL_MAX_TEXT);
    } else if (!page.scope) {
      res.stat = CTL_ERR_NO_SCOPE;
      res.message = arena.Str("no scope " + scope, CTL_MAX_TEXT);
    }
  }
  std::vector<ctl_client> clients;
  if (res.stat == CTL_OK) {
    FillScope(*page.scope, &arena, &res.scope);
    res.client_count = XdrOpt(page.count);
    clients.resize(page.clients.size());
    for (size_t i = 0; i < page.clients.size(); ++i)
      FillClient(page.clients[i], &clients[i]);
    res.clients.clients_len = static_cast<u_int>(clients.size());
    res.clients.clients_val = clients.data();
    res.more = page.more;
  }
  svc_sendreply(xprt, ctl_proto::XdrProc(xdr_ctl_dump_res),
                reinterpret_cast<char*>(&res));
}

}  // namespace

const Procedure kDumpProcedure = {CTL_DUMP, "dump", ServeDump};

}  // namespace nfsdh::control
