#include "daemon/daemon.h"

#include <systemd/sd-daemon.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <thread>

#include "daemon/callout/callout.h"
#include "daemon/control/server.h"
#include "daemon/etcd/client.h"
#include "daemon/etcd/client_options.h"
#include "daemon/etcd/etcd_store.h"
#include "daemon/etcd/lease_keeper.h"
#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/store/pending_steps.h"
#include "daemon/util/fs.h"
#include "daemon/util/log.h"
#include "daemon/util/netns.h"
#include "daemon/util/privileges.h"
#include "nfsdfs-proto/message.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh {
namespace {

// Larger than any well-formed request (PROTOCOL.md §2), so that a read that
// fills it can only be the start of a malformed one.
constexpr size_t kReadBuffer = 2 * nfsdfs::kMaxRequestLen;
// Requests handled in one batch at most; the rest wait for the next wake-up
// (the channel is still readable), which bounds memory under a flood.
constexpr size_t kMaxBatch = 4096;
// How long a statement on the event loop waits for a lock another
// connection holds. The daemon is the only writer it expects (another one,
// helper-ctl import-nfsdcld or a second helper, is an anomaly), and every
// upcall, the cld pipe's included (nfsd gives a tracker about a second to
// reopen it), waits behind the loop: so the wait is short, and a database
// still locked after it fails that batch (-EIO, which the kernel retries),
// logged as a storage failure naming the lock. The start (migrations, the
// first-start import) keeps the Store's longer default: nothing is served
// yet.
constexpr int kLoopBusyTimeoutMs = 250;
// The longest wait between two attempts to record a grace end nfsd made.
constexpr int kMaxGraceRetrySeconds = 30;
// How long v4_end_grace may say Y, while the pipe is open, before the
// GraceDone upcall that should follow it counts as lost.
constexpr int64_t kGraceDoneWaitSeconds = 3;

int64_t MonotonicSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

// Reads the first byte of `path` into *c: 0, or the errno of what failed
// (ENODATA for an empty file).
int ReadFirstByte(const std::string& path, char* c) {
  int fd = open(path.c_str(),
                O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return errno;
  char buf[8];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : n == 0 ? ENODATA : 0;
  close(fd);
  if (err == 0) *c = buf[0];
  return err;
}

}  // namespace

#ifndef NFSD_HELPER_VERSION
#error "NFSD_HELPER_VERSION must be defined by the build"
#endif

Daemon::Daemon(const Options& opts) : opts_(opts) {
  info_.version = NFSD_HELPER_VERSION;
  info_.pid = getpid();
  info_.started = time(nullptr);
  info_.db = opts_.db;
  info_.nfsdfs = opts_.nfsdfs;
  info_.cld_pipe = opts_.cld_pipe;
  if (const char* fp = getenv("NFSD_HELPER_TEST_CRASH")) {
    std::string v = fp;
    auto colon = v.find(':');
    std::string where = v.substr(0, colon);
    uint64_t n = colon == std::string::npos
                     ? 1
                     : strtoull(v.c_str() + colon + 1, nullptr, 10);
    if (where == "before-commit" || where == "after-commit") {
      crash_point_ = where == "before-commit" ? CrashPoint::kBeforeCommit
                                              : CrashPoint::kAfterCommit;
      crash_at_ = n;
      LOG_WARNING("test failpoint armed: SIGKILL %s of batch %llu",
                  where.c_str(), static_cast<unsigned long long>(n));
    } else {
      LOG_WARNING("NFSD_HELPER_TEST_CRASH=%s not understood; ignored", fp);
    }
  }
  if (opts_.idmap) {
    idmap_ = std::make_unique<idmap::IdmapService>(
        idmap::ServiceOptionsFrom(opts_));
  }
  // The four files, in the order a batch handles them.
  for (channels::Protocol p :
       {channels::Protocol::kAllowClient, channels::Protocol::kCreateClient,
        channels::Protocol::kExpireClient, channels::Protocol::kGraceDone}) {
    if (opts_.nfsdfs == kNone) break;
    ChannelState c;
    c.ep.protocol = p;
    c.path = opts_.nfsdfs + "/" + channels::ProtocolName(p);
    channels_.push_back(std::move(c));
  }
}

Daemon::~Daemon() {
  // Everything that waits on the loop goes before it.
  callout_.reset();
  control_.reset();
  cld_.reset();
  idmap_.reset();
  for (auto& c : channels_) c.file.reset();
  signals_.clear();
  grace_timer_.reset();
  kick_timer_.reset();
  loop_.reset();
}

Status Daemon::CheckScopeChoice() const {
  if (opts_.given.scope || opts_.configured.scope) return Status::Ok();
  // Test hook (NFSD_HELPER_TEST_PROC, see nfsd-helper(8)): where the
  // namespace links are read, since a test cannot always look at pid 1.
  const char* proc = getenv("NFSD_HELPER_TEST_PROC");
  std::string detail;
  switch (CompareWithInitialNetns(proc && *proc ? proc : "/proc", &detail)) {
    case NetnsVerdict::kInitial:
      return Status::Ok();
    case NetnsVerdict::kCannotTell:
      // A helper without CAP_SYS_PTRACE (the systemd unit's) may not look
      // at pid 1's namespace.
      LOG_INFO("cannot tell whether this is the initial network namespace "
               "(%s); serving the default scope %s",
               detail.c_str(), opts_.scope.c_str());
      return Status::Ok();
    case NetnsVerdict::kOther:
      break;
  }
  return Status::Invalid(
      "nfsd-helper runs in a network namespace other than the initial one (" +
      detail + ") and no scope was given: give this namespace's NFS server "
      "its own scope with --scope NAME (or scope = NAME in [nfsd-helper] of "
      "nfs.conf), so that two namespaces never share client records");
}

Status Daemon::OpenStore() {
  std::unique_ptr<store::Store> db;
  Status s = store::Store::Open(opts_.db, store::Store::Mode::kReadWrite, &db);
  if (s.code() != Status::Code::kCorrupt) {
    sqlite_ = db.get();
    store_ = std::move(db);
    return s;
  }

  // Fail closed: the records cannot be trusted, so nobody may reclaim. The
  // damaged file is kept for inspection, never overwritten. kCorrupt is only
  // ever a file of ours (Store::Open): what is not ours is never moved.
  // Nor is it moved while another scope's helper uses it: that helper would
  // go on writing into the file set aside.
  Status alone = db_lock_->TryExclusive();
  if (!alone.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return Status::Invalid(
        s.message() + "; " + alone.message() +
        ", so it is not set aside under it: stop every nfsd-helper of this "
        "database, then start them again (the first sets it aside; no "
        "client may reclaim meanwhile)");
  }
  std::string aside = opts_.db + ".corrupt-" + IsoTime(time(nullptr));
  LOG_ERROR("%s", s.ToString().c_str());
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from = opts_.db + suffix, to = aside + suffix;
    if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("cannot move the damaged database " + from +
                                   " aside to " + to,
                               errno);
    }
  }
  // nfsdcld's records are older than the lost ones: never import them here.
  opts_.nfsdcld_db = opts_.nfsdcltrack_db = kNone;
  Status synced = SyncDir(DirName(opts_.db));
  if (!synced.ok()) return synced;
  db_lock_->Share();
  LOG_ERROR("the damaged database was moved to %s; starting an empty one: "
            "no client can reclaim state at the next server start, and "
            "clients of the running server instance are refused until it "
            "restarts",
            aside.c_str());
  s = store::Store::Open(opts_.db, store::Store::Mode::kReadWrite, &db);
  sqlite_ = db.get();
  store_ = std::move(db);
  return s;
}

