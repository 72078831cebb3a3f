// SimKernel: a simulated nfsd for black-box tests of nfsd-helper.
//
// It plays the kernel's side of the four upcall files of
// nfsdfs-proto/PROTOCOL.md (allow_client, create_client, expire_client,
// grace_done) through a real FUSE file system, so that the real daemon, run as
// a separate process with `--nfsdfs DIR`, sees files that behave like the ones
// in /proc/fs/nfsd: one request per read(), read() never blocks, POLLIN when a
// request is pending, one downcall per write(), EINVAL for anything that does
// not match an outstanding request, requests put back when the helper dies
// (PROTOCOL.md §6) and withdrawn after a timeout (§7). Where PROTOCOL.md is
// silent, the choices are: a reply may come on any open file of the same
// name, not only the one that read the request (as with a sunrpc cache
// channel); the rest of a partly read request is still delivered to its
// reader after the request was answered or withdrawn; an empty write fails
// with EINVAL.
//
// On top of the files it offers a driver API that plays nfsd itself
// (StartInstance, EstablishState, Reclaim, Expire, EndGrace, Stop) and raw
// access (Submit/Await) for malformed-input and concurrency tests. Every
// method is thread-safe; the driver calls block the calling thread only, like
// an nfsd thread waiting for its upcall.
#ifndef TESTS_SIM_SIM_KERNEL_H_
#define TESTS_SIM_SIM_KERNEL_H_

#include <sys/types.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nfsdfs-proto/message.h"
#include "tests/sim/fuse_loop.h"

namespace nfsdsim {

using nfsdfs::Channel;
using nfsdfs::Minor;

inline constexpr std::array<Channel, 4> kAllChannels = {
    Channel::kAllowClient, Channel::kCreateClient, Channel::kExpireClient,
    Channel::kGraceDone};

// The status the driver calls report when no reply came before the request
// was withdrawn, so that `status == 0` can never pass by accident.
inline constexpr int kTimedOutStatus = -110;  // -ETIMEDOUT

struct SimOptions {
  // How long a request waits for its reply (queued or read) before the
  // kernel withdraws it (PROTOCOL.md §7: 30 s in nfsd).
  std::chrono::milliseconds request_timeout{30000};
  // If set, called with one human-readable line per kernel event (request
  // queued/read/answered/withdrawn, rejected write, open/release), in order,
  // on a logger thread of the SimKernel (so slightly after the event).
  std::function<void(const std::string&)> log;
};

// Counters of one file. Everything counts events since the SimKernel was
// constructed, except the last three, which are current values.
struct ChannelStats {
  uint64_t queued = 0;     // requests submitted by the kernel
  uint64_t read = 0;       // deliveries: first read() of a request's line
  uint64_t answered = 0;   // requests completed by a reply
  uint64_t requeued = 0;   // put back because the reading file was released
  uint64_t withdrawn = 0;  // given up: timeout, Stop() or Unmount()
  uint64_t accepted_writes = 0;
  uint64_t rejected_writes = 0;  // writes that failed with EINVAL
  uint64_t opens = 0;            // successful open() calls
  size_t pending = 0;            // queued and not yet read
  size_t outstanding = 0;        // read and not yet answered
  size_t open_handles = 0;       // open files (FUSE file handles)
};

// A request queued with Submit(). `seq` is the line's sequence number if it
// has a readable one; a request without one can never be answered and is
// withdrawn after the timeout, as in the kernel.
struct Ticket {
  uint64_t id = 0;  // 0: Submit() refused the line
  Channel channel = Channel::kAllowClient;
  std::optional<uint64_t> seq;
  std::string error;  // why Submit() refused it
  bool ok() const { return id != 0; }
};

struct AwaitResult {
  bool answered = false;   // the complete reply arrived
  bool withdrawn = false;  // the kernel gave up on the request
  // No complete reply: withdrawn, or Await()'s own timeout expired while the
  // request is still outstanding (then withdrawn is false).
  bool timed_out = false;
  // The accepted reply lines for this request, in arrival order, each with
  // its '\n'.
  std::vector<std::string> lines;
  int status = 0;  // status of the reply (the `done` line for allow_client)
  int64_t instance = 0;                          // allow_client `done`
  std::vector<nfsdfs::AllowClientLine> clients;  // allow_client `client`s
};

struct StartResult {
  bool timed_out = false;  // no `done` before the request was withdrawn
  int status = kTimedOutStatus;
  int64_t instance = 0;
  // The allow set: client id -> principal hash ("" matches any principal).
  // Empty unless status is 0.
  std::map<std::string, std::string> allow;
  uint64_t seq = 0;
  bool ok() const { return !timed_out && status == 0; }
};

struct StatusResult {
  bool timed_out = false;  // no reply before the request was withdrawn
  int status = kTimedOutStatus;
  uint64_t seq = 0;
  bool ok() const { return !timed_out && status == 0; }
};

// The kernel's decision on a reclaim (an OPEN with CLAIM_PREVIOUS).
enum class ReclaimResult {
  kAllowed,
  kNoGrace,     // NFS4ERR_NO_GRACE: not in grace
  kReclaimBad,  // NFS4ERR_RECLAIM_BAD: in grace, but not in the allow set or
                // in it with a different principal hash
};
const char* ReclaimResultName(ReclaimResult r);

// One line that crossed a file, for debugging and assertions.
struct TranscriptEntry {
  Channel channel = Channel::kAllowClient;
  bool from_kernel = false;  // request delivered by read() (else a write)
  bool accepted = true;      // for writes: false if it failed with EINVAL
  std::string text;          // the line(s), or the whole rejected write
  std::string note;          // rejection reason, "requeued", ...
};

class SimKernel {
 public:
  explicit SimKernel(SimOptions options = {});
  ~SimKernel();  // Unmount()s if mounted.
  SimKernel(const SimKernel&) = delete;
  SimKernel& operator=(const SimKernel&) = delete;

