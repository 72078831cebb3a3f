#include "ctl/control_client.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

#include "control-proto/ctl_proto.h"

namespace nfsdh::ctl {
namespace {

using ctl_proto::XdrProc;

static_assert(static_cast<int>(DaemonStat::kOk) == CTL_OK);
static_assert(static_cast<int>(DaemonStat::kInvalid) == CTL_ERR_INVALID);
static_assert(static_cast<int>(DaemonStat::kNoScope) == CTL_ERR_NO_SCOPE);
static_assert(static_cast<int>(DaemonStat::kNoClient) == CTL_ERR_NO_CLIENT);
static_assert(static_cast<int>(DaemonStat::kStorage) == CTL_ERR_STORAGE);
static_assert(static_cast<int>(DaemonStat::kNoFile) == CTL_ERR_NO_FILE);
static_assert(static_cast<int>(DaemonStat::kIo) == CTL_ERR_IO);
static_assert(static_cast<int>(DaemonStat::kRefused) == CTL_ERR_REFUSED);
static_assert(static_cast<int>(DaemonStat::kSession) == CTL_ERR_SESSION);
static_assert(static_cast<int>(DaemonStat::kTooBig) == CTL_ERR_TOO_BIG);

// How long connecting may wait for room in a busy daemon's backlog, and a
// call for its answer. The daemon answers every call at once; only a daemon
// that hangs takes this long.
constexpr time_t kConnectTimeout = 5;
constexpr time_t kCallTimeout = 30;

std::string Text(const char* s) { return s ? s : ""; }

std::optional<int64_t> Opt(const ctl_opt& o) {
  return o.present ? std::optional<int64_t>(o.value) : std::nullopt;
}

store::ScopeRow ScopeOf(const ctl_scope_info& s) {
  store::ScopeRow r;
  r.name = Text(s.name);
  r.boot_time = Opt(s.boot_time);
  r.new_boot_time = Opt(s.new_boot_time);
  r.old_boot_time = Opt(s.old_boot_time);
  r.max_instance = s.max_instance;
  r.kernel_boot_time = Opt(s.kernel_boot_time);
  r.grace_started = Opt(s.grace_started);
  r.grace_ended = Opt(s.grace_ended);
  return r;
}

store::ClientRow ClientOf(const std::string& scope, const ctl_client& c) {
  store::ClientRow r;
  r.scope = scope;
  r.id.assign(c.id.ctl_client_id_val, c.id.ctl_client_id_len);
  r.princhash.assign(c.princhash.princhash_val, c.princhash.princhash_len);
  r.minor = c.minor;
  r.instance = c.instance;
  r.first_seen = c.first_seen;
  r.last_seen = c.last_seen;
  return r;
}

ProtocolState StateOf(ctl_upcall_state s) {
  switch (s) {
    case CTL_UPCALL_NOT_CONFIGURED:
      return ProtocolState::kNotConfigured;
    case CTL_UPCALL_NOT_OFFERED:
      return ProtocolState::kNotOffered;
    case CTL_UPCALL_WAITING:
      return ProtocolState::kWaiting;
    case CTL_UPCALL_OPEN:
      return ProtocolState::kOpen;
  }
  return ProtocolState::kWaiting;  // a state this helper-ctl does not know
}

Histogram HistogramOf(const ctl_histogram& h) {
  Histogram out;
  for (u_int i = 0; i < h.buckets.buckets_len; ++i) {
    out.bounds.push_back(h.buckets.buckets_val[i].le);
    out.counts.push_back(h.buckets.buckets_val[i].count);
  }
  out.counts.push_back(h.above);
  out.sum = h.sum;
  return out;
}

std::optional<StorageErrorNote> NoteOf(const ctl_storage_error& e) {
  if (!e.present) return std::nullopt;
  return StorageErrorNote{e.when, Text(e.message)};
}

// Keeps SIGPIPE from killing the process while it is in scope: libtirpc
// writes with write(), and a daemon that goes away mid-call must be an error
// of the call. A SIGPIPE raised meanwhile is taken back before the signal
// mask is restored.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      struct timespec zero = {0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

Status Call(CLIENT* clnt, const std::string& path, rpcproc_t proc,
            xdrproc_t xargs, void* args, xdrproc_t xres, void* res) {
  struct timeval timeout = {kCallTimeout, 0};
  SigpipeBlock no_sigpipe;
  enum clnt_stat st = clnt_call(clnt, proc, xargs, args, xres, res, timeout);
  if (st == RPC_SUCCESS) return Status::Ok();
  if (st == RPC_AUTHERROR) {
    return Status::Permission(
        "nfsd-helper refused the request: only root "
        "may use its control socket " +
        path);
  }
  if (st == RPC_PROCUNAVAIL || st == RPC_PROGVERSMISMATCH ||
      st == RPC_PROGUNAVAIL || st == RPC_CANTDECODERES) {
    return Status::Io("the nfsd-helper answering on " + path +
                      " does not speak this helper-ctl's protocol (" +
                      clnt_sperrno(st) + ")");
  }
  return Status::Io("no answer from nfsd-helper on " + path + ": " +
                    clnt_sperrno(st));
}

}  // namespace

Status ControlClient::Connect(const std::string& socket_path,
                              std::unique_ptr<ControlClient>* out) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof sa.sun_path)
    return Status::Invalid("control socket path '" + socket_path +
                           "' is empty or too long");
  memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket", errno);
  // connect() waits for room in the listen backlog at most this long.
  struct timeval tv = {kConnectTimeout, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    close(fd);
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
      return Status::NotFound("connect " + socket_path + ": " + strerror(err));
    if (err == EACCES || err == EPERM)
      return Status::Permission("connect " + socket_path + ": " +
                                strerror(err));
    if (err == EAGAIN || err == EINPROGRESS)
      return Status::Io("nfsd-helper does not accept connections on " +
                        socket_path + " (too busy)");
    return Status::FromErrno("connect " + socket_path, err);
  }
  struct netbuf addr;
  addr.maxlen = addr.len = sizeof sa;
  addr.buf = &sa;
  CLIENT* clnt = clnt_vc_create(fd, &addr, NFSDH_CTL_PROG, NFSDH_CTL_V1, 0, 0);
  if (clnt == nullptr) {
    close(fd);
    return Status::Io(clnt_spcreateerror(socket_path.c_str()));
  }
  clnt_control(clnt, CLSET_FD_CLOSE, nullptr);
  out->reset(new ControlClient(clnt, socket_path));
  return Status::Ok();
}

