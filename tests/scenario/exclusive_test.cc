// Scopes kept apart, against the real helper: a second helper on the same
// (database, scope) refuses to start and names the first; other scopes of the
// same database are served side by side; a helper killed by SIGKILL leaves
// nothing that keeps the next one out.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

// Runs the helper with `args` (after the test defaults) and expects it to
// refuse to start: exit status 1. Returns what it wrote.
std::string ExpectNoStart(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NFSD_HELPER_BIN, "--foreground",
                                   "--cld-pipe",    "none",
                                   "--nfsdcld-db",  "none",
                                   "--nfsdcltrack-db", "none"};
  argv.insert(argv.end(), args.begin(), args.end());
  nfsdsim::Process p;
  REQUIRE(p.Start(argv));
  auto st = p.Wait(kStepTimeout);
  // A helper that serves instead of refusing is killed by ~Process.
  REQUIRE(st);
  REQUIRE(p.WaitForStderrEnd(kStepTimeout));
  INFO(p.Stderr());
  CHECK(st->exited);
  CHECK(st->code == 1);
  CHECK(p.Stderr().find("cannot start") != std::string::npos);
  return p.Stderr();
}

TEST_CASE("a second helper on the same database and scope is refused, and "
          "names the helper that serves it",
          "[scenario][lock]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node a(t.path() + "/nfsd-a", db, "default");
  a.StartHelper();
  REQUIRE(a.k().StartInstance(1000).ok());
  REQUIRE(a.k().EstablishState("A", "", Minor::kV41).ok());
  auto before = ScopeOf(db);
  REQUIRE(before);

  std::string out = ExpectNoStart({"--nfsdfs", t.path() + "/nfsd-x", "--db",
                                   db, "--scope", "default", "--ctl-socket",
                                   t.path() + "/x.sock"});
  CHECK(out.find(db) != std::string::npos);
  CHECK(out.find("scope default") != std::string::npos);
  CHECK(out.find("pid " + std::to_string(a.HelperPid())) !=
        std::string::npos);
  // It changed nothing: the first helper's scope row and records stand, and
  // the first helper still serves.
  auto after = ScopeOf(db);
  REQUIRE(after);
  CHECK(after->new_boot_time == before->new_boot_time);
  CHECK(after->max_instance == before->max_instance);
  CHECK(RecordedIds(db) == std::set<std::string>{"A"});
  CHECK(a.k().EstablishState("B", "", Minor::kV41).ok());

  // The lock file: next to the database, private.
  struct stat st;
  REQUIRE(lstat((db + ".default.lock").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);

  // Another scope of the same database is served at the same time.
  Node b(t.path() + "/nfsd-b", db, "other");
  b.StartHelper();
  REQUIRE(b.k().StartInstance(2000).ok());
  REQUIRE(b.k().EstablishState("C", "", Minor::kV41).ok());
  CHECK(RecordedIds(db, "other") == std::set<std::string>{"C"});
  CHECK(a.k().EstablishState("D", "", Minor::kV41).ok());
  b.StopHelper();

  // The kernel drops the lock of a helper killed by SIGKILL.
  a.KillHelper();
  a.StartHelper();
  CHECK(a.HelperRunning());
  a.StopHelper();
}

TEST_CASE("a lock file that is a symbolic link is refused and not followed",
          "[scenario][lock]") {
  TempDir t;
  std::string state = t.path() + "/state";
  std::string db = state + "/state.sqlite";
  REQUIRE(mkdir(state.c_str(), 0700) == 0);
  std::string target = t.path() + "/elsewhere";
  REQUIRE(symlink(target.c_str(), (db + ".default.lock").c_str()) == 0);
  std::string out = ExpectNoStart({"--nfsdfs", t.path() + "/nfsd", "--db", db,
                                   "--ctl-socket", t.path() + "/x.sock"});
  CHECK(out.find(db + ".default.lock") != std::string::npos);
  CHECK(access(target.c_str(), F_OK) != 0);
}

}  // namespace
}  // namespace scenario
