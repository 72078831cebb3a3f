// Self-repair, against the real helper: a database of ours found damaged
// while serving is answered -EIO and the helper exits, so that its restart
// sets the file aside and starts empty (no client may reclaim); a file that
// is not an nfsd-helper database is never renamed or changed.
#include <glob.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

size_t Matches(const std::string& pattern) {
  glob_t g;
  size_t n = glob(pattern.c_str(), 0, nullptr, &g) == 0 ? g.gl_pathc : 0;
  globfree(&g);
  return n;
}

std::string Contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_CASE("damage found while serving is answered -EIO and the helper "
          "exits, and its restart sets the database aside and allows nobody",
          "[scenario][self-repair]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper();
  REQUIRE(n.k().StartInstance(1000).ok());
  REQUIRE(n.k().EndGrace().ok());
  REQUIRE(n.k().EstablishState("A", "", Minor::kV41).ok());
  REQUIRE(n.k().EstablishState("B", "", Minor::kV41).ok());

  // The disk goes bad under the running helper.
  DamageTable(db, "v4clients");
  {
    // Another connection's change, which makes the helper read the file
    // again at its next transaction rather than trust its cache.
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    CHECK(sqlite3_exec(h, "INSERT INTO scopes (name) VALUES ('bump')", 0, 0,
                       0) == SQLITE_OK);
    sqlite3_close(h);
  }
  // A burst of creates: the batch that meets the damage answers every one
  // of its requests -EIO; what it did not read is never answered 0.
  std::vector<nfsdsim::Ticket> tickets;
  for (const char* id : {"C", "D", "E", "F"})
    tickets.push_back(SubmitCreate(n.k(), n.k().CurrentInstance(), id));
  int eio = 0;
  for (const auto& t : tickets) {
    REQUIRE(t.ok());
    auto r = n.k().Await(t, kStepTimeout);
    INFO(n.Log());
    if (r.answered) {
      CHECK(r.status == -EIO);
      eio += r.status == -EIO;
    }
  }
  CHECK(eio >= 1);
  // It does not go on answering -EIO for ever: it exits, non-zero, saying
  // why, and releases the upcall files.
  auto st = n.WaitHelperDeath();
  CHECK(st.exited);
  CHECK(st.code == 1);
  CHECK(n.Log().find("damaged") != std::string::npos);

  // Restarted (as systemd does, Restart=on-failure): the fail-closed start.
  n.StartHelper();
  auto start = n.k().StartInstance(2000);
  REQUIRE(start.ok());
  CHECK(start.allow.empty());
  CHECK(n.k().Reclaim("A", "") != ReclaimResult::kAllowed);
  CHECK(n.WaitForLog("moved to"));
  CHECK(Matches(db + ".corrupt-*") >= 1);
  n.StopHelper();
}

TEST_CASE("a damaged database is not set aside while another scope's helper "
          "uses it",
          "[scenario][self-repair]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node a(t.path() + "/nfsd-a", db, "a");
  a.StartHelper();
  REQUIRE(a.k().StartInstance(1000).ok());
  REQUIRE(a.k().EstablishState("A", "", Minor::kV41).ok());
  // The disk goes bad while helper a, between transactions, has not met it.
  DamageTable(db, "v4clients");
  const std::string before = Contents(db);

  // Helper b starts on another scope of the same database: it must not
  // move the file from under helper a.
  std::string err = ExpectNoStart({"--nfsdfs", t.path() + "/nfsd-b-none",
                                   "--db", db, "--scope", "b", "--ctl-socket",
                                   t.path() + "/b.sock"});
  CHECK(err.find("another nfsd-helper") != std::string::npos);
  CHECK(err.find("stop every nfsd-helper of this database") !=
        std::string::npos);
  CHECK(Matches(db + ".corrupt-*") == 0);
  CHECK(Contents(db) == before);
  CHECK(a.HelperRunning());
  a.KillHelper();

  // Alone, a helper sets it aside as before.
  a.StartHelper();
  CHECK(a.WaitForLog("moved to"));
  CHECK(Matches(db + ".corrupt-*") >= 1);
  a.StopHelper();
}

TEST_CASE("a file that is not an nfsd-helper database is refused and left "
          "untouched, damaged or not",
          "[scenario][self-repair]") {
  TempDir t;
  std::string state = t.path() + "/state";
  std::string db = state + "/state.sqlite";
  REQUIRE(mkdir(state.c_str(), 0700) == 0);

  SECTION("a text file") {
    std::ofstream f(db);
    for (int i = 0; i < 200; ++i) f << "export /srv *(rw) # line " << i << "\n";
  }
  SECTION("another program's SQLite database, damaged") {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h,
                         "CREATE TABLE grace (current INTEGER); "
                         "CREATE TABLE rec (id BLOB PRIMARY KEY); "
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT "
                         "i + 1 FROM n WHERE i < 500) INSERT INTO rec SELECT "
                         "randomblob(100) FROM n;",
                         0, 0, 0) == SQLITE_OK);
    sqlite3_close(h);
    // Its schema page, after the 100-byte file header, is garbage.
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f << std::string(1000, '\xee');
  }
  struct stat before;
  REQUIRE(stat(db.c_str(), &before) == 0);
  std::string bytes = Contents(db);
  sleep(1);  // an mtime a rewrite would change even on a coarse clock

  nfsdsim::Process p;
  REQUIRE(p.Start({NFSD_HELPER_BIN, "--foreground", "--nfsdfs",
                   t.path() + "/nfsd", "--db", db, "--ctl-socket",
                   t.path() + "/x.sock", "--cld-pipe", "none", "--nfsdcld-db",
                   "none", "--nfsdcltrack-db", "none"}));
  auto st = p.Wait(kStepTimeout);
  REQUIRE(st);  // a helper that starts instead is killed by ~Process
  REQUIRE(p.WaitForStderrEnd(kStepTimeout));
  INFO(p.Stderr());
  CHECK(st->exited);
  CHECK(st->code == 1);
  CHECK(p.Stderr().find("cannot start") != std::string::npos);
  CHECK(p.Stderr().find(db + " is not an nfsd-helper database") !=
        std::string::npos);
  CHECK(Matches(db + ".corrupt-*") == 0);
  struct stat after;
  REQUIRE(stat(db.c_str(), &after) == 0);
  CHECK(Contents(db) == bytes);
  CHECK(after.st_ino == before.st_ino);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(access((db + "-wal").c_str(), F_OK) != 0);
}

}  // namespace
}  // namespace scenario
