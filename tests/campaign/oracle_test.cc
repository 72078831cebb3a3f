// The campaign's oracle (oracle.h) against the RFC scenarios of
// research/recovery.md it is written from.
#include "tests/campaign/oracle.h"

#include <catch2/catch.hpp>

namespace nfsdh::campaign {
namespace {

TEST_CASE("oracle: an acked create must be allowed at the next start",
          "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", true);
  o.Start();
  CHECK(o.Classify("A") == Verdict::kMustAllow);
  CHECK(o.Classify("B") == Verdict::kMustNotAllow);  // never got state
}

TEST_CASE("oracle: an acked expire forbids the reclaim",
          "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", true);
  o.Expire("A", true);
  o.Start();
  CHECK(o.Classify("A") == Verdict::kMustNotAllow);
}

TEST_CASE("oracle: a completed grace period without a reclaim forbids it",
          "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", true);
  o.Create("B", true);
  o.GraceCompleted(true);
  o.Start();
  o.Create("B", true);  // B reclaims, A stays silent
  o.GraceCompleted(true);
  o.Start();
  CHECK(o.Classify("A") == Verdict::kMustNotAllow);
  CHECK(o.Classify("B") == Verdict::kMustAllow);
}

TEST_CASE("oracle: restarts during grace lose nobody until a grace completes",
          "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", true);
  o.GraceCompleted(true);
  o.Start();
  o.Start();  // crashed before grace_done
  o.Start();
  CHECK(o.Classify("A") == Verdict::kMustAllow);
  // C reclaims only in an aborted instance, then stays silent through one
  // that completes: dropped (scenario 7).
  o.Create("C", true);
  o.Start();
  o.GraceCompleted(true);
  o.Start();
  CHECK(o.Classify("C") == Verdict::kMustNotAllow);
  CHECK(o.Classify("A") == Verdict::kMustNotAllow);
}

TEST_CASE("oracle: -EIO answers make a client's verdict uncertain",
          "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", false);  // may have reached the disk
  CHECK(o.Classify("A") == Verdict::kMay);
  o.Create("B", true);
  o.Expire("B", false);  // may have been deleted
  CHECK(o.Classify("B") == Verdict::kMay);
  o.Create("B", true);
  CHECK(o.Classify("B") == Verdict::kMustAllow);
  o.Expire("B", true);
  CHECK(o.Classify("B") == Verdict::kMustNotAllow);
  // An uncertain create does not weaken an acked one.
  o.Create("D", true);
  o.Create("D", false);
  CHECK(o.Classify("D") == Verdict::kMustAllow);
}

TEST_CASE(
    "oracle: a grace end the helper may have recorded makes silent clients "
    "uncertain, one the kernel made forbids them",
    "[campaign][oracle]") {
  Oracle o;
  o.Start();
  o.Create("A", true);
  o.Start();
  o.Create("B", true);
  o.GraceCompleted(false);  // four files: grace_done answered -EIO
  CHECK(o.Classify("A") == Verdict::kMay);
  CHECK(o.Classify("B") == Verdict::kMustAllow);
  o.GraceCompleted(true);  // retried and acked, or cld: ended anyway
  CHECK(o.Classify("A") == Verdict::kMustNotAllow);
  CHECK(o.Classify("B") == Verdict::kMustAllow);
  // A create uncertain in an older instance is gone once a grace completes.
  o.Create("E", false);
  o.Start();
  o.GraceCompleted(true);
  CHECK(o.Classify("E") == Verdict::kMustNotAllow);
}

}  // namespace
}  // namespace nfsdh::campaign