  // ---- The file system ----------------------------------------------------

  // Mounts the four files on `dir` (an existing empty directory) and serves
  // them on a thread of this object until Unmount(). Returns false with a
  // message in *error on failure.
  bool Mount(const std::string& dir, std::string* error = nullptr);
  // Stops serving, aborts the FUSE connection (open files then fail with
  // ENOTCONN), detaches the mount and withdraws every unanswered request.
  // Safe to call when not mounted and more than once.
  void Unmount();
  bool mounted() const;
  std::string mount_dir() const;
  std::string Path(Channel c) const;  // mount_dir() + "/" + file name

  // ---- The driver: plays nfsd ---------------------------------------------
  // Each call queues one request and blocks until its reply or until it is
  // withdrawn (request_timeout, Stop(), Unmount()).

  // nfsd starts its NFSv4 state: implicitly Stop()s a running instance,
  // enters grace and sends `start 1 <t>`. On status 0 the kernel keeps the
  // instance and the allow set; otherwise nobody may reclaim (§7) but grace
  // still runs.
  StartResult StartInstance(int64_t kernel_boot_time);
  // create_client with the current instance (0 if there is none, which the
  // helper must reject as malformed). On status 0 the client is recorded.
  // v4.0: the first OPEN_CONFIRM; v4.1: RECLAIM_COMPLETE.
  StatusResult EstablishState(std::string_view client_id,
                              std::string_view princhash, Minor minor);
  // RECLAIM_COMPLETE of an NFSv4.1 client: EstablishState(..., kV41).
  StatusResult ReclaimComplete(std::string_view client_id,
                               std::string_view princhash);
  // Purely in-kernel, no upcall: allowed only in grace, for a client in the
  // allow set whose principal hash matches (an empty hash in the set matches
  // any principal).
  ReclaimResult Reclaim(std::string_view client_id,
                        std::string_view princhash) const;
  // expire_client with the current instance; on status 0 the client is no
  // longer recorded.
  StatusResult Expire(std::string_view client_id);
  // grace_done with the current instance; leaves grace on status 0.
  StatusResult EndGrace();
  // nfsd stops: forgets the instance, the allow set, the recorded clients and
  // grace, and withdraws every unanswered request (their waiters return
  // timed_out).
  void Stop();

  // ---- Raw access -----------------------------------------------------------

