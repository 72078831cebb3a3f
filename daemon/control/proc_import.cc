// CTL_IMPORT: client records moved from another server (helper-ctl import,
// HA take-over), added to a scope in one transaction by the daemon itself, so
// that its view of the scope it serves (record count) stays right.
//
// The records arrive in pages, one call each (a call stays under the
// server's request limit), and are staged in memory, at most
// CTL_MAX_IMPORT records and kMaxStagedBytes, until the call that commits;
// that call imports them through the daemon's tracker (the HA callout's
// add-client events and the served scope's count included) in one short
// transaction, so
// an import never holds the database between two calls of a client that may
// never make the next one, and never lands in part. One session is open at a
// time: a new one replaces it, and one idle for a minute is dropped, with
// what it staged, by the server's sweep or the next call.
//
// The committing call runs on the daemon's event loop, like every
// procedure, and upcalls that arrive meanwhile (the cld pipe's included)
// wait for it. What bounds it is the staging limit: at most CTL_MAX_IMPORT
// records (and kMaxStagedBytes), inserted in one transaction with one
// durable COMMIT, so its length grows with the number of records. It
// stays on the loop on purpose: the daemon's connection is the database's
// only writer (daemon.cc's short busy timeout relies on that), and the
// import's checks against the scope it serves must see the same state as
// the batches around it. nfsd-helper(8) tells operators to import large
// sets when the server is quiet.
#include <ctime>
#include <vector>

#include "daemon/control/procedure.h"
#include "daemon/control/server.h"
#include "daemon/util/log.h"

