// The recovery engine driven through the scenarios of
// ../shared/research/recovery.md (numbers in the test names), with a tiny
// stand-in for nfsd's in-memory side: the allow set received at start and
// whether grace is open.
#include "daemon/recovery/engine.h"

#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <vector>

namespace nfsdh::recovery {
namespace {

// nfsd's side: what the kernel knows about the running instance.
class Server {
 public:
  explicit Server(Model* m) : m_(m) {}
  void Boot(int64_t now) {
    auto r = m_->Start(now);
    instance_ = r.instance;
    allowed_ = r.allowed;
    in_grace_ = true;
  }
  // v4.0 first OPEN_CONFIRM or v4.1 RECLAIM_COMPLETE.
  void GetState(const std::string& id) {
    REQUIRE(m_->Create(instance_, id) == Verdict::kApply);
  }
  // A reclaim is allowed only in grace and only for a client on the list.
  bool Reclaim(const std::string& id) {
    if (!in_grace_ || !allowed_.count(id)) return false;
    GetState(id);
    return true;
  }
  void Expire(const std::string& id) {
    REQUIRE(m_->Expire(instance_, id) == Verdict::kApply);
  }
  void EndGrace() {
    REQUIRE(m_->GraceDone(instance_) == Verdict::kApply);
    in_grace_ = false;
  }
  int64_t instance() const { return instance_; }
  const std::map<std::string, std::string>& allowed() const {
    return allowed_;
  }

