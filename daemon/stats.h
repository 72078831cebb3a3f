// What the event loop tells helper-ctl about itself (CTL_STATUS, shown by
// helper-ctl status and metrics): the state of each upcall protocol it may
// serve, and the batches it committed.
#ifndef DAEMON_STATS_H_
#define DAEMON_STATS_H_

#include <cstdint>

#include "daemon/util/histogram.h"

namespace nfsdh {

// One upcall protocol: the four nfsdfs files, or the stock kernel's cld
// pipe. The values are those of ctl_upcall_state in ctl/proto/nfsdh_ctl.x.
enum class ProtocolState {
  kNotConfigured = 0,  // "none": not served
  // The nfsd filesystem has no client-tracking files (a stock kernel): the
  // cld pipe is served instead, and the directory read for v4_end_grace.
  kNotOffered = 1,
  kWaiting = 2,  // configured; some file (or the pipe) is not open yet
  kOpen = 3,     // every file of the protocol is open
};

// The batches (one transaction each, daemon.h) since the daemon started.
struct BatchStats {
  uint64_t committed = 0;
  uint64_t rolled_back = 0;  // a storage failure: answered -EIO
  // Of the committed batches: the requests each carried (0 for a batch that
  // only recorded a pending grace end), and the time from BEGIN to COMMIT
  // returning, fsync included, in microseconds.
  Histogram requests = Histogram::WithBounds(
      {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096});
  Histogram commit_usec = Histogram::WithBounds(
      {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
       500000, 1000000, 2500000, 5000000, 10000000});

  void Committed(uint64_t request_count, uint64_t usec) {
    ++committed;
    requests.Observe(request_count);
    commit_usec.Observe(usec);
  }
};

}  // namespace nfsdh

#endif  // DAEMON_STATS_H_
