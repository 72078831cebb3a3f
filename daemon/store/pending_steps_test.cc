// The pending-steps file's text (<db>.grace-end.<scope>, FORMAT.md).
#include "daemon/store/pending_steps.h"

#include <catch2/catch.hpp>
#include <vector>

namespace nfsdh::store {
namespace {

TEST_CASE("pending steps: the file's text round-trips, and junk is refused",
          "[store][pending]") {
  std::vector<recovery::PendingStep> steps = {
      {true, {}}, {false, {}}, {false, 1763771860}};
  const std::string text = FormatPendingSteps(steps);
  CHECK(text == "start\nend\nend 1763771860\n");
  std::vector<recovery::PendingStep> back;
  REQUIRE(ParsePendingSteps(text, &back));
  CHECK(back == steps);
  for (const char* junk : {"", "\n", "end 0\n", "end -5\n", "end 12x\n",
                           "start\nfinish\n", "end  7\n"}) {
    INFO(junk);
    CHECK_FALSE(ParsePendingSteps(junk, &back));
  }
}

}  // namespace
}  // namespace nfsdh::store
