#include "daemon/callout/callout.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "daemon/store/store.h"

namespace nfsdh::callout {
namespace {

struct Fixture {
  std::string dir;
  loop::Loop loop;
  std::unique_ptr<store::Store> db;
  std::vector<Outcome> outcomes;
  Fixture() {
    char tmpl[] = "/tmp/nfsdh-callout-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    REQUIRE(store::Store::Open(dir + "/db/state.sqlite",
                               store::Store::Mode::kReadWrite, &db)
                .ok());
  }
  // Writes events to the outbox in one committed transaction, as a batch
  // does, and tells `c` (if any).
  void Queue(const std::vector<Event>& evs, Callout* c = nullptr) {
    REQUIRE(db->Begin().ok());
    for (const Event& e : evs)
      REQUIRE(db->QueueCallout(e.scope, e.kind == Kind::kAddClient,
                               e.client_id, 1)
                  .ok());
    REQUIRE(db->Commit().ok());
    if (c) c->Kick(static_cast<int64_t>(evs.size()));
  }
  int64_t Left() {
    int64_t n = -1;
    REQUIRE(db->CountCallouts(&n).ok());
    return n;
  }
  ~Fixture() {
    db.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    REQUIRE(chmod(path.c_str(), 0755) == 0);
    return path;
  }
  // Runs the loop until `c` is idle; false after `limit`.
  bool RunUntilIdle(Callout& c, std::chrono::seconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!c.idle()) {
      if (std::chrono::steady_clock::now() > end) return false;
      loop.RunFor(std::chrono::milliseconds(20));
    }
    return true;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

Event Ev(Kind k, const std::string& scope, const std::string& id) {
  return Event{k, scope, id};
}

TEST_CASE("callout runs the outbox one at a time, in order, with hex ids",
          "[callout]") {
  Fixture f;
  // Each run appends its arguments; a run that overlapped another would
  // find the lock.
  std::string prog = f.Script(
      "record", "set -e\ncd " + f.dir +
                    "\nmkdir lock || { echo overlap >> log; exit 1; }\n"
                    "sleep 0.05\necho \"$@\" >> log\nrmdir lock\n");
  Callout c(f.loop, f.db.get(), prog);
  REQUIRE(c.Start().ok());
  c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
  f.Queue({Ev(Kind::kAddClient, "A", std::string("\x00\xff ;$(x)", 8)),
           Ev(Kind::kAddClient, "A", "b"), Ev(Kind::kDelClient, "B", "b")},
          &c);
  CHECK_FALSE(c.idle());
  CHECK(c.pending() == 3);
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
  CHECK(f.Read("log") ==
        "add-client A 00ff203b24287829\nadd-client A 62\ndel-client B 62\n");
  REQUIRE(f.outcomes.size() == 3);
  for (const Outcome& o : f.outcomes) {
    CHECK(o.end == Outcome::End::kExited);
    CHECK(o.code == 0);
  }
  // Delivered entries leave the outbox once it is drained.
  CHECK(f.Left() == 0);
  CHECK(c.pending() == 0);
}

TEST_CASE("callout: a child past the timeout is killed and run again",
          "[callout]") {
  Fixture f;
  // The first run of "s" hangs; every other run records its arguments.
  std::string prog = f.Script(
      "slow", "cd " + f.dir +
                  "\nif [ \"$3\" = 73 ] && [ ! -e hung ]; then touch hung; "
                  "exec sleep 30; fi\necho \"$@\" >> log\n");
  Callout c(f.loop, f.db.get(), prog, 1);
  REQUIRE(c.Start().ok());
  c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
  f.Queue({Ev(Kind::kAddClient, "A", "s"), Ev(Kind::kAddClient, "A", "t")},
          &c);
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(30)));
  REQUIRE(f.outcomes.size() == 3);
  CHECK(f.outcomes[0].end == Outcome::End::kTimedOut);
  CHECK(f.outcomes[0].event.client_id == "s");
  CHECK(f.outcomes[1].end == Outcome::End::kExited);
  CHECK(f.outcomes[1].event.client_id == "s");
  // Nothing overtook the one that failed.
  CHECK(f.Read("log") == "add-client A 73\nadd-client A 74\n");
  CHECK(f.Left() == 0);
}

TEST_CASE("callout: failures are retried until they succeed, in order",
          "[callout]") {
  Fixture f;
  SECTION("nonzero exit and death by a signal") {
    // "1" exits 3 on its first run, "2" kills itself on its first run.
    std::string prog = f.Script(
        "fail", "cd " + f.dir +
                    "\nif [ ! -e seen-$3 ]; then touch seen-$3; case $3 in "
                    "31) exit 3;; 32) kill -TERM $$;; esac; fi\n"
                    "echo \"$@\" >> log\n");
    Callout c(f.loop, f.db.get(), prog);
    REQUIRE(c.Start().ok());
    c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
    f.Queue({Ev(Kind::kAddClient, "A", "1"), Ev(Kind::kDelClient, "A", "1"),
             Ev(Kind::kAddClient, "A", "2"), Ev(Kind::kAddClient, "A", "3")},
            &c);
    REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(30)));
    REQUIRE(f.outcomes.size() == 6);
    CHECK(f.outcomes[0].end == Outcome::End::kExited);
    CHECK(f.outcomes[0].code == 3);
    CHECK(f.outcomes[1].code == 0);
    CHECK(f.outcomes[3].end == Outcome::End::kSignaled);
    CHECK(f.outcomes[3].code == SIGTERM);
    CHECK(f.Read("log") ==
          "add-client A 31\ndel-client A 31\nadd-client A 32\n"
          "add-client A 33\n");
    CHECK(f.Left() == 0);
  }
  SECTION("a program that cannot be run, until it can") {
    const std::string prog = f.dir + "/later";
    Callout c(f.loop, f.db.get(), prog);
    REQUIRE(c.Start().ok());
    c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
    f.Queue({Ev(Kind::kDelClient, "A", "1")}, &c);
    REQUIRE(f.outcomes.size() == 1);
    CHECK(f.outcomes[0].end == Outcome::End::kSpawnFailed);
    CHECK(f.outcomes[0].code == ENOENT);
    CHECK(f.Left() == 1);
    f.Script("later", "echo \"$@\" >> " + f.dir + "/log\n");
    REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(30)));
    CHECK(f.Read("log") == "del-client A 31\n");
    CHECK(f.Left() == 0);
  }
}

TEST_CASE("callout: the outbox outlives the runner", "[callout]") {
  Fixture f;
  const std::string log = f.dir + "/log";
  std::string hang = f.Script("hang", "exec sleep 30\n");
  std::string rec = f.Script("record", "echo \"$@\" >> " + log + "\n");
  // Events queued while no runner ran, and one that runs when its runner
  // goes away: a new runner delivers them all, in order.
  f.Queue({Ev(Kind::kAddClient, "A", "1"), Ev(Kind::kDelClient, "A", "1")});
  {
    Callout c(f.loop, f.db.get(), hang);
    REQUIRE(c.Start().ok());
    CHECK(c.pending() == 2);
    CHECK_FALSE(c.idle());
  }
  CHECK(f.Left() == 2);
  f.Queue({Ev(Kind::kAddClient, "B", "2")});
  Callout c(f.loop, f.db.get(), rec);
  REQUIRE(c.Start().ok());
  CHECK(c.pending() == 3);
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
  CHECK(f.Read("log") == "add-client A 31\ndel-client A 31\nadd-client B 32\n");
  CHECK(f.Left() == 0);
}

}  // namespace
}  // namespace nfsdh::callout
