// The RFC 7530 §9.6.3 / RFC 8881 §8.4.3 scenarios of
// ../shared/research/recovery.md (numbers in the test names), played by the
// simulated kernel against the real nfsd-helper binary.
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <ctime>
#include <fstream>
#include <glob.h>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

const std::string kA = "Linux NFSv4.1 client-a.example.org";
const std::string kB = "Linux NFSv4.0 client-b.example.org/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe\xff binary id \n", 16);

// One server (scope "default") with its database and helper.
struct World {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n{t.path() + "/nfsd", db};
  World() { n.StartHelper(); }

  std::map<std::string, std::string> Boot() {
    auto r = n.k().StartInstance(time(nullptr));
    INFO(n.Log());
    REQUIRE(r.ok());
    return r.allow;
  }
  void Get(const std::string& id, Minor m = Minor::kV41,
           const std::string& hash = "") {
    auto r = n.k().EstablishState(id, hash, m);
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  void Expire(const std::string& id) {
    auto r = n.k().Expire(id);
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  void EndGrace() {
    auto r = n.k().EndGrace();
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  // Reclaims; on success the client re-establishes its record, as nfsd does
  // (v4.0 at its OPEN_CONFIRM, v4.1 at RECLAIM_COMPLETE).
  bool Reclaim(const std::string& id, const std::string& hash = "") {
    if (n.k().Reclaim(id, hash) != ReclaimResult::kAllowed) return false;
    Get(id, Minor::kV41, hash);
    return true;
  }
  // A first boot whose grace period ended, so that clients can get state.
  void Settle() {
    CHECK(Boot().empty());
    EndGrace();
  }
};

TEST_CASE("daemon, scenario 1: a client with state reclaims after a restart",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Get(kC, Minor::kV40);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA, kC});
  auto allow = w.Boot();
  CHECK(Ids(allow) == std::set<std::string>{kA, kC});
  CHECK(w.Reclaim(kA));
  CHECK(w.Reclaim(kC));
  w.EndGrace();
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA, kC});
  auto scope = ScopeOf(w.db);
  REQUIRE(scope);
  CHECK(scope->boot_time == w.n.k().CurrentInstance());
  CHECK_FALSE(scope->new_boot_time);
}

