// Handing the machine back to nfsdcld (helper-ctl export-nfsdcld), checked
// against Debian's own /usr/sbin/nfsdcld: nfsd-helper records clients over
// the simulated cld pipe (tests/sim/sim_cld_pipe.h), is stopped, the verb writes
// nfsdcld's database, and the real nfsdcld started on it must offer at its
// next GraceStart exactly the clients nfsd-helper itself offers at its next
// one (the oracle: the same helper restarted on its own database); a fresh
// nfsd-helper importing the written file at its first start must offer them
// too (the round trip). And the other way round: a database nfsdcld wrote,
// imported (import-nfsdcld) and handed back, makes nfsdcld offer what it
// offered before.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ctl/test_util.h"
#include "tests/scenario/harness.h"
#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/cld_pipe_story.h"

namespace scenario {
namespace {

using nfsdh::ctl::testing::RunCtl;
using nfsdsim::CldPipe;
using nfsdsim::CldPipeOptions;
using nfsdsim::CldTracker;
using nfsdsim::CldTrackerConfig;
using nfsdsim::CldTrackerKind;
using nfsdsim::ClientId;
using nfsdsim::PrincipalHash;

using Offer = std::map<std::string, std::string>;  // client id -> princhash

// Story clients by name, "B@kb" with a principal.
Offer Clients(const std::vector<std::string>& names) {
  Offer out;
  for (const std::string& n : names) {
    size_t at = n.find('@');
    out[ClientId(n.substr(0, at))] =
        at == std::string::npos ? "" : PrincipalHash(n.substr(at + 1));
  }
  return out;
}

struct World {
  TempDir t;
  std::string mount = t.path() + "/pipefs";
  std::string nfsdfs = t.path() + "/nfsdfs";
  std::string helper_dir = t.path() + "/helper";
  std::string cld_dir = t.path() + "/nfsdcld";
  std::string target = cld_dir + "/main.sqlite";
  std::string conf = t.path() + "/nfs.conf";
  CldPipe pipe;

  World() : pipe(PipeOptions()) {
    for (const std::string& d : {mount, nfsdfs, helper_dir})
      REQUIRE(mkdir(d.c_str(), 0700) == 0);
    std::string err;
    INFO(err);
    REQUIRE(pipe.Mount(mount, &err));
    Nfsd("N", "0");
    std::ofstream(conf) << "[nfsd-helper]\n";  // nothing from /etc/nfs.conf
  }
  ~World() { pipe.StopNfsd(); }

  static CldPipeOptions PipeOptions() {
    CldPipeOptions o;
    o.upcall_timeout = kStepTimeout;
    // An upcall made while no tracker has the pipe open fails after this
    // (the kernel's 30 s, shortened).
    o.no_reader_timeout = 1s;
    return o;
  }
  // What nfsd's files say: v4_end_grace and threads.
  void Nfsd(const std::string& end_grace, const std::string& threads) {
    std::ofstream(nfsdfs + "/v4_end_grace", std::ios::trunc)
        << end_grace << "\n";
    std::ofstream(nfsdfs + "/threads", std::ios::trunc) << threads << "\n";
  }
  std::unique_ptr<CldTracker> Tracker(CldTrackerKind kind,
                                      const std::string& state,
                                      const std::string& nfsdcld_db = "none") {
    CldTrackerConfig tc;
    tc.kind = kind;
    if (kind == CldTrackerKind::kNfsdHelper) {
      tc.binary = NFSD_HELPER_BIN;
      tc.nfsdfs_dir = nfsdfs;
      tc.extra_args = {"--nfsdcld-db", nfsdcld_db, "--nfsdcltrack-db", "none"};
    }
    tc.pipefs_dir = mount;
    tc.state_dir = state;
    auto tr = std::make_unique<CldTracker>(tc);
    std::string err;
    INFO(err);
    REQUIRE(tr->Start(&err));
    return tr;
  }
  std::unique_ptr<CldTracker> Helper() {
    return Tracker(CldTrackerKind::kNfsdHelper, helper_dir);
  }
  std::unique_ptr<CldTracker> Nfsdcld(const std::string& dir) {
    return Tracker(CldTrackerKind::kNfsdcld, dir);
  }
  void Play(CldTracker& tr, const std::string& story) {
    std::vector<nfsdsim::StoryStep> steps;
    std::string err;
    INFO(err);
    REQUIRE(nfsdsim::ParseStory(story, &steps, &err));
    nfsdsim::StoryResult r = nfsdsim::RunStory(pipe, tr, steps);
    std::string transcript;
    for (const auto& l : r.transcript) transcript += l + "\n";
    INFO(story << "\n" << transcript << tr.Log());
    REQUIRE(r.error == "");
    REQUIRE(r.ok);
  }
  // nfsd (re)starts: the clients the tracker offers at GraceStart.
  Offer Offered(CldTracker& tr) {
    nfsdsim::CldStartResult r = pipe.RestartNfsd();
    INFO(tr.Log());
    REQUIRE(r.ok());
    REQUIRE(r.grace_start.ok());
    return r.reclaim;
  }
  void Stop(CldTracker& tr) {
    std::string err;
    INFO(err << tr.Log());
    REQUIRE(tr.Stop(&err));
  }
  nfsdh::ctl::testing::Result Export(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "export-nfsdcld", "--db",     helper_dir + "/state.sqlite",
        "--nfsdcld-db",   target,     "--nfsdfs",
        nfsdfs,           "--config", conf};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCtl(args);
  }
  // A copy of the file written, for the round trip.
  std::string Copy(const std::string& name) {
    const std::string dir = t.path() + "/" + name;
    REQUIRE(mkdir(dir.c_str(), 0700) == 0);
    std::filesystem::copy_file(target, dir + "/main.sqlite");
    return dir + "/main.sqlite";
  }

