#include "daemon/util/privileges.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace nfsdh {
namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/nfsdh-priv-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    if (std::system(("rm -rf '" + path + "'").c_str()) != 0) {
      // A leftover temporary directory is harmless.
    }
  }
};

void Touch(const std::string& f) {
  FILE* fp = fopen(f.c_str(), "w");
  REQUIRE(fp != nullptr);
  fclose(fp);
}

TEST_CASE("state files owned by another user, or a shared directory, are "
          "refused", "[privileges]") {
  Dir d;
  std::string state = d.path + "/state";
  std::string db = state + "/state.sqlite";
  // Missing directory and files: fine, the store creates them.
  CHECK(CheckStateFiles(db, 0).ok());
  REQUIRE(mkdir(state.c_str(), 0700) == 0);
  Touch(db);
  CHECK(CheckStateFiles(db, geteuid()).ok());

  SECTION("world-writable directory") {
    REQUIRE(chmod(state.c_str(), 0777) == 0);
    Status s = CheckStateFiles(db, geteuid());
    CHECK(s.code() == Status::Code::kPermission);
    CHECK(s.message().find("mode 0777") != std::string::npos);
  }
  SECTION("group-writable directory") {
    REQUIRE(chmod(state.c_str(), 0770) == 0);
    CHECK(CheckStateFiles(db, geteuid()).code() ==
          Status::Code::kPermission);
  }
  SECTION("directory owned by another user") {
    REQUIRE(chown(state.c_str(), 4242, 4242) == 0);
    Status s = CheckStateFiles(db, geteuid());
    CHECK(s.code() == Status::Code::kPermission);
    CHECK(s.message().find("owned by uid 4242") != std::string::npos);
  }
  SECTION("database owned by another user") {
    REQUIRE(chown(db.c_str(), 4242, 0) == 0);
    Status s = CheckStateFiles(db, geteuid());
    CHECK(s.code() == Status::Code::kPermission);
    CHECK(s.message().find("database file " + db + " is owned by uid 4242") !=
          std::string::npos);
  }
  SECTION("a WAL owned by another user") {
    Touch(db + "-wal");
    REQUIRE(chown((db + "-wal").c_str(), 4242, 0) == 0);
    CHECK(CheckStateFiles(db, geteuid()).code() ==
          Status::Code::kPermission);
  }
  SECTION("the daemon's own uid is what counts") {
    CHECK(CheckStateFiles(db, 4242).code() == Status::Code::kPermission);
  }
}

}  // namespace
}  // namespace nfsdh
