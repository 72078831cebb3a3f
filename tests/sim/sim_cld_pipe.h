// CldPipe: the stock kernel's nfsdcld upcall pipe, simulated for tests.
//
// A real FUSE file system that looks, from the tracker's side, like an
// rpc_pipefs mount: a directory `nfsd` that holds the pipe `cld` while nfsd
// runs. Any cld tracker can be run against it unchanged: Debian's own
// /usr/sbin/nfsdcld (`nfsdcld -F -d -p <mount> -s <dir>`) or nfsd-helper in
// cld mode (`--cld-pipe <mount>/nfsd/cld`). The semantics follow Linux 6.1
// (net/sunrpc/rpc_pipe.c, fs/nfsd/nfs4recover.c):
//
//   - read() returns at most one upcall (a binary struct cld_msg, 1034 bytes,
//     or cld_msg_v2, 1067 bytes). A short buffer gets the first part; the
//     next reads on the same open file return the rest. Nothing queued: 0,
//     never blocking.
//   - write() is one downcall, exactly the size of the messages the kernel
//     currently sends (else EINVAL), matched by cm_xid against every upcall
//     in flight (unknown xid: EINVAL). A downcall with cm_status -EINPROGRESS
//     answering a GraceStart adds one client to the reclaim set and leaves
//     the upcall pending; any other status completes the upcall.
//   - poll(): always writable; readable while an upcall is queued or partly
//     read on this open file; POLLERR|POLLHUP once the pipe was removed.
//   - An upcall partly read by an open file that is closed fails with
//     -EAGAIN and the kernel sends it again; queued upcalls stay queued when
//     the last reader closes, and fail with -ETIMEDOUT if nobody opens the
//     pipe within 30 s (RPC_UPCALL_TIMEOUT). An upcall that was read in full
//     stays in flight until its downcall: 6.1 never fails it, so a tracker
//     that reads and dies leaves the nfsd thread waiting for ever. Here the
//     driver gives up after `upcall_timeout` and reports timed_out, so that a
//     silent tracker fails a test instead of hanging it.
//   - Removing the pipe (nfsd stops) fails every pending upcall with -EPIPE;
//     reads and writes of files still open then fail with EPIPE; opening a
//     removed pipe fails with ENXIO.
//
// The pipe appears and disappears through the VFS (mknod()/unlink() on the
// mount from the driver's thread, which only the driver may do), so that a
// tracker watching `nfsd/` with inotify (IN_CREATE), as nfsdcld does, sees a
// restarted nfsd's new pipe exactly as on a real system.
//
// The driver plays nfsd (nfsd4_client_tracking_init and its callers):
// StartNfsd creates the pipe, waits up to 1 s for a tracker to open it, sends
// GetVersion as a version-1 message (the answer, clamped to the kernel's
// highest version, picks the v1 or v2 message format), then GraceStart,
// whose -EINPROGRESS downcalls form the reclaim set. If GraceStart fails the
// kernel falls back to the "old nfsdcld" (v0) operations: the pipe is made
// again, nothing is loaded, and each reclaim is a Check upcall. With the v1
// and v2 operations an empty reclaim set ends grace at once (GraceDone), and
// grace ends as soon as every client of the set sent RECLAIM_COMPLETE. A
// reclaim is decided in the kernel: allowed only in grace, before the
// client's RECLAIM_COMPLETE, for a client in the reclaim set whose stored
// principal hash (if any) matches. Create/Remove are skipped for a client
// already (not) marked stable in this nfsd instance, as the kernel does.
//
// Every method is thread-safe; driver calls block only the calling thread,
// like an nfsd thread waiting for its upcall, and only one driver call
// should run at a time.
#ifndef TESTS_SIM_SIM_CLD_PIPE_H_
#define TESTS_SIM_SIM_CLD_PIPE_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nfsdfs-proto/cld.h"
#include "tests/sim/fuse_loop.h"
#include "tests/sim/sim_kernel.h"

