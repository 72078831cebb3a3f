// IdmapStats: what the ID-mapping channels did since the daemon started, for
// helper-ctl status and the exit log.
#ifndef DAEMON_IDMAP_IDMAP_STATS_H_
#define DAEMON_IDMAP_IDMAP_STATS_H_

#include <cstdint>

namespace nfsdh::idmap {

// One cache channel (one direction).
struct DirectionStats {
  bool open = false;
  uint64_t requests = 0;  // upcalls read
  uint64_t hits = 0;      // answered with a mapping
  // Answered without one: the nobody name (idtoname) or a negative entry
  // (nametoid).
  uint64_t misses = 0;
  // Upcalls that could not be answered (malformed), answers the kernel
  // refused or that could not be written.
  uint64_t errors = 0;
  uint64_t queued = 0;  // read and not yet answered, now
};

struct IdmapStats {
  bool enabled = false;
  DirectionStats idtoname;
  DirectionStats nametoid;
};

}  // namespace nfsdh::idmap

#endif  // DAEMON_IDMAP_IDMAP_STATS_H_
