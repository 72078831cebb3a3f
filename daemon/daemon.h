// Daemon: the event loop that serves the upcall channels of one nfsd
// filesystem for one scope.
//
// Loop affinity: everything runs on the thread of the event loop
// (daemon/loop/loop.h). Each upcall file is a loop::ReopeningChannel
// (daemon/loop/reopening_channel.h), kept open across whatever the kernel
// does to it. Each wake-up drains every channel and handles what it read as
// one batch (daemon/batch/runner.h: one
// transaction, one fsync); SIGTERM and SIGINT stop the loop
// only between batches, so a batch in flight is always finished and
// answered. The control socket (daemon/control/server.h) is served from the
// same loop, between batches; the Daemon is the control procedures' Host.
#ifndef DAEMON_DAEMON_H_
#define DAEMON_DAEMON_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/defaults.h"
#include "daemon/batch/runner.h"
#include "daemon/channels/cld_pipe.h"
#include "daemon/control/host.h"
#include "daemon/idmap/idmap_service.h"
#include "daemon/loop/loop.h"
#include "daemon/loop/reopening_channel.h"
#include "daemon/options.h"
#include "daemon/recovery/engine.h"
#include "daemon/store/scope_lock.h"
#include "daemon/store/store.h"
#include "daemon/tracker/tracker.h"

namespace nfsdh::etcd {
class EtcdStore;
class LeaseKeeper;
}  // namespace nfsdh::etcd


namespace nfsdh {

namespace control {
class Server;
}
namespace callout {
class Callout;
}

class Daemon : public control::Host {
 public:
  explicit Daemon(const Options& opts);
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Where helper-ctl finds this daemon (default kDefaultCtlSocket).
  // If the socket cannot be served (another daemon answers on it, say), the
  // daemon logs why and serves the upcalls without it.
  // REQUIRES: called before Run().
  void set_ctl_socket(std::string path) { ctl_socket_ = std::move(path); }
  // Called once by Run(), when everything is set up (the control socket
  // listens, the channels are watched) and just before the first event is
  // served; not called if Run() fails before that. A detached daemon's
  // parent waits for it (daemon/main.cc), so that whoever started the
  // daemon can use helper-ctl the moment the parent exits.
  // REQUIRES: called before Run().
  void set_on_serving(std::function<void()> fn) { on_serving_ = std::move(fn); }

  // Locks the scope (daemon/store/scope_lock.h), opens the database
  // (setting a damaged one of ours aside) and loads the scope.
  Status Init();
  // Serves until SIGTERM/SIGINT (exit code 0), or until a transaction
  // finds the database damaged (exit code 1: the start that follows sets
  // it aside). Returns the process exit code.
  int Run();

  // control::Host
  const control::DaemonInfo& Info() override { return info_; }
  store::Backend& Database() override { return *store_; }
  tracker::Tracker& Records() override { return *tracker_; }
  const store::ScopeRow& ServedScope() override { return tracker_->row(); }
  const ScopeStats& Stats() override { return tracker_->stats(); }
  control::StorageErrors& Errors() override { return errors_; }
  std::vector<control::ChannelInfo> Channels() override;
  bool Serving() override;
  ProtocolState NfsdfsState() override;
  ProtocolState CldState() override;
  const BatchStats& Batches() override { return runner_->stats(); }
  int64_t CalloutsPending() override;
  idmap::IdmapStats Idmap() override {
    return idmap_ ? idmap_->Stats() : idmap::IdmapStats();
  }
  control::ClusterInfo Cluster() override;

 private:
  struct ChannelState {
    // Its protocol, counters and fd: file->fd(), -1 while closed, kept
    // equal to it by OnChannelChange.
    channels::Endpoint ep;
    std::string path;
    // Made by Run(): the file, kept open; it reads one request per read()
    // and discards the rest of an over-long one (PROTOCOL.md §1).
    std::unique_ptr<loop::ReopeningChannel> file;
  };
  struct Request {
    size_t channel;  // into channels_, or kCld
    std::string line;
    // The first piece of a request longer than the read buffer: refused by
    // its sequence number, never parsed.
    bool overlong;
  };
  static constexpr size_t kCld = static_cast<size_t>(-1);

  // Refuses the default scope, unless chosen explicitly, outside the
  // initial network namespace (daemon/util/netns.h).
  Status CheckScopeChoice() const;
  Status OpenStore();
  // Cluster mode (--etcd-endpoints): connects to etcd, registers this node
  // and takes the scope, waiting for a dead owner's lease to end.
  Status OpenEtcd();
  // Every second in cluster mode: fences this node when its lease is lost,
  // and rejoins (a new lease, the scope taken again, its row read again)
  // once it can.
  void OnClusterTimer();
  // Makes the four files' channels and opens those that are there (the
  // others are looked for every second).
  void StartChannels();
  // A channel was opened or closed.
  void OnChannelChange(ChannelState& c);
  // Sends READY=1 once the database is open and every protocol served is
  // ready (the four files open; the cld pipe open or watched), and the
  // STATUS= of what is awaited before that.
  void MaybeReady();
  std::string Served() const;  // what is served, for logs and STATUS=
  // Reads everything pending on every open channel into `out`, one request
  // per read() (PROTOCOL.md §1).
  void Drain(std::vector<Request>* out);
  // The same for the cld pipe.
  void DrainCld(std::vector<Request>* out);
  void RunBatch(std::vector<Request> reqs);

