// Cluster mode end to end: real nfsd-helper processes, each serving a
// simulated nfsd (tests/sim) of its own node, with the records of one scope
// in a real three-member etcd cluster (etcd_cluster.h). What an HA cluster
// relies on: a node that takes a service over allows exactly the reclaims
// the old node's records allow; a live owner keeps its scope; a clean stop
// hands it over at once; a node cut off from etcd stops answering "stored"
// and allows no reclaim until it is back.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ctl/test_util.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/scenario/harness.h"

namespace nfsdh::etcdtest {
namespace {

using Clock = std::chrono::steady_clock;
using nfsdfs::Minor;
using nfsdsim::ReclaimResult;
using scenario::Hash;
using scenario::Node;
using scenario::TempDir;

// Short, so that the waits for a lease to end are; still well above the
// shortest lease etcd grants (1.5 election timeouts, 750 ms here).
constexpr int kTtl = 2;

std::vector<std::string> ClusterArgs(const EtcdCluster& etcd,
                                     const std::string& node) {
  return HelperClusterArgs(etcd, node, kTtl);
}

// One node: its own simulated nfsd, control socket and state directory.
struct Site {
  Site(const TempDir& t, const std::string& name)
      : dir(t.path() + "/" + name),
        node(dir + "-nfsd", dir + "/state.sqlite", "svc") {}
  std::string dir;
  Node node;
  std::string socket() const { return dir + "-nfsd.ctl.sock"; }
};

// Waits up to `limit` for `needle` in the node's log.
bool LogWithin(Node& n, const std::string& needle, std::chrono::seconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end)
    if (n.WaitForLog(needle)) return true;
  return false;
}

nlohmann::json StatusJson(const std::string& socket) {
  auto r = ctl::testing::RunCtl({"status", "--json", "--ctl-socket", socket});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

// Creates in flight: `n` create_client requests queued at once on the
// node's nfsd (ids PREFIX0000, PREFIX0001, ...), answered in batches.
struct InFlight {
  std::vector<std::string> ids;
  std::vector<nfsdsim::Ticket> tickets;

  InFlight(nfsdsim::SimKernel& k, const char* prefix, int n) {
    const std::string inst = std::to_string(k.CurrentInstance());
    for (int i = 0; i < n; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "%s%04d", prefix, i);
      std::string hex;
      for (const char* c = id; *c != '\0'; ++c) {
        char h[3];
        std::snprintf(h, sizeof h, "%02x", static_cast<unsigned char>(*c));
        hex += h;
      }
      ids.push_back(id);
      tickets.push_back(
          k.SubmitWithSeq(nfsdfs::Channel::kCreateClient, [&](uint64_t seq) {
            return std::to_string(seq) + " " + inst + " \\x" + hex + " - v41\n";
          }));
    }
  }
  // The ids whose create was answered 0 (stored: acknowledged).
  std::set<std::string> Acknowledged(nfsdsim::SimKernel& k) const {
    std::set<std::string> out;
    for (size_t i = 0; i < tickets.size(); ++i) {
      nfsdsim::AwaitResult r = k.Await(tickets[i], scenario::kStepTimeout);
      if (r.answered && r.status == 0) out.insert(ids[i]);
    }
    return out;
  }
};

// Whether every element of `a` is in `b`.
bool Within(const std::set<std::string>& a, const std::set<std::string>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

TEST_CASE(
    "a node that takes a scope over from a killed node allows exactly "
    "the reclaims of its records",
    "[etcd][failover]") {
  EtcdCluster etcd;
  TempDir t;
  Site a(t, "a"), b(t, "b");
  a.node.StartHelper({}, ClusterArgs(etcd, "a"));
  REQUIRE(a.node.k().StartInstance(1000).ok());
  REQUIRE(a.node.k().EstablishState("X", Hash("x"), Minor::kV41).ok());
  REQUIRE(a.node.k().EstablishState("Y", "", Minor::kV40).ok());
  REQUIRE(a.node.k().EstablishState("Gone", "", Minor::kV41).ok());
  REQUIRE(a.node.k().Expire("Gone").ok());
  REQUIRE(a.node.k().EndGrace().ok());
  nlohmann::json st = StatusJson(a.socket());
  CHECK(st["cluster"]["node"] == "a");
  CHECK(st["cluster"]["cluster"] == "test");
  CHECK(st["cluster"]["lease_ttl"] == kTtl);
  CHECK(st["cluster"]["fenced"] == false);
  CHECK(st["clients"] == 2);

  // The node dies: its lease is still alive for up to kTtl seconds, so the
  // other node waits for it, then serves.
  a.node.KillHelper();
  const auto t0 = Clock::now();
  b.node.StartHelper({}, ClusterArgs(etcd, "b"));
  const auto waited = Clock::now() - t0;
  INFO(b.node.Log());
  CHECK(b.node.WaitForLog("scope svc is served by node a"));
  CHECK(b.node.WaitForLog("waiting for its lease to end"));
  CHECK(waited < std::chrono::seconds(2 * kTtl + 3));

  // Node b's nfsd starts: the clients node a recorded may reclaim, with
  // their principals; the expired one may not.
  nfsdsim::StartResult s = b.node.k().StartInstance(2000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X", "Y"});
  CHECK(b.node.k().Reclaim("X", Hash("x")) == ReclaimResult::kAllowed);
  CHECK(b.node.k().Reclaim("X", Hash("other")) == ReclaimResult::kReclaimBad);
  CHECK(b.node.k().Reclaim("Y", "") == ReclaimResult::kAllowed);
  CHECK(b.node.k().Reclaim("Gone", "") == ReclaimResult::kReclaimBad);
  REQUIRE(b.node.k().ReclaimComplete("X", Hash("x")).ok());
  REQUIRE(b.node.k().EndGrace().ok());

  // Node a comes back while b serves: it waits, then refuses, naming b.
  nfsdsim::Process again;
  std::vector<std::string> argv = {NFSD_HELPER_BIN,
                                   "--foreground",
                                   "--nfsdfs",
                                   a.dir + "-nfsd",
                                   "--db",
                                   a.dir + "/state.sqlite",
                                   "--scope",
                                   "svc",
                                   "--cld-pipe",
                                   "none",
                                   "--nfsdcld-db",
                                   "none",
                                   "--nfsdcltrack-db",
                                   "none",
                                   "--ctl-socket",
                                   a.socket()};
  for (const std::string& arg : ClusterArgs(etcd, "a")) argv.push_back(arg);
  REQUIRE(again.Start(argv));
  auto exit = again.Wait(std::chrono::seconds(2 * kTtl + 15));
  REQUIRE(exit);
  REQUIRE(again.WaitForStderrEnd(scenario::kStepTimeout));
  INFO(again.Stderr());
  CHECK(exit->exited);
  CHECK(exit->code == 1);
  CHECK(again.Stderr().find("scope svc is served by node b") !=
        std::string::npos);
  CHECK(again.Stderr().find("its lease did not end within") !=
        std::string::npos);

  // Node b's next restart: only X reclaimed in b's grace period.
  s = b.node.k().StartInstance(3000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X"});
  b.node.StopHelper();
}

TEST_CASE("a clean stop hands the scope over at once", "[etcd][failover]") {
  EtcdCluster etcd;
  TempDir t;
  Site a(t, "a"), b(t, "b");
  a.node.StartHelper({}, ClusterArgs(etcd, "a"));
  REQUIRE(a.node.k().StartInstance(1000).ok());
  REQUIRE(a.node.k().EstablishState("X", "", Minor::kV41).ok());
  a.node.StopHelper();
  CHECK(a.node.WaitForLog("scope svc released"));

  b.node.StartHelper({}, ClusterArgs(etcd, "b"));
  INFO(b.node.Log());
  CHECK(b.node.Log().find("waiting for its lease") == std::string::npos);
  nfsdsim::StartResult s = b.node.k().StartInstance(2000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X"});
  b.node.StopHelper();
}

TEST_CASE(
    "a node cut off from etcd is fenced: no upcall is answered "
    "stored and no client may reclaim until it rejoins",
    "[etcd][failover][fence]") {
  EtcdCluster etcd;
  TempDir t;
  Site a(t, "a");
  a.node.StartHelper({}, ClusterArgs(etcd, "a"));
  REQUIRE(a.node.k().StartInstance(1000).ok());
  REQUIRE(a.node.k().EstablishState("X", "", Minor::kV41).ok());
  REQUIRE(a.node.k().EndGrace().ok());

  // Every member stops answering, as when the node is partitioned from
  // them: within its lease's time to live the node fences itself.
  for (int i = 0; i < etcd.size(); ++i) etcd.Pause(i);
  REQUIRE(LogWithin(a.node, "cluster: node is fenced",
                    std::chrono::seconds(3 * kTtl + 5)));
  nfsdsim::StatusResult c = a.node.k().EstablishState("Y", "", Minor::kV41);
  CHECK(c.status == -EIO);
  nlohmann::json st = StatusJson(a.socket());
  CHECK(st["cluster"]["fenced"] == true);
  CHECK(st["cluster"]["fence_reason"].is_string());
  auto table = ctl::testing::RunCtl({"status", "--ctl-socket", a.socket()});
  CHECK(table.out.find("fenced") != std::string::npos);
  CHECK(table.out.find("YES since") != std::string::npos);
  // nfsd restarts meanwhile: nobody may reclaim.
  nfsdsim::StartResult s = a.node.k().StartInstance(2000);
  CHECK_FALSE(s.ok());
  CHECK(s.allow.empty());
  CHECK(a.node.k().Reclaim("X", "") == ReclaimResult::kReclaimBad);

  // etcd is back: the node rejoins by itself and serves again; what it
  // acknowledged before is there, what it refused is not.
  for (int i = 0; i < etcd.size(); ++i) etcd.Resume(i);
  REQUIRE(LogWithin(a.node, "cluster: rejoined", std::chrono::seconds(30)));
  st = StatusJson(a.socket());
  CHECK(st["cluster"]["fenced"] == false);
  s = a.node.k().StartInstance(3000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X"});
  CHECK(a.node.k().EstablishState("Y", "", Minor::kV41).ok());
  a.node.StopHelper();
}

TEST_CASE(
    "cluster mode refuses to start, saying why, when etcd cannot be "
    "used",
    "[etcd][failover]") {
  TempDir t;
  const std::vector<std::string> base = {
      "--nfsdfs",     t.path() + "/nfsd",
      "--db",         t.path() + "/s/state.sqlite",
      "--scope",      "svc",
      "--ctl-socket", t.path() + "/ctl.sock"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  // Nothing listens on port 1.
  std::string out = scenario::ExpectNoStart(
      with({"--etcd-endpoints", "http://127.0.0.1:1", "--node", "a"}));
  CHECK(out.find("cannot join cluster default in etcd") != std::string::npos);
  out = scenario::ExpectNoStart(with({"--etcd-endpoints", "http://127.0.0.1:1",
                                      "--etcd-cacert", "/etc/hostname"}));
  CHECK(out.find("is not https://") != std::string::npos);
  out = scenario::ExpectNoStart(
      with({"--etcd-endpoints", "http://127.0.0.1:1", "--etcd-user", "nfs"}));
  CHECK(out.find("etcd-user and etcd-password-file go together") !=
        std::string::npos);
}

TEST_CASE(
    "a node killed while its batches commit loses no acknowledged "
    "record",
    "[etcd][failover][crash]") {
  EtcdCluster etcd;
  TempDir t;
  Site a(t, "a"), b(t, "b");
  a.node.StartHelper({}, ClusterArgs(etcd, "a"));
  REQUIRE(a.node.k().StartInstance(1000).ok());
  InFlight f(a.node.k(), "m", 600);
  std::set<std::string> all(f.ids.begin(), f.ids.end());
  // Killed once a quarter was answered, with the rest still to commit.
  REQUIRE(a.node.k().WaitForStats(
      nfsdfs::Channel::kCreateClient,
      [](const nfsdsim::ChannelStats& st) { return st.answered >= 150; },
      scenario::kStepTimeout));
  a.node.KillHelper();
  const std::set<std::string> acked = f.Acknowledged(a.node.k());
  INFO(acked.size() << " of " << all.size() << " creates acknowledged");
  CHECK(!acked.empty());

  // The node that takes over allows every acknowledged client, and none
  // that nfsd never asked for.
  b.node.StartHelper({}, ClusterArgs(etcd, "b"));
  nfsdsim::StartResult s = b.node.k().StartInstance(2000);
  REQUIRE(s.ok());
  const std::set<std::string> allowed = scenario::Ids(s.allow);
  INFO(allowed.size() << " allowed on the new node");
  CHECK(Within(acked, allowed));
  CHECK(Within(allowed, all));
  b.node.StopHelper();
}

TEST_CASE(
    "the etcd leader killed while creates are in flight: acknowledged "
    "records survive and the node goes on",
    "[etcd][failover][leader]") {
  EtcdCluster etcd;
  TempDir t;
  Site a(t, "a");
  a.node.StartHelper({}, ClusterArgs(etcd, "a"));
  REQUIRE(a.node.k().StartInstance(1000).ok());
  // Acknowledged before the leader dies...
  const std::set<std::string> before =
      InFlight(a.node.k(), "p", 100).Acknowledged(a.node.k());
  CHECK(before.size() == 100);
  // ...and in flight while it dies: each is stored or answered -EIO.
  InFlight during(a.node.k(), "q", 300);
  const int leader = etcd.Leader();
  REQUIRE(leader >= 0);
  etcd.Kill(leader);
  const std::set<std::string> acked = during.Acknowledged(a.node.k());
  INFO(acked.size() << " of 300 creates in flight acknowledged");
  // The two members left elect a leader; the node serves on (its lease,
  // kept by the new leader, outlives the election).
  REQUIRE(etcd.Leader() >= 0);
  CHECK(a.node.k().EstablishState("after", "", Minor::kV41).ok());
  nlohmann::json st = StatusJson(a.socket());
  CHECK(st["cluster"]["fenced"] == false);

  // The next start of the node's nfsd allows every acknowledged client.
  nfsdsim::StartResult s = a.node.k().StartInstance(2000);
  REQUIRE(s.ok());
  const std::set<std::string> allowed = scenario::Ids(s.allow);
  CHECK(Within(before, allowed));
  CHECK(Within(acked, allowed));
  CHECK(allowed.count("after") == 1);
  a.node.StopHelper();
}

}  // namespace
}  // namespace nfsdh::etcdtest
