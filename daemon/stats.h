// What the daemon tells helper-ctl about itself (CTL_STATUS, shown by
// helper-ctl status and metrics): the state of each upcall protocol it may
// serve, each channel's requests, the served scope's counts and the batches
// it committed. Plain types only, so that the daemon's layers and helper-ctl
// may all include this file.
#ifndef DAEMON_STATS_H_
#define DAEMON_STATS_H_

#include <cstdint>

#include "daemon/util/histogram.h"

namespace nfsdh {

// One upcall protocol: the four nfsdfs files, or the stock kernel's cld
// pipe. The values are those of ctl_upcall_state in control-proto/nfsdh_ctl.x.
enum class ProtocolState {
  kNotConfigured = 0,  // "none": not served
  // The nfsd filesystem has no client-tracking files (a stock kernel): the
  // cld pipe is served instead, and the directory read for v4_end_grace.
  kNotOffered = 1,
  kWaiting = 2,  // configured; some file (or the pipe) is not open yet
  kOpen = 3,     // every file of the protocol is open
};

// Per-channel request counters, for logs and status.
struct ChannelCounters {
  uint64_t requests = 0;
  uint64_t ok = 0;
  uint64_t malformed = 0;
  uint64_t stale = 0;
  uint64_t failed = 0;  // -EIO
};

// What the served scope looks like as of the last commit, for status. The
// tracker (daemon/tracker/tracker.h) keeps it: a transaction changes a copy,
// which replaces it only once the transaction committed.
struct ScopeStats {
  int64_t clients = 0;  // records of the scope
  // The start of the current server instance, if this process answered it
  // with an allow list.
  bool start_seen = false;
  int64_t start_instance = 0;
  int64_t start_time = 0;  // wall clock
  int64_t allowed = 0;     // clients on its allow list
  // Of those, how many were created again in that instance (reclaimed). A
  // record stamped with an older instance than the current one is on the
  // allow list of the current instance: every older record that survived
  // the start was sent, and no record is ever stamped with an older one.
  int64_t reclaimed = 0;
};

// The batches (one transaction each, daemon/batch/runner.h) since the daemon started.
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