ControlClient::~ControlClient() { clnt_destroy(clnt_); }

Status ControlClient::Ping() {
  return Call(clnt_, path_, CTL_NULL, XdrProc(xdr_void), nullptr,
              XdrProc(xdr_void), nullptr);
}

Status ControlClient::GetStatus(DaemonStatus* out) {
  ctl_status_res res = {};
  Status s = Call(clnt_, path_, CTL_STATUS, XdrProc(xdr_void), nullptr,
                  XdrProc(xdr_ctl_status_res), &res);
  if (!s.ok()) return s;
  DaemonStatus d;
  d.message = Text(res.message);
  d.version = Text(res.daemon_version);
  d.pid = res.pid;
  d.started = res.started;
  d.now = res.now;
  d.database = Text(res.database);
  d.schema_version = res.schema_version;
  d.nfsdfs = Text(res.nfsdfs);
  d.serving = res.serving;
  d.scope = ScopeOf(res.scope);
  d.clients = res.clients;
  d.start_seen = res.start_seen;
  d.start_instance = res.start_instance;
  d.start_time = res.start_time;
  d.allowed = res.allowed;
  d.reclaimed = res.reclaimed;
  for (u_int i = 0; i < res.channels.channels_len; ++i) {
    const ctl_channel& c = res.channels.channels_val[i];
    ChannelStatus cs;
    cs.name = Text(c.name);
    cs.open = c.open;
    cs.requests = c.requests;
    cs.ok = c.ok;
    cs.malformed = c.malformed;
    cs.stale = c.stale;
    cs.failed = c.failed;
    d.channels.push_back(std::move(cs));
  }
  d.purged = res.purged;
  d.callouts_pending = res.callouts_pending;
  d.storage_errors = res.storage_errors;
  d.first_storage_error = NoteOf(res.first_storage_error);
  d.last_storage_error = NoteOf(res.last_storage_error);
  for (u_int i = 0; i < res.scopes.scopes_len; ++i)
    d.scopes.push_back(Text(res.scopes.scopes_val[i]));
  d.scopes_truncated = res.scopes_truncated;
  d.idmap.enabled = res.idmap.enabled;
  for (auto [from, to] : {std::pair{&res.idmap.idtoname, &d.idmap.idtoname},
                          std::pair{&res.idmap.nametoid, &d.idmap.nametoid}}) {
    to->open = from->open;
    to->requests = from->requests;
    to->hits = from->hits;
    to->misses = from->misses;
    to->errors = from->errors;
    to->queued = from->queued;
  }
  d.nfsdfs_state = StateOf(res.nfsdfs_state);
  d.cld_pipe = Text(res.cld_pipe);
  d.cld_state = StateOf(res.cld_state);
  d.batches.committed = res.batches.committed;
  d.batches.rolled_back = res.batches.rolled_back;
  d.batches.requests = HistogramOf(res.batches.requests);
  d.batches.commit_usec = HistogramOf(res.batches.commit_usec);
  d.cluster.enabled = res.cluster.enabled;
  d.cluster.cluster = Text(res.cluster.cluster);
  d.cluster.node = Text(res.cluster.node);
  d.cluster.endpoints = Text(res.cluster.endpoints);
  d.cluster.lease = res.cluster.lease;
  d.cluster.lease_ttl = res.cluster.lease_ttl;
  d.cluster.renewed_ms_ago = res.cluster.renewed_ms_ago;
  d.cluster.fenced = res.cluster.fenced;
  d.cluster.fence_reason = Text(res.cluster.fence_reason);
  d.cluster.fenced_since = res.cluster.fenced_since;
  bool stat_ok = res.stat == CTL_OK;
  std::string message = d.message;
  clnt_freeres(clnt_, XdrProc(xdr_ctl_status_res),
               reinterpret_cast<char*>(&res));
  if (!stat_ok) return Status::Io("nfsd-helper: " + message);
  if (!d.batches.requests.Valid() || !d.batches.commit_usec.Valid())
    return Status::Io(
        "nfsd-helper sent a histogram whose bounds do not "
        "increase");
  *out = std::move(d);
  return Status::Ok();
}

