// Histogram: which bucket a value lands in, the sum, and the quantile bound
// helper-ctl status shows.
#include "daemon/util/histogram.h"

#include <catch2/catch.hpp>

namespace nfsdh {
namespace {

TEST_CASE("a value lands in the first bucket whose bound is not below it",
          "[histogram]") {
  Histogram h = Histogram::WithBounds({1, 2, 4});
  REQUIRE(h.Valid());
  CHECK(h.Count() == 0);
  for (uint64_t v : {0, 1, 2, 3, 4, 5, 100}) h.Observe(v);
  // (..1]: 0 and 1; (1..2]: 2; (2..4]: 3 and 4; above: 5 and 100.
  CHECK(h.counts == std::vector<uint64_t>{2, 1, 2, 2});
  CHECK(h.Count() == 7);
  CHECK(h.sum == 115);
}

TEST_CASE("the quantile bound is the bound the q-th value is under",
          "[histogram]") {
  Histogram h = Histogram::WithBounds({10, 100, 1000});
  CHECK_FALSE(h.QuantileBound(0.5));  // nothing observed
  for (int i = 0; i < 98; ++i) h.Observe(5);
  h.Observe(50);
  h.Observe(5000);
  // 98 of 100 at most 10, 99 at most 100, the 100th above every bound.
  CHECK(h.QuantileBound(0.5) == 10u);
  CHECK(h.QuantileBound(0.98) == 10u);
  CHECK(h.QuantileBound(0.99) == 100u);
  CHECK_FALSE(h.QuantileBound(1.0));
}

TEST_CASE("a histogram of the wrong shape is not valid", "[histogram]") {
  Histogram h = Histogram::WithBounds({1, 2});
  h.counts.pop_back();
  CHECK_FALSE(h.Valid());
  Histogram unordered = Histogram::WithBounds({2, 1});
  CHECK_FALSE(unordered.Valid());
  Histogram none = Histogram::WithBounds({});
  CHECK(none.Valid());
  none.Observe(7);
  CHECK(none.counts == std::vector<uint64_t>{1});
  CHECK_FALSE(none.QuantileBound(0.5));
}

}  // namespace
}  // namespace nfsdh
