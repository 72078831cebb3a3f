// etcd::EtcdStore on a real three-member etcd (tests/etcd/etcd_cluster.h):
// the tracker over it agrees with the recovery model as over SQLite; a
// batch larger than one etcd transaction commits whole; a purge hides its
// records at once and their keys go after; a node that lost its scope or
// its lease acknowledges nothing, and two nodes cannot both own a scope.
#include "daemon/etcd/etcd_store.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "daemon/tracker/model_check.h"
#include "tests/etcd/etcd_cluster.h"

namespace nfsdh::etcd {
namespace {

using etcdtest::EtcdCluster;

std::unique_ptr<EtcdStore> OpenStore(const EtcdCluster& cluster,
                                     const std::string& name,
                                     const std::string& node) {
  ClientOptions o;
  o.endpoints = cluster.endpoints();
  std::unique_ptr<Client> c;
  REQUIRE(Client::Open(o, &c).ok());
  StoreOptions so;
  so.cluster = name;
  so.node = node;
  std::unique_ptr<EtcdStore> st;
  Status s = EtcdStore::Open(std::move(c), so, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return st;
}

store::ClientRow Rec(const std::string& scope, const std::string& id,
                     int64_t instance) {
  store::ClientRow r;
  r.scope = scope;
  r.id = id;
  r.instance = instance;
  r.first_seen = r.last_seen = 1000;
  return r;
}

TEST_CASE("etcd store: the tracker over it agrees with the recovery model",
          "[etcd][store][model]") {
  EtcdCluster cluster;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    INFO("seed " << seed);
    auto st = OpenStore(cluster, "model" + std::to_string(seed), "n1");
    REQUIRE(st->Acquire("default").ok());
    tracker::testing::CheckAgainstModel(st.get(), "default", seed, 60);
  }
}

TEST_CASE(
    "etcd store: a batch larger than one etcd transaction commits "
    "whole, and a purge hides its records at once",
    "[etcd][store]") {
  EtcdCluster cluster;
  auto st = OpenStore(cluster, "big", "n1");
  REQUIRE(st->Acquire("s").ok());
  const int n = 3 * static_cast<int>(EtcdStore::kMaxOpsPerTxn) + 7;
  REQUIRE(st->Begin().ok());
  store::ScopeRow row;
  row.name = "s";
  row.boot_time = 5;
  row.max_instance = 5;
  REQUIRE(st->PutScope(row).ok());
  for (int i = 0; i < n; ++i) {
    // Binary ids, every byte value among them.
    std::string id = "id" + std::to_string(i);
    id.push_back(static_cast<char>(i & 0xff));
    REQUIRE(st->UpsertClient(Rec("s", id, 5)).ok());
  }
  REQUIRE(st->Commit().ok());
  int64_t count = 0;
  REQUIRE(st->CountClients("s", &count).ok());
  CHECK(count == n);
  // Read by a second node's store: it is all in etcd.
  auto other = OpenStore(cluster, "big", "n2");
  REQUIRE(other->CountClients("s", &count).ok());
  CHECK(count == n);
  std::string last;
  int64_t in_order = 0;
  REQUIRE(other
              ->ForEachClient("s",
                              [&](const store::ClientRow& r) {
                                if (in_order > 0) CHECK(last < r.id);
                                last = r.id;
                                ++in_order;
                                return true;
                              })
              .ok());
  CHECK(in_order == n);

  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Rec("s", "kept", 9)).ok());
  int64_t purged = 0;
  REQUIRE(st->PurgeOlderThan("s", 9, &purged).ok());
  CHECK(purged == n);
  REQUIRE(st->Commit().ok());
  REQUIRE(other->CountClients("s", &count).ok());
  CHECK(count == 1);
  std::optional<store::ClientRow> gone;
  REQUIRE(other->GetClient("s", "id1\x01", &gone).ok());
  CHECK_FALSE(gone.has_value());
  // The purged keys themselves were deleted after the commit.
  REQUIRE(st->CountPurgedKeys("s", &count).ok());
  CHECK(count == 0);
}

