// Daemon: the event loop that serves the upcall channels of one nfsd
// filesystem for one scope.
//
// Loop affinity: everything runs on the thread of the event loop
// (daemon/loop/loop.h). Each upcall file is a loop::ReopeningChannel
// (daemon/loop/reopening_channel.h), kept open across whatever the kernel
// does to it. Each wake-up drains every channel and handles what it read as
// one Batch (one transaction, one fsync); SIGTERM and SIGINT stop the loop
// only between batches, so a batch in flight is always finished and
// answered. The control socket (daemon/control/server.h) is served from the
// same loop, between batches; the Daemon is the control procedures' Host.
#ifndef DAEMON_DAEMON_H_
#define DAEMON_DAEMON_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/channels/channel.h"
#include "daemon/channels/cld_pipe.h"
#include "daemon/control/defaults.h"
#include "daemon/control/host.h"
#include "daemon/idmap/idmap_service.h"
#include "daemon/loop/loop.h"
#include "daemon/loop/reopening_channel.h"
#include "daemon/options.h"
#include "daemon/recovery/engine.h"
#include "daemon/store/scope_lock.h"
#include "daemon/store/store.h"

struct event_base;

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

  // Where helper-ctl finds this daemon (default control::kDefaultSocket).
  // If the socket cannot be served (another daemon answers on it, say), the
  // daemon logs why and serves the upcalls without it.
  // REQUIRES: called before Run().
  void set_ctl_socket(std::string path) { ctl_socket_ = std::move(path); }

  // Locks the scope (daemon/store/scope_lock.h), opens the database
  // (setting a damaged one of ours aside) and loads the scope.
  Status Init();
  // Serves until SIGTERM/SIGINT (exit code 0), or until a transaction
  // finds the database damaged (exit code 1: the start that follows sets
  // it aside). Returns the process exit code.
  int Run();

  // control::Host
  const control::DaemonInfo& Info() override { return info_; }
  store::Store& Database() override { return *store_; }
  const store::ScopeRow& ServedScope() override { return row_; }
  ScopeStats& Stats() override { return stats_; }
  control::StorageErrors& Errors() override { return errors_; }
  std::vector<control::ChannelInfo> Channels() override;
  bool Serving() override;
  ProtocolState NfsdfsState() override;
  ProtocolState CldState() override;
  const BatchStats& Batches() override { return batch_stats_; }
  bool QueuesCallouts() override { return !opts_.ha_callout.empty(); }
  void CalloutsQueued(int64_t n) override;
  int64_t CalloutsPending() override;
  idmap::IdmapStats Idmap() override {
    return idmap_ ? idmap_->Stats() : idmap::IdmapStats();
  }

 private:
  struct ChannelState {
    const ChannelEntry* entry = nullptr;
    std::string path;
    // Made by Run(): the file, kept open; it reads one request per read()
    // and discards the rest of an over-long one (PROTOCOL.md §1).
    std::unique_ptr<loop::ReopeningChannel> file;
    // file->fd() (-1 while closed), where the handlers write their replies;
    // kept equal to it by OnChannelChange.
    int fd = -1;
    ChannelCounters counters;
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
  Status LoadScope();
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
  void RunBatch(const std::vector<Request>& reqs);

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
  // with no GraceDone), or a GraceDone batch did not commit, the end is
  // pending and is recorded first in every later batch and, until that
  // commits, by a retry timer; a batch that cannot record it fails whole
  // (-EIO), so no GraceStart is answered from a scope still wrongly in
  // grace.
  bool TracksKernelGrace() const { return cld_ && channels_.empty(); }
  // Reads v4_end_grace if the scope is in grace and makes the end pending
  // when the kernel has ended it (`at_once`: no GraceDone can follow).
  void CheckKernelGrace(bool at_once);
  // Records a pending grace end in a batch of its own, if one is pending.
  void SettleGrace();
  // What nfsd did that the database could not record, in order: a start
  // (a cld GraceStart whose answer was not 0: nfsd runs an instance without
  // an allow list), or the end of a grace period (of `instance`, or of the
  // instance of the start before it). Every batch first applies them
  // (Settle); they are kept in a file beside the database
  // (<db>.grace-end.<scope>, daemon/store/FORMAT.md), since the database
  // may be what fails and a helper killed meanwhile must not forget them.
  using PendingOp = recovery::PendingStep;  // daemon/store/pending_steps.h
  std::string GraceMarkerPath() const;
  bool GraceEndPending() const;
  void AddPending(const PendingOp& op);
  void SavePending();
  // After a batch: what nfsd did that it could not record.
  void NoteUnrecorded(const Batch& batch, bool committed);
  // Applies pending_ to the batch; false after a storage failure.
  bool Settle(Batch& batch);
  // At the start: pending_ from the file; one that does not parse stops
  // the helper (fail closed).
  Status LoadGraceMarker();
  static void OnGraceTimer(int fd, short what, void* arg);

  // Some channel is readable: drains them all into one batch.
  void OnReadable();
  void OnSignal(int sig);

  Options opts_;
  std::string ctl_socket_ = control::kDefaultSocket;
  control::DaemonInfo info_;
  // Held from Init() to the end: no other helper serves this scope.
  std::unique_ptr<store::ScopeLock> lock_;
  // Shared with every other helper of the database (store/scope_lock.h).
  std::unique_ptr<store::DatabaseLock> db_lock_;
  std::unique_ptr<store::Store> store_;
  store::ScopeRow row_;
  ScopeStats stats_;  // of row_, as of the last commit
  // Made by Run() (after a fork to the background); every event object
  // below is destroyed before it (~Daemon).
  std::unique_ptr<loop::Loop> loop_;
  // loop_->base(), for the loop break in RunBatch.
  struct event_base* base_ = nullptr;
  std::vector<ChannelState> channels_;  // empty: no four-file protocol
  bool channels_started_ = false;       // StartChannels() is done
  std::unique_ptr<CldPipe> cld_;        // null: no cld protocol
  std::vector<std::unique_ptr<loop::SignalWatch>> signals_;
  bool serving_logged_ = false;
  std::vector<PendingOp> pending_;  // see PendingOp
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
  BatchStats batch_stats_;
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
