// The option table of nfsd-helper (daemon/options.h) against everything it
// feeds, and the shared defaults (common/defaults.h).
#include "daemon/options.h"

#include <catch2/catch.hpp>
#include <string>

#include "daemon/migrate/nfsdcld_import.h"

namespace nfsdh {
namespace {

TEST_CASE("daemon/migrate's defaults are those of common/defaults.h",
          "[options]") {
  CHECK(std::string(migrate::kDefaultNfsdcldDb) == kDefaultNfsdcldDb);
  CHECK(std::string(migrate::kDefaultNfsdcltrackDb) == kDefaultNfsdcltrackDb);
  CHECK(std::string(migrate::kNone) == kNone);
  CHECK(std::string(control::kDefaultSocket) == kDefaultCtlSocket);
}

}  // namespace
}  // namespace nfsdh
