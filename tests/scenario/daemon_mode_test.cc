// nfsd-helper without --foreground: it detaches (and changes to "/") only
// once the paths it was given are absolute, so a relative --db names a file
// under the directory it was started in.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ctl/test_util.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

// Runs nfsd-helper `args` in `dir`; returns the exit status of the process
// started (the daemon's parent, which exits once the daemon has opened its
// database).
int RunIn(const std::string& dir, const std::vector<std::string>& args) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(98);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(NFSD_HELPER_BIN));
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(NFSD_HELPER_BIN, argv.data());
    _exit(97);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("a relative --db names a file under the starting directory",
          "[scenario][options]") {
  TempDir t;
  // A name of its own, so that a database wrongly made under / is known to
  // be this test's, and removed.
  const std::string rel = "nfsdh-reldb-" + std::to_string(getpid());
  const std::string sock = t.path() + "/ctl.sock";
  std::ofstream(t.path() + "/nfs.conf") << "[nfsd-helper]\n";
  REQUIRE(mkdir((t.path() + "/nfsd").c_str(), 0755) == 0);
  int code = RunIn(t.path(), {"--db", rel + "/state.sqlite", "--nfsdfs", "nfsd",
                              "--cld-pipe", "none", "--ctl-socket", sock,
                              "--config", "nfs.conf", "--nfsdcld-db", "none",
                              "--nfsdcltrack-db", "none"});
  REQUIRE(code == 0);
  // The daemon runs; ask it what it serves, then stop it.
  nfsdh::ctl::testing::Result r =
      nfsdh::ctl::testing::RunCtl({"status", "--json", "--ctl-socket", sock});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  nlohmann::json j = nlohmann::json::parse(r.out);
  const pid_t daemon = j["pid"].get<pid_t>();
  REQUIRE(daemon > 1);
  REQUIRE(kill(daemon, SIGTERM) == 0);
  for (int i = 0; i < 100 && kill(daemon, 0) == 0; ++i)
    std::this_thread::sleep_for(100ms);
  struct stat st;
  const bool under_root = stat(("/" + rel).c_str(), &st) == 0;
  if (under_root) CHECK(std::system(("rm -rf '/" + rel + "'").c_str()) == 0);
  CHECK_FALSE(under_root);
  CHECK(j["database"] == t.path() + "/" + rel + "/state.sqlite");
  CHECK(stat((t.path() + "/" + rel + "/state.sqlite").c_str(), &st) == 0);
}

}  // namespace
}  // namespace scenario
