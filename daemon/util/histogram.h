// Histogram: how many observed values fell into each of a fixed set of
// buckets, and their sum, for the daemon's statistics (daemon/stats.h) and
// helper-ctl's view of them.
//
// Rationale. The bounds are fixed when the histogram is made, so observing a
// value is a short scan and no allocation, and two histograms of the same
// kind can be compared bucket by bucket. Values and bounds are unsigned
// integers in the unit the owner chooses (microseconds, requests); whoever
// shows them converts. Counts are kept per bucket, not cumulative: the
// Prometheus exposition (ctl/prometheus.h) accumulates them itself.
//
// A plain value: copy it freely. Not thread-safe; the daemon observes and
// reads it on its event loop only.
#ifndef DAEMON_UTIL_HISTOGRAM_H_
#define DAEMON_UTIL_HISTOGRAM_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace nfsdh {

struct Histogram {
  // Upper bounds, inclusive, strictly increasing.
  std::vector<uint64_t> bounds;
  // bounds.size() + 1 entries: counts[i] is the number of values v with
  // bounds[i-1] < v <= bounds[i] (v <= bounds[0] for i = 0); the last entry
  // counts the values above every bound.
  std::vector<uint64_t> counts;
  uint64_t sum = 0;  // of every value observed (wraps after 2^64)

  // An empty histogram with these bounds.
  // REQUIRES: `bounds` strictly increasing.
  static Histogram WithBounds(std::vector<uint64_t> bounds);

  void Observe(uint64_t value);
  // The number of values observed.
  uint64_t Count() const;
  // True if the shape holds: bounds strictly increasing, one count more
  // than bounds. (A histogram read from another process is checked.)
  bool Valid() const;
  // An upper estimate of the q-quantile (0 < q <= 1): the smallest bound
  // at or below which at least q of the values fall. nullopt when nothing
  // was observed or that many values are only reached above the last
  // bound.
  // REQUIRES: Valid().
  std::optional<uint64_t> QuantileBound(double q) const;
};

}  // namespace nfsdh

#endif  // DAEMON_UTIL_HISTOGRAM_H_
