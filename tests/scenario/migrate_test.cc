// Switching from nfsdcld or nfsdcltrack to nfsd-helper: the real daemon, at
// its first start over the simulated kernel, imports the old tracker's
// database and allows exactly the clients that tracker would have allowed.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <ctime>

#include "ctl/test_util.h"
#include "daemon/migrate/test_sources.h"
#include "tests/scenario/harness.h"
#include "tests/sim/cld_pipe_story.h"

namespace scenario {
namespace {

using nfsdh::migrate::testing::AddCltrack;
using nfsdh::migrate::testing::AddRec;
using nfsdh::migrate::testing::MakeNfsdcld;
using nfsdh::migrate::testing::MakeNfsdcltrack;
using nfsdh::migrate::testing::Sha256;

const std::string kA = "Linux NFSv4.2 migrated-a";
const std::string kB = "Linux NFSv4.0 migrated-b/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe migrated-c", 14);
const std::string kNew = "Linux NFSv4.2 new-during-nfsdcld-grace";

struct MigrateWorld {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string cld = t.path() + "/nfsdcld/main.sqlite";
  std::string track = t.path() + "/nfsdcltrack/main.sqlite";
  Node n{t.path() + "/nfsd", db};
  MigrateWorld() {
    REQUIRE(mkdir((t.path() + "/nfsdcld").c_str(), 0700) == 0);
    REQUIRE(mkdir((t.path() + "/nfsdcltrack").c_str(), 0700) == 0);
  }
  void Start() {
    n.StartHelper({}, {"--nfsdcld-db", cld, "--nfsdcltrack-db", track});
  }
  std::map<std::string, std::string> Boot() {
    auto r = n.k().StartInstance(time(nullptr));
    INFO(n.Log());
    REQUIRE(r.ok());
    return r.allow;
  }
  bool Reclaim(const std::string& id, const std::string& hash = "") {
    if (n.k().Reclaim(id, hash) != ReclaimResult::kAllowed) return false;
    auto r = n.k().EstablishState(id, hash, Minor::kV41);
    INFO(n.Log());
    REQUIRE(r.ok());
    return true;
  }
};

TEST_CASE(
    "daemon, migration: nfsdcld stopped in grace: the first start "
    "allows its recovery epoch, principals checked",
    "[scenario][migrate]") {
  MigrateWorld w;
  const std::string hash_a = Hash("principal-a");
  // nfsdcld restarted into epoch 5 during grace; kA had reclaimed already,
  // kNew got a record in epoch 5 without being in epoch 4.
  MakeNfsdcld(w.cld, 4, 5, 4);
  AddRec(w.cld, 4, kA, hash_a);
  AddRec(w.cld, 4, kB);
  AddRec(w.cld, 4, kC);
  AddRec(w.cld, 5, kA, hash_a);
  AddRec(w.cld, 5, kNew);
  const std::string sum = Sha256(w.cld);

  w.Start();
  CHECK(w.n.WaitForLog("imported 3 client(s) from the nfsdcld database"));
  auto allow = w.Boot();
  CHECK(allow ==
        std::map<std::string, std::string>{{kA, hash_a}, {kB, ""}, {kC, ""}});
  // Another principal with kA's id is not kA.
  CHECK(w.n.k().Reclaim(kA, Hash("someone-else")) ==
        ReclaimResult::kReclaimBad);
  CHECK(w.Reclaim(kA, hash_a));
  CHECK(w.Reclaim(kB));
  CHECK_FALSE(w.Reclaim(kNew));
  auto r = w.n.k().EndGrace();
  INFO(w.n.Log());
  REQUIRE(r.ok());
  // kC stayed silent through the whole grace period.
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA, kB});

  // A restart imports nothing again.
  w.n.StopHelper();
  w.Start();
  CHECK(Ids(w.Boot()) == std::set<std::string>{kA, kB});
  CHECK(w.n.Log().find("imported 3 client(s)") ==
        w.n.Log().rfind("imported 3 client(s)"));
  CHECK(Sha256(w.cld) == sum);
}