  // After the story (nfsd and nfsd-helper stopped, the verb run): nfsdcld on
  // the file written, nfsd-helper on its own database, and a fresh
  // nfsd-helper importing a copy of the file offer the same clients, which
  // are `want`.
  void CheckHandedBack(const Offer& want) {
    const std::string copy = Copy("roundtrip");
    auto cld = Nfsdcld(cld_dir);
    Offer by_nfsdcld = Offered(*cld);
    pipe.StopNfsd();
    Stop(*cld);

    auto helper = Helper();
    Offer by_helper = Offered(*helper);
    pipe.StopNfsd();
    Stop(*helper);

    const std::string fresh = t.path() + "/helper-roundtrip";
    REQUIRE(mkdir(fresh.c_str(), 0700) == 0);
    auto again = Tracker(CldTrackerKind::kNfsdHelper, fresh, copy);
    Offer by_import = Offered(*again);
    pipe.StopNfsd();
    Stop(*again);

    CHECK(by_nfsdcld == want);
    CHECK(by_helper == want);
    CHECK(by_import == want);
  }
};

TEST_CASE(
    "hand-back: after a grace period ended, Debian's nfsdcld offers what "
    "nfsd-helper would",
    "[scenario][handback][nfsdcld]") {
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);  // nfs-kernel-server
  World w;
  auto helper = w.Helper();
  // S stays silent through the grace period, C expires after it; D and E
  // are new after it.
  w.Play(*helper,
         "start; complete A; create B@kb; complete C; complete S; restart; "
         "reclaim A=allow; complete A; reclaim B@kb=allow; create B@kb; "
         "reclaim C=allow; complete C; gracedone; expire C; complete D; "
         "create E@ke");
  w.pipe.StopNfsd();
  w.Stop(*helper);
  auto r = w.Export();
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("handed back 4 client(s)"));
  w.CheckHandedBack(Clients({"A", "B@kb", "D", "E@ke"}));
}

TEST_CASE(
    "hand-back: nfsd stopped during a grace period, Debian's nfsdcld offers "
    "what a restart in grace of nfsd-helper would",
    "[scenario][handback][nfsdcld]") {
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);
  World w;
  auto helper = w.Helper();
  // N is new in the unfinished grace period (nfsd-helper keeps it at a
  // restart in grace; CLD-DIFFERENCES.md, new-client-in-unfinished-grace).
  w.Play(*helper,
         "start; complete A; complete B@kb; complete S; restart; "
         "reclaim A=allow; complete A; complete N");
  SECTION("nfsd stopped") {
    w.pipe.StopNfsd();
    w.Stop(*helper);
    w.Nfsd("N", "0");
    auto r = w.Export();
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    w.CheckHandedBack(Clients({"A", "B@kb", "S", "N"}));
  }
  SECTION("nfsd still running its grace period: nothing is written") {
    w.Stop(*helper);
    w.Nfsd("N", "8");
    auto r = w.Export();
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("Stop nfs-server.service"));
    struct stat st;
    CHECK(stat(w.target.c_str(), &st) != 0);
  }
}

