// Bad input from the kernel side, stale instances, group commit and
// shutdown, against the real helper.
#include <catch2/catch.hpp>
#include <csignal>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdfs::Channel;

struct Served {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n{t.path() + "/nfsd", db};
  Served() {
    n.StartHelper();
    REQUIRE(n.k().StartInstance(1000).ok());
    REQUIRE(n.k().EndGrace().ok());
  }
  nfsdsim::AwaitResult Send(Channel c, const std::string& line) {
    auto t = n.k().Submit(c, line);
    REQUIRE(t.ok());
    return n.k().Await(t, kStepTimeout);
  }
};

TEST_CASE("malformed requests get -EINVAL and the helper keeps serving",
          "[scenario][input]") {
  Served s;
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  std::string id1025 = "\\x" + std::string(2050, 'a');
  std::string id1024 = "\\x" + std::string(2048, 'a');
  struct Case {
    Channel c;
    std::string line;
  };
  const Case cases[] = {
      {Channel::kCreateClient, "901 " + inst + " \\x - v41\n"},  // 0-byte id
      {Channel::kCreateClient, "902 " + inst + " " + id1025 + " - v41\n"},
      {Channel::kCreateClient, "903 " + inst + " \\x41 - v42\n"},
      {Channel::kCreateClient, "904 " + inst + " \\x41 \\x0102 v41\n"},
      {Channel::kCreateClient, "905 " + inst + " \\x41 -\n"},
      {Channel::kCreateClient, "906 " + inst + "  \\x41 - v41\n"},
      {Channel::kCreateClient, "907 0" + inst + " \\x41 - v41\n"},
      {Channel::kExpireClient, "908 " + inst + "\n"},
      {Channel::kExpireClient, "909 x \\x41\n"},
      {Channel::kGraceDone, "910 " + inst + " extra\n"},
      {Channel::kGraceDone, "911 -5\n"},
      {Channel::kAllowClient, "912 begin 1 1000\n"},
      {Channel::kAllowClient, "913 start 1\n"},
  };
  for (const Case& c : cases) {
    INFO(c.line.substr(0, 80));
    auto r = s.Send(c.c, c.line);
    REQUIRE(r.answered);
    CHECK(r.status == -EINVAL);
  }
  // A line without a readable sequence number cannot be answered: it is
  // logged, and the kernel withdraws it after its timeout.
  s.n.k().Submit(Channel::kGraceDone, "garbage\n");
  REQUIRE(s.n.k().WaitForStats(
      Channel::kGraceDone,
      [](const nfsdsim::ChannelStats& st) { return st.read >= 2; },
      kStepTimeout));
  // Still serving, and the longest legal id works.
  auto ok = s.Send(Channel::kCreateClient,
                   "920 " + inst + " " + id1024 + " - v41\n");
  REQUIRE(ok.answered);
  CHECK(ok.status == 0);
  CHECK(RecordedIds(s.db).size() == 1);
  CHECK(s.n.HelperRunning());
  CHECK(s.n.WaitForLog("malformed"));
  CHECK(s.n.WaitForLog("garbage"));
}

TEST_CASE("requests for a stale or unknown instance get -ESTALE",
          "[scenario][input]") {
  Served s;
  int64_t old = s.n.k().CurrentInstance();
  REQUIRE(s.n.k().StartInstance(2000).ok());
  int64_t cur = s.n.k().CurrentInstance();
  REQUIRE(cur > old);
  for (int64_t bad : {old, cur + 1}) {
    std::string i = std::to_string(bad);
    CHECK(s.Send(Channel::kCreateClient, "31 " + i + " \\x41 - v40\n")
              .status == -ESTALE);
    CHECK(s.Send(Channel::kExpireClient, "32 " + i + " \\x41\n").status ==
          -ESTALE);
    CHECK(s.Send(Channel::kGraceDone, "33 " + i + "\n").status == -ESTALE);
  }
  CHECK(RecordedIds(s.db).empty());
  auto scope = ScopeOf(s.db);
  REQUIRE(scope);
  CHECK(scope->new_boot_time == cur);  // the stale grace_done changed nothing
}