  // Queues `line` on channel `c` exactly as given (it may be malformed; it
  // should end in '\n' to look like a request). A readable leading seq is
  // what replies are matched by; Submit refuses a line whose seq is already
  // outstanding on `c`, since the kernel never does that. Later automatic
  // seqs continue above the largest seq submitted.
  Ticket Submit(Channel c, std::string line);
  // Queues the line make_line(seq) built with the next free seq of `c`.
  // make_line runs on the calling thread without any lock held.
  Ticket SubmitWithSeq(Channel c,
                       const std::function<std::string(uint64_t)>& make_line);
  // Waits for the reply to `t`, at most `timeout` if given (otherwise until
  // the request is answered or withdrawn). Can be called again, and for
  // requests that completed long ago.
  AwaitResult Await(
      const Ticket& t,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // The seq the next SubmitWithSeq/driver call on `c` will use.
  uint64_t PeekNextSeq(Channel c) const;

  // ---- Observability --------------------------------------------------------

  size_t OpenHandles(Channel c) const;
  // Distinct pids of the processes that opened the currently open files.
  std::set<pid_t> OpenPids(Channel c) const;
  // True as soon as each of the four files is open at least once.
  bool WaitForOpen(std::chrono::milliseconds timeout);
  // True as soon as none of the four files is open (e.g. after the helper was
  // killed: its files are released asynchronously by the kernel).
  bool WaitForAllClosed(std::chrono::milliseconds timeout);
  // Waits until pred(Stats(c)) holds. pred is evaluated under the
  // simulator's lock: it must not call the SimKernel.
  bool WaitForStats(Channel c,
                    const std::function<bool(const ChannelStats&)>& pred,
                    std::chrono::milliseconds timeout);
  ChannelStats Stats(Channel c) const;
  ChannelStats TotalStats() const;  // sums over the four files
  int64_t CurrentInstance() const;  // 0: none
  bool InGrace() const;
  std::map<std::string, std::string> AllowSet() const;
  // Clients with a status-0 create_client in the current instance and no
  // status-0 expire_client since.
  std::map<std::string, Minor> RecordedClients() const;
  // Why the last write on `c` was rejected ("" if none was).
  std::string LastRejection(Channel c) const;
  std::vector<TranscriptEntry> Transcript() const;

  void SetRequestTimeout(std::chrono::milliseconds timeout);  // new requests

 private:
  struct Request;
  struct Handle;
  struct ChannelState;
  friend struct FuseOps;  // the FUSE callbacks in sim_kernel.cc

  using Clock = std::chrono::steady_clock;

  // All members below are guarded by mu_ unless noted.
  ChannelState& Chan(Channel c);
  const ChannelState& Chan(Channel c) const;
  Ticket SubmitLocked(Channel c, std::string line, std::optional<uint64_t> seq);
  void WithdrawLocked(Request& r, const char* why);
  void FinishLocked(Request& r);
  void NotifyPollLocked(Channel c);
  void LogLocked(const std::string& line);
  ChannelStats StatsLocked(Channel c) const;
  AwaitResult ResultLocked(const Request& r) const;
  void ReaperLoop();
  // Waits for the status reply of a driver request (timed_out if it was
  // withdrawn first).
  StatusResult AwaitStatus(const Ticket& t);
  void LoggerLoop();

  // FUSE callbacks (called on the FUSE thread).
  void OnOpen(Channel c, pid_t pid, uint64_t* fh);
  std::string OnRead(uint64_t fh, size_t size);
  int OnWrite(uint64_t fh, std::string_view data);  // 0 or -errno
  unsigned OnPoll(uint64_t fh, void* pollhandle);   // a fuse_pollhandle*
  void OnRelease(uint64_t fh);
  void OnInit();

  SimOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;         // any state change
  std::condition_variable reaper_cv_;  // new deadline or shutdown
  bool shutting_down_ = false;

  std::map<uint64_t, std::unique_ptr<Request>> requests_;  // by id
  std::set<std::pair<Clock::time_point, uint64_t>> deadlines_;
  std::unique_ptr<ChannelState> channels_[4];
  std::map<uint64_t, std::unique_ptr<Handle>> handles_;  // by fh
  uint64_t next_request_id_ = 1;
  uint64_t next_order_ = 1;
  uint64_t next_fh_ = 1;
  std::vector<TranscriptEntry> transcript_;

  // nfsd's state.
  int64_t instance_ = 0;
  bool in_grace_ = false;
  uint64_t generation_ = 0;  // bumped by Stop(): stale replies change nothing
  std::map<std::string, std::string> allow_;
  std::map<std::string, Minor> recorded_;

  // FUSE. mount_mu_ serializes Mount/Unmount and guards fuse_. Lock order:
  // mount_mu_, then mu_.
  std::mutex mount_mu_;
  FuseLoop fuse_;
  std::string mount_dir_;   // guarded by mu_
  bool init_done_ = false;  // guarded by mu_

  std::thread reaper_;  // withdraws requests whose deadline passed

  // Log lines waiting for the logger thread (only if options_.log is set).
  std::vector<std::string> log_queue_;
  std::condition_variable log_cv_;
  bool logger_stop_ = false;
  std::thread logger_;
};

}  // namespace nfsdsim

#endif  // TESTS_SIM_SIM_KERNEL_H_