TEST_CASE(
    "etcd store: a node that lost its lease or its scope acknowledges "
    "nothing, and another takes the scope over with every record",
    "[etcd][store][fencing]") {
  EtcdCluster cluster;
  auto a = OpenStore(cluster, "c", "node-a");
  auto b = OpenStore(cluster, "c", "node-b");
  REQUIRE(a->Acquire("svc").ok());
  Status s = b->Acquire("svc");
  CHECK(s.code() == Status::Code::kPermission);
  CHECK(s.message().find("node-a") != std::string::npos);
  REQUIRE(a->Begin().ok());
  REQUIRE(a->UpsertClient(Rec("svc", "acked", 1)).ok());
  REQUIRE(a->Commit().ok());
  // b may not write a scope a serves, even knowing nothing of leases.
  REQUIRE(b->Begin().ok());
  REQUIRE(b->UpsertClient(Rec("svc", "intruder", 1)).ok());
  CHECK(b->Commit().code() == Status::Code::kIo);

  // a's lease ends (as when it is cut off from etcd for longer than the
  // lease): etcd deletes its owner key, and a's next batch fails at etcd.
  REQUIRE(a->client().LeaseRevoke(a->lease()).ok());
  REQUIRE(a->Begin().ok());
  REQUIRE(a->UpsertClient(Rec("svc", "late", 1)).ok());
  s = a->Commit();
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kIo);
  CHECK(a->fenced());
  CHECK(a->KeepAlive().code() == Status::Code::kNotFound);

  REQUIRE(b->Acquire("svc").ok());
  std::optional<store::ClientRow> r;
  REQUIRE(b->GetClient("svc", "acked", &r).ok());
  CHECK(r.has_value());
  REQUIRE(b->GetClient("svc", "late", &r).ok());
  CHECK_FALSE(r.has_value());
  REQUIRE(b->GetClient("svc", "intruder", &r).ok());
  CHECK_FALSE(r.has_value());

  // a comes back with a new lease: the scope is b's now.
  REQUIRE(a->Reconnect().ok());
  CHECK_FALSE(a->fenced());
  CHECK(a->Acquire("svc").code() == Status::Code::kPermission);
  // A clean hand-over back.
  REQUIRE(b->Release("svc").ok());
  REQUIRE(a->Acquire("svc").ok());
}

TEST_CASE("etcd store: of nodes racing to take one scope, exactly one wins",
          "[etcd][store][fencing]") {
  EtcdCluster cluster;
  for (int round = 0; round < 5; ++round) {
    std::vector<std::unique_ptr<EtcdStore>> nodes;
    for (int i = 0; i < 4; ++i)
      nodes.push_back(OpenStore(cluster, "race" + std::to_string(round),
                                "n" + std::to_string(i)));
    std::vector<Status> results(nodes.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < nodes.size(); ++i)
      threads.emplace_back(
          [&, i] { results[i] = nodes[i]->Acquire("contested"); });
    for (std::thread& t : threads) t.join();
    int won = 0;
    for (const Status& r : results) {
      if (r.ok())
        ++won;
      else
        CHECK(r.code() == Status::Code::kPermission);
    }
    CHECK(won == 1);
  }
}

TEST_CASE("etcd store: reads between BeginRead and EndRead see one snapshot",
          "[etcd][store]") {
  EtcdCluster cluster;
  auto writer = OpenStore(cluster, "snap", "w");
  auto reader = OpenStore(cluster, "snap", "r");
  REQUIRE(writer->Acquire("s").ok());
  store::ScopeRow row;
  row.name = "s";
  row.max_instance = 1;
  REQUIRE(writer->Begin().ok());
  REQUIRE(writer->PutScope(row).ok());
  REQUIRE(writer->UpsertClient(Rec("s", "a", 1)).ok());
  REQUIRE(writer->Commit().ok());

  REQUIRE(reader->BeginRead().ok());
  int64_t n = 0;
  REQUIRE(reader->CountClients("s", &n).ok());
  CHECK(n == 1);
  // Another node writes meanwhile: the open snapshot does not see it.
  REQUIRE(writer->Begin().ok());
  REQUIRE(writer->UpsertClient(Rec("s", "b", 1)).ok());
  REQUIRE(writer->Commit().ok());
  REQUIRE(reader->CountClients("s", &n).ok());
  CHECK(n == 1);
  std::optional<store::ClientRow> b;
  REQUIRE(reader->GetClient("s", "b", &b).ok());
  CHECK(!b);
  // No transaction while a snapshot is open.
  CHECK(reader->Begin().code() == Status::Code::kInvalid);
  reader->EndRead();
  REQUIRE(reader->CountClients("s", &n).ok());
  CHECK(n == 2);
}

}  // namespace
}  // namespace nfsdh::etcd