Status ControlClient::Dump(const std::string& scope, const std::string& after,
                           uint32_t max, DumpPage* out) {
  ctl_dump_args args = {};
  args.scope = const_cast<char*>(scope.c_str());
  args.after.ctl_client_id_len = static_cast<u_int>(after.size());
  args.after.ctl_client_id_val = const_cast<char*>(after.data());
  args.max = max;
  ctl_dump_res res = {};
  Status s = Call(clnt_, path_, CTL_DUMP, XdrProc(xdr_ctl_dump_args), &args,
                  XdrProc(xdr_ctl_dump_res), &res);
  if (!s.ok()) return s;
  DumpPage p;
  p.stat = static_cast<DaemonStat>(res.stat);
  p.message = Text(res.message);
  p.scope = ScopeOf(res.scope);
  p.count = Opt(res.client_count);
  for (u_int i = 0; i < res.clients.clients_len; ++i)
    p.clients.push_back(ClientOf(p.scope.name, res.clients.clients_val[i]));
  p.more = res.more;
  clnt_freeres(clnt_, XdrProc(xdr_ctl_dump_res), reinterpret_cast<char*>(&res));
  *out = std::move(p);
  return Status::Ok();
}

Status ControlClient::Purge(const std::string& scope, const std::string& id,
                            PurgeResult* out) {
  ctl_purge_args args = {};
  args.scope = const_cast<char*>(scope.c_str());
  args.id.ctl_client_id_len = static_cast<u_int>(id.size());
  args.id.ctl_client_id_val = const_cast<char*>(id.data());
  ctl_purge_res res = {};
  Status s = Call(clnt_, path_, CTL_PURGE, XdrProc(xdr_ctl_purge_args), &args,
                  XdrProc(xdr_ctl_purge_res), &res);
  if (!s.ok()) return s;
  PurgeResult p;
  p.stat = static_cast<DaemonStat>(res.stat);
  p.message = Text(res.message);
  p.removed = ClientOf(scope, res.removed);
  clnt_freeres(clnt_, XdrProc(xdr_ctl_purge_res),
               reinterpret_cast<char*>(&res));
  *out = std::move(p);
  return Status::Ok();
}