TEST_CASE("a replayed grace_done and create are answered 0 again",
          "[scenario][input]") {
  Served s;
  std::string i = std::to_string(s.n.k().CurrentInstance());
  CHECK(s.Send(Channel::kGraceDone, "41 " + i + "\n").status == 0);
  CHECK(s.Send(Channel::kCreateClient, "42 " + i + " \\x41 - v40\n").status ==
        0);
  CHECK(s.Send(Channel::kCreateClient, "43 " + i + " \\x41 - v40\n").status ==
        0);
  CHECK(s.Send(Channel::kExpireClient, "44 " + i + " \\x42\n").status == 0);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"A"});
}

TEST_CASE("an unknown protocol version is refused", "[scenario][input]") {
  Served s;
  auto r = s.Send(Channel::kAllowClient, "51 start 2 1000\n");
  REQUIRE(r.answered);
  CHECK(r.status == -EPROTONOSUPPORT);
  CHECK(r.instance == 0);
}

TEST_CASE("everything pending at a wake-up is one transaction",
          "[scenario][input]") {
  Served s;
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  // Freeze the helper so that 64 requests pile up, like 64 nfsd threads
  // waiting at once, then let it run.
  REQUIRE(kill(s.n.k().OpenPids(Channel::kCreateClient).empty()
                   ? -1
                   : *s.n.k().OpenPids(Channel::kCreateClient).begin(),
               SIGSTOP) == 0);
  std::vector<nfsdsim::Ticket> tickets;
  for (int i = 0; i < 64; ++i) {
    tickets.push_back(s.n.k().Submit(
        Channel::kCreateClient, std::to_string(100 + i) + " " + inst +
                                    " \\x" + std::to_string(1000 + i) +
                                    " - v41\n"));
  }
  REQUIRE(kill(*s.n.k().OpenPids(Channel::kCreateClient).begin(), SIGCONT) ==
          0);
  for (auto& t : tickets) {
    auto r = s.n.k().Await(t, kStepTimeout);
    REQUIRE(r.answered);
    CHECK(r.status == 0);
  }
  CHECK(RecordedIds(s.db).size() == 64);
  CHECK(s.n.WaitForLog("batch of 64 request(s) committed in one "
                             "transaction"));
}

TEST_CASE("SIGHUP does not stop the helper", "[scenario][input]") {
  Served s;
  pid_t pid = *s.n.k().OpenPids(Channel::kCreateClient).begin();
  REQUIRE(kill(pid, SIGHUP) == 0);
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  CHECK(s.Send(Channel::kCreateClient, "61 " + inst + " \\x41 - v40\n")
            .status == 0);
  CHECK(s.n.HelperRunning());
  CHECK(s.n.WaitForLog("SIGHUP received"));
}

TEST_CASE("SIGTERM answers every request it read before exiting",
          "[scenario][input]") {
  Served s;
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  pid_t pid = *s.n.k().OpenPids(Channel::kCreateClient).begin();
  REQUIRE(kill(pid, SIGSTOP) == 0);
  std::vector<nfsdsim::Ticket> tickets;
  for (int i = 0; i < 32; ++i) {
    tickets.push_back(s.n.k().Submit(
        Channel::kCreateClient, std::to_string(200 + i) + " " + inst +
                                    " \\x" + std::to_string(2000 + i) +
                                    " - v41\n"));
  }
  REQUIRE(kill(pid, SIGTERM) == 0);
  REQUIRE(kill(pid, SIGCONT) == 0);
  auto exit = s.n.WaitHelperDeath();
  CHECK(exit.success());
  auto st = s.n.k().Stats(Channel::kCreateClient);
  // Nothing read was left unanswered (it would have been put back).
  CHECK(st.requeued == 0);
  size_t answered = 0;
  for (auto& t : tickets) {
    auto r = s.n.k().Await(t, 0ms);
    if (r.answered) {
      CHECK(r.status == 0);
      ++answered;
    }
  }
  CHECK(RecordedIds(s.db).size() == answered);
  // Whatever was not read is served by the next helper.
  s.n.StartHelper();
  for (auto& t : tickets) CHECK(s.n.k().Await(t, kStepTimeout).status == 0);
  CHECK(RecordedIds(s.db).size() == 32);
}

}  // namespace
}  // namespace scenario