namespace nfsdsim {

struct CldPipeOptions {
  // The kernel's CLD_UPCALL_VERSION: 2 (Linux 5.4 and later, Debian's 6.1)
  // or 1 (4.20 to 5.3: no principal hashes).
  int kernel_version = 2;
  // How long a driver call waits for each downcall before it gives up (the
  // kernel waits for ever; see the file comment).
  std::chrono::milliseconds upcall_timeout{10000};
  // How long StartNfsd waits for a tracker to open the new pipe (the kernel
  // polls 10 times, 100 ms apart).
  std::chrono::milliseconds open_wait{1000};
  // Queued upcalls fail with -ETIMEDOUT if nobody opens the pipe within
  // this time (RPC_UPCALL_TIMEOUT, 30 s).
  std::chrono::milliseconds no_reader_timeout{30000};
  // With the v1/v2 operations nfsd skips the grace period when the reclaim
  // set is empty, and ends it once every client in the set has sent
  // RECLAIM_COMPLETE. Tests of the pipe alone may turn this off.
  bool early_grace_end = true;
  // If set, called with one line per event, on the thread of the event,
  // without any lock held.
  std::function<void(const std::string&)> log;
};

// Which client tracking operations the simulated nfsd ended up using.
enum class CldOps {
  kNone,  // no tracker opened the pipe: every reclaim is denied
  kV0,    // "old nfsdcld": Check upcalls, GraceDone carries the boot time
  kV1,    // struct cld_msg, reclaim set loaded at GraceStart
  kV2,    // struct cld_msg_v2: v1 plus principal hashes
};
const char* CldOpsName(CldOps ops);

struct CldCallResult {
  bool sent = false;       // false: the kernel made no upcall
  bool timed_out = false;  // no downcall within upcall_timeout
  // The downcall's cm_status, or the error the upcall failed with (-EPIPE:
  // pipe removed; -ETIMEDOUT: nobody opened the pipe). kTimedOutStatus if
  // timed_out.
  int status = 0;
  uint8_t version = 0;  // cm_version of a GetVersion downcall
  bool ok() const { return !timed_out && status == 0; }
};

struct CldStartResult {
  CldOps ops = CldOps::kNone;
  CldCallResult get_version;
  CldCallResult grace_start;
  // client id -> principal hash ("" if none): what nfsd will let reclaim.
  std::map<std::string, std::string> reclaim;
  // The set was empty: grace was skipped and GraceDone sent at once.
  bool grace_skipped = false;
  CldCallResult grace_done;  // of a skipped grace period
  bool timed_out() const {
    return get_version.timed_out || grace_start.timed_out ||
           grace_done.timed_out;
  }
  // The tracker took part: cld operations and no timeout.
  bool ok() const { return ops != CldOps::kNone && !timed_out(); }
};

struct CldPipeStats {
  uint64_t upcalls = 0;           // messages queued (resends included)
  uint64_t reads = 0;             // upcalls whose first byte was read
  uint64_t downcalls = 0;         // accepted writes
  uint64_t inprogress = 0;        // accepted -EINPROGRESS writes
  uint64_t rejected_writes = 0;   // writes that failed (EINVAL, EFAULT...)
  uint64_t resent = 0;            // upcalls failed with -EAGAIN
  uint64_t failed_epipe = 0;      // failed by pipe removal
  uint64_t failed_etimedout = 0;  // no reader within no_reader_timeout
  uint64_t driver_timeouts = 0;   // driver gave up waiting
  uint64_t pipes_created = 0;
  int readers = 0;  // current open files of the current pipe (FMODE_READ)
  int writers = 0;
};

class CldPipe {
 public:
  explicit CldPipe(CldPipeOptions options = {});
  ~CldPipe();  // Unmount()s.
  CldPipe(const CldPipe&) = delete;
  CldPipe& operator=(const CldPipe&) = delete;

  // ---- The file system ----------------------------------------------------

  // Mounts on `dir` (an existing empty directory) the root of the simulated
  // rpc_pipefs, holding the directory `nfsd` and no pipe yet.
  bool Mount(const std::string& dir, std::string* error = nullptr);
  // Removes the pipe if nfsd runs, aborts the FUSE connection and detaches
  // the mount. Safe when not mounted.
  void Unmount();
  std::string mount_dir() const;  // what `nfsdcld -p` takes
  std::string PipePath() const;   // mount_dir() + "/nfsd/cld"
  bool PipeExists() const;

  // ---- The driver: plays nfsd ---------------------------------------------

  // nfsd starts (stopping a running instance first): see the file comment.
  // `boot_time` is what a v0 GraceDone carries.
  CldStartResult StartNfsd(int64_t boot_time = 0);
  // nfsd stops: the pipe is removed (pending upcalls fail with -EPIPE) and
  // the instance's clients, reclaim set and grace are forgotten.
  void StopNfsd();
  CldStartResult RestartNfsd(int64_t boot_time = 0);
  // The kernel's highest cld version (1 or 2) from the next StartNfsd on,
  // as when the server boots another kernel.
  void SetKernelVersion(int version);

