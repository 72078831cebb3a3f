// Scopes kept apart, against the real helper: a second helper on the same
// (database, scope) refuses to start and names the first; other scopes of the
// same database are served side by side; a helper killed by SIGKILL leaves
// nothing that keeps the next one out; and outside the initial network
// namespace the default scope is never taken by accident.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

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

TEST_CASE("a helper that finds another reader on an upcall file names it",
          "[scenario][lock]") {
  // Scopes are locked apart, but two helpers of different scopes pointed at
  // one nfsd filesystem would split its upcalls between them: each goes to
  // whichever reads it first. Only the ID-mapping channels used to look
  // for another reader.
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string nfsd = t.path() + "/nfsd";
  Node a(nfsd, db, "default");
  a.StartHelper();
  nfsdsim::Process b;
  REQUIRE(b.Start({NFSD_HELPER_BIN, "--foreground", "--nfsdfs", nfsd, "--db",
                   db, "--scope", "other", "--cld-pipe", "none", "--nfsdcld-db",
                   "none", "--nfsdcltrack-db", "none", "--ctl-socket",
                   t.path() + "/b.sock"}));
  for (const char* file :
       {"allow_client", "create_client", "expire_client", "grace_done"}) {
    bool named = b.WaitForStderr(
        nfsd + "/" + file + " is also served by pid " +
            std::to_string(a.HelperPid()) +
            " (nfsd-helper): each upcall goes to whichever reads it first",
        kStepTimeout);
    INFO(b.Stderr());
    CHECK(named);
  }
  REQUIRE(b.Signal(SIGTERM));
  REQUIRE(b.Wait(kStepTimeout));
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

namespace scenario {
namespace {

// A /proc with only the two network namespace links, as the helper reads
// them under NFSD_HELPER_TEST_PROC; pid 1's is left out if `init` is "".
std::string FakeProc(const std::string& proc, const std::string& self,
                     const std::string& init) {
  REQUIRE(std::system(("mkdir -p '" + proc + "/self/ns' '" + proc +
                       "/1/ns'").c_str()) == 0);
  REQUIRE(symlink(self.c_str(), (proc + "/self/ns/net").c_str()) == 0);
  if (!init.empty())
    REQUIRE(symlink(init.c_str(), (proc + "/1/ns/net").c_str()) == 0);
  return proc;
}

TEST_CASE("outside the initial network namespace the helper needs a scope "
          "given explicitly",
          "[scenario][lock][netns]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::vector<std::string> base = {
      NFSD_HELPER_BIN, "--foreground",    "--nfsdfs",
      "none",          "--cld-pipe",      t.path() + "/pipefs/nfsd/cld",
      "--nfsdcld-db",  "none",            "--nfsdcltrack-db",
      "none",          "--db",            db,
      "--ctl-socket",  t.path() + "/x.sock"};
  std::string empty_conf = t.path() + "/empty.conf";
  std::string scope_conf = t.path() + "/scope.conf";
  {
    std::ofstream(empty_conf) << "[nfsd-helper]\ndebug = no\n";
    std::ofstream(scope_conf) << "[nfsd-helper]\nscope = netns-2\n";
  }
  nfsdsim::ProcessOptions other;
  other.env["NFSD_HELPER_TEST_PROC"] =
      FakeProc(t.path() + "/proc", "net:[4026532174]", "net:[4026531833]");

  SECTION("no scope: refused, and told to give one") {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"--config", empty_conf});
    nfsdsim::Process p;
    REQUIRE(p.Start(argv, other));
    auto st = p.Wait(kStepTimeout);
    REQUIRE(st);  // one that serves instead is killed by ~Process
    REQUIRE(p.WaitForStderrEnd(kStepTimeout));
    INFO(p.Stderr());
    CHECK(st->exited);
    CHECK(st->code == 1);
    CHECK(p.Stderr().find("cannot start") != std::string::npos);
    CHECK(p.Stderr().find("network namespace other than the initial one "
                          "(net:[4026532174], pid 1 in net:[4026531833])") !=
          std::string::npos);
    CHECK(p.Stderr().find("--scope") != std::string::npos);
    // Refused before the database was touched.
    CHECK(access(db.c_str(), F_OK) != 0);
  }
  for (int how = 0; how < 3; ++how) {
    const char* what[] = {"a scope on the command line", "a scope in nfs.conf",
                          "pid 1's namespace unreadable"};
    DYNAMIC_SECTION(what[how] << ": served") {
      std::vector<std::string> argv = base;
      nfsdsim::ProcessOptions po = other;
      std::string scope = "default";
      if (how == 0) {
        argv.insert(argv.end(),
                    {"--config", empty_conf, "--scope", "netns-1"});
        scope = "netns-1";
      } else if (how == 1) {
        argv.insert(argv.end(), {"--config", scope_conf});
        scope = "netns-2";
      } else {
        argv.insert(argv.end(), {"--config", empty_conf});
        po.env["NFSD_HELPER_TEST_PROC"] =
            FakeProc(t.path() + "/proc-no-1", "net:[4026532174]", "");
      }
      nfsdsim::Process p;
      REQUIRE(p.Start(argv, po));
      CHECK(p.WaitForStderr(", scope " + scope + ":", kStepTimeout));
      // Logged once its SIGTERM handler is in place.
      CHECK(p.WaitForStderr("serving helper-ctl on", kStepTimeout));
      INFO(p.Stderr());
      if (how == 2)
        CHECK(p.Stderr().find("cannot tell whether this is the initial "
                              "network namespace") != std::string::npos);
      CHECK(p.IsRunning());
      p.Signal(SIGTERM);
      auto st = p.Wait(kStepTimeout);
      REQUIRE(st);
      CHECK(st->success());
    }
  }
}

}  // namespace
}  // namespace scenario
