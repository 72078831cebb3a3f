#include "daemon/callout/callout.h"

#include <event2/event.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace nfsdh::callout {
namespace {

struct Fixture {
  std::string dir;
  struct event_base* base = event_base_new();
  std::vector<Outcome> outcomes;
  Fixture() {
    char tmpl[] = "/tmp/nfsdh-callout-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    REQUIRE(base != nullptr);
  }
  ~Fixture() {
    event_base_free(base);
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
      struct timeval tick = {0, 20000};
      event_base_loopexit(base, &tick);
      event_base_dispatch(base);
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

TEST_CASE("callout runs events one at a time, in order, with hex ids",
          "[callout]") {
  Fixture f;
  // Each run appends its arguments; a run that overlapped another would
  // find the lock.
  std::string prog = f.Script(
      "record", "set -e\ncd " + f.dir +
                    "\nmkdir lock || { echo overlap >> log; exit 1; }\n"
                    "sleep 0.05\necho \"$@\" >> log\nrmdir lock\n");
  Callout c(f.base, prog);
  REQUIRE(c.Start().ok());
  c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
  REQUIRE(
      c.Enqueue(Ev(Kind::kAddClient, "A", std::string("\x00\xff ;$(x)", 8))));
  REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "b")));
  REQUIRE(c.Enqueue(Ev(Kind::kDelClient, "B", "b")));
  CHECK_FALSE(c.idle());
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
  CHECK(f.Read("log") ==
        "add-client A 00ff203b24287829\nadd-client A 62\ndel-client B 62\n");
  REQUIRE(f.outcomes.size() == 3);
  for (const Outcome& o : f.outcomes) {
    CHECK(o.end == Outcome::End::kExited);
    CHECK(o.code == 0);
  }
}

TEST_CASE("callout: a child past the timeout is killed, the next one runs",
          "[callout]") {
  Fixture f;
  std::string prog = f.Script(
      "slow", "if [ \"$3\" = 73 ]; then exec sleep 30; fi\necho \"$@\" >> " +
                  f.dir + "/log\n");
  Callout c(f.base, prog, 1);
  REQUIRE(c.Start().ok());
  c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "s")));
  REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "t")));
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::seconds(5));
  REQUIRE(f.outcomes.size() == 2);
  CHECK(f.outcomes[0].end == Outcome::End::kTimedOut);
  CHECK(f.outcomes[1].end == Outcome::End::kExited);
  CHECK(f.Read("log") == "add-client A 74\n");
}

TEST_CASE("callout: failures are reported and never stop the queue",
          "[callout]") {
  Fixture f;
  SECTION("nonzero exit and death by a signal") {
    std::string prog =
        f.Script("fail", "case $3 in 31) exit 3;; 32) kill -TERM $$;; esac\n");
    Callout c(f.base, prog);
    REQUIRE(c.Start().ok());
    c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
    REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "1")));
    REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "2")));
    REQUIRE(c.Enqueue(Ev(Kind::kAddClient, "A", "3")));
    REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
    REQUIRE(f.outcomes.size() == 3);
    CHECK(f.outcomes[0].end == Outcome::End::kExited);
    CHECK(f.outcomes[0].code == 3);
    CHECK(f.outcomes[1].end == Outcome::End::kSignaled);
    CHECK(f.outcomes[1].code == SIGTERM);
    CHECK(f.outcomes[2].code == 0);
  }
  SECTION("a program that cannot be run") {
    Callout c(f.base, f.dir + "/missing");
    REQUIRE(c.Start().ok());
    c.set_on_outcome([&](const Outcome& o) { f.outcomes.push_back(o); });
    REQUIRE(c.Enqueue(Ev(Kind::kDelClient, "A", "1")));
    REQUIRE(c.Enqueue(Ev(Kind::kDelClient, "A", "2")));
    REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
    REQUIRE(f.outcomes.size() == 2);
    CHECK(f.outcomes[0].end == Outcome::End::kSpawnFailed);
    CHECK(f.outcomes[0].code == ENOENT);
  }
}

TEST_CASE("callout: a full queue drops and counts", "[callout]") {
  Fixture f;
  std::string prog = f.Script("ok", "exit 0\n");
  Callout c(f.base, prog, 10, 2);
  REQUIRE(c.Start().ok());
  // The first starts at once and leaves the queue; two more fit.
  CHECK(c.Enqueue(Ev(Kind::kAddClient, "A", "1")));
  CHECK(c.Enqueue(Ev(Kind::kAddClient, "A", "2")));
  CHECK(c.Enqueue(Ev(Kind::kAddClient, "A", "3")));
  CHECK_FALSE(c.Enqueue(Ev(Kind::kAddClient, "A", "4")));
  CHECK(c.dropped() == 1);
  CHECK(c.queued() == 2);
  REQUIRE(f.RunUntilIdle(c, std::chrono::seconds(10)));
}

}  // namespace
}  // namespace nfsdh::callout
