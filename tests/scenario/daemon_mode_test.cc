// nfsd-helper without --foreground: it detaches (and changes to "/") only
// once the paths it was given are absolute, so a relative --db names a file
// under the directory it was started in.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
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

// Stops, when the test ends however it ends, every process whose command
// line has `arg` (the test's own control socket path): a detached daemon
// that a failed check left running would otherwise outlive the test, with
// every file descriptor it inherited.
class ReapOnExit {
 public:
  explicit ReapOnExit(std::string arg) : arg_(std::move(arg)) {}
  ~ReapOnExit() {
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return;
    while (struct dirent* e = readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(atoi(e->d_name));
      if (pid <= 1 || pid == getpid()) continue;
      std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(f)),
                          std::istreambuf_iterator<char>());
      if (cmdline.find(arg_) != std::string::npos) kill(pid, SIGKILL);
    }
    closedir(proc);
  }
  ReapOnExit(const ReapOnExit&) = delete;
  ReapOnExit& operator=(const ReapOnExit&) = delete;

 private:
  std::string arg_;
};

TEST_CASE("a relative --db names a file under the starting directory",
          "[scenario][options]") {
  TempDir t;
  // A name of its own, so that a database wrongly made under / is known to
  // be this test's, and removed.
  const std::string rel = "nfsdh-reldb-" + std::to_string(getpid());
  const std::string sock = t.path() + "/ctl.sock";
  ReapOnExit reap(sock);
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

// The process that was started exits only once the daemon serves: until
// then a helper-ctl run right after it would find no control socket. The
// test hook slows the start after the database is open, where the parent
// used to be released.
TEST_CASE("a detached helper's parent exits once helper-ctl can reach it",
          "[scenario][options]") {
  TempDir t;
  const std::string sock = t.path() + "/ctl.sock";
  ReapOnExit reap(sock);
  std::ofstream(t.path() + "/nfs.conf") << "[nfsd-helper]\n";
  REQUIRE(mkdir((t.path() + "/nfsd").c_str(), 0755) == 0);
  REQUIRE(setenv("NFSD_HELPER_TEST_START_DELAY_MS", "700", 1) == 0);
  int code = RunIn(t.path(), {"--db", t.path() + "/db/state.sqlite",
                              "--nfsdfs", "nfsd", "--cld-pipe", "none",
                              "--ctl-socket", sock, "--config", "nfs.conf",
                              "--nfsdcld-db", "none", "--nfsdcltrack-db",
                              "none"});
  unsetenv("NFSD_HELPER_TEST_START_DELAY_MS");
  REQUIRE(code == 0);
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
  CHECK(kill(daemon, 0) != 0);
}

}  // namespace
}  // namespace scenario
