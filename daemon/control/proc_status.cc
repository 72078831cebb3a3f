// CTL_STATUS: what the daemon is doing, for helper-ctl status. Everything
// comes from memory but the list of scope names (one short read).
#include <ctime>
#include <vector>

#include "daemon/control/procedure.h"
#include "daemon/store/store.h"
#include "daemon/util/log.h"

namespace nfsdh::control {
namespace {

ctl_storage_error Note(const std::optional<StorageErrors::Note>& n,
                       XdrArena* arena) {
  ctl_storage_error e;
  e.present = n.has_value();
  e.when = n ? n->when : 0;
  e.message = arena->Str(n ? n->message : "", CTL_MAX_TEXT);
  return e;
}

static_assert(static_cast<int>(ProtocolState::kNotConfigured) ==
              CTL_UPCALL_NOT_CONFIGURED);
static_assert(static_cast<int>(ProtocolState::kNotOffered) ==
              CTL_UPCALL_NOT_OFFERED);
static_assert(static_cast<int>(ProtocolState::kWaiting) == CTL_UPCALL_WAITING);
static_assert(static_cast<int>(ProtocolState::kOpen) == CTL_UPCALL_OPEN);

// Points into `buckets`, which must outlive the reply.
ctl_histogram XdrHistogram(const Histogram& h,
                           std::vector<ctl_bucket>* buckets) {
  ctl_histogram out = {};
  if (!h.Valid() || h.bounds.size() > CTL_MAX_BUCKETS) return out;
  buckets->resize(h.bounds.size());
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    (*buckets)[i].le = h.bounds[i];
    (*buckets)[i].count = h.counts[i];
  }
  out.buckets.buckets_len = static_cast<u_int>(buckets->size());
  out.buckets.buckets_val = buckets->data();
  out.above = h.counts.back();
  out.sum = h.sum;
  return out;
}

void ServeStatus(Context& ctx, SVCXPRT* xprt) {
  if (!svc_getargs(xprt, ctl_proto::XdrProc(xdr_void), nullptr)) {
    svcerr_decode(xprt);
    return;
  }
  Host& h = *ctx.host;
  const DaemonInfo& info = h.Info();
  XdrArena arena;
  ctl_status_res res = {};
  res.stat = CTL_OK;
  res.message = arena.Str("", 0);
  res.daemon_version = arena.Str(info.version, 64);
  res.pid = info.pid;
  res.started = info.started;
  res.now = time(nullptr);
  const ClusterInfo cl = h.Cluster();
  // Cluster mode: the records are in etcd, which has no schema version.
  res.database =
      arena.Str(cl.enabled ? "etcd " + cl.endpoints : info.db, CTL_MAX_PATH);
  res.schema_version = cl.enabled ? 0 : store::kSchemaVersion;
  res.nfsdfs = arena.Str(info.nfsdfs, CTL_MAX_PATH);
  res.serving = h.Serving();
  FillScope(h.ServedScope(), &arena, &res.scope);
  const ScopeStats& st = h.Stats();
  res.clients = st.clients;
  res.start_seen = st.start_seen;
  res.start_instance = st.start_instance;
  res.start_time = st.start_time;
  res.allowed = st.allowed;
  res.reclaimed = st.reclaimed;

  std::vector<ChannelInfo> channels = h.Channels();
  if (channels.size() > CTL_MAX_CHANNELS) channels.resize(CTL_MAX_CHANNELS);
  std::vector<ctl_channel> ch(channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    ch[i].name = arena.Str(channels[i].name, 32);
    ch[i].open = channels[i].open;
    ch[i].requests = channels[i].counters.requests;
    ch[i].ok = channels[i].counters.ok;
    ch[i].malformed = channels[i].counters.malformed;
    ch[i].stale = channels[i].counters.stale;
    ch[i].failed = channels[i].counters.failed;
  }
  res.channels.channels_len = static_cast<u_int>(ch.size());
  res.channels.channels_val = ch.data();

  res.purged = ctx.purged;
  res.callouts_pending = h.CalloutsPending();
  const StorageErrors& errors = h.Errors();
  res.storage_errors = errors.count;
  res.first_storage_error = Note(errors.first, &arena);
  res.last_storage_error = Note(errors.last, &arena);

  std::vector<store::ScopeRow> rows;
  Status s = h.Database().ListScopes(&rows);
  if (!s.ok()) {
    // The rest is still worth having; say what is missing.
    LOG_WARNING("control: status: cannot list the scopes: %s",
                s.ToString().c_str());
    res.message =
        arena.Str("cannot list the scopes: " + s.ToString(), CTL_MAX_TEXT);
  }
  std::vector<char*> names;
  for (const store::ScopeRow& r : rows) {
    if (names.size() == CTL_MAX_SCOPES) {
      res.scopes_truncated = true;
      break;
    }
    names.push_back(arena.Str(r.name, CTL_MAX_SCOPE));
  }
  res.scopes.scopes_len = static_cast<u_int>(names.size());
  res.scopes.scopes_val = names.data();

  const idmap::IdmapStats im = h.Idmap();
  auto dir = [](const idmap::DirectionStats& s) {
    ctl_idmap_dir d;
    d.open = s.open;
    d.requests = s.requests;
    d.hits = s.hits;
    d.misses = s.misses;
    d.errors = s.errors;
    d.queued = s.queued;
    return d;
  };
  res.idmap.enabled = im.enabled;
  res.idmap.idtoname = dir(im.idtoname);
  res.idmap.nametoid = dir(im.nametoid);

  res.nfsdfs_state = static_cast<ctl_upcall_state>(h.NfsdfsState());
  res.cld_pipe = arena.Str(info.cld_pipe, CTL_MAX_PATH);
  res.cld_state = static_cast<ctl_upcall_state>(h.CldState());
  const BatchStats& batches = h.Batches();
  std::vector<ctl_bucket> request_buckets, commit_buckets;
  res.batches.committed = batches.committed;
  res.batches.rolled_back = batches.rolled_back;
  res.batches.requests = XdrHistogram(batches.requests, &request_buckets);
  res.batches.commit_usec = XdrHistogram(batches.commit_usec, &commit_buckets);
  res.cluster.enabled = cl.enabled;
  res.cluster.cluster = arena.Str(cl.cluster, CTL_MAX_SCOPE);
  res.cluster.node = arena.Str(cl.node, CTL_MAX_SCOPE);
  res.cluster.endpoints = arena.Str(cl.endpoints, CTL_MAX_TEXT);
  res.cluster.lease = cl.lease;
  res.cluster.lease_ttl = cl.lease_ttl;
  res.cluster.renewed_ms_ago = cl.renewed_ms_ago;
  res.cluster.fenced = cl.fenced;
  res.cluster.fence_reason = arena.Str(cl.fence_reason, CTL_MAX_TEXT);
  res.cluster.fenced_since = cl.fenced_since;

  svc_sendreply(xprt, ctl_proto::XdrProc(xdr_ctl_status_res),
                reinterpret_cast<char*>(&res));
}

}  // namespace

const Procedure kStatusProcedure = {CTL_STATUS, "status", ServeStatus};

}  // namespace nfsdh::control
