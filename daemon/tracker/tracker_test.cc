// The tracker over a real SQLite file, beside the recovery engine's Model:
// every verb must change the records, the scope row, the counts and the HA
// callout's outbox exactly as the model and each other say, and a
// transaction that does not commit must leave all of them as they were.
#include "daemon/tracker/tracker.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "daemon/store/pending_steps.h"
#include "daemon/store/store.h"
#include "daemon/tracker/model_check.h"

namespace nfsdh::tracker {
namespace {

using store::ClientRow;
using store::ScopeRow;
using store::Store;

struct Db {
  std::string dir, path;
  std::unique_ptr<Store> st;
  Db() {
    char tmpl[] = "/tmp/nfsdh-tracker-XXXXXX";
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
  // The outbox after `after`, as "+id" / "-id".
  std::vector<std::string> Events(int64_t* after) {
    std::vector<std::string> out;
    std::optional<store::CalloutRow> next;
    while (st->NextCallout(*after, &next).ok() && next) {
      out.push_back((next->added ? "+" : "-") + next->id);
      *after = next->seq;
    }
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

using testing::Collect;

// --- import (helper-ctl import, CTL_IMPORT) ---

TEST_CASE("tracker import: a fresh scope gets its row and records stamped 0",
          "[tracker][import]") {
  Db db;
  Tracker tr(db.st.get(), "A");
  REQUIRE(tr.Load().ok());
  Transaction t(&tr, 500);
  Transaction::ImportTarget target;
  REQUIRE(t.PlanImport("B", &target));
  REQUIRE(target.plan.verdict == recovery::ImportVerdict::kFresh);
  bool inserted = false;
  REQUIRE(t.Import(target, "c1", std::string(32, 'h'), 1, &inserted));
  CHECK(inserted);
  REQUIRE(t.Import(target, "c2", "", 0, &inserted));
  // Nothing is visible to another connection before the commit.
  std::unique_ptr<Store> reader;
  REQUIRE(Store::Open(db.path, Store::Mode::kReadOnly, &reader).ok());
  int64_t n = -1;
  REQUIRE(reader->CountClients("B", &n).ok());
  CHECK(n == 0);
  REQUIRE(t.Commit().ok());
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
  // Another scope than the served one: its counts are untouched.
  CHECK(tr.stats().clients == 0);
}

TEST_CASE("tracker import: in grace, records are stamped boot_time, existing "
          "kept, the served scope's count follows",
          "[tracker][import]") {
  Db db;
  ScopeRow row;
  row.name = "B";
  row.boot_time = 1000;
  row.new_boot_time = 2000;
  row.max_instance = 2000;
  db.Put(row, {Rec("B", "mine", 2000)});
  Tracker tr(db.st.get(), "B");
  REQUIRE(tr.Load().ok());
  REQUIRE(tr.stats().clients == 1);
  Transaction t(&tr, 2500);
  Transaction::ImportTarget target;
  REQUIRE(t.PlanImport("B", &target));
  REQUIRE(target.plan.verdict == recovery::ImportVerdict::kInGrace);
  CHECK(target.plan.stamp == 1000);
  bool inserted = true;
  REQUIRE(t.Import(target, "mine", "", 0, &inserted));
  CHECK_FALSE(inserted);
  REQUIRE(t.Import(target, "moved", "", 1, &inserted));
  CHECK(inserted);
  CHECK(tr.stats().clients == 1);  // not before the commit
  REQUIRE(t.Commit().ok());
  CHECK(tr.stats().clients == 2);
  CHECK(db.Records("B") ==
        std::map<std::string, int64_t>{{"mine", 2000}, {"moved", 1000}});
}

TEST_CASE("tracker import: refused after the grace period, nothing changes",
          "[tracker][import]") {
  Db db;
  ScopeRow row;
  row.name = "B";
  row.boot_time = 1000;
  row.max_instance = 1000;
  row.grace_ended = 1700000000;
  db.Put(row, {Rec("B", "mine", 1000)});
  Tracker tr(db.st.get(), "B");
  REQUIRE(tr.Load().ok());
  {
    Transaction t(&tr, 2500);
    Transaction::ImportTarget target;
    REQUIRE(t.PlanImport("B", &target));
    CHECK(target.plan.verdict == recovery::ImportVerdict::kRefused);
    // The instance id beside the date is said to be an id, not a start
    // time (an id may run ahead of the clock: it only grows).
    CHECK_THAT(target.refusal,
               Catch::Contains("grace period of scope B (instance id 1000, "
                               "not a time: instance ids only order a "
                               "scope's server instances) ended at "
                               "2023-11-14T22:13:20Z"));
  }  // abandoned
  CHECK_FALSE(db.st->in_transaction());
  CHECK(db.Records("B") == std::map<std::string, int64_t>{{"mine", 1000}});
}

TEST_CASE("tracker import: a record of unknown minor version stays unknown",
          "[tracker][import]") {
  // Records that came from nfsdcld carry minor -1 (it never recorded one).
  CHECK(CheckRecord("c", "", -1).ok());
  Db db;
  Tracker tr(db.st.get(), "B");
  Transaction t(&tr, 1);
  Transaction::ImportTarget target;
  REQUIRE(t.PlanImport("B", &target));
  bool inserted = false;
  REQUIRE(t.Import(target, "c", "", -1, &inserted));
  REQUIRE(t.Commit().ok());
  std::optional<ClientRow> c;
  REQUIRE(db.st->GetClient("B", "c", &c).ok());
  REQUIRE(c);
  CHECK(c->minor == -1);
}

TEST_CASE("tracker import: a bad record fails the transaction whole",
          "[tracker][import]") {
  for (auto [id, hash, minor] :
       std::vector<std::tuple<std::string, std::string, int>>{
           {"", "", 0},
           {std::string(1025, 'x'), "", 0},
           {"h", "short", 0},
           {"m", "", 2},
           {"n", "", -2}}) {
    Db db;
    Tracker tr(db.st.get(), "B");
    Transaction t(&tr, 1);
    Transaction::ImportTarget target;
    REQUIRE(t.PlanImport("B", &target));
    bool inserted = false;
    REQUIRE(t.Import(target, "good", "", 0, &inserted));
    CHECK_FALSE(t.Import(target, id, hash, minor, &inserted));
    CHECK(t.failure().code() == Status::Code::kInvalid);
    CHECK(t.Commit().code() == Status::Code::kInvalid);
    CHECK_FALSE(db.st->in_transaction());
    CHECK(db.Records("B").empty());
    std::optional<ScopeRow> row;
    REQUIRE(db.st->GetScope("B", &row).ok());
    CHECK_FALSE(row);
  }
}

// --- the served scope ---

TEST_CASE("tracker: a start whose list is not delivered applies nothing",
          "[tracker][start]") {
  Db db;
  ScopeRow row;
  row.name = "default";
  row.boot_time = 100;
  row.max_instance = 100;
  db.Put(row, {Rec("default", "a", 100), Rec("default", "b", 100),
               Rec("default", "old", 50)});
  Tracker tr(db.st.get(), "default");
  tr.set_callouts(true);
  REQUIRE(tr.Load().ok());
  Transaction t(&tr, 1000);
  Collect list(1);
  Transaction::Started st;
  CHECK(t.Start({7, false}, &list, &st) ==
        Transaction::StartResult::kUndelivered);
  CHECK_FALSE(t.failed());
  CHECK(t.row().new_boot_time == std::nullopt);
  REQUIRE(t.Commit().ok());
  // The stale record is still there, and no del-client was queued for it.
  CHECK(db.Records("default").size() == 3);
  int64_t after = 0;
  CHECK(db.Events(&after).empty());
  CHECK(tr.row().boot_time == 100);
  CHECK_FALSE(tr.row().new_boot_time);
}

TEST_CASE("tracker: purge removes as expire does, for any scope",
          "[tracker][purge]") {
  Db db;
  ScopeRow a;
  a.name = "A";
  a.boot_time = 10;
  a.max_instance = 10;
  ScopeRow b = a;
  b.name = "B";
  db.Put(a, {Rec("A", "x", 10), Rec("A", "y", 10)});
  db.Put(b, {Rec("B", "x", 10)});
  Tracker tr(db.st.get(), "A");
  tr.set_callouts(true);
  int64_t told = 0;
  tr.set_callouts(true, [&](int64_t n) { told += n; });
  REQUIRE(tr.Load().ok());
  std::optional<ClientRow> removed;
  {
    Transaction t(&tr, 20);
    CHECK(t.Purge("B", "x", &removed) == Transaction::PurgeResult::kPurged);
    REQUIRE(removed);
    CHECK(removed->instance == 10);
    CHECK(t.Purge("A", "x", &removed) == Transaction::PurgeResult::kPurged);
    CHECK(t.Purge("A", "nobody", &removed) ==
          Transaction::PurgeResult::kNoClient);
    CHECK_FALSE(removed);
    CHECK(t.Purge("C", "x", &removed) == Transaction::PurgeResult::kNoScope);
    REQUIRE(t.Commit().ok());
  }
  CHECK(tr.stats().clients == 1);  // A's, not B's
  CHECK(told == 2);
  int64_t after = 0;
  CHECK(db.Events(&after) == std::vector<std::string>{"-x", "-x"});
  CHECK(db.Records("A") == std::map<std::string, int64_t>{{"y", 10}});
  CHECK(db.Records("B").empty());
}

TEST_CASE("tracker: what nfsd did and the database missed becomes pending "
          "and is applied first by the next transaction",
          "[tracker][pending]") {
  Db db;
  const std::string steps = store::PendingStepsPath(db.path, "default");
  Tracker tr(db.st.get(), "default");
  REQUIRE(tr.Load().ok());
  REQUIRE(tr.OpenPending(steps).ok());
  tr.set_note_unrecorded(true);
  {
    // A cld GraceStart whose transaction does not commit.
    Transaction t(&tr, 1000);
    t.NoteStartAttempt(false);
    t.Fail(Status::Io("disk gone"));
    CHECK_FALSE(t.Commit().ok());
  }
  REQUIRE(tr.pending().size() == 1);
  CHECK(tr.pending()[0].start);
  {
    // And its GraceDone, which does not commit either.
    Transaction t(&tr, 1100);
    t.NoteGraceEndAttempt(0);
    t.Fail(Status::Io("disk gone"));
    CHECK_FALSE(t.Commit().ok());
  }
  REQUIRE(tr.pending().size() == 2);
  CHECK(tr.grace_end_pending());
  // Kept on disk: a new process would know.
  std::vector<recovery::PendingStep> on_disk;
  REQUIRE(store::ReadPendingSteps(steps, &on_disk).ok());
  CHECK(on_disk == tr.pending());
  {
    // The next transaction, of anything, starts an instance and ends its
    // grace period before it does its own work.
    Transaction t(&tr, 1200);
    CHECK_FALSE(t.failed());
    CHECK(t.row().boot_time == 1200);
    CHECK_FALSE(t.row().new_boot_time);
    REQUIRE(t.Commit().ok());
  }
  CHECK(tr.pending().empty());
  on_disk.clear();
  REQUIRE(store::ReadPendingSteps(steps, &on_disk).ok());
  CHECK(on_disk.empty());
  CHECK(tr.row().boot_time == 1200);
}

TEST_CASE("tracker: a transaction inside another is a broken invariant",
          "[tracker]") {
  Db db;
  Tracker tr(db.st.get(), "default");
  REQUIRE(tr.Load().ok());
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A connection of its own: one is not to be used across fork().
    std::unique_ptr<Store> st;
    if (!Store::Open(db.path, Store::Mode::kReadWrite, &st).ok()) _exit(2);
    Tracker own(st.get(), "default");
    Transaction outer(&own, 1);
    Transaction inner(&own, 2);  // aborts here
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  // One after the other is fine.
  { Transaction t(&tr, 3); }
  Transaction t(&tr, 4);
  CHECK(t.Commit().ok());
}

// The tracker and the Model, driven by one random sequence of verbs; some
// transactions are made to fail and must change nothing.
TEST_CASE("tracker: agrees with the recovery model, and a transaction that "
          "does not commit changes nothing",
          "[tracker][model]") {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    Db db;
    testing::CheckAgainstModel(db.st.get(), "default", seed, 60);
  }
}

}  // namespace
}  // namespace nfsdh::tracker