namespace nfsdh::control {
namespace {

// What a session may stage: ids and hashes plus a fixed cost per record.
constexpr size_t kMaxStagedBytes = 256u * 1024 * 1024;
constexpr size_t kRecordOverhead = 96;

int64_t Monotonic() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

struct Reply {
  ctl_stat stat = CTL_OK;
  std::string message;
  uint64_t session = 0;
  int64_t staged = 0;
  bool committed = false;
  bool fresh = false;
  int64_t stamp = 0;
  int64_t imported = 0;
  int64_t kept = 0;
  store::ScopeRow scope;
};

void Fail(Reply* r, ctl_stat stat, const std::string& message) {
  r->stat = stat;
  r->message = message;
}

// Opens a session for `scope` if the scope accepts an import now (checked
// again, inside the transaction, at the commit).
void Open(Context& ctx, const std::string& scope, Reply* r) {
  std::optional<store::ScopeRow> row;
  Status s = ctx.host->Database().GetScope(scope, &row);
  if (!s.ok()) {
    Fail(r, CTL_ERR_STORAGE, s.ToString());
    return;
  }
  if (row)
    r->scope = *row;
  else
    r->scope.name = scope;
  std::string refusal = tracker::ImportRefusal(scope, row);
  if (!refusal.empty()) {
    LOG_WARNING("control: import into scope %s refused: %s", scope.c_str(),
                refusal.c_str());
    Fail(r, CTL_ERR_REFUSED, refusal);
    return;
  }
  if (ctx.import) {
    LOG_WARNING(
        "control: import session %llu into scope %s abandoned for a "
        "new one",
        static_cast<unsigned long long>(ctx.import->id),
        ctx.import->scope.c_str());
  }
  ctx.import = std::make_unique<ImportSession>();
  ctx.import->id = (static_cast<uint64_t>(time(nullptr)) << 20) +
                   (++ctx.import_sessions & 0xfffff);
  ctx.import->scope = scope;
  ctx.import->last_active = Monotonic();
  r->session = ctx.import->id;
}

void Commit(Context& ctx, Reply* r) {
  ImportSession& sess = *ctx.import;
  Host& h = *ctx.host;
  tracker::Transaction t(&h.Records(), time(nullptr));
  tracker::Transaction::ImportTarget target;
  if (t.PlanImport(sess.scope, &target) &&
      target.plan.verdict == recovery::ImportVerdict::kRefused) {
    LOG_WARNING("control: import into scope %s refused: %s", sess.scope.c_str(),
                target.refusal.c_str());
    Fail(r, CTL_ERR_REFUSED, target.refusal);
    return;  // abandoned: nothing was changed
  }
  int64_t imported = 0, kept = 0;
  for (size_t i = 0; !t.failed() && i < sess.records.size(); ++i) {
    const store::ClientRow& c = sess.records[i];
    bool inserted = false;
    if (t.Import(target, c.id, c.princhash, c.minor, &inserted))
      ++(inserted ? imported : kept);
  }
  Status s = t.Commit();
  if (!s.ok()) {
    LOG_ERROR(
        "control: import of %zu record(s) into scope %s failed, "
        "nothing imported: %s",
        sess.records.size(), sess.scope.c_str(), s.ToString().c_str());
    h.Errors().Record(s, time(nullptr));
    Fail(r, CTL_ERR_STORAGE, s.ToString());
    return;
  }
  r->committed = true;
  r->fresh = target.plan.verdict == recovery::ImportVerdict::kFresh;
  r->stamp = target.plan.stamp;
  r->imported = imported;
  r->kept = kept;
  if (target.row) r->scope = *target.row;
  LOG_NOTICE(
      "control: %lld client record(s) imported into scope %s by "
      "helper-ctl (%lld already present), stamped with instance "
      "%lld: allowed to reclaim at the scope's next start",
      static_cast<long long>(imported), sess.scope.c_str(),
      static_cast<long long>(kept), static_cast<long long>(target.plan.stamp));
}

void Serve(Context& ctx, const ctl_import_args& args, Reply* r) {
  const std::string scope = args.scope ? args.scope : "";
  r->scope.name = scope;
  if (!ValidScope(scope.c_str())) {
    Fail(r, CTL_ERR_INVALID, "invalid scope name");
    return;
  }
  const int64_t now = Monotonic();
  DropIdleImport(ctx, now);
  if (args.session == 0) {
    Open(ctx, scope, r);
    if (r->stat != CTL_OK) return;
  } else if (!ctx.import || ctx.import->id != args.session ||
             ctx.import->scope != scope) {
    Fail(r, CTL_ERR_SESSION,
         "no import session " + std::to_string(args.session) + " for scope " +
             scope +
             " (a newer import replaced it, it was idle too long, or "
             "nfsd-helper restarted); nothing was imported");
    return;
  }
  ImportSession& sess = *ctx.import;
  sess.last_active = now;
  r->session = sess.id;
  for (u_int i = 0; i < args.records.records_len; ++i) {
    const ctl_import_record& in = args.records.records_val[i];
    store::ClientRow c;
    c.scope = scope;
    c.id.assign(in.id.ctl_client_id_val, in.id.ctl_client_id_len);
    c.princhash.assign(in.princhash.princhash_val, in.princhash.princhash_len);
    c.minor = in.minor;
    Status s = tracker::CheckRecord(c.id, c.princhash, c.minor);
    if (!s.ok()) {
      ctx.import.reset();
      Fail(r, CTL_ERR_INVALID,
           s.message() + "; the import session is dropped, nothing imported");
      return;
    }
    sess.bytes += c.id.size() + c.princhash.size() + kRecordOverhead;
    sess.records.push_back(std::move(c));
    if (sess.records.size() > CTL_MAX_IMPORT || sess.bytes > kMaxStagedBytes) {
      ctx.import.reset();
      Fail(r, CTL_ERR_TOO_BIG,
           "more than " + std::to_string(CTL_MAX_IMPORT) +
               " records (or 256 MiB) in one import through nfsd-helper; "
               "nothing imported");
      return;
    }
  }
  r->staged = static_cast<int64_t>(sess.records.size());
  if (args.commit) {
    Commit(ctx, r);
    ctx.import.reset();
  }
}

void ServeImport(Context& ctx, SVCXPRT* xprt) {
  ctl_import_args args = {};
  if (!svc_getargs(xprt, ctl_proto::XdrProc(xdr_ctl_import_args),
                   reinterpret_cast<char*>(&args))) {
    svcerr_decode(xprt);
    return;
  }
  Reply r;
  Serve(ctx, args, &r);
  svc_freeargs(xprt, ctl_proto::XdrProc(xdr_ctl_import_args),
               reinterpret_cast<char*>(&args));

  XdrArena arena;
  ctl_import_res res = {};
  res.stat = r.stat;
  res.message = arena.Str(r.message, CTL_MAX_TEXT);
  res.session = r.session;
  res.staged = r.staged;
  res.committed = r.committed;
  res.fresh = r.fresh;
  res.stamp = r.stamp;
  res.imported = r.imported;
  res.kept = r.kept;
  FillScope(r.scope, &arena, &res.scope);
  svc_sendreply(xprt, ctl_proto::XdrProc(xdr_ctl_import_res),
                reinterpret_cast<char*>(&res));
}

}  // namespace

bool DropIdleImport(Context& ctx, int64_t now) {
  if (!ctx.import || now - ctx.import->last_active <= ctx.idle_seconds)
    return false;
  LOG_WARNING(
      "control: import session %llu into scope %s dropped with its %zu "
      "staged record(s): no call for more than %d s; nothing imported",
      static_cast<unsigned long long>(ctx.import->id),
      ctx.import->scope.c_str(), ctx.import->records.size(),
      ctx.idle_seconds);
  ctx.import.reset();
  return true;
}

const Procedure kImportProcedure = {CTL_IMPORT, "import", ServeImport};

}  // namespace nfsdh::control
