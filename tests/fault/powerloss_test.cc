// Power cuts in the test suite: a short run of nfsdh-powerloss's check (the
// long one is `nfsdh-powerloss --cuts 1000`, see README.md), and a negative
// control proving that the check fails when the disk loses synced data.
#include "tests/fault/powerloss.h"

#include <catch2/catch.hpp>
#include <cstdio>

#include "tests/fault/plain_db.h"

namespace nfsdh::powerloss {
namespace {

TEST_CASE("every acknowledged change survives 50 power cuts",
          "[fault][powerloss]") {
  faulttest::TempDir dir;
  Options o;
  o.child_bin = NFSDH_POWERLOSS_BIN;
  o.dir = dir.path();
  o.cuts = 50;
  o.seed = 20261122;
  o.max_delay_us = 25000;
  Figures f;
  std::string err;
  bool ran = Run(o, &f, &err);
  INFO(err);
  REQUIRE(ran);
  std::printf("[fault][powerloss] %s\n", FormatFigures(f).c_str());
  for (const auto& what : f.failures) UNSCOPED_INFO(what);
  CHECK(f.lost_acks == 0);
  CHECK(f.integrity_failures == 0);
  CHECK(f.phantom_records == 0);
  CHECK(f.unexplained_states == 0);
  CHECK(f.child_failures == 0);
  // Not vacuous: most cuts landed after acknowledgements (the cut is timed
  // from the child's open, so this holds on a slow machine too).
  CHECK(f.cuts == 50);
  CHECK(f.cuts - f.cuts_before_first_ack >= 25);
  CHECK(f.txns_acked >= 100);
  CHECK(f.checkpoints > 0);
}

TEST_CASE("the power-cut check fails when the disk lies about fsync",
          "[fault][powerloss]") {
  faulttest::TempDir dir;
  Options o;
  o.child_bin = NFSDH_POWERLOSS_BIN;
  o.dir = dir.path();
  o.cuts = 5;
  o.seed = 7;
  o.min_delay_us = 5000;  // long enough for acknowledgements
  o.max_delay_us = 10000;
  o.startup_cut_every = 0;
  o.lying_sync = true;
  Figures f;
  std::string err;
  bool ran = Run(o, &f, &err);
  INFO(err);
  REQUIRE(ran);
  INFO(FormatFigures(f));
  CHECK_FALSE(f.ok());
  CHECK(f.lost_acks > 0);
}

}  // namespace
}  // namespace nfsdh::powerloss
