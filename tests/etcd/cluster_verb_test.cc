// helper-ctl cluster against a real three-member etcd and real nfsd-helper
// nodes (tests/scenario/harness.h): etcd's members and leader, the nodes
// that hold a lease, each scope's owner, state and records, as they change
// when a node dies and a member hangs; and its errors.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
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
using scenario::Hash;
using scenario::Node;
using scenario::TempDir;

constexpr int kTtl = 2;

// An empty nfs.conf, so that the machine's own does not count.
std::string EmptyConf(const TempDir& t) {
  const std::string path = t.path() + "/nfs.conf";
  std::ofstream(path) << "";
  return path;
}

ctl::testing::Result Cluster(const EtcdCluster& etcd, const std::string& conf,
                             std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"cluster",
                                   "--etcd-endpoints",
                                   etcd.endpoint_list(),
                                   "--cluster",
                                   "test",
                                   "--config",
                                   conf};
  for (std::string& m : more) args.push_back(std::move(m));
  return ctl::testing::RunCtl(args);
}

nlohmann::json ClusterJson(const EtcdCluster& etcd, const std::string& conf) {
  auto r = Cluster(etcd, conf, {"--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

// The entries of `list` by their `key`.
std::map<std::string, nlohmann::json> By(const nlohmann::json& list,
                                         const char* key) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& e : list) out[e[key].get<std::string>()] = e;
  return out;
}

TEST_CASE(
    "helper-ctl cluster shows etcd's members, the nodes and each "
    "scope's owner, state and records",
    "[etcd][ctl]") {
  EtcdCluster etcd;
  TempDir t;
  const std::string conf = EmptyConf(t);

  // Nothing of cluster "test" yet: the members, and a warning.
  auto r = Cluster(etcd, conf, {"--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("no node and no scope of cluster test") !=
        std::string::npos);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["cluster"] == "test");
  REQUIRE(j["members"].size() == 3);
  int leaders = 0;
  for (const auto& m : j["members"]) {
    CHECK(m["answering"] == true);
    if (m["leader"] == true) {
      ++leaders;
      CHECK(m["id"] == j["leader"]);
    }
  }
  CHECK(leaders == 1);
  CHECK(j["nodes"].empty());
  CHECK(j["scopes"].empty());

  // Node a serves scope svc (out of grace, two records), node b scope
  // other (in grace, one record).
  Node a(t.path() + "/a-nfsd", t.path() + "/a.sqlite", "svc");
  Node b(t.path() + "/b-nfsd", t.path() + "/b.sqlite", "other");
  a.StartHelper({}, HelperClusterArgs(etcd, "a", kTtl));
  REQUIRE(a.k().StartInstance(1000).ok());
  REQUIRE(a.k().EstablishState("X", Hash("x"), Minor::kV41).ok());
  REQUIRE(a.k().EstablishState("Y", "", Minor::kV40).ok());
  REQUIRE(a.k().EndGrace().ok());
  b.StartHelper({}, HelperClusterArgs(etcd, "b", kTtl));
  REQUIRE(b.k().StartInstance(5000).ok());
  REQUIRE(b.k().EstablishState("Z", "", Minor::kV41).ok());

  j = ClusterJson(etcd, conf);
  auto nodes = By(j["nodes"], "node");
  REQUIRE(nodes.size() == 2);
  for (const char* n : {"a", "b"}) {
    INFO(n);
    REQUIRE(nodes.count(n) == 1);
    CHECK(nodes[n]["ttl"].is_number_integer());
    CHECK(nodes[n]["ttl"].get<int>() <= kTtl);
    CHECK(nodes[n]["pid"].get<int>() > 0);
  }
  auto scopes = By(j["scopes"], "scope");
  REQUIRE(scopes.size() == 2);
  CHECK(scopes["svc"]["owner"] == "a");
  CHECK(scopes["svc"]["state"] == "serving");
  CHECK(scopes["svc"]["records"] == 2);
  CHECK(scopes["svc"]["fields"]["in_grace"] == false);
  CHECK(scopes["svc"]["fields"]["current_instance"].is_number_integer());
  CHECK(scopes["other"]["owner"] == "b");
  CHECK(scopes["other"]["state"] == "in grace");
  CHECK(scopes["other"]["records"] == 1);
  CHECK(scopes["other"]["fields"]["in_grace"] == true);

  // The table says the same.
  r = Cluster(etcd, conf);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("cluster test (etcd cluster id") != std::string::npos);
  CHECK(r.out.find("leader") != std::string::npos);
  CHECK(r.out.find("svc") != std::string::npos);
  CHECK(r.out.find("in grace") != std::string::npos);

  // Node a dies: once its lease has ended it is gone, and svc has no
  // owner, its records kept.
  a.KillHelper();
  const auto end = Clock::now() + std::chrono::seconds(2 * kTtl + 5);
  for (;;) {
    j = ClusterJson(etcd, conf);
    if (By(j["nodes"], "node").count("a") == 0 || Clock::now() > end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  nodes = By(j["nodes"], "node");
  CHECK(nodes.count("a") == 0);
  CHECK(nodes.count("b") == 1);
  scopes = By(j["scopes"], "scope");
  CHECK(scopes["svc"]["owner"].is_null());
  CHECK(scopes["svc"]["records"] == 2);
  CHECK(scopes["other"]["owner"] == "b");

  // A member that hangs is shown as not answering; the rest still answer.
  int hung = (etcd.Leader() + 1) % etcd.size();
  etcd.Pause(hung);
  r = Cluster(etcd, conf, {"--json"});
  etcd.Resume(hung);
  INFO(r.err);
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  int answering = 0;
  for (const auto& m : j["members"]) {
    if (m["answering"] == true) {
      ++answering;
    } else {
      CHECK(m["client_urls"][0] == etcd.endpoint(hung));
      CHECK(!m["error"].get<std::string>().empty());
    }
  }
  CHECK(answering == 2);
}

TEST_CASE(
    "helper-ctl cluster refuses bad options and says when etcd "
    "cannot be read",
    "[etcd][ctl]") {
  TempDir t;
  const std::string conf = EmptyConf(t);
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"cluster", "--config", conf});
    return ctl::testing::RunCtl(args);
  };
  auto r = run({});
  CHECK(r.code == 2);
  CHECK(r.err.find("no etcd endpoints") != std::string::npos);
  r = run({"--etcd-endpoints", "not a url"});
  CHECK(r.code == 2);
  CHECK(r.err.find("etcd-endpoints 'not a url'") != std::string::npos);
  r = run({"--etcd-endpoints", "http://127.0.0.1:1", "--etcd-cert", "/x"});
  CHECK(r.code == 2);
  CHECK(r.err.find("etcd-cert and etcd-key go together") != std::string::npos);
  r = run({"--etcd-endpoints", "http://127.0.0.1:1", "--cluster", "a/b"});
  CHECK(r.code == 2);
  CHECK(r.err.find("cluster name 'a/b'") != std::string::npos);
  // Nothing listens on port 1.
  r = run({"--etcd-endpoints", "http://127.0.0.1:1"});
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot read cluster default from etcd "
                   "(http://127.0.0.1:1: ") != std::string::npos);
  CHECK(r.out.empty());

  // The endpoints and cluster from nfs.conf.
  std::ofstream(conf) << "[nfsd-helper]\netcd-endpoints = http://127.0.0.1:1\n"
                         "cluster = fromconf\n";
  r = ctl::testing::RunCtl({"cluster", "--config", conf});
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot read cluster fromconf from etcd "
                   "(http://127.0.0.1:1: ") != std::string::npos);
}

}  // namespace
}  // namespace nfsdh::etcdtest
