// The helper is killed with SIGKILL at every step of a reboot story, just
// before its COMMIT, just after it, and at a random instant, then restarted.
// At every step the database must hold exactly the records the kernel was
// told are durable (none lost, none invented beyond the one in flight), and
// at the end exactly the clients the RFC rules allow may reclaim.
#include <catch2/catch.hpp>
#include <csignal>
#include <future>
#include <random>
#include <thread>

#include "daemon/recovery/engine.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

const std::string kA = "client-A";
const std::string kB = "client-B";
const std::string kC = "client-C";

enum class Op { kStart, kCreate, kExpire, kGraceDone };
struct Step {
  Op op;
  std::string id;
  Minor minor = Minor::kV41;
};

// Boot 1 with an empty database, three clients get state, B's lease expires,
// the server restarts, A reclaims (C stays silent), grace ends.
const std::vector<Step> kStory = {
    {Op::kStart, ""},           {Op::kGraceDone, ""},
    {Op::kCreate, kA},          {Op::kCreate, kB, Minor::kV40},
    {Op::kCreate, kC},          {Op::kExpire, kB},
    {Op::kStart, ""},           {Op::kCreate, kA},
    {Op::kGraceDone, ""},
};

// Runs one step through the driver; returns the reply status.
int RunStep(nfsdsim::SimKernel& k, const Step& s, int64_t boot) {
  switch (s.op) {
    case Op::kStart:
      return k.StartInstance(boot).status;
    case Op::kCreate:
      return k.EstablishState(s.id, "", s.minor).status;
    case Op::kExpire:
      return k.Expire(s.id).status;
    case Op::kGraceDone:
      return k.EndGrace().status;
  }
  return -1;
}

// Applies an acknowledged step to the reference model.
void ApplyToModel(nfsdh::recovery::Model& m, const Step& s, int64_t now,
                  int64_t* inst) {
  using nfsdh::recovery::Verdict;
  switch (s.op) {
    case Op::kStart:
      *inst = m.Start(now).instance;
      break;
    case Op::kCreate:
      REQUIRE(m.Create(*inst, s.id) == Verdict::kApply);
      break;
    case Op::kExpire:
      REQUIRE(m.Expire(*inst, s.id) == Verdict::kApply);
      break;
    case Op::kGraceDone:
      REQUIRE(m.GraceDone(*inst) == Verdict::kApply);
      break;
  }
}

std::set<std::string> ModelIds(const nfsdh::recovery::Model& m) {
  std::set<std::string> ids;
  for (const auto& [id, r] : m.records()) ids.insert(id);
  return ids;
}

enum class Kill { kBeforeCommit, kAfterCommit, kRandom };

void PlayWithKillAt(size_t victim, Kill how, std::mt19937* rng) {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper();
  nfsdh::recovery::Model model;
  int64_t inst = 0;
  for (size_t i = 0; i < kStory.size(); ++i) {
    const Step& s = kStory[i];
    int64_t boot = 1000 + static_cast<int64_t>(i);
    INFO("step " << i << ", kill " << static_cast<int>(how));
    if (i != victim) {
      int status = RunStep(n.k(), s, boot);
      INFO(n.Log());
      REQUIRE(status == 0);
    } else {
      if (how != Kill::kRandom) {
        n.StopHelper();
        n.StartHelper({{"NFSD_HELPER_TEST_CRASH",
                        how == Kill::kBeforeCommit ? "before-commit:1"
                                                   : "after-commit:1"}});
      }
      auto reply = std::async(std::launch::async,
                              [&] { return RunStep(n.k(), s, boot); });
      if (how == Kill::kRandom) {
        std::this_thread::sleep_for(
            std::chrono::microseconds((*rng)() % 3000));
        n.KillHelper();
      } else {
        auto death = n.WaitHelperDeath();
        REQUIRE(death.signal == SIGKILL);
        // Nothing was acknowledged; the DB is either before or after.
        REQUIRE(reply.wait_for(0ms) != std::future_status::ready);
      }
      n.StartHelper();
      int status = reply.get();
      INFO(n.Log());
      REQUIRE(status == 0);
    }
    ApplyToModel(model, s, boot, &inst);
    // Every acknowledged change is on disk, and nothing else.
    REQUIRE(RecordedIds(db) == ModelIds(model));
  }
  // The next boot allows exactly A: B expired, C never reclaimed.
  auto r = n.k().StartInstance(5000);
  REQUIRE(r.ok());
  CHECK(Ids(r.allow) == std::set<std::string>{kA});
  CHECK(n.k().Reclaim(kB, "") == ReclaimResult::kReclaimBad);
  CHECK(n.k().Reclaim(kC, "") == ReclaimResult::kReclaimBad);
  CHECK(n.k().Reclaim(kA, "") == ReclaimResult::kAllowed);
}

TEST_CASE("SIGKILL just before COMMIT at every step loses nothing",
          "[scenario][crash]") {
  for (size_t victim = 0; victim < kStory.size(); ++victim)
    PlayWithKillAt(victim, Kill::kBeforeCommit, nullptr);
}

TEST_CASE("SIGKILL just after COMMIT at every step loses nothing",
          "[scenario][crash]") {
  for (size_t victim = 0; victim < kStory.size(); ++victim)
    PlayWithKillAt(victim, Kill::kAfterCommit, nullptr);
}

TEST_CASE("SIGKILL at a random instant of every step loses nothing",
          "[scenario][crash]") {
  std::mt19937 rng(20261122);
  for (int round = 0; round < 2; ++round)
    for (size_t victim = 0; victim < kStory.size(); ++victim)
      PlayWithKillAt(victim, Kill::kRandom, &rng);
}

}  // namespace
}  // namespace scenario
