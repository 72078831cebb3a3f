// Moving a scope's records between a database and etcd with helper-ctl
// export and import (no daemon needed on the etcd side), on a real
// three-member etcd and real nfsd-helper processes on simulated nfsds: the
// clients that could reclaim before the move can reclaim after it, no
// other, and a scope another node serves is not written.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "ctl/test_util.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/scenario/harness.h"

namespace nfsdh::etcdtest {
namespace {

using nfsdfs::Minor;
using nfsdsim::ReclaimResult;
using scenario::Hash;
using scenario::Node;
using scenario::TempDir;

constexpr int kTtl = 2;

struct Ctl {
  const EtcdCluster& etcd;
  std::string conf;    // an empty nfs.conf: the machine's does not count
  std::string socket;  // where no daemon listens

  ctl::testing::Result Run(std::vector<std::string> args,
                           bool with_etcd) const {
    args.insert(args.end(), {"--config", conf});
    if (args[0] != "cluster" && args[0] != "export-nfsdcld")
      args.insert(args.end(), {"--ctl-socket", socket});
    if (with_etcd)
      args.insert(args.end(), {"--etcd-endpoints", etcd.endpoint_list(),
                               "--cluster", "test"});
    return ctl::testing::RunCtl(args);
  }
  nlohmann::json Json(const std::vector<std::string>& args,
                      bool with_etcd) const {
    auto r = Run(args, with_etcd);
    INFO(r.err);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  }
};

// The ids of a JSON list of clients, as helper-ctl shows them ("\"X\"").
std::set<std::string> ShownIds(const nlohmann::json& clients) {
  std::set<std::string> out;
  for (const auto& c : clients) out.insert(c["id"].get<std::string>());
  return out;
}

std::string Lines(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A real etcd, a directory, an empty nfs.conf, and helper-ctl run with
// them.
struct Moving {
  EtcdCluster etcd;
  TempDir t;
  std::string conf = EmptyConf(t);
  Ctl ctl{etcd, conf, t.path() + "/no-daemon.sock"};

  static std::string EmptyConf(const TempDir& t) {
    const std::string path = t.path() + "/nfs.conf";
    std::ofstream(path) << "";
    return path;
  }
};

// One server on a database, scope svc: X and Y hold state, Gone expired.
// Returns the database.
std::string OneServer(const TempDir& t) {
  const std::string db = t.path() + "/one/state.sqlite";
  Node one(t.path() + "/one-nfsd", db, "svc");
  one.StartHelper();
  REQUIRE(one.k().StartInstance(1000).ok());
  REQUIRE(one.k().EstablishState("X", Hash("x"), Minor::kV41).ok());
  REQUIRE(one.k().EstablishState("Y", "", Minor::kV40).ok());
  REQUIRE(one.k().EstablishState("Gone", "", Minor::kV41).ok());
  REQUIRE(one.k().Expire("Gone").ok());
  REQUIRE(one.k().EndGrace().ok());
  one.StopHelper();
  return db;
}

TEST_CASE(
    "a scope's records move from a database into etcd and back, and "
    "exactly the clients that could reclaim still can",
    "[etcd][ctl][migrate]") {
  Moving m;
  TempDir& t = m.t;
  const Ctl& ctl = m.ctl;
  const std::string db1 = OneServer(t);

  // Database -> file -> etcd, with no daemon running.
  const std::string f1 = t.path() + "/from-db.jsonl";
  nlohmann::json e = ctl.Json(
      {"export", "--db", db1, "--scope", "svc", "--output", f1, "--json"},
      false);
  CHECK(e["source"] == "database");
  CHECK(e["clients"] == 2);
  nlohmann::json i = ctl.Json({"import", "--scope", "svc", "--json", f1}, true);
  CHECK(i["via"] == "etcd");
  CHECK(i["cluster"] == "test");
  CHECK(i["imported"] == 2);
  CHECK(i["scope_state"] == "fresh");
  // helper-ctl gave the scope and its own lease up: nobody owns it.
  nlohmann::json c = ctl.Json({"cluster", "--json"}, true);
  REQUIRE(c["scopes"].size() == 1);
  CHECK(c["scopes"][0]["scope"] == "svc");
  CHECK(c["scopes"][0]["owner"].is_null());
  CHECK(c["scopes"][0]["records"] == 2);
  CHECK(c["nodes"].empty());
  // Imported again: all kept, nothing doubled.
  i = ctl.Json({"import", "--scope", "svc", "--json", f1}, true);
  CHECK(i["imported"] == 0);
  CHECK(i["kept"] == 2);

  // A cluster node serves the scope: X and Y may reclaim, Gone may not.
  Node two(t.path() + "/two-nfsd", t.path() + "/two/state.sqlite", "svc");
  two.StartHelper({}, HelperClusterArgs(m.etcd, "b", kTtl));
  nfsdsim::StartResult s = two.k().StartInstance(2000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X", "Y"});
  CHECK(two.k().Reclaim("X", Hash("other")) == ReclaimResult::kReclaimBad);
  CHECK(two.k().Reclaim("X", Hash("x")) == ReclaimResult::kAllowed);
  CHECK(two.k().Reclaim("Gone", "") == ReclaimResult::kReclaimBad);
  REQUIRE(two.k().ReclaimComplete("X", Hash("x")).ok());
  // Y does not reclaim in this grace period.
  REQUIRE(two.k().EndGrace().ok());

  // While node b serves it, helper-ctl writes nothing into the scope.
  auto r = ctl.Run({"import", "--scope", "svc", f1}, true);
  CHECK(r.code == 1);
  CHECK(r.err.find("scope svc is served by node b") != std::string::npos);
  CHECK(r.err.find("nothing imported") != std::string::npos);
  // Reading needs no ownership: the export from etcd works meanwhile.
  const std::string f2 = t.path() + "/from-etcd.jsonl";
  e = ctl.Json({"export", "--scope", "svc", "--output", f2, "--json"}, true);
  CHECK(e["source"] == "etcd");
  CHECK(e["database"].is_null());
  CHECK(e["clients"] == 1);
  CHECK(Lines(f2).find("\"source\":\"etcd\"") != std::string::npos);
  two.StopHelper();

  // etcd -> file -> a new database: only X may reclaim there.
  const std::string db3 = t.path() + "/three/state.sqlite";
  i = ctl.Json({"import", "--db", db3, "--scope", "svc", "--json", f2}, false);
  CHECK(i["via"] == "database");
  CHECK(i["imported"] == 1);
  Node three(t.path() + "/three-nfsd", db3, "svc");
  three.StartHelper();
  s = three.k().StartInstance(3000);
  REQUIRE(s.ok());
  CHECK(scenario::Ids(s.allow) == std::set<std::string>{"X"});
  CHECK(three.k().Reclaim("X", Hash("x")) == ReclaimResult::kAllowed);
  CHECK(three.k().Reclaim("Y", "") == ReclaimResult::kReclaimBad);
  three.StopHelper();
}

TEST_CASE("nfsdcld's records go into etcd and back through a database file",
          "[etcd][ctl][migrate]") {
  Moving m;
  TempDir& t = m.t;
  const Ctl& ctl = m.ctl;
  const std::string db1 = OneServer(t);
  const std::string cld1 = t.path() + "/cld1.sqlite";
  nlohmann::json j =
      ctl.Json({"export-nfsdcld", "--db", db1, "--scope", "svc", "--nfsdcld-db",
                cld1, "--nfsdfs", "none", "--json"},
               false);
  const std::set<std::string> xy = {"\"X\"", "\"Y\""};
  CHECK(ShownIds(j["clients"]) == xy);

  // nfsdcld -> a database -> etcd.
  const std::string mid = t.path() + "/mid/state.sqlite";
  j = ctl.Json({"import-nfsdcld", "--db", mid, "--scope", "svc",
                "--nfsdcltrack-db", "none", "--json", cld1},
               false);
  const std::string f1 = t.path() + "/mid.jsonl";
  j = ctl.Json(
      {"export", "--db", mid, "--scope", "svc", "--output", f1, "--json"},
      false);
  CHECK(j["clients"] == 2);
  j = ctl.Json({"import", "--scope", "svc", "--json", f1}, true);
  CHECK(j["imported"] == 2);

  // etcd -> a database -> nfsdcld: the same two clients.
  const std::string f2 = t.path() + "/etcd.jsonl";
  j = ctl.Json({"export", "--scope", "svc", "--output", f2, "--json"}, true);
  CHECK(j["clients"] == 2);
  const std::string back = t.path() + "/back/state.sqlite";
  j = ctl.Json({"import", "--db", back, "--scope", "svc", "--json", f2}, false);
  CHECK(j["imported"] == 2);
  const std::string cld2 = t.path() + "/cld2.sqlite";
  j = ctl.Json({"export-nfsdcld", "--db", back, "--scope", "svc",
                "--nfsdcld-db", cld2, "--nfsdfs", "none", "--json"},
               false);
  CHECK(ShownIds(j["clients"]) == xy);
  // What nfsdcld would offer is the same in both of its databases.
  j = ctl.Json(
      {"import-nfsdcld", "--db", t.path() + "/check/state.sqlite", "--scope",
       "svc", "--nfsdcltrack-db", "none", "--dry-run", "--json", cld2},
      false);
  CHECK(ShownIds(j["clients"]) == xy);
}

TEST_CASE("export and import say clearly when etcd cannot be used",
          "[etcd][ctl][migrate]") {
  TempDir t;
  const std::string conf = t.path() + "/nfs.conf";
  std::ofstream(conf) << "";
  const std::string sock = t.path() + "/no-daemon.sock";
  const std::string file = t.path() + "/f.jsonl";
  std::ofstream(file)
      << "{\"format\":\"nfsd-helper-clients\",\"version\":1,"
         "\"scope\":\"s\",\"exported\":\"2026-01-01T00:00:00Z\"}\n"
         "{\"end\":true,\"clients\":0}\n";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), {"--config", conf, "--ctl-socket", sock});
    return ctl::testing::RunCtl(args);
  };
  // Nothing listens on port 1.
  auto r = run({"import", "--scope", "s", "--etcd-endpoints",
                "http://127.0.0.1:1", file});
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot reach etcd cluster default") != std::string::npos);
  CHECK(r.err.find("nothing imported") != std::string::npos);
  r = run({"export", "--scope", "s", "--etcd-endpoints", "http://127.0.0.1:1"});
  CHECK(r.code == 1);
  CHECK(r.err.find("export failed") != std::string::npos);
  CHECK(r.out.empty());
  r = run({"export", "--scope", "s", "--etcd-endpoints", "not a url"});
  CHECK(r.code == 2);
  CHECK(r.err.find("etcd-endpoints 'not a url'") != std::string::npos);
  r = run({"import", "--scope", "s", "--etcd-endpoints", "http://127.0.0.1:1",
           "--etcd-cert", "/x", file});
  CHECK(r.code == 2);
  CHECK(r.err.find("etcd-cert and etcd-key go together") != std::string::npos);
}

}  // namespace
}  // namespace nfsdh::etcdtest