Status ControlClient::EndGrace(EndGraceResult* out) {
  ctl_end_grace_res res = {};
  Status s = Call(clnt_, path_, CTL_END_GRACE, XdrProc(xdr_void), nullptr,
                  XdrProc(xdr_ctl_end_grace_res), &res);
  if (!s.ok()) return s;
  EndGraceResult r;
  r.stat = static_cast<DaemonStat>(res.stat);
  r.message = Text(res.message);
  r.path = Text(res.path);
  r.was_in_grace = res.was_in_grace;
  clnt_freeres(clnt_, XdrProc(xdr_ctl_end_grace_res),
               reinterpret_cast<char*>(&res));
  *out = std::move(r);
  return Status::Ok();
}

size_t ControlClient::ImportRecordSize(const ImportRecord& r) {
  // Two variable-length opaques (length word, data padded to 4) and an int.
  return 4 + (r.id.size() + 3) / 4 * 4 + 4 + (r.princhash.size() + 3) / 4 * 4 +
         4;
}

Status ControlClient::Import(const std::string& scope, uint64_t session,
                             const std::vector<ImportRecord>& records,
                             bool commit, ImportReply* out) {
  std::vector<ctl_import_record> recs(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const ImportRecord& r = records[i];
    recs[i].id.ctl_client_id_len = static_cast<u_int>(r.id.size());
    recs[i].id.ctl_client_id_val = const_cast<char*>(r.id.data());
    recs[i].princhash.princhash_len = static_cast<u_int>(r.princhash.size());
    recs[i].princhash.princhash_val = const_cast<char*>(r.princhash.data());
    recs[i].minor = r.minor;
  }
  ctl_import_args args = {};
  args.scope = const_cast<char*>(scope.c_str());
  args.session = session;
  args.records.records_len = static_cast<u_int>(recs.size());
  args.records.records_val = recs.data();
  args.commit = commit;
  ctl_import_res res = {};
  Status s = Call(clnt_, path_, CTL_IMPORT, XdrProc(xdr_ctl_import_args), &args,
                  XdrProc(xdr_ctl_import_res), &res);
  if (!s.ok()) return s;
  ImportReply r;
  r.stat = static_cast<DaemonStat>(res.stat);
  r.message = Text(res.message);
  r.session = res.session;
  r.staged = res.staged;
  r.committed = res.committed;
  r.fresh = res.fresh;
  r.stamp = res.stamp;
  r.imported = res.imported;
  r.kept = res.kept;
  r.scope = ScopeOf(res.scope);
  clnt_freeres(clnt_, XdrProc(xdr_ctl_import_res),
               reinterpret_cast<char*>(&res));
  *out = std::move(r);
  return Status::Ok();
}

}  // namespace nfsdh::ctl
