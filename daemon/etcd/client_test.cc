// etcd::Client against a real three-member etcd on loopback
// (tests/etcd/etcd_cluster.h): what the cluster mode relies on, and the
// faults it must see as faults.
#include "daemon/etcd/client.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/etcd/etcd_cluster.h"

namespace nfsdh::etcd {
namespace {

using etcdtest::EtcdCluster;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::unique_ptr<Client> Connect(const std::vector<std::string>& endpoints,
                                int request_timeout_ms = 5000) {
  ClientOptions o;
  o.endpoints = endpoints;
  o.request_timeout_ms = request_timeout_ms;
  std::unique_ptr<Client> c;
  Status s = Client::Open(o, &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

TEST_CASE("etcd client: keys and values of any bytes round-trip",
          "[etcd][client]") {
  EtcdCluster cluster;
  auto c = Connect(cluster.endpoints());
  const std::string prefix = std::string("/t/\0\xff", 5);
  // Every length modulo 3 (base64's padding), and bytes of every value.
  for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 1024u, 3001u}) {
    const std::string key = prefix + Bytes(1 + n % 7, static_cast<uint32_t>(n));
    const std::string value = Bytes(n, static_cast<uint32_t>(n) + 100);
    int64_t rev = 0;
    REQUIRE(c->Put(key, value, 0, &rev).ok());
    CHECK(rev > 0);
    std::optional<KeyValue> kv;
    REQUIRE(c->Get(key, &kv).ok());
    REQUIRE(kv.has_value());
    CHECK(kv->key == key);
    CHECK(kv->value == value);
    CHECK(kv->mod_revision == rev);
  }
  RangeResult r;
  REQUIRE(c->Range(prefix, PrefixEnd(prefix), 0, &r).ok());
  CHECK(static_cast<int64_t>(r.kvs.size()) == r.count);
  const int64_t total = r.count;
  CHECK(total >= 6);  // keys may coincide: lengths 1..7 of one generator
  REQUIRE(c->Range(prefix, PrefixEnd(prefix), 2, &r).ok());
  CHECK(r.kvs.size() == 2);
  CHECK(r.more);
  CHECK(r.count == total);
  int64_t deleted = 0;
  REQUIRE(c->Delete(prefix, PrefixEnd(prefix), &deleted).ok());
  CHECK(deleted == total);
  std::optional<KeyValue> gone;
  REQUIRE(c->Get(prefix + "x", &gone).ok());
  CHECK_FALSE(gone.has_value());
}

TEST_CASE("etcd client: PrefixEnd bounds exactly the keys of a prefix",
          "[etcd][client]") {
  CHECK(PrefixEnd("a") == "b");
  CHECK(PrefixEnd("/x/") == "/x0");
  CHECK(PrefixEnd(std::string("a\xff", 2)) == "b");
  CHECK(PrefixEnd(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(PrefixEnd("") == std::string(1, '\0'));
}

TEST_CASE(
    "etcd client: a transaction runs its success ops only while its "
    "compares hold",
    "[etcd][client]") {
  EtcdCluster cluster;
  auto c = Connect(cluster.endpoints());
  // Create if absent: once.
  TxnResult t;
  REQUIRE(c->Txn({Compare::Absent("/owner")}, {Op::Put("/owner", "node-a")},
                 {Op::Get("/owner")}, &t)
              .ok());
  CHECK(t.succeeded);
  REQUIRE(t.results.size() == 1);
  const int64_t created = t.revision;
  REQUIRE(c->Txn({Compare::Absent("/owner")}, {Op::Put("/owner", "node-b")},
                 {Op::Get("/owner")}, &t)
              .ok());
  CHECK_FALSE(t.succeeded);
  REQUIRE(t.results.size() == 1);
  REQUIRE(t.results[0].kvs.size() == 1);
  CHECK(t.results[0].kvs[0].value == "node-a");
  CHECK(t.results[0].kvs[0].mod_revision == created);
  // Compare-and-swap on the revision: the stale writer loses.
  REQUIRE(
      c->Txn({Compare::ModRevision("/owner", Compare::Result::kEqual, created)},
             {Op::Put("/owner", "node-a2"), Op::Put("/rec/1", "x"),
              Op::Put("/rec/2", "y")},
             {}, &t)
          .ok());
  CHECK(t.succeeded);
  CHECK(t.results.size() == 3);
  REQUIRE(
      c->Txn({Compare::ModRevision("/owner", Compare::Result::kEqual, created)},
             {Op::Put("/owner", "stale")}, {}, &t)
          .ok());
  CHECK_FALSE(t.succeeded);
  CHECK(t.results.empty());
  std::optional<KeyValue> kv;
  REQUIRE(c->Get("/owner", &kv).ok());
  CHECK(kv->value == "node-a2");
  // Value compares, and a delete's count.
  REQUIRE(c->Txn({Compare::Value("/owner", Compare::Result::kEqual, "node-a2")},
                 {Op::DeletePrefix("/rec/")}, {}, &t)
              .ok());
  CHECK(t.succeeded);
  REQUIRE(t.results.size() == 1);
  CHECK(t.results[0].count == 2);
}

TEST_CASE(
    "etcd client: a key on a lease lives while the lease is kept "
    "alive, and goes when it expires",
    "[etcd][client]") {
  EtcdCluster cluster;
  auto c = Connect(cluster.endpoints());
  int64_t lease = 0;
  int64_t ttl = 0;
  REQUIRE(c->LeaseGrant(2, &lease, &ttl).ok());
  CHECK(lease != 0);
  CHECK(ttl == 2);
  REQUIRE(c->Put("/nodes/a", "alive", lease).ok());
  std::optional<KeyValue> kv;
  REQUIRE(c->Get("/nodes/a", &kv).ok());
  REQUIRE(kv.has_value());
  CHECK(kv->lease == lease);
  // Kept alive for twice its TTL.
  const auto until = Clock::now() + std::chrono::seconds(4);
  while (Clock::now() < until) {
    int64_t left = 0;
    REQUIRE(c->LeaseKeepAlive(lease, &left).ok());
    CHECK(left == 2);
    std::this_thread::sleep_for(milliseconds(500));
  }
  REQUIRE(c->Get("/nodes/a", &kv).ok());
  CHECK(kv.has_value());
  // No longer kept alive: gone within its TTL (and a little).
  const auto deadline = Clock::now() + std::chrono::seconds(6);
  do {
    std::this_thread::sleep_for(milliseconds(200));
    REQUIRE(c->Get("/nodes/a", &kv).ok());
  } while (kv.has_value() && Clock::now() < deadline);
  CHECK_FALSE(kv.has_value());
  int64_t left = 1;
  REQUIRE(c->LeaseKeepAlive(lease, &left).ok());
  CHECK(left == 0);
  REQUIRE(c->LeaseTimeToLive(lease, &left).ok());
  CHECK(left == -1);
  CHECK(c->LeaseRevoke(lease).code() == Status::Code::kNotFound);
  // A put on a lease that is gone is refused.
  CHECK(c->Put("/nodes/a", "late", lease).code() == Status::Code::kNotFound);
}

TEST_CASE("etcd client: a member that is down is skipped for the next",
          "[etcd][client]") {
  EtcdCluster cluster;
  auto c = Connect(cluster.endpoints());
  REQUIRE(c->Put("/k", "1").ok());
  const std::string first = c->current_endpoint();
  int down = 0;
  while (cluster.endpoint(down) != first) ++down;
  cluster.Kill(down);
  // If it led, the others elect a leader first (a request meanwhile fails
  // with etcd's "leader changed" or a timeout, as it should).
  REQUIRE(cluster.Leader() >= 0);
  Status put = c->Put("/k", "2");
  INFO(put.ToString());
  REQUIRE(put.ok());
  CHECK(c->current_endpoint() != first);
  std::optional<KeyValue> kv;
  REQUIRE(c->Get("/k", &kv).ok());
  CHECK(kv->value == "2");
  std::vector<Member> members;
  uint64_t cluster_id = 0;
  REQUIRE(c->MemberList(&members, &cluster_id).ok());
  CHECK(members.size() == 3);
  CHECK(cluster_id != 0);
  const int leader = cluster.Leader();
  REQUIRE(leader >= 0);
  EndpointStatus st;
  REQUIRE(c->StatusOf(cluster.endpoint(leader), &st).ok());
  CHECK(st.member_id == st.leader);
  CHECK(st.version.rfind("3.", 0) == 0);
  CHECK(c->StatusOf(cluster.endpoint(down), &st).code() == Status::Code::kIo);
}

TEST_CASE(
    "etcd client: without a quorum a write fails within its timeout, "
    "and succeeds again once the quorum is back",
    "[etcd][client]") {
  EtcdCluster cluster;
  auto c = Connect(cluster.endpoints(), 1500);
  REQUIRE(c->Put("/k", "before").ok());
  cluster.Kill(1);
  cluster.Kill(2);
  const auto t0 = Clock::now();
  Status s = c->Put("/k", "no quorum");
  const auto took = Clock::now() - t0;
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kIo);
  CHECK(took < std::chrono::seconds(5));
  cluster.Restart(1, false);
  cluster.Restart(2, false);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  do {
    s = c->Put("/k", "after");
    if (s.ok()) break;
    std::this_thread::sleep_for(milliseconds(200));
  } while (Clock::now() < deadline);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::optional<KeyValue> kv;
  REQUIRE(c->Get("/k", &kv).ok());
  CHECK(kv->value == "after");
}

TEST_CASE(
    "etcd client: a request sent to a member that hangs is not sent "
    "again elsewhere",
    "[etcd][client]") {
  EtcdCluster cluster;
  // The hung member first: the connection is made (the kernel accepts),
  // the request sent, no answer comes. Another member could take it, but
  // it may have been applied: it fails, the outcome unknown.
  auto c = Connect({cluster.endpoint(0), cluster.endpoint(1)}, 1000);
  REQUIRE(c->Put("/k", "1").ok());
  REQUIRE(c->current_endpoint() == cluster.endpoint(0));
  cluster.Pause(0);
  Status s = c->Put("/k", "2");
  cluster.Resume(0);
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kIo);
  CHECK(s.message().find("not known") != std::string::npos);
  CHECK(c->current_endpoint() == cluster.endpoint(0));
}

TEST_CASE("etcd client: options that cannot work are refused at once",
          "[etcd][client]") {
  std::unique_ptr<Client> c;
  ClientOptions o;
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.endpoints = {"127.0.0.1:2379"};
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.endpoints = {"ftp://127.0.0.1:2379"};
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.endpoints = {"http://127.0.0.1:2379/v3"};
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.endpoints = {"https://127.0.0.1:2379"};
  o.cert_file = "/etc/hostname";
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.key_file = "/nonexistent/key.pem";
  CHECK(Client::Open(o, &c).code() == Status::Code::kNotFound);
  o.cert_file.clear();
  o.key_file.clear();
  o.user = "nfsd";
  CHECK(Client::Open(o, &c).code() == Status::Code::kInvalid);
  o.password = "secret";
  CHECK(Client::Open(o, &c).ok());
}

}  // namespace
}  // namespace nfsdh::etcd