TEST_CASE("daemon, scenario 2: a client that never got state may not reclaim",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);  // B only confirmed a client id: nfsd sends no upcall
  w.Boot();
  CHECK(w.n.k().Reclaim(kB, "") == ReclaimResult::kReclaimBad);
  CHECK(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 3: EC1, a client whose lease expired is denied",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Get(kB, Minor::kV40);
  w.Expire(kB);  // durable before anyone may take B's locks
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
  w.Boot();
  CHECK(w.n.k().Reclaim(kB, "") == ReclaimResult::kReclaimBad);
  CHECK(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 4: courtesy expiry, and a courtesy client that returns",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Expire(kA);
  SECTION("it stays away: denied") {
    w.Boot();
    CHECK_FALSE(w.Reclaim(kA));
  }
  SECTION("it comes back before the restart: allowed") {
    w.Get(kA);
    w.Boot();
    CHECK(w.Reclaim(kA));
  }
}

TEST_CASE("daemon, scenario 5: EC2, a client silent through a grace period is denied",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Get(kB);
  CHECK(Ids(w.Boot()) == std::set<std::string>{kA, kB});
  CHECK(w.Reclaim(kB));  // A is partitioned for the whole grace period
  w.EndGrace();
  CHECK(RecordedIds(w.db) == std::set<std::string>{kB});
  w.Boot();
  CHECK_FALSE(w.Reclaim(kA));
  CHECK(w.Reclaim(kB));
}

TEST_CASE("daemon, scenario 6: a restart during grace keeps every client",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Boot();  // nfsd dies before its grace period ends
  auto allow = w.Boot();
  CHECK(Ids(allow) == std::set<std::string>{kA});
  CHECK(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 7: repeated restarts in grace", "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Boot();  // grace 1a
  REQUIRE(w.Reclaim(kA));
  w.Boot();  // crash; grace 1b
  SECTION("silent in 1b: dropped when 1b ends") {
    w.EndGrace();
    CHECK(RecordedIds(w.db).empty());
    w.Boot();
    CHECK_FALSE(w.Reclaim(kA));
  }
  SECTION("reclaims again in 1b: kept") {
    REQUIRE(w.Reclaim(kA));
    w.EndGrace();
    w.Boot();
    CHECK(w.Reclaim(kA));
  }
}

TEST_CASE("daemon, scenario 8: reclaim, grace ends, lease expires: denied",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.Boot();
  REQUIRE(w.Reclaim(kA));
  w.EndGrace();
  w.Expire(kA);
  w.Boot();
  CHECK_FALSE(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 12: helper dies after COMMIT, before the reply",
          "[scenario][crash]") {
  World w;
  w.Settle();
  w.n.StopHelper();
  w.n.StartHelper({{"NFSD_HELPER_TEST_CRASH", "after-commit:1"}});
  auto pending = SubmitCreate(w.n.k(), w.n.k().CurrentInstance(), kA, Minor::kV41);
  auto death = w.n.WaitHelperDeath();
  CHECK(death.signal == SIGKILL);
  // Durable, but the kernel never heard so: the request is replayed.
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
  CHECK(w.n.k().Stats(nfsdfs::Channel::kCreateClient).requeued == 1);
  w.n.StartHelper();
  auto r = w.n.k().Await(pending, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == 0);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
  w.Boot();
  CHECK(w.Reclaim(kA));  // a harmless false positive at worst
}

TEST_CASE("daemon, scenario 13: no reply before the record is durable",
          "[scenario][crash]") {
  World w;
  w.Settle();
  w.n.StopHelper();
  w.n.StartHelper({{"NFSD_HELPER_TEST_CRASH", "before-commit:1"}});
  auto pending = SubmitCreate(w.n.k(), w.n.k().CurrentInstance(), kA, Minor::kV40);
  w.n.WaitHelperDeath();
  // Killed before COMMIT: nothing on disk, and nothing was answered.
  auto early = w.n.k().Await(pending, 0ms);
  CHECK_FALSE(early.answered);
  CHECK(RecordedIds(w.db).empty());
  w.n.StartHelper();
  auto r = w.n.k().Await(pending, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == 0);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
}

TEST_CASE("daemon, scenario 15: a crash around grace_done's COMMIT is atomic",
          "[scenario][crash]") {
  const char* where =
      GENERATE("before-commit:1", "after-commit:1");
  World w;
  w.Settle();
  w.Get(kA);
  w.Get(kB);
  w.Boot();
  REQUIRE(w.Reclaim(kB));  // A stays silent through this grace period
  int64_t inst = w.n.k().CurrentInstance();
  w.n.StopHelper();
  w.n.StartHelper({{"NFSD_HELPER_TEST_CRASH", where}});
  auto pending = w.n.k().SubmitWithSeq(
      nfsdfs::Channel::kGraceDone, [&](uint64_t seq) {
        nfsdfs::GraceDoneRequest r;
        r.seq = seq;
        r.instance = inst;
        return nfsdfs::EncodeRequest(r);
      });
  w.n.WaitHelperDeath();
  auto scope = ScopeOf(w.db);
  REQUIRE(scope);
  if (std::string(where).rfind("before", 0) == 0) {
    CHECK(scope->new_boot_time == inst);  // nothing of it happened
    CHECK(RecordedIds(w.db) == std::set<std::string>{kA, kB});
  } else {
    CHECK(scope->boot_time == inst);  // all of it happened
    CHECK_FALSE(scope->new_boot_time);
    CHECK(RecordedIds(w.db) == std::set<std::string>{kB});
  }
  w.n.StartHelper();
  auto r = w.n.k().Await(pending, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == 0);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kB});
  w.Boot();
  CHECK_FALSE(w.Reclaim(kA));
  CHECK(w.Reclaim(kB));
}

TEST_CASE("daemon, scenario 17: a clock that stepped back cannot revive a client",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.n.StopHelper();
  // Make the past lie 10^6 s in the future: as if the clock had been set
  // that far back since the records were written.
  const int64_t kShift = 1000000;
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(w.db.c_str(), &h) == SQLITE_OK);
  std::string sql =
      "UPDATE scopes SET boot_time = boot_time + " + std::to_string(kShift) +
      ", max_instance = max_instance + " + std::to_string(kShift) +
      "; UPDATE v4clients SET instance = instance + " +
      std::to_string(kShift) + ";";
  REQUIRE(sqlite3_exec(h, sql.c_str(), 0, 0, 0) == SQLITE_OK);
  sqlite3_close(h);
  auto before = ScopeOf(w.db);
  REQUIRE(before);
  w.n.StartHelper();

  auto allow = w.Boot();
  CHECK(w.n.k().CurrentInstance() == before->max_instance + 1);
  CHECK(Ids(allow) == std::set<std::string>{kA});
  w.EndGrace();  // A stays silent; others may take its locks now
  w.Boot();
  CHECK_FALSE(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 18: a corrupt database allows nobody and is kept aside",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.n.StopHelper();
  // A bad disk block in the records; the header still says the file is ours
  // (a file that does not is never set aside: self_repair_test.cc).
  DamageTable(w.db, "v4clients");
  w.n.StartHelper();
  auto allow = w.Boot();
  CHECK(allow.empty());
  CHECK_FALSE(w.Reclaim(kA));
  CHECK(w.n.WaitForLog("moved to"));
  glob_t g;
  REQUIRE(glob((w.db + ".corrupt-*").c_str(), 0, nullptr, &g) == 0);
  CHECK(g.gl_pathc >= 1);
  globfree(&g);
  // The new, empty database works: clients can be recorded again.
  w.EndGrace();
  w.Get(kB);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kB});
}