TEST_CASE(
    "daemon, migration: nfsdcld not in grace, and nfsdcltrack when "
    "there is no nfsdcld database",
    "[scenario][migrate]") {
  MigrateWorld w;
  SECTION("nfsdcld") {
    MakeNfsdcld(w.cld, 4, 3, 0);
    AddRec(w.cld, 3, kA);
    AddRec(w.cld, 3, kC, Hash("c"));
    MakeNfsdcltrack(w.track);  // ignored: nfsdcld's database comes first
    AddCltrack(w.track, kB, 1700000000, 1);
    w.Start();
    CHECK(w.Boot() ==
          std::map<std::string, std::string>{{kA, ""}, {kC, Hash("c")}});
  }
  SECTION("nfsdcltrack") {
    MakeNfsdcltrack(w.track);
    AddCltrack(w.track, kB, 1700000000, 0);
    AddCltrack(w.track, kC, 1700000100, 1);
    const std::string sum = Sha256(w.track);
    w.Start();
    CHECK(w.n.WaitForLog("from the nfsdcltrack database"));
    CHECK(Ids(w.Boot()) == std::set<std::string>{kB, kC});
    CHECK(Sha256(w.track) == sum);
  }
  SECTION(
      "a database that does not validate: nothing, and the start goes "
      "on") {
    MakeNfsdcld(w.cld, 4, 3, 0);
    AddRec(w.cld, 3, kA);
    nfsdh::migrate::testing::SqlExec(
        w.cld, "UPDATE parameters SET value = '7' WHERE key = 'version'");
    w.Start();
    CHECK(w.n.WaitForLog("nothing was imported"));
    CHECK(w.Boot().empty());
  }
}

TEST_CASE(
    "daemon, migration: helper-ctl import-nfsdcld before the first "
    "start, refused while the daemon runs",
    "[scenario][migrate]") {
  using nfsdh::ctl::testing::RunCtl;
  MigrateWorld w;
  MakeNfsdcld(w.cld, 3, 2, 0);
  AddRec(w.cld, 2, kA);
  AddRec(w.cld, 2, kB);
  const std::string sock = w.t.path() + "/nfsd.ctl.sock";
  const std::vector<std::string> cmd = {
      "import-nfsdcld",   w.cld,  "--db",         w.db,
      "--nfsdcltrack-db", "none", "--ctl-socket", sock};

  auto dry = cmd;
  dry.push_back("--dry-run");
  auto r = RunCtl(dry);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("would import 2 client(s)"));
  struct stat sb;
  CHECK(stat(w.db.c_str(), &sb) != 0);  // the dry run created nothing

  r = RunCtl(cmd);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("imported 2 client(s)"));
  r = RunCtl(cmd);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("already imported"));

  // The daemon's own import does not run again over it.
  w.n.StartHelper({}, {"--nfsdcld-db", w.cld, "--nfsdcltrack-db", "none"});
  r = RunCtl(cmd);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("stop it before importing"));
  CHECK(Ids(w.Boot()) == std::set<std::string>{kA, kB});
}

TEST_CASE("daemon, migration: a database written by Debian's nfsdcld",
          "[scenario][migrate]") {
  MigrateWorld w;
  // nfsdcld serves two nfsd instances and is stopped in the grace period of
  // the second: A and B (with a principal) reclaimed; C expired in the
  // first; D is new in the second. Its next grace start would allow the
  // recovery epoch: A and B.
  std::string error;
  nfsdsim::StoryResult story;
  bool made = nfsdsim::MakeNfsdcldDatabase(
      "start; complete A; create B@krb-b; complete C; expire C; gracedone; "
      "restart; reclaim A=allow; reclaim B@krb-b=allow; complete A; "
      "complete D",
      w.t.path() + "/nfsdcld", &error, &story);
  INFO(error);
  for (const std::string& line : story.transcript) INFO(line);
  REQUIRE(made);
  const std::string sum = Sha256(w.cld);

  w.Start();
  CHECK(w.n.WaitForLog("from the nfsdcld database"));
  auto allow = w.Boot();
  CHECK(allow ==
        std::map<std::string, std::string>{
            {nfsdsim::ClientId("A"), ""},
            {nfsdsim::ClientId("B"), nfsdsim::PrincipalHash("krb-b")}});
  CHECK(w.n.k().Reclaim(nfsdsim::ClientId("B"), Hash("other")) ==
        ReclaimResult::kReclaimBad);
  CHECK(w.n.k().Reclaim(nfsdsim::ClientId("D"), "") ==
        ReclaimResult::kReclaimBad);
  CHECK(Sha256(w.cld) == sum);
}

}  // namespace
}  // namespace scenario