  // NFSv4.0 first OPEN_CONFIRM of a client: Create, unless the client is
  // already stable in this instance. Stable afterwards if the upcall got any
  // downcall (the kernel ignores its status beyond logging it).
  CldCallResult Create(std::string_view client, std::string_view princhash);
  // NFSv4.1 RECLAIM_COMPLETE: Create as above, the client may no longer
  // reclaim, and grace ends (GraceDone) if it was the last one of the set.
  CldCallResult ReclaimComplete(std::string_view client,
                                std::string_view princhash);
  // The client's lease expired or it was destroyed: Remove, if it is stable;
  // the client is forgotten by this instance either way.
  CldCallResult Expire(std::string_view client);
  // A reclaim (OPEN CLAIM_PREVIOUS). With the v0 operations this makes a
  // Check upcall (a timeout counts as a denial, and in driver_timeouts).
  ReclaimResult Reclaim(std::string_view client, std::string_view princhash);
  // nfsd4_end_grace: GraceDone (once per instance; sent=false after that).
  // Grace ends whatever the tracker answers, as in the kernel.
  CldCallResult GraceDone();
  // A raw Check upcall for `client` (what the v0 operations send).
  CldCallResult Check(std::string_view client);
  // Queues `m` as it is (its xid is replaced by a free one) in the format
  // of the current operations and waits for its final downcall; collects
  // any -EINPROGRESS clients into *inprogress. For tests of the pipe.
  CldCallResult RawUpcall(
      nfsdfs::cld::Message m,
      std::map<std::string, std::string>* inprogress = nullptr);

  // ---- Observability --------------------------------------------------------

  CldOps Ops() const;
  bool InGrace() const;
  std::map<std::string, std::string> ReclaimSet() const;
  CldPipeStats Stats() const;
  // Waits until the current pipe has a reader or writer (a tracker opened
  // it), or none (it closed it).
  bool WaitForOpen(std::chrono::milliseconds timeout);
  bool WaitForClosed(std::chrono::milliseconds timeout);

 private:
  struct Upcall;
  struct Pipe;
  struct Handle;
  friend struct CldFuseOps;  // the FUSE callbacks in cld_pipe.cc

  using Clock = std::chrono::steady_clock;

  // The message format of the current operations.
  size_t MsgLenLocked() const;
  // cld_pipe_upcall: queues and waits, resending after -EAGAIN.
  CldCallResult DoUpcall(nfsdfs::cld::Message m,
                         std::map<std::string, std::string>* inprogress);
  void FailLocked(Upcall& u, int err);
  void NotifyPollLocked();
  void Log(std::string line);  // without mu_
  void LogLocked(std::string line);
  void FlushLog(std::unique_lock<std::mutex>& lk);
  bool CreatePipe();  // mknod through the VFS
  void RemovePipe();  // unlink through the VFS
  bool WaitForReaderOrWriter(std::chrono::milliseconds timeout);
  CldCallResult CreateLocked(std::unique_lock<std::mutex>& lk,
                             const std::string& client,
                             std::string_view princhash);

  // FUSE callbacks (FUSE thread).
  int OnMknod(uint64_t* ino);
  int OnUnlink();
  int OnOpen(uint64_t ino, int flags, pid_t pid, uint64_t* fh);
  int OnRead(uint64_t fh, size_t size, std::string* out);  // 0 or -errno
  int OnWrite(uint64_t fh, std::string_view data);         // 0 or -errno
  unsigned OnPoll(uint64_t fh, void* pollhandle);
  void OnRelease(uint64_t fh);
  void OnInit();
  bool PipeInoKnown(uint64_t ino) const;
  uint64_t CurrentPipeIno() const;

  CldPipeOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;

  // The kernel's state, guarded by mu_.
  std::shared_ptr<Pipe> pipe_;  // the current pipe, or null
  std::map<uint64_t, std::shared_ptr<Pipe>> pipes_by_ino_;
  std::map<uint64_t, std::unique_ptr<Handle>> handles_;
  std::map<uint32_t, std::shared_ptr<Upcall>> inflight_;  // cn_list by xid
  uint32_t next_xid_ = 0;
  uint64_t next_fh_ = 1;
  uint64_t next_ino_ = 3;
  bool allow_mknod_ = false;
  bool allow_unlink_ = false;
  CldOps ops_ = CldOps::kNone;
  int msg_version_ = 1;  // message format of the current operations
  bool in_grace_ = false;
  bool grace_ended_ = true;
  int64_t boot_time_ = 0;
  std::map<std::string, std::string> reclaim_;
  int reclaim_completes_ = 0;
  struct ClientState {
    bool stable = false;
    bool reclaim_complete = false;
  };
  std::map<std::string, ClientState> clients_;
  CldPipeStats stats_;
  std::vector<std::string> log_queue_;

  // mount_mu_ serializes Mount/Unmount and guards fuse_. Lock order:
  // mount_mu_, then mu_.
  std::mutex mount_mu_;
  FuseLoop fuse_;
  std::string mount_dir_;   // guarded by mu_
  bool init_done_ = false;  // guarded by mu_
};

}  // namespace nfsdsim

#endif  // TESTS_SIM_SIM_CLD_PIPE_H_