TEST_CASE(
    "hand-back: a grace end nfsd made while no tracker ran is applied "
    "before nfsdcld takes over",
    "[scenario][handback][nfsdcld]") {
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);
  World w;
  auto helper = w.Helper();
  w.Play(*helper,
         "start; complete A; complete S; restart; reclaim A=allow; "
         "complete A");
  w.Stop(*helper);
  // Its GraceDone finds no tracker and fails; nfsd ends the grace period
  // anyway, and says so in v4_end_grace. S did not reclaim in it.
  nfsdsim::CldCallResult done = w.pipe.GraceDone();
  CHECK_FALSE(done.ok());
  w.Nfsd("Y", "8");
  auto r = w.Export({"--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"kernel_ended_grace\": true"));
  // nfsd keeps running under nfsdcld, then restarts.
  auto cld = w.Nfsdcld(w.cld_dir);
  REQUIRE(w.pipe.WaitForOpen(kStepTimeout));
  w.Play(*cld, "complete D");
  Offer by_nfsdcld = w.Offered(*cld);
  w.Play(*cld, "reclaim A=allow; reclaim S=bad; reclaim D=allow");
  w.pipe.StopNfsd();
  w.Stop(*cld);
  CHECK(by_nfsdcld == Clients({"A", "D"}));
  // nfsd-helper restarted on its own database agrees on what it held.
  auto again = w.Helper();
  CHECK(w.Offered(*again) == Clients({"A"}));
}

// The migrate round trip: a database Debian's nfsdcld wrote, imported by
// nfsd-helper and handed back, makes nfsdcld offer what it offered before.
TEST_CASE(
    "hand-back: nfsdcld's database, imported and handed back, offers the "
    "same clients",
    "[scenario][handback][nfsdcld]") {
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);
  struct Case {
    const char* name;
    const char* story;
    Offer want;
  };
  const Case cases[] = {
      {"stopped in grace",
       "start; complete A; create B@krb-b; complete C; expire C; gracedone; "
       "restart; reclaim A=allow; reclaim B@krb-b=allow; complete A; "
       "complete D",
       Clients({"A", "B@krb-b"})},
      {"not in grace",
       "start; complete A; create B@krb-b; complete C; expire C; complete D",
       Clients({"A", "B@krb-b", "D"})},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    World w;
    std::string error;
    nfsdsim::StoryResult story;
    const std::string orig_dir = w.t.path() + "/orig";
    bool made = nfsdsim::MakeNfsdcldDatabase(c.story, orig_dir, &error, &story);
    INFO(error);
    REQUIRE(made);
    // nfsdcld's own answer, on a copy of its database.
    const std::string again_dir = w.t.path() + "/orig-again";
    REQUIRE(mkdir(again_dir.c_str(), 0700) == 0);
    std::filesystem::copy_file(orig_dir + "/main.sqlite",
                               again_dir + "/main.sqlite");
    auto cld = w.Nfsdcld(again_dir);
    Offer before = w.Offered(*cld);
    w.pipe.StopNfsd();
    w.Stop(*cld);
    CHECK(before == c.want);

    const std::string db = w.helper_dir + "/state.sqlite";
    auto r = RunCtl({"import-nfsdcld", orig_dir + "/main.sqlite", "--db", db,
                     "--nfsdcltrack-db", "none", "--ctl-socket",
                     w.t.path() + "/none.sock"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    r = w.Export();
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    cld = w.Nfsdcld(w.cld_dir);
    Offer after = w.Offered(*cld);
    w.pipe.StopNfsd();
    w.Stop(*cld);
    CHECK(after == c.want);
  }
}

}  // namespace
}  // namespace scenario
