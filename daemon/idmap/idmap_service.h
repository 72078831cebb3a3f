// IdmapService: serves nfsd's two ID-mapping cache channels,
// <rpc_dir>/nfs4.idtoname/channel and <rpc_dir>/nfs4.nametoid/channel
// (rpc_dir is /proc/net/rpc), the server-side half of rpc.idmapd.
//
// Loop affinity: owned by the Daemon and driven by its libevent loop; every
// method but the constructor runs on the loop's thread. Lookups may block
// (NSS to LDAP or SSSD), so they run on a small pool of worker threads and
// the loop never waits for one: the client-tracking channels keep being
// answered while a lookup hangs. A worker hands its finished lookup back
// through an eventfd the loop watches; the loop writes the answers of each
// channel in the order the upcalls were read. At most max_queue upcalls per
// channel are read and not yet answered; beyond that the channel is not read
// until answers went out (the kernel keeps the rest queued, and each nfsd
// thread waiting for one gives up after its own timeout).
//
// A lookup gets lookup_timeout (5 s, about as long as an nfsd thread waits
// for the answer) from the moment its upcall is read. One still running then
// is answered as a failed lookup is, as rpc.idmapd answers when the name
// service fails (the nobody name, or a negative entry), and logged, so the
// answers queued behind it on its channel go out; its worker finishes it
// alone and the late result is dropped. An upcall no worker has started by
// then is answered the same way and never looked up. A name service that
// hangs can therefore tie up every worker, but never the answers.
//
// These channels do not touch the database: they have no part in the
// client-tracking batches and transactions. Each is a
// loop::ReopeningChannel (daemon/loop/reopening_channel.h): one that fails
// (nfsd stopped, the module unloaded) is closed and reopened every second,
// and a missing one is waited for the same way.
#ifndef DAEMON_IDMAP_IDMAP_SERVICE_H_
#define DAEMON_IDMAP_IDMAP_SERVICE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/idmap/mapper.h"
#include "daemon/idmap/idmap_stats.h"
#include "daemon/idmap/upcall.h"
#include "daemon/loop/loop.h"
#include "daemon/loop/reopening_channel.h"
#include "daemon/options.h"
#include "daemon/util/status.h"

namespace nfsdh::idmap {

inline constexpr char kDefaultRpcDir[] = "/proc/net/rpc";

struct ServiceOptions {
  std::string rpc_dir = kDefaultRpcDir;
  std::string conf = kDefaultIdmapdConf;
  bool conf_given = false;  // a missing file is then an error
  // Seconds an answer stays valid in nfsd's cache; unset: idmapd.conf's
  // [General] Cache-Expiration, else 600.
  std::optional<int64_t> cache_timeout;
  size_t workers = 4;
  size_t max_queue = 256;  // per channel
  // How long a lookup may take before it is answered as a failed one.
  std::chrono::milliseconds lookup_timeout{5000};
};

// The service options the daemon's options ask for.
ServiceOptions ServiceOptionsFrom(const Options& o);

class IdmapService {
 public:
  explicit IdmapService(ServiceOptions opts);
  // Stops the workers. A lookup still in progress is not waited for (a hung
  // name service must not hang the daemon's exit): its thread finishes it
  // alone and the answer is dropped.
  ~IdmapService();
  IdmapService(const IdmapService&) = delete;
  IdmapService& operator=(const IdmapService&) = delete;

  // Reads idmapd.conf, initialises libnfsidmap, and refuses (non-OK, with a
  // message saying what to do) if another process holds either channel open.
  Status Init();
  // Opens the channels on `loop` (upcalls read now wait for the workers).
  // REQUIRES: Init() succeeded; `loop` outlives the IdmapService.
  void Start(loop::Loop& loop);
  // Starts the lookup workers. The daemon calls this only after it dropped
  // its capabilities: capng_apply() changes the calling thread alone, so a
  // thread started before the drop would keep them
  // (daemon/util/privileges.h).
  // REQUIRES: Start() was called.
  void StartWorkers();

  IdmapStats Stats() const;
  // True when both channels are open.
  bool Serving() const;
  // Logs one summary line per channel.
  void LogSummary() const;

  std::string ChannelPath(Direction d) const;

 private:
  struct Job {
    Upcall upcall;
    std::chrono::steady_clock::time_point deadline;  // loop only
    // Set by the worker under Pool::mu, or by the loop once abandoned.
    Mapping result;
    bool done = false;       // guarded by Pool::mu
    bool abandoned = false;  // answered without it; guarded by Pool::mu
  };
  // What the workers share with the loop; kept alive by whoever holds it
  // last (see the destructor).
  struct Pool {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::shared_ptr<Job>> todo;  // guarded by mu
    bool stop = false;                      // guarded by mu
    std::shared_ptr<Mapper> mapper;
    int wake_fd = -1;  // eventfd: a worker finished a job
    ~Pool();
  };
  struct Channel {
    Direction direction = Direction::kIdToName;
    std::string path;
    // Made by Start(): the channel file, kept open.
    std::unique_ptr<loop::ReopeningChannel> file;
    bool paused = false;  // not read because the queue is full
    std::deque<std::shared_ptr<Job>> inflight;  // in upcall order
    DirectionStats stats;
  };

  bool IsOpen(const Channel& c) const { return c.file && c.file->is_open(); }
  void OnChange(Channel& c);
  void ReadChannel(Channel& c);
  void WriteFinished();
  // Arms deadline_ for the earliest deadline of a lookup still awaited.
  void ArmDeadline();
  static void WorkerLoop(std::shared_ptr<Pool> pool);
  void OnWake();

  ServiceOptions opts_;
  IdmapdSettings settings_;
  int64_t timeout_ = kDefaultCacheTimeout;
  Channel channels_[2];
  std::unique_ptr<loop::FdWatch> wake_;
  std::unique_ptr<loop::Timer> deadline_;
  std::shared_ptr<Pool> pool_;
};

}  // namespace nfsdh::idmap

#endif  // DAEMON_IDMAP_IDMAP_SERVICE_H_