namespace {

// The etcd client's options from nfsd-helper's.
Status EtcdClientOptions(const Options& o, etcd::ClientOptions* out) {
  Status s = etcd::ClientOptionsFrom(o, out);
  // A batch waits on etcd on the event loop: keep each wait short
  // (daemon/store/ETCD.md, Status).
  out->connect_timeout_ms = 1000;
  out->request_timeout_ms = 2000;
  return s;
}

// This host's name up to its first dot: the default node name.
std::string DefaultNodeName() {
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0) return "";
  std::string name = host;
  return name.substr(0, name.find('.'));
}

}  // namespace

Status Daemon::OpenEtcd() {
  etcd::ClientOptions co;
  Status s = EtcdClientOptions(opts_, &co);
  if (!s.ok()) return s;
  etcd::StoreOptions so;
  so.cluster = opts_.cluster;
  so.node = opts_.node.empty() ? DefaultNodeName() : opts_.node;
  if (!ValidScopeName(so.node))
    return Status::Invalid("the host name '" + so.node +
                           "' is no node name (" + kScopeNameRule +
                           "): give one with --node");
  if (!opts_.etcd_lease_ttl.empty())
    ParseSeconds(opts_.etcd_lease_ttl, &so.lease_ttl);
  std::unique_ptr<etcd::Client> client, keeper_client;
  s = etcd::Client::Open(co, &client);
  if (s.ok()) s = etcd::Client::Open(co, &keeper_client);
  if (!s.ok()) return s;
  std::unique_ptr<etcd::EtcdStore> st;
  int64_t granted = etcd::LeaseKeeper::NowMs();
  s = etcd::EtcdStore::Open(std::move(client), so, &st);
  if (!s.ok())
    return Status::Io("cannot join cluster " + so.cluster + " in etcd (" +
                      opts_.etcd_endpoints + ") as node " + so.node + ": " +
                      s.message());
  // A dead owner's lease ends within its time to live (ETCD.md, Fencing);
  // one still alive after twice ours is a live node, or a misconfigured
  // one: refuse rather than wait for ever.
  const int64_t give_up = MonotonicSeconds() + 2 * so.lease_ttl + 5;
  bool told = false;
  for (;;) {
    s = st->Acquire(opts_.scope);
    if (s.ok() || s.code() != Status::Code::kPermission) break;
    if (MonotonicSeconds() >= give_up) {
      return Status::Permission(
          s.message() + "; its lease did not end within " +
          std::to_string(2 * so.lease_ttl + 5) +
          " s: stop nfsd-helper there (a clean stop hands the scope over "
          "at once), then start this one");
    }
    if (!told) {
      LOG_NOTICE("cluster: %s; waiting for its lease to end",
                 s.message().c_str());
      sd_notifyf(0, "STATUS=Waiting for scope %s: %s", opts_.scope.c_str(),
                 s.message().c_str());
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    // Our own lease must outlive the wait.
    const int64_t before = etcd::LeaseKeeper::NowMs();
    if (st->KeepAlive().ok()) granted = before;
  }
  if (!s.ok()) return s;
  LOG_NOTICE("cluster: node %s of cluster %s serves scope %s (etcd %s, lease "
             "%llx, %lld s)",
             so.node.c_str(), so.cluster.c_str(), opts_.scope.c_str(),
             opts_.etcd_endpoints.c_str(),
             static_cast<unsigned long long>(st->lease()),
             static_cast<long long>(so.lease_ttl));
  keeper_ = std::make_unique<etcd::LeaseKeeper>(std::move(keeper_client),
                                                so.lease_ttl);
  lease_granted_ms_ = granted;
  etcd_ = st.get();
  store_ = std::move(st);
  return Status::Ok();
}

void Daemon::OnClusterTimer() {
  const etcd::LeaseKeeper::State k = keeper_->Get();
  if (!etcd_->fenced() && k.lost) etcd_->Fence(k.why);
  if (!etcd_->fenced()) return;
  if (fenced_since_ == 0) {
    fenced_since_ = time(nullptr);
    LOG_ERROR("cluster: node is fenced: %s. Every upcall is answered -EIO "
              "and no client may reclaim until it rejoins",
              etcd_->fence_reason().c_str());
  }
  const int64_t now = MonotonicSeconds();
  if (now < rejoin_at_) return;
  // A new lease, the scope taken again (unless another node has it now),
  // and its row and counts read again: another node may have served it.
  const int64_t before = etcd::LeaseKeeper::NowMs();
  Status s = etcd_->Reconnect();
  if (s.ok()) keeper_->Keep(etcd_->lease(), before);
  if (s.ok()) s = etcd_->Acquire(opts_.scope);
  if (s.ok()) s = tracker_->Load();
  if (!s.ok()) {
    // Reconnect cleared the fence; this node still may not write.
    if (!etcd_->fenced()) etcd_->Fence(s.message());
    rejoin_at_ = now + rejoin_delay_;
    rejoin_delay_ = std::min(rejoin_delay_ * 2, 10);
    if (s.message() != rejoin_failure_) {
      LOG_WARNING("cluster: cannot rejoin yet: %s; trying again",
                  s.ToString().c_str());
      rejoin_failure_ = s.message();
    }
    return;
  }
  LOG_NOTICE("cluster: rejoined: node serves scope %s again (lease %llx), "
             "fenced for %lld s",
             opts_.scope.c_str(), static_cast<unsigned long long>(
                                      etcd_->lease()),
             static_cast<long long>(time(nullptr) - fenced_since_));
  fenced_since_ = 0;
  rejoin_delay_ = 1;
  rejoin_failure_.clear();
}

control::ClusterInfo Daemon::Cluster() {
  control::ClusterInfo c;
  if (!etcd_) return c;
  c.enabled = true;
  c.cluster = opts_.cluster;
  c.node = etcd_->node();
  c.endpoints = opts_.etcd_endpoints;
  c.lease = etcd_->lease();
  c.lease_ttl = etcd_->lease_ttl();
  const etcd::LeaseKeeper::State k = keeper_->Get();
  c.renewed_ms_ago = etcd::LeaseKeeper::NowMs() - k.renewed_ms;
  c.fenced = etcd_->fenced() || k.lost;
  c.fence_reason = etcd_->fenced() ? etcd_->fence_reason() : k.why;
  c.fenced_since = fenced_since_;
  return c;
}

Status Daemon::Init() {
  int64_t seconds = callout::Callout::kDefaultTimeoutSeconds;
  if (!opts_.ha_callout.empty() && opts_.ha_callout[0] != '/')
    return Status::Invalid("ha-callout '" + opts_.ha_callout +
                           "': give an absolute path");
  if (!opts_.ha_callout_timeout.empty() &&
      (!ParseSeconds(opts_.ha_callout_timeout, &seconds) || seconds > 3600))
    return Status::Invalid("ha-callout-timeout '" + opts_.ha_callout_timeout +
                           "': give a number of seconds, 1 to 3600");
  if (opts_.nfsdfs == kNone && opts_.cld_pipe == kNone && !opts_.idmap) {
    return Status::Invalid(
        "--nfsdfs none and --cld-pipe none leave nothing to serve: give the "
        "nfsd filesystem, the cld pipe, or both (or --idmap)");
  }
  Status s = CheckScopeChoice();
  if (s.ok()) s = CheckStateFiles(opts_.db, geteuid());
  // One helper per scope: locked before the database is opened, so that a
  // second helper changes nothing, not even a damaged file set aside.
  if (s.ok()) s = EnsurePrivateDir(DirName(opts_.db));
  if (s.ok())
    s = store::ScopeLock::Acquire(opts_.db, opts_.scope, geteuid(), &lock_);
  if (!opts_.etcd_endpoints.empty()) {
    // Cluster mode: the records are in etcd; the directory of --db keeps
    // this node's own files only (the scope lock, the pending steps).
    if (s.ok()) s = OpenEtcd();
  } else {
    if (s.ok())
      s = store::DatabaseLock::AcquireShared(opts_.db, geteuid(), &db_lock_);
    if (s.ok()) s = OpenStore();
    if (s.ok())
      migrate::ImportAtFirstStart(store_.get(), opts_.scope, opts_.nfsdcld_db,
                                  opts_.nfsdcltrack_db, time(nullptr));
  }
  if (s.ok()) {
    tracker_ = std::make_unique<tracker::Tracker>(store_.get(), opts_.scope);
    s = tracker_->Load();
  }
  if (s.ok())
    s = tracker_->OpenPending(store::PendingStepsPath(opts_.db, opts_.scope));
  if (s.ok() && idmap_) s = idmap_->Init();
  if (!s.ok()) return s;
  if (opts_.ha_callout.empty()) {
    int64_t left = 0;
    if (store_->CountCallouts(&left).ok() && left > 0)
      LOG_WARNING("ha-callout: %lld event(s) wait in the outbox; they run "
                  "when nfsd-helper runs with --ha-callout again",
                  static_cast<long long>(left));
  }
  if (sqlite_) sqlite_->SetBusyTimeout(kLoopBusyTimeoutMs);
  // Events go into the outbox whenever a callout is configured, even if
  // its runner cannot start: the next start runs them.
  tracker_->set_callouts(!opts_.ha_callout.empty(), [this](int64_t n) {
    // Without a running callout the events wait in the outbox for the
    // next start. Otherwise it is told after the replies of the batch (or
    // procedure) that committed them: starting its child is no reason to
    // make nfsd wait.
    if (!callout_) return;
    callouts_to_kick_ += n;
    kick_timer_->StartIfIdle(loop::Duration::zero());
  });
  runner_ = std::make_unique<batch::Runner>(tracker_.get());
  if (crash_point_ != CrashPoint::kNone) {
    runner_->set_commit_hooks(
        [this] {
          if (++batches_ == crash_at_ &&
              crash_point_ == CrashPoint::kBeforeCommit)
            raise(SIGKILL);
        },
        [this] {
          if (batches_ == crash_at_ && crash_point_ == CrashPoint::kAfterCommit)
            raise(SIGKILL);
        });
  }
  recovery::ScopeState st = tracker_->state();
  LOG_INFO("database %s, scope %s: %s%s", opts_.db.c_str(),
           opts_.scope.c_str(), tracker::DescribeInstance(st.current()).c_str(),
           st.in_grace() ? " (in grace)" : "");
  return Status::Ok();
}

void Daemon::StartChannels() {
  for (size_t i = 0; i < channels_.size(); ++i) {
    loop::ReopeningChannel::Options o;
    o.path = channels_[i].path;
    o.framing = loop::Framer::Kind::kRequest;
    o.read_buffer = kReadBuffer;
    o.missing_hint =
        " (is nfsd loaded, and does its filesystem offer the client "
        "tracking files?)";
    channels_[i].file = std::make_unique<loop::ReopeningChannel>(
        *loop_, std::move(o), [this] { OnReadable(); },
        [this, i] { OnChannelChange(channels_[i]); });
  }
  for (auto& c : channels_) c.file->Start();  // kPoll: cannot fail
  channels_started_ = true;
  MaybeReady();
}

void Daemon::OnChannelChange(ChannelState& c) {
  c.ep.fd = c.file->fd();
  if (c.ep.fd < 0) serving_logged_ = false;  // "serving" is logged again
  if (channels_started_) MaybeReady();
}

std::string Daemon::Served() const {
  if (channels_.empty()) return opts_.cld_pipe;
  if (!cld_) return opts_.nfsdfs;
  return opts_.nfsdfs + " and " + opts_.cld_pipe;
}

void Daemon::MaybeReady() {
  for (const auto& c : channels_) {
    if (c.ep.fd < 0) {
      sd_notifyf(0, "STATUS=waiting for %s", c.path.c_str());
      return;
    }
  }
  if (cld_ && !cld_->ready()) {
    sd_notifyf(0, "STATUS=waiting for %s", opts_.cld_pipe.c_str());
    return;
  }
  if (serving_logged_) return;
  LOG_NOTICE("serving %s for scope %s", Served().c_str(), opts_.scope.c_str());
  serving_logged_ = true;
  // Type=notify: ready once the database is open and every channel is
  // served (the cld pipe open, or watched so that it is opened the moment
  // nfsd creates it), so that nfs-server.service, ordered after us, finds
  // us there.
  sd_notifyf(0, "READY=1\nSTATUS=serving %s for scope %s", Served().c_str(),
             opts_.scope.c_str());
}

void Daemon::Drain(std::vector<Request>* out) {
  // The channel reads one request per read() and hands over the first
  // piece of an over-long one, flagged, discarding the rest
  // (loop::Framer::Kind::kRequest, PROTOCOL.md §1).
  loop::Message m;
  for (size_t i = 0; i < channels_.size(); ++i) {
    ChannelState& c = channels_[i];
    while (out->size() < kMaxBatch &&
           c.file->Read(&m) == loop::ReopeningChannel::ReadResult::kMessage)
      out->push_back({i, std::move(m.data), m.overlong});
  }
}

void Daemon::DrainCld(std::vector<Request>* out) {
  if (!cld_ || out->size() >= kMaxBatch) return;
  std::vector<std::string> msgs;
  cld_->Drain(&msgs, kMaxBatch - out->size());
  for (std::string& m : msgs) out->push_back({kCld, std::move(m), false});
}

void Daemon::RunBatch(std::vector<Request> reqs) {
  std::vector<batch::Upcall> upcalls;
  upcalls.reserve(reqs.size());
  for (Request& r : reqs) {
    channels::Endpoint* ep =
        r.channel == kCld ? &cld_ep_ : &channels_[r.channel].ep;
    upcalls.push_back({ep, std::move(r.line), r.overlong});
  }
  if (cld_) cld_ep_.fd = cld_->fd();
  batch::Runner::Result res =
      runner_->Run(upcalls, static_cast<int64_t>(time(nullptr)));
  if (!res.committed) errors_.Record(res.failure, time(nullptr));
  // What nfsd did that the database missed is retried on a timer, each
  // time later, until a batch records it.
  if (tracker_->pending().empty()) {
    grace_retry_delay_ = 1;
  } else if (!res.committed) {
    grace_retry_at_ = MonotonicSeconds() + grace_retry_delay_;
    grace_retry_delay_ =
        std::min(2 * grace_retry_delay_, kMaxGraceRetrySeconds);
  }
  if (!res.committed && res.failure.code() == Status::Code::kCorrupt) {
    // Every later transaction would fail the same way, and the records can
    // no longer be trusted. The replies were all -EIO; exit so that the
    // restart (Restart=on-failure) takes the fail-closed start: the
    // damaged file moved aside, an empty one, no client allowed to reclaim.
    LOG_ERROR("the database %s is damaged: %s; exiting, so that the next "
              "start moves it aside and starts an empty one (no client can "
              "reclaim then)",
              opts_.db.c_str(), res.failure.message().c_str());
    sd_notifyf(0, "STATUS=the database %s is damaged; exiting",
               opts_.db.c_str());
    exit_code_ = 1;
    loop_->Break();
  }
}

void Daemon::CheckKernelGrace(bool at_once) {
  recovery::ScopeState st = tracker_->state();
  const std::vector<recovery::PendingStep>& pending = tracker_->pending();
  // The kernel's instance: the one in grace in the database, or one whose
  // start the database missed.
  bool unrecorded = !pending.empty() && pending.back().start;
  std::optional<recovery::PendingStep> end =
      recovery::KernelGraceEnd(st, pending);
  if (!end || opts_.nfsdfs == kNone) {
    kernel_grace_ended_since_ = 0;
    return;
  }
  const std::string path = opts_.nfsdfs + "/v4_end_grace";
  char c = 0;
  int err = ReadFirstByte(path, &c);
  if (err != 0) {
    if (err != grace_read_errno_) {
      LOG_WARNING("cannot read %s: %s; a GraceDone upcall that never "
                  "reaches nfsd-helper cannot be noticed (one that fails "
                  "is still recorded later)",
                  path.c_str(), strerror(err));
    }
    grace_read_errno_ = err;
    return;
  }
  grace_read_errno_ = 0;
  if (c != 'Y') {
    kernel_grace_ended_since_ = 0;
    return;
  }
  // nfsd says Y just before it sends GraceDone: give the upcall time to
  // arrive unless it cannot come any more.
  int64_t mono = MonotonicSeconds();
  if (!at_once) {
    if (kernel_grace_ended_since_ == 0) kernel_grace_ended_since_ = mono;
    if (mono - kernel_grace_ended_since_ < kGraceDoneWaitSeconds) return;
  }
  kernel_grace_ended_since_ = 0;
  LOG_WARNING("scope %s: %s says nfsd has ended its grace period, but the "
              "database still has %s in grace (a GraceDone upcall that "
              "failed or never reached nfsd-helper); recording the end now",
              opts_.scope.c_str(), path.c_str(),
              unrecorded ? "the instance whose start it missed"
                         : tracker::DescribeInstance(st.new_boot_time).c_str());
  tracker_->AddPending(*end);
  grace_retry_at_ = 0;
}

void Daemon::SettleGrace() {
  if (tracker_->pending().empty() || MonotonicSeconds() < grace_retry_at_)
    return;
  RunBatch({});
}

void Daemon::OnGraceTimer(int, short, void* arg) {
  auto* d = static_cast<Daemon*>(arg);
  d->CheckKernelGrace(false);
  d->SettleGrace();
}

std::vector<control::ChannelInfo> Daemon::Channels() {
  std::vector<control::ChannelInfo> out;
  for (const ChannelState& c : channels_) {
    control::ChannelInfo info;
    info.name = channels::ProtocolName(c.ep.protocol);
    info.open = c.ep.fd >= 0;
    info.counters = c.ep.counters;
    out.push_back(std::move(info));
  }
  if (cld_) {
    control::ChannelInfo info;
    info.name = "cld";
    info.open = cld_->is_open();
    info.counters = cld_ep_.counters;
    out.push_back(std::move(info));
  }
  return out;
}

int64_t Daemon::CalloutsPending() {
  return callout_ ? callout_->pending() : -1;
}

ProtocolState Daemon::NfsdfsState() {
  if (opts_.nfsdfs == kNone) return ProtocolState::kNotConfigured;
  // Run() dropped the four files: the kernel has no allow_client.
  if (channels_.empty()) return ProtocolState::kNotOffered;
  for (const ChannelState& c : channels_)
    if (c.ep.fd < 0) return ProtocolState::kWaiting;
  return ProtocolState::kOpen;
}

ProtocolState Daemon::CldState() {
  if (!cld_) return ProtocolState::kNotConfigured;
  return cld_->is_open() ? ProtocolState::kOpen : ProtocolState::kWaiting;
}

bool Daemon::Serving() {
  for (const ChannelState& c : channels_)
    if (c.ep.fd < 0) return false;
  return !cld_ || cld_->is_open();
}

void Daemon::OnReadable() {
  if (exit_code_ != 0) return;  // the loop is ending: read nothing more
  std::vector<Request> reqs;
  Drain(&reqs);
  DrainCld(&reqs);
  if (!reqs.empty()) RunBatch(std::move(reqs));
}

void Daemon::OnSignal(int sig) {
  if (sig == SIGHUP) {
    LOG_NOTICE("SIGHUP received: there is nothing to reload; carrying on");
    return;
  }
  LOG_NOTICE("%s received; exiting", strsignal(sig));
  loop_->Break();
}

int Daemon::Run() {
  // Test hook (nfsd-helper(8), ENVIRONMENT): a slow start, to show that
  // nobody is told the daemon started before it serves.
  if (const char* d = getenv("NFSD_HELPER_TEST_START_DELAY_MS")) {
    const long ms = strtol(d, nullptr, 10);
    if (ms > 0 && ms <= 60000) {
      LOG_WARNING("test hook: start delayed by %ld ms", ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
  loop_ = std::make_unique<loop::Loop>();
  kick_timer_ = std::make_unique<loop::Timer>(*loop_, [this] {
    int64_t n = callouts_to_kick_;
    callouts_to_kick_ = 0;
    if (callout_ && n > 0) callout_->Kick(n);
  });
  signal(SIGPIPE, SIG_IGN);
  // SIGHUP would kill us by default; an administrator's habitual
  // "kill -HUP" must not stop client tracking.
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    signals_.push_back(std::make_unique<loop::SignalWatch>(
        *loop_, sig, [this, sig] { OnSignal(sig); }));
  }
  if (!opts_.ha_callout.empty()) {
    int64_t seconds = callout::Callout::kDefaultTimeoutSeconds;
    if (!opts_.ha_callout_timeout.empty())
      ParseSeconds(opts_.ha_callout_timeout, &seconds);
    callout_ = std::make_unique<callout::Callout>(
        *loop_, store_.get(), opts_.ha_callout, static_cast<int>(seconds));
    Status hs = callout_->Start();
    if (!hs.ok()) {
      LOG_ERROR("%s", hs.ToString().c_str());
      callout_.reset();
    } else {
      LOG_INFO("ha-callout: %s after each durable change (timeout %lld s, "
               "retried until it succeeds)",
               opts_.ha_callout.c_str(), static_cast<long long>(seconds));
    }
  }
  info_.pid = getpid();  // the daemon may have forked since it was made
  control_ = std::make_unique<control::Server>(*loop_, this, ctl_socket_);
  Status cs = control_->Start();
  if (!cs.ok()) {
    LOG_ERROR("control: helper-ctl cannot reach this nfsd-helper: %s",
              cs.ToString().c_str());
    control_.reset();
  }
  // A stock kernel has no four-file client tracking: its nfsd filesystem
  // has no allow_client. Then the cld pipe is the only protocol.
  if (!channels_.empty() && opts_.cld_pipe != kNone &&
      access((opts_.nfsdfs + "/allow_client").c_str(), F_OK) != 0) {
    LOG_NOTICE("%s/allow_client does not exist: the kernel has no four-file "
               "client tracking; serving the cld pipe %s only",
               opts_.nfsdfs.c_str(), opts_.cld_pipe.c_str());
    channels_.clear();
  }
  if (opts_.cld_pipe != kNone) {
    // Upcalls on the pipe join the same batches as the four files'.
    cld_ = std::make_unique<CldPipe>(
        *loop_, opts_.cld_pipe, [this] { OnReadable(); },
        [this] {
          // nfsd stopping removes the pipe (failing a GraceDone in
          // flight) before a new instance can reset what v4_end_grace
          // says: a last look at the old one.
          if (TracksKernelGrace() && !cld_->is_open()) {
            CheckKernelGrace(true);
            SettleGrace();
          }
          MaybeReady();
        });
    tracker_->set_note_unrecorded(TracksKernelGrace());
    if (TracksKernelGrace()) {
      if (opts_.nfsdfs == kNone) {
        LOG_WARNING("--nfsdfs none: nfsd-helper cannot read v4_end_grace, "
                    "so a GraceDone upcall that never reaches it cannot be "
                    "noticed (one that fails is still recorded later)");
      }
      // Before the pipe opens: a grace end missed while no helper ran is
      // recorded before the next GraceStart is read.
      CheckKernelGrace(true);
      SettleGrace();
      grace_timer_ = std::make_unique<loop::PeriodicTimer>(
          *loop_, std::chrono::seconds(1),
          [this] { OnGraceTimer(-1, 0, this); });
    }
    Status ps = cld_->Start();
    if (!ps.ok()) {
      LOG_ERROR("cannot serve the cld pipe %s: %s", opts_.cld_pipe.c_str(),
                ps.ToString().c_str());
      return 1;
    }
  }
  StartChannels();
  if (idmap_) idmap_->Start(*loop_);
  // Every file is open (a channel re-opened later is root's own, which
  // needs no capability): give up all of them (daemon/util/privileges.h).
  // The process has one thread until here: capng_apply() changes only the
  // calling thread's sets, so every thread must be started after the drop
  // to inherit the empty ones.
  std::string dropped;
  Status ps = DropAllCapabilities(&dropped);
  if (!ps.ok()) LOG_ERROR("%s", ps.ToString().c_str());
  if (!dropped.empty()) LOG_DEBUG("capabilities dropped: %s", dropped.c_str());
  if (idmap_) idmap_->StartWorkers();
  if (etcd_) {
    keeper_->Keep(etcd_->lease(), lease_granted_ms_);
    cluster_timer_ = std::make_unique<loop::PeriodicTimer>(
        *loop_, std::chrono::seconds(1), [this] { OnClusterTimer(); });
  }
  if (on_serving_) on_serving_();
  loop_->Run();
  sd_notify(0, "STOPPING=1");
  if (etcd_) {
    // A clean stop hands the scope over at once: the next node need not
    // wait for this one's lease to end.
    keeper_->Stop();
    Status rs = etcd_->fenced() ? Status::Ok() : etcd_->Release(opts_.scope);
    if (rs.ok() && !etcd_->fenced())
      LOG_NOTICE("cluster: scope %s released", opts_.scope.c_str());
    else if (!rs.ok())
      LOG_WARNING("cluster: cannot release scope %s (another node can take "
                  "it once this node's lease ends): %s",
                  opts_.scope.c_str(), rs.ToString().c_str());
  }
  control_.reset();  // removes the socket: helper-ctl sees us gone
  if (idmap_) idmap_->LogSummary();
  for (const control::ChannelInfo& c : Channels()) {
    LOG_INFO("%s: %llu request(s), %llu ok, %llu malformed, %llu stale, "
             "%llu failed",
             c.name.c_str(),
             static_cast<unsigned long long>(c.counters.requests),
             static_cast<unsigned long long>(c.counters.ok),
             static_cast<unsigned long long>(c.counters.malformed),
             static_cast<unsigned long long>(c.counters.stale),
             static_cast<unsigned long long>(c.counters.failed));
  }
  return exit_code_;
}

}  // namespace nfsdh
