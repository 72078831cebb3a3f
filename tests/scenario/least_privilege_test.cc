// Least privilege, against the real helper: it runs without any capability
// once serving, keeps its files private, and refuses state another user
// could have written.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

std::string StatusLine(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
  return "?";
}

mode_t Mode(const std::string& path) {
  struct stat st;
  REQUIRE(lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("the serving helper holds no capability and private files",
          "[scenario][privileges]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string sock = t.path() + "/ctl/sock";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper({}, {"--ctl-socket", sock});
  REQUIRE(n.k().StartInstance(1000).ok());
  REQUIRE(n.k().EstablishState("A", "", Minor::kV41).ok());
  pid_t pid = *n.k().OpenPids(nfsdfs::Channel::kCreateClient).begin();
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    INFO(set);
    CHECK(StatusLine(pid, set) == "\t0000000000000000");
  }
  CHECK(n.WaitForLog("capabilities dropped: "));
  // Still served without them: a channel re-opened, a request answered.
  CHECK(n.k().EstablishState("B", "", Minor::kV41).ok());
  CHECK(Mode(t.path() + "/state") == 0700);
  for (const char* f : {"", "-wal", "-shm"}) {
    INFO(f);
    CHECK(Mode(db + f) == 0600);
  }
  CHECK(Mode(t.path() + "/ctl") == 0700);
  CHECK(Mode(sock) == 0600);
  n.StopHelper();
}

// Runs the helper on `db` and expects it to refuse to start with `why`.
void ExpectRefusal(const std::string& mount, const std::string& db,
                   const std::string& why) {
  nfsdsim::Process p;
  REQUIRE(p.Start({NFSD_HELPER_BIN, "--foreground", "--nfsdfs", mount, "--db",
                   db, "--ctl-socket", mount + ".sock", "--cld-pipe", "none",
                   "--nfsdcld-db", "none", "--nfsdcltrack-db", "none"}));
  auto st = p.Wait(kStepTimeout);
  // Its last words may still be on their way through the capture thread.
  REQUIRE(p.WaitForStderrEnd(kStepTimeout));
  INFO(p.Stderr());
  REQUIRE(st);
  CHECK(st->exited);
  CHECK(st->code == 1);
  CHECK(p.Stderr().find("cannot start") != std::string::npos);
  CHECK(p.Stderr().find(why) != std::string::npos);
}

TEST_CASE("a shared state directory or a database of another user is refused",
          "[scenario][privileges]") {
  TempDir t;
  std::string state = t.path() + "/state";
  std::string db = state + "/state.sqlite";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper();
  REQUIRE(n.k().StartInstance(1000).ok());
  n.StopHelper();
  std::string mount = t.path() + "/nfsd";

  REQUIRE(chmod(state.c_str(), 0777) == 0);
  ExpectRefusal(mount, db, "writable by group or others");
  REQUIRE(chmod(state.c_str(), 0770) == 0);
  REQUIRE(chown(state.c_str(), 0, 4242) == 0);
  ExpectRefusal(mount, db, "writable by group or others");
  REQUIRE(chmod(state.c_str(), 0700) == 0);
  REQUIRE(chown(db.c_str(), 4242, 0) == 0);
  ExpectRefusal(mount, db, "is owned by uid 4242");
  // Nothing was changed or set aside: back to root's, it starts again.
  REQUIRE(chown(db.c_str(), 0, 0) == 0);
  n.StartHelper();
  CHECK(ScopeOf(db)->new_boot_time.has_value());
  n.StopHelper();
}

}  // namespace
}  // namespace scenario