 private:
  Model* m_;
  int64_t instance_ = 0;
  bool in_grace_ = false;
  std::map<std::string, std::string> allowed_;
};

TEST_CASE("instance ids increase strictly whatever the clock does",
          "[recovery]") {
  std::mt19937_64 rng(42);
  ScopeState s;
  int64_t last = 0;
  for (int i = 0; i < 10000; ++i) {
    int64_t now = static_cast<int64_t>(rng() % 3000) - 500;  // jumps both ways
    StartPlan p = PlanStart(s, now);
    REQUIRE(p.instance > last);
    REQUIRE(p.instance >= 1);
    if (now > s.max_instance) REQUIRE(p.instance == now);
    last = p.instance;
    s = p.next;
  }
}

TEST_CASE("first start: nothing to purge, nobody allowed", "[recovery]") {
  Model m;
  auto r = m.Start(1000);
  CHECK(r.instance == 1000);
  CHECK(r.allowed.empty());
  CHECK(m.state().new_boot_time == 1000);
  CHECK_FALSE(m.state().boot_time.has_value());
}

TEST_CASE("scenario 1: baseline reclaim is allowed and re-recorded",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  REQUIRE(srv.Reclaim("A"));
  srv.EndGrace();
  REQUIRE(m.records().count("A"));
  CHECK(m.records().at("A").instance == 2000);
  CHECK(m.state().boot_time == 2000);
  CHECK(m.state().old_boot_time == 1000);
}

TEST_CASE("scenario 2: a client that never got state is denied",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");  // B only confirmed its client id: no upcall
  srv.Boot(2000);
  CHECK_FALSE(srv.Reclaim("B"));
  CHECK(srv.Reclaim("A"));
}

TEST_CASE("scenario 3: EC1, lease expired during a partition, is denied",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.GetState("B");
  srv.Expire("A");  // durable before B may take A's lock
  srv.Boot(2000);
  CHECK_FALSE(srv.Reclaim("A"));
  CHECK(srv.Reclaim("B"));
}

TEST_CASE("scenario 4: courtesy expiry denies, reconnection re-allows",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Expire("A");  // becomes a courtesy client
  SECTION("no reconnection") {
    srv.Boot(2000);
    CHECK_FALSE(srv.Reclaim("A"));
  }
  SECTION("reconnects before the reboot") {
    srv.GetState("A");
    srv.Boot(2000);
    CHECK(srv.Reclaim("A"));
  }
}

TEST_CASE("scenario 5: EC2, silent through a whole grace period, is denied",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  REQUIRE(srv.allowed().count("A"));  // allowed, but A is partitioned
  srv.EndGrace();                     // now B may take conflicting state
  CHECK_FALSE(m.records().count("A"));
  srv.Boot(3000);
  CHECK_FALSE(srv.Reclaim("A"));
}

TEST_CASE("scenario 6: restart during grace keeps every client",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);  // crash before grace_done
  srv.Boot(2001);
  CHECK(srv.Reclaim("A"));
  CHECK(m.state().boot_time == 1000);
  CHECK(m.state().new_boot_time == 2001);
}

TEST_CASE("scenario 7: repeated restarts in grace", "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("C");
  srv.Boot(2000);  // grace 1a
  REQUIRE(srv.Reclaim("C"));
  srv.Boot(2001);  // crash; grace 1b: C must reclaim again
  REQUIRE(srv.allowed().count("C"));
  SECTION("C silent in 1b is dropped at grace_done") {
    srv.EndGrace();
    CHECK_FALSE(m.records().count("C"));
    srv.Boot(3000);
    CHECK_FALSE(srv.Reclaim("C"));
  }
  SECTION("C reclaiming in 1b is kept") {
    REQUIRE(srv.Reclaim("C"));
    srv.EndGrace();
    srv.Boot(3000);
    CHECK(srv.Reclaim("C"));
  }
}

TEST_CASE("scenario 8: reclaim, then lease expiry, is denied",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  REQUIRE(srv.Reclaim("A"));
  srv.EndGrace();
  srv.Expire("A");
  srv.Boot(3000);
  CHECK_FALSE(srv.Reclaim("A"));
}

TEST_CASE("scenario 12: committed but unanswered create allows a reclaim",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  // The record is committed; the helper dies before the reply, so the
  // kernel never told the client it holds state. Harmless false positive.
  REQUIRE(m.Create(srv.instance(), "A") == Verdict::kApply);
  srv.Boot(2000);
  CHECK(srv.Reclaim("A"));
}

TEST_CASE("scenario 15: grace_done is one atomic step", "[recovery][scenario]") {
  ScopeState s;
  s.boot_time = 1000;
  s.new_boot_time = 2000;
  s.old_boot_time = 500;
  s.max_instance = 2000;
  GraceDonePlan p = PlanGraceDone(s, 2000);
  REQUIRE(p.verdict == Verdict::kApply);
  // The whole rotation is in one plan: there is no state between "before"
  // and "after" in which boot_time is missing and the purge would be skipped.
  CHECK(p.next.old_boot_time == 1000);
  CHECK(p.next.boot_time == 2000);
  CHECK_FALSE(p.next.new_boot_time.has_value());
  CHECK(p.purge_older_than == 2000);

  // Scenario 5's A: silent through grace 2000. Had grace_done not committed,
  // the kernel would still be in grace (PROTOCOL.md §7), so allowing A at the
  // next start is safe; once it committed, A is gone.
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  Model before = m;
  srv.EndGrace();
  {
    Server again(&before);
    again.Boot(3000);
    CHECK(again.Reclaim("A"));
  }
  srv.Boot(3000);
  CHECK_FALSE(srv.Reclaim("A"));
}

TEST_CASE("scenario 17: a clock stepping back cannot revive an old client",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");  // stamped 1000
  srv.Boot(500);      // clock stepped back
  CHECK(srv.instance() == 1001);
  REQUIRE(srv.allowed().count("A"));
  srv.EndGrace();  // A stayed silent; B may now conflict
  srv.Boot(600);
  CHECK_FALSE(srv.Reclaim("A"));
}

TEST_CASE("scenario 17 variant: the clock steps back during grace",
          "[recovery][scenario]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  REQUIRE(srv.Reclaim("A"));  // stamped with the instance, not the clock
  srv.EndGrace();
  srv.Boot(100);
  CHECK(srv.Reclaim("A"));  // not purged by the backwards step
}

TEST_CASE("stale and unknown instances are refused", "[recovery]") {
  Model m;
  CHECK(m.Create(1, "A") == Verdict::kStale);  // before any start
  CHECK(m.GraceDone(1) == Verdict::kStale);
  auto r1 = m.Start(1000);
  CHECK(m.Create(r1.instance + 1, "A") == Verdict::kStale);
  CHECK(m.Create(r1.instance, "A") == Verdict::kApply);
  auto r2 = m.Start(2000);
  CHECK(m.Create(r1.instance, "B") == Verdict::kStale);
  CHECK(m.Expire(r1.instance, "A") == Verdict::kStale);
  CHECK(m.GraceDone(r1.instance) == Verdict::kStale);
  CHECK(m.records().count("A"));
  CHECK(m.GraceDone(r2.instance) == Verdict::kApply);
  // After grace the instance stays current for creates and expires.
  CHECK(m.Create(r2.instance, "B") == Verdict::kApply);
  CHECK(m.Expire(r2.instance, "B") == Verdict::kApply);
}

TEST_CASE("replays are idempotent", "[recovery]") {
  Model m;
  auto r = m.Start(1000);
  REQUIRE(m.GraceDone(r.instance) == Verdict::kApply);
  Model snapshot = m;
  CHECK(m.GraceDone(r.instance) == Verdict::kAlreadyDone);
  CHECK(m.state() == snapshot.state());

  REQUIRE(m.Create(r.instance, "A", "h1") == Verdict::kApply);
  REQUIRE(m.Create(r.instance, "A", "h1") == Verdict::kApply);
  CHECK(m.records().size() == 1);
  REQUIRE(m.Expire(r.instance, "A") == Verdict::kApply);
  CHECK(m.Expire(r.instance, "A") == Verdict::kApply);  // absent: still 0
  CHECK(m.records().empty());

  // A start whose reply was lost is replayed: same allow list, new instance.
  REQUIRE(m.Create(r.instance, "B", "h2") == Verdict::kApply);
  auto s1 = m.Start(2000);
  auto s2 = m.Start(2000);
  CHECK(s1.allowed == s2.allowed);
  CHECK(s2.instance > s1.instance);
  CHECK(s2.allowed.at("B") == "h2");
}

// --- import of records moved from another server (HA take-over) ---

TEST_CASE("import into a scope with no instance: the first start allows",
          "[recovery][import]") {
  Model m;
  Server srv(&m);
  REQUIRE(m.Import("A", "hashA") == ImportVerdict::kFresh);
  CHECK(m.records().at("A").instance == 0);
  srv.Boot(1000);
  CHECK(srv.allowed() == std::map<std::string, std::string>{{"A", "hashA"}});
  CHECK(srv.Reclaim("A"));
  REQUIRE(m.Import("B") == ImportVerdict::kInGrace);  // too late for 1000
  srv.EndGrace();
  // A reclaimed in 1000 and stays; B could not, and is gone.
  CHECK(m.records().count("A"));
  CHECK_FALSE(m.records().count("B"));
}

TEST_CASE("import in grace counts for the restart, not for later instances",
          "[recovery][import]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("L");  // a local client, stamped 1000
  srv.Boot(2000);     // grace open; the kernel has its list: {L}
  REQUIRE(m.Import("A") == ImportVerdict::kInGrace);
  CHECK(m.records().at("A").instance == 1000);  // boot_time
  CHECK_FALSE(srv.allowed().count("A"));

  SECTION("restarted in grace: A is allowed, and kept if it reclaims") {
    srv.Boot(3000);
    CHECK(srv.allowed().count("A"));
    CHECK(srv.allowed().count("L"));
    CHECK(srv.Reclaim("A"));
    srv.EndGrace();
    CHECK(m.records().count("A"));
    srv.Boot(4000);
    CHECK(srv.Reclaim("A"));
  }
  SECTION("restarted in grace: A silent through that grace is dropped") {
    srv.Boot(3000);
    srv.EndGrace();
    CHECK_FALSE(m.records().count("A"));
  }
  SECTION("not restarted: the grace A could not reclaim in purges it") {
    srv.EndGrace();
    CHECK_FALSE(m.records().count("A"));
    srv.Boot(3000);
    CHECK_FALSE(srv.Reclaim("A"));
  }
}

TEST_CASE("import in the first grace of a scope stamps below it",
          "[recovery][import]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);  // no boot_time yet
  REQUIRE(m.Import("A") == ImportVerdict::kInGrace);
  CHECK(m.records().at("A").instance == 0);
  srv.Boot(2000);  // restart in grace: nothing purged
  CHECK(srv.Reclaim("A"));
}

TEST_CASE("import after the grace period ended is refused and changes nothing",
          "[recovery][import]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("L");
  auto before = m.records();
  auto state = m.state();
  CHECK(PlanImport(m.state()).verdict == ImportVerdict::kRefused);
  CHECK(m.Import("A") == ImportVerdict::kRefused);
  CHECK(m.records().size() == before.size());
  CHECK(m.state() == state);
  srv.Boot(2000);
  CHECK_FALSE(srv.Reclaim("A"));
}

TEST_CASE("import leaves an existing record as it is", "[recovery][import]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.EndGrace();
  srv.GetState("A");
  srv.Boot(2000);
  REQUIRE(srv.Reclaim("A"));  // stamped 2000
  REQUIRE(m.Import("A", "other") == ImportVerdict::kInGrace);
  CHECK(m.records().at("A").instance == 2000);
  CHECK(m.records().at("A").princhash.empty());
}

// --- the next start decided on the database alone (export-nfsdcld) ---

// What the daemon's next start would allow: `pending` applied to a copy of
// the model as the daemon applies them (Daemon::Settle), then a start.
std::set<std::string> AllowedAfter(Model m,
                                   const std::vector<PendingStep>& pending,
                                   int64_t now) {
  std::optional<int64_t> started;
  for (const PendingStep& p : pending) {
    if (p.start) {
      started = m.Start(now++).instance;
      continue;
    }
    std::optional<int64_t> target = p.instance ? p.instance : started;
    if (target && m.state().new_boot_time == target) m.GraceDone(*target);
  }
  std::set<std::string> out;
  for (const auto& [id, hash] : m.Start(now).allowed) out.insert(id);
  return out;
}

std::set<std::string> Kept(const Model& m, const NextStartPlan& plan) {
  std::set<std::string> out;
  for (const auto& [id, rec] : m.records())
    if (!plan.keep_from || rec.instance >= *plan.keep_from) out.insert(id);
  return out;
}

TEST_CASE("next start: in grace, a restart keeps what the grace kept",
          "[recovery][handback]") {
  Model m;
  Server srv(&m);
  srv.Boot(1000);
  srv.GetState("A");
  srv.GetState("B");
  srv.EndGrace();
  srv.Boot(2000);
  REQUIRE(srv.Reclaim("A"));
  srv.GetState("N");  // new during grace
  NextStartPlan plan = PlanNextStart(m.state(), {});
  CHECK(plan.keep_from == 1000);
  CHECK(Kept(m, plan) == std::set<std::string>{"A", "B", "N"});
  // Its grace end, pending: only what the instance in grace stamped.
  plan = PlanNextStart(m.state(), {PendingStep{false, 2000}});
  CHECK(plan.keep_from == 2000);
  CHECK(Kept(m, plan) == std::set<std::string>{"A", "N"});
  CHECK_FALSE(plan.after_pending.in_grace());
  // An end of another instance is no longer pending.
  plan = PlanNextStart(m.state(), {PendingStep{false, 1000}});
  CHECK(plan.keep_from == 1000);
  // A start the database missed, and its end: nobody.
  plan =
      PlanNextStart(m.state(), {PendingStep{true, {}}, PendingStep{false, {}}});
  CHECK(Kept(m, plan).empty());
  // A start the database missed, still in grace: a restart in grace.
  plan = PlanNextStart(m.state(), {PendingStep{true, {}}});
  CHECK(Kept(m, plan) == std::set<std::string>{"A", "B", "N"});
}

TEST_CASE("next start: a scope that never started allows every record",
          "[recovery][handback]") {
  Model m;
  REQUIRE(m.Import("A") == ImportVerdict::kFresh);
  NextStartPlan plan = PlanNextStart(m.state(), {});
  CHECK_FALSE(plan.keep_from);
  CHECK(Kept(m, plan) == std::set<std::string>{"A"});
}

TEST_CASE("next start: the plan agrees with the model on random histories",
          "[recovery][handback]") {
  std::mt19937_64 rng(7);
  const std::vector<std::string> ids = {"A", "B", "C", "D"};
  for (int round = 0; round < 3000; ++round) {
    Model m;
    Server srv(&m);
    int64_t now = 1000;
    bool booted = false;
    int steps = static_cast<int>(rng() % 12);
    for (int i = 0; i < steps; ++i) {
      const std::string& id = ids[rng() % ids.size()];
      switch (rng() % 5) {
        case 0:
          srv.Boot(now += 10);
          booted = true;
          break;
        case 1:
          if (booted) srv.GetState(id);
          break;
        case 2:
          if (booted) srv.Expire(id);
          break;
        case 3:
          if (booted && m.state().in_grace()) srv.EndGrace();
          break;
        case 4:
          if (booted) srv.Reclaim(id);
          break;
      }
    }
    std::vector<PendingStep> pending;
    int n = static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      switch (rng() % 4) {
        case 0:
          pending.push_back({true, {}});
          break;
        case 1:
          pending.push_back({false, {}});
          break;
        case 2:
          pending.push_back({false, m.state().new_boot_time});
          break;
        case 3:
          pending.push_back({false, m.state().boot_time});
          break;
      }
    }
    NextStartPlan plan = PlanNextStart(m.state(), pending);
    INFO("round " << round);
    CHECK(Kept(m, plan) == AllowedAfter(m, pending, now + 10));
  }
}

TEST_CASE("kernel grace end: only while an instance is in grace",
          "[recovery][handback]") {
  ScopeState s;
  CHECK_FALSE(KernelGraceEnd(s, {}));
  s.boot_time = 1000;
  s.max_instance = 1000;
  CHECK_FALSE(KernelGraceEnd(s, {}));  // grace over: nothing to say
  // A start the database missed: the end of that instance.
  CHECK(KernelGraceEnd(s, {{true, {}}}) == PendingStep{false, {}});
  s.new_boot_time = 2000;
  CHECK(KernelGraceEnd(s, {}) == PendingStep{false, 2000});
  // An end already pending decides it.
  CHECK_FALSE(KernelGraceEnd(s, {{false, 2000}}));
  CHECK_FALSE(KernelGraceEnd(s, {{true, {}}, {false, {}}}));
}

}  // namespace
}  // namespace nfsdh::recovery
