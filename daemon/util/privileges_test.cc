#include "daemon/util/privileges.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

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

std::string OwnCapEff() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("CapEff:", 0) == 0) return line;
  return "?";
}

TEST_CASE("capabilities are not dropped while another thread exists",
          "[privileges]") {
  // In a child, so that a drop cannot take this process's capabilities.
  // Exit status: 0 refused and nothing dropped, 1 dropped, 2 refused but
  // the capabilities changed anyway, 3 the refusal does not say why.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread other([&] {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    });
    std::string before = OwnCapEff();
    std::string dropped;
    Status s = DropAllCapabilities(&dropped);
    int code = s.ok() ? 1
               : OwnCapEff() != before ? 2
               : s.message().find("thread") == std::string::npos ? 3
                                                                  : 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    other.join();
    _exit(code);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

}  // namespace
}  // namespace nfsdh