  // The grace period on the stock kernel's cld pipe. nfsd ends its grace
  // period whatever the GraceDone upcall gets back (a storage failure, a
  // helper that was down or stalled past the upcall timeout), and a scope
  // left "in grace" would let a client that did not reclaim in it reclaim
  // after the next restart (RFC 7530 §9.6.3.4, second edge condition). So
  // the daemon also asks the kernel: <nfsdfs>/v4_end_grace reads Y once the
  // running (or last) nfsd instance has ended its grace period (nfsd says Y
  // just before it sends GraceDone, and a restart of nfsd resets it only
  // after it removed the old pipe). It reads it at its start, when the pipe
  // closes, and every second while the scope is in grace. When the kernel
  // says so (at the start or the close; otherwise for kGraceDoneWaitSeconds
  // with no GraceDone), the end becomes one of the tracker's pending steps
  // (tracker.h), as does a GraceDone batch that did not commit; every later
  // batch records them first and, until one commits, a retry timer runs a
  // batch of its own.
  bool TracksKernelGrace() const { return cld_ && channels_.empty(); }
  // Reads v4_end_grace if the scope is in grace and makes the end pending
  // when the kernel has ended it (`at_once`: no GraceDone can follow).
  void CheckKernelGrace(bool at_once);
  // Records the pending steps in a batch of their own, if any are pending.
  void SettleGrace();
  static void OnGraceTimer(int fd, short what, void* arg);

  // Some channel is readable: drains them all into one batch.
  void OnReadable();
  void OnSignal(int sig);

  Options opts_;
  std::string ctl_socket_ = kDefaultCtlSocket;
  std::function<void()> on_serving_;
  control::DaemonInfo info_;
  // Held from Init() to the end: no other helper serves this scope.
  std::unique_ptr<store::ScopeLock> lock_;
  // Shared with every other helper of the database (store/scope_lock.h).
  std::unique_ptr<store::DatabaseLock> db_lock_;
  // The records: the SQLite database, or etcd in cluster mode (then
  // sqlite_ is null and etcd_ is store_).
  std::unique_ptr<store::Backend> store_;
  store::Store* sqlite_ = nullptr;
  etcd::EtcdStore* etcd_ = nullptr;
  // Cluster mode: the lease's own thread, started by Run() after the
  // capabilities are dropped, and the timer of OnClusterTimer.
  std::unique_ptr<etcd::LeaseKeeper> keeper_;
  std::unique_ptr<loop::PeriodicTimer> cluster_timer_;
  int64_t lease_granted_ms_ = 0;  // monotonic: when Init's lease was renewed
  int64_t fenced_since_ = 0;      // wall clock; 0: not fenced
  int64_t rejoin_at_ = 0;         // monotonic seconds
  int rejoin_delay_ = 1;          // doubles to 10 s while failing
  std::string rejoin_failure_;    // the last one logged
  // The served scope (its row and counts as of the last commit) and the
  // one way to change records; the runner handles each wake-up's batch.
  std::unique_ptr<tracker::Tracker> tracker_;
  std::unique_ptr<batch::Runner> runner_;
  channels::Endpoint cld_ep_{channels::Protocol::kCld};
  // Made by Run() (after a fork to the background); every event object
  // below is destroyed before it (~Daemon).
  std::unique_ptr<loop::Loop> loop_;
  std::vector<ChannelState> channels_;  // empty: no four-file protocol
  bool channels_started_ = false;       // StartChannels() is done
  std::unique_ptr<CldPipe> cld_;        // null: no cld protocol
  std::vector<std::unique_ptr<loop::SignalWatch>> signals_;
  bool serving_logged_ = false;
  // Every second, while tracking the kernel's grace period.
  std::unique_ptr<loop::PeriodicTimer> grace_timer_;
  int grace_read_errno_ = 0;             // v4_end_grace unreadable: logged
  int64_t kernel_grace_ended_since_ = 0;  // monotonic s; 0: not seen
  int64_t grace_retry_at_ = 0;           // monotonic seconds
  int grace_retry_delay_ = 1;            // doubles to 30 s while failing
  // Non-zero once the loop must end with this exit code (damage found).
  int exit_code_ = 0;
  // Test failpoint (NFSD_HELPER_TEST_CRASH, see nfsd-helper(8)): die by
  // SIGKILL just before or just after the COMMIT of batch number crash_at_.
  enum class CrashPoint { kNone, kBeforeCommit, kAfterCommit };
  CrashPoint crash_point_ = CrashPoint::kNone;
  uint64_t crash_at_ = 0;
  uint64_t batches_ = 0;
  // Events the HA callout has yet to be told of, and the timer that tells
  // it after the replies of the batch that committed them.
  int64_t callouts_to_kick_ = 0;
  std::unique_ptr<loop::Timer> kick_timer_;
  control::StorageErrors errors_;
  // The HA callout (--ha-callout): runs the outbox, kicked after each
  // committed batch that queued events.
  std::unique_ptr<callout::Callout> callout_;
  // The ID-mapping channels, with --idmap; freed before the loop.
  std::unique_ptr<idmap::IdmapService> idmap_;
  // Declared last: destroyed first, while the loop and the store still exist.
  std::unique_ptr<control::Server> control_;
};

}  // namespace nfsdh

#endif  // DAEMON_DAEMON_H_
