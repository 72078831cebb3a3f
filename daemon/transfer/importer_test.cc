#include "daemon/transfer/importer.h"

#include <catch2/catch.hpp>
#include <cstdlib>

namespace nfsdh::transfer {
namespace {

using store::ClientRow;
using store::ScopeRow;
using store::Store;

struct Db {
  std::string dir, path;
  std::unique_ptr<Store> st;
  Db() {
    char tmpl[] = "/tmp/nfsdh-import-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/s.sqlite";
    Status s = Store::Open(path, Store::Mode::kReadWrite, &st);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  ~Db() {
    st.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  void Put(const ScopeRow& row, const std::vector<ClientRow>& clients = {}) {
    REQUIRE(st->Begin().ok());
    REQUIRE(st->PutScope(row).ok());
    for (const ClientRow& c : clients) REQUIRE(st->UpsertClient(c).ok());
    REQUIRE(st->Commit().ok());
  }
  std::map<std::string, int64_t> Records(const std::string& scope) {
    std::map<std::string, int64_t> out;
    REQUIRE(st->ForEachClient(scope, [&](const ClientRow& c) {
                out[c.id] = c.instance;
                return true;
              }).ok());
    return out;
  }
};

ClientRow Rec(const std::string& scope, const std::string& id, int64_t inst) {
  ClientRow c;
  c.scope = scope;
  c.id = id;
  c.instance = inst;
  return c;
}

TEST_CASE("importer: a fresh scope gets its row and the records stamped 0",
          "[transfer][import]") {
  Db db;
  Importer imp(db.st.get(), "B", 500);
  REQUIRE(imp.Begin().ok());
  REQUIRE(imp.verdict() == recovery::ImportVerdict::kFresh);
  REQUIRE(imp.Add("c1", std::string(32, 'h'), 1).ok());
  REQUIRE(imp.Add("c2", "", 0).ok());
  // Nothing is visible to another connection before the commit.
  std::unique_ptr<Store> reader;
  REQUIRE(Store::Open(db.path, Store::Mode::kReadOnly, &reader).ok());
  int64_t n = -1;
  REQUIRE(reader->CountClients("B", &n).ok());
  CHECK(n == 0);
  REQUIRE(imp.Commit().ok());
  CHECK(imp.imported() == 2);
  CHECK(imp.kept() == 0);
  CHECK(db.Records("B") ==
        std::map<std::string, int64_t>{{"c1", 0}, {"c2", 0}});
  std::optional<ScopeRow> row;
  REQUIRE(db.st->GetScope("B", &row).ok());
  REQUIRE(row);
  CHECK_FALSE(row->boot_time);
  CHECK_FALSE(row->new_boot_time);
  std::optional<ClientRow> c;
  REQUIRE(db.st->GetClient("B", "c1", &c).ok());
  CHECK(c->princhash == std::string(32, 'h'));
  CHECK(c->minor == 1);
  CHECK(c->first_seen == 500);
}

TEST_CASE("importer: in grace, records are stamped boot_time, existing kept",
          "[transfer][import]") {
  Db db;
  ScopeRow row;
  row.name = "B";
  row.boot_time = 1000;
  row.new_boot_time = 2000;
  row.max_instance = 2000;
  db.Put(row, {Rec("B", "mine", 2000)});
  Importer imp(db.st.get(), "B", 2500);
  REQUIRE(imp.Begin().ok());
  REQUIRE(imp.verdict() == recovery::ImportVerdict::kInGrace);
  CHECK(imp.stamp() == 1000);
  REQUIRE(imp.Add("mine", "", 0).ok());
  REQUIRE(imp.Add("moved", "", 1).ok());
  REQUIRE(imp.Commit().ok());
  CHECK(imp.imported() == 1);
  CHECK(imp.kept() == 1);
  CHECK(db.Records("B") ==
        std::map<std::string, int64_t>{{"mine", 2000}, {"moved", 1000}});
}

TEST_CASE("importer: refused after the grace period, nothing changes",
          "[transfer][import]") {
  Db db;
  ScopeRow row;
  row.name = "B";
  row.boot_time = 1000;
  row.max_instance = 1000;
  row.grace_ended = 1700000000;
  db.Put(row, {Rec("B", "mine", 1000)});
  Importer imp(db.st.get(), "B", 2500);
  REQUIRE(imp.Begin().ok());
  CHECK(imp.verdict() == recovery::ImportVerdict::kRefused);
  CHECK_FALSE(db.st->in_transaction());
  // The instance id beside the date is said to be an id, not a start time
  // (an id may run ahead of the clock: it only grows).
  CHECK_THAT(imp.refusal(),
             Catch::Contains("grace period of scope B (instance id 1000, "
                             "not a time: instance ids only order a scope's "
                             "server instances) ended at "
                             "2023-11-14T22:13:20Z"));
  CHECK(db.Records("B") == std::map<std::string, int64_t>{{"mine", 1000}});
}

TEST_CASE("importer: a record of unknown minor version is kept unknown",
          "[transfer][import]") {
  // Records that came from nfsdcld carry minor -1 (it never recorded one).
  CHECK(CheckRecord("c", "", -1).ok());
  Db db;
  Importer imp(db.st.get(), "B", 1);
  REQUIRE(imp.Begin().ok());
  REQUIRE(imp.Add("c", "", -1).ok());
  REQUIRE(imp.Commit().ok());
  std::vector<int> minors;
  REQUIRE(db.st
              ->ForEachClient("B",
                              [&](const ClientRow& c) {
                                minors.push_back(c.minor);
                                return true;
                              })
              .ok());
  CHECK(minors == std::vector<int>{-1});
}

TEST_CASE("importer: a bad record or no commit leaves nothing behind",
          "[transfer][import]") {
  Db db;
  {
    Importer imp(db.st.get(), "B", 1);
    REQUIRE(imp.Begin().ok());
    REQUIRE(imp.Add("good", "", 0).ok());
    CHECK(imp.Add("", "", 0).code() == Status::Code::kInvalid);
    CHECK(imp.Add(std::string(1025, 'x'), "", 0).code() ==
          Status::Code::kInvalid);
    CHECK(imp.Add("h", "short", 0).code() == Status::Code::kInvalid);
    CHECK(imp.Add("m", "", 2).code() == Status::Code::kInvalid);
    CHECK(imp.Add("n", "", -2).code() == Status::Code::kInvalid);
  }  // destroyed without Commit: rolled back
  CHECK_FALSE(db.st->in_transaction());
  CHECK(db.Records("B").empty());
  std::optional<ScopeRow> row;
  REQUIRE(db.st->GetScope("B", &row).ok());
  CHECK_FALSE(row);
}

}  // namespace
}  // namespace nfsdh::transfer