TEST_CASE("daemon, scenario 18: a missing database allows nobody", "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.n.StopHelper();
  for (const char* sfx : {"", "-wal", "-shm"}) unlink((w.db + sfx).c_str());
  w.n.StartHelper();
  CHECK(w.Boot().empty());
  CHECK_FALSE(w.Reclaim(kA));
}

TEST_CASE("daemon, scenario 19: a different principal may not reclaim",
          "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA, Minor::kV41, Hash("alice"));
  w.Get(kB, Minor::kV40);  // no principal (AUTH_SYS)
  auto allow = w.Boot();
  CHECK(allow.at(kA) == Hash("alice"));
  CHECK(allow.at(kB).empty());
  CHECK(w.n.k().Reclaim(kA, Hash("mallory")) == ReclaimResult::kReclaimBad);
  CHECK(w.n.k().Reclaim(kA, Hash("alice")) == ReclaimResult::kAllowed);
  CHECK(w.n.k().Reclaim(kB, Hash("anyone")) == ReclaimResult::kAllowed);
}

TEST_CASE("daemon, scenario 20: a record in one scope allows nothing in another",
          "[scenario]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node x(t.path() + "/nfsd-x", db, "netns-x");
  Node y(t.path() + "/nfsd-y", db, "netns-y");
  x.StartHelper();
  y.StartHelper();
  for (Node* n : {&x, &y}) {
    REQUIRE(n->k().StartInstance(1000).ok());
    REQUIRE(n->k().EndGrace().ok());
  }
  REQUIRE(x.k().EstablishState(kA, "", Minor::kV41).ok());
  REQUIRE(y.k().EstablishState(kB, "", Minor::kV41).ok());
  auto ax = x.k().StartInstance(2000);
  auto ay = y.k().StartInstance(2000);
  REQUIRE(ax.ok());
  REQUIRE(ay.ok());
  CHECK(Ids(ax.allow) == std::set<std::string>{kA});
  CHECK(Ids(ay.allow) == std::set<std::string>{kB});
  CHECK(y.k().Reclaim(kA, "") == ReclaimResult::kReclaimBad);
  CHECK(RecordedIds(db, "netns-x") == std::set<std::string>{kA});
  CHECK(RecordedIds(db, "netns-y") == std::set<std::string>{kB});
}

TEST_CASE("a helper restarted while nfsd runs carries on", "[scenario]") {
  World w;
  w.Settle();
  w.Get(kA);
  w.n.StopHelper();
  w.n.StartHelper();  // same instance, read back from the database
  w.Get(kB);
  w.Expire(kA);
  w.n.KillHelper();
  w.n.StartHelper();
  CHECK(Ids(w.Boot()) == std::set<std::string>{kB});
}

TEST_CASE("requests queued while no helper runs are served when one starts",
          "[scenario]") {
  World w;
  w.Settle();
  w.n.StopHelper();
  auto t1 = SubmitCreate(w.n.k(), w.n.k().CurrentInstance(), kA);
  w.n.StartHelper();
  auto r = w.n.k().Await(t1, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == 0);
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
}

}  // namespace
}  // namespace scenario
