// CompareWithInitialNetns against a fake /proc of symbolic links.
#include "daemon/util/netns.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

namespace nfsdh {
namespace {

struct FakeProc {
  std::string path;
  FakeProc() {
    char tmpl[] = "/tmp/nfsdh-proc-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
    REQUIRE(std::system(("mkdir -p '" + path + "/self/ns' '" + path +
                         "/1/ns'").c_str()) == 0);
  }
  ~FakeProc() { std::system(("rm -rf '" + path + "'").c_str()); }
  void Net(const std::string& pid, const std::string& target) const {
    REQUIRE(symlink(target.c_str(), (path + "/" + pid + "/ns/net").c_str()) ==
            0);
  }
};

TEST_CASE("the network namespace is compared with pid 1's", "[netns]") {
  FakeProc p;
  std::string detail;
  SECTION("the same") {
    p.Net("self", "net:[4026531833]");
    p.Net("1", "net:[4026531833]");
    CHECK(CompareWithInitialNetns(p.path, &detail) == NetnsVerdict::kInitial);
  }
  SECTION("another") {
    p.Net("self", "net:[4026532174]");
    p.Net("1", "net:[4026531833]");
    CHECK(CompareWithInitialNetns(p.path, &detail) == NetnsVerdict::kOther);
    CHECK(detail == "net:[4026532174], pid 1 in net:[4026531833]");
  }
  SECTION("pid 1's cannot be read: cannot tell, never a guess") {
    p.Net("self", "net:[4026532174]");
    CHECK(CompareWithInitialNetns(p.path, &detail) ==
          NetnsVerdict::kCannotTell);
    CHECK(detail.find(p.path + "/1/ns/net") != std::string::npos);
  }
}

}  // namespace
}  // namespace nfsdh
