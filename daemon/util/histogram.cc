#include "daemon/util/histogram.h"

#include <algorithm>
#include <cmath>

namespace nfsdh {

Histogram Histogram::WithBounds(std::vector<uint64_t> bounds) {
  Histogram h;
  h.counts.assign(bounds.size() + 1, 0);
  h.bounds = std::move(bounds);
  return h;
}

void Histogram::Observe(uint64_t value) {
  // The first bound at or above the value; past the end: above them all.
  size_t i = static_cast<size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  ++counts[i];
  sum += value;
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

bool Histogram::Valid() const {
  if (counts.size() != bounds.size() + 1) return false;
  for (size_t i = 1; i < bounds.size(); ++i)
    if (bounds[i] <= bounds[i - 1]) return false;
  return true;
}

std::optional<uint64_t> Histogram::QuantileBound(double q) const {
  const uint64_t total = Count();
  if (total == 0) return std::nullopt;
  // The rank of the value sought, 1-based: at least 1, at most total.
  double rank = std::ceil(q * static_cast<double>(total));
  uint64_t want =
      static_cast<uint64_t>(std::clamp(rank, 1.0, static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    seen += counts[i];
    if (seen >= want) return bounds[i];
  }
  return std::nullopt;
}

}  // namespace nfsdh
