// A short kill -9 soak (soak.h) in the test suite; nfsdh-soak runs the long
// one.
#include <catch2/catch.hpp>

#include "tests/soak/soak.h"

namespace nfsdh::soak {
namespace {

TEST_CASE("30 SIGKILLs at random instants lose no ack and allow nobody unsafe",
          "[scenario][soak]") {
  Options o;
  o.kills = 30;
  o.seed = 20261123;
  o.helper = NFSD_HELPER_BIN;
  Figures f = Run(o);
  INFO(f.ToString());
  CHECK(f.first_problem.empty());
  CHECK(f.kills == 30);
  CHECK(f.lost_acks == 0);
  CHECK(f.unsafe_allows == 0);
  CHECK(f.hung == 0);
  CHECK(f.bad_replies == 0);
  CHECK(f.helper_failures == 0);
  // The run did what it claims: kills met requests in flight, which were
  // put back and answered by the next helper, and the allow lists and the
  // database were checked.
  CHECK(f.kills_in_flight > 0);
  CHECK(f.requeued > 0);
  CHECK(f.starts > 1);
  CHECK(f.grace_ends > 0);
  CHECK(f.reclaims_checked > 0);
  CHECK(f.db_checks > 0);
}

}  // namespace
}  // namespace nfsdh::soak
