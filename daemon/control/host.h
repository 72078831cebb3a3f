// Host: what the control procedures may see and touch of the daemon.
//
// The daemon implements it; everything runs on the daemon's event loop, and
// a procedure runs only between batches, so the store is never inside a
// transaction when a procedure is called.
#ifndef DAEMON_CONTROL_HOST_H_
#define DAEMON_CONTROL_HOST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/idmap/idmap_stats.h"
#include "daemon/stats.h"
#include "daemon/store/backend.h"
#include "daemon/tracker/tracker.h"
#include "daemon/util/status.h"

namespace nfsdh::control {

// The storage failures the daemon met since it started: the first is
// sticky, the last is replaced each time.
struct StorageErrors {
  struct Note {
    int64_t when = 0;  // wall clock
    std::string message;
  };
  uint64_t count = 0;
  std::optional<Note> first;
  std::optional<Note> last;

  void Record(const Status& s, int64_t now) {
    ++count;
    last = Note{now, s.ToString()};
    if (!first) first = last;
  }
};

struct ChannelInfo {
  std::string name;  // the upcall file, "create_client"
  bool open = false;
  ChannelCounters counters;
};

// Cluster mode (daemon/store/ETCD.md): this node and its lease.
struct ClusterInfo {
  bool enabled = false;  // false: the SQLite database, nothing else is set
  std::string cluster;
  std::string node;
  std::string endpoints;  // comma-separated
  int64_t lease = 0;      // this node's etcd lease
  int64_t lease_ttl = 0;  // seconds
  // Milliseconds since the last renewal of the lease that succeeded.
  int64_t renewed_ms_ago = 0;
  bool fenced = false;     // this node may not write: it answers -EIO
  std::string fence_reason;
  int64_t fenced_since = 0;  // wall clock
};

// Facts that do not change while the daemon runs.
struct DaemonInfo {
  std::string version;
  int64_t pid = 0;
  int64_t started = 0;  // wall clock
  std::string db;
  std::string nfsdfs;    // "none": no four-file protocol
  std::string cld_pipe;  // "none": no cld protocol
};

class Host {
 public:
  virtual ~Host() = default;

  virtual const DaemonInfo& Info() = 0;
  // For reads. REQUIRES: not inside a transaction (a procedure runs
  // between batches).
  virtual store::Backend& Database() = 0;
  // The one way to change records (purge, import): a procedure opens a
  // tracker::Transaction on it, so that the served scope's counts and the
  // HA callout follow every change.
  virtual tracker::Tracker& Records() = 0;
  // The served scope's row and counts as of the last commit.
  virtual const store::ScopeRow& ServedScope() = 0;
  virtual const ScopeStats& Stats() = 0;
  virtual StorageErrors& Errors() = 0;
  virtual std::vector<ChannelInfo> Channels() = 0;
  // True when every upcall file is open.
  virtual bool Serving() = 0;
  // The four files of the nfsd filesystem, and the cld pipe.
  virtual ProtocolState NfsdfsState() = 0;
  virtual ProtocolState CldState() = 0;
  // The batches committed and rolled back since the daemon started.
  virtual const BatchStats& Batches() = 0;
  // The outbox's undelivered events; -1 without an HA callout.
  virtual int64_t CalloutsPending() { return -1; }
  // The ID-mapping channels (enabled is false when they are not served).
  virtual idmap::IdmapStats Idmap() { return {}; }
  // This node of the cluster (enabled is false outside cluster mode).
  virtual ClusterInfo Cluster() { return {}; }
};

}  // namespace nfsdh::control

#endif  // DAEMON_CONTROL_HOST_H_
