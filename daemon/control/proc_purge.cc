// CTL_PURGE: remove one client record in its own transaction, through the
// daemon's tracker, exactly as expire_client removes it (the HA callout's
// del-client and the served scope's count included): the client may not
// reclaim at the next server start.
#include <ctime>
#include <optional>

#include "daemon/control/procedure.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::control {
namespace {

// Removes the record; sets *stat and *message when it cannot.
void Purge(Context& ctx, const std::string& scope, const std::string& id,
           std::optional<store::ClientRow>* removed, ctl_stat* stat,
           std::string* message) {
  Host& h = *ctx.host;
  tracker::Transaction t(&h.Records(), time(nullptr));
  tracker::Transaction::PurgeResult r = t.Purge(scope, id, removed);
  Status s = t.Commit();
  if (!s.ok()) {
    LOG_ERROR("control: purge of client %s from scope %s failed: %s",
              nfsdfs::EscapeForLog(id).c_str(), scope.c_str(),
              s.ToString().c_str());
    h.Errors().Record(s, time(nullptr));
    removed->reset();
    *stat = CTL_ERR_STORAGE;
    *message = s.ToString();
    return;
  }
  switch (r) {
    case tracker::Transaction::PurgeResult::kNoScope:
      *stat = CTL_ERR_NO_SCOPE;
      *message = "no scope " + scope;
      return;
    case tracker::Transaction::PurgeResult::kNoClient:
      *stat = CTL_ERR_NO_CLIENT;
      *message = "scope " + scope + " has no record of that client";
      return;
    case tracker::Transaction::PurgeResult::kFailed:  // Commit() said why
    case tracker::Transaction::PurgeResult::kPurged:
      break;
  }
  ++ctx.purged;
  LOG_NOTICE(
      "control: client %s (instance %lld) purged from scope %s by "
      "helper-ctl; it may not reclaim",
      nfsdfs::EscapeForLog(id).c_str(),
      static_cast<long long>((*removed)->instance), scope.c_str());
}

void ServePurge(Context& ctx, SVCXPRT* xprt) {
  ctl_purge_args args = {};
  if (!svc_getargs(xprt, ctl_proto::XdrProc(xdr_ctl_purge_args),
                   reinterpret_cast<char*>(&args))) {
    svcerr_decode(xprt);
    return;
  }
  const std::string scope = args.scope ? args.scope : "";
  const std::string id(args.id.ctl_client_id_val, args.id.ctl_client_id_len);
  svc_freeargs(xprt, ctl_proto::XdrProc(xdr_ctl_purge_args),
               reinterpret_cast<char*>(&args));

  ctl_stat stat = CTL_OK;
  std::string message;
  std::optional<store::ClientRow> removed;
  if (!ValidScope(scope.c_str())) {
    stat = CTL_ERR_INVALID;
    message = "invalid scope name";
  } else if (id.empty()) {
    stat = CTL_ERR_INVALID;
    message = "empty client id";
  } else {
    Purge(ctx, scope, id, &removed, &stat, &message);
  }

  XdrArena arena;
  ctl_purge_res res = {};
  res.stat = stat;
  res.message = arena.Str(message, CTL_MAX_TEXT);
  if (removed) FillClient(*removed, &res.removed);
  svc_sendreply(xprt, ctl_proto::XdrProc(xdr_ctl_purge_res),
                reinterpret_cast<char*>(&res));
}

}  // namespace

const Procedure kPurgeProcedure = {CTL_PURGE, "purge", ServePurge};

}  // namespace nfsdh::control
