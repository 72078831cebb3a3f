// HA take-over against live daemons: helper-ctl export on one server,
// import on another, and the second server's next start lets exactly the
// moved clients reclaim; an import into a scope whose grace period ended is
// refused. And the HA callout (--ha-callout) as the daemon runs it.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ctl/control_client.h"
#include "ctl/test_util.h"
#include "ctl/verbs.h"
#include "nfsdfs-proto/qword.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdh::ctl::testing::Result;
using nfsdh::ctl::testing::RunCtl;
using nlohmann::json;

const std::string kA = "Linux NFSv4.1 client-a.example.org";
const std::string kB = "Linux NFSv4.0 client-b.example.org/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe\xff binary id \n", 16);
const std::string kD = "client-d-expired";
const std::string kE = "client-e-never-on-a";

using nfsdh::ctl::testing::ReadFile;

// A server: its own database, control socket and simulated nfsd.
struct Server {
  std::string db, sock;
  Node n;
  // Everything under names starting with `prefix`.
  Server(const std::string& prefix, const std::string& scope)
      : db(prefix + "-state/state.sqlite"),
        sock(prefix + "-ctl.sock"),
        n(prefix + "-nfsd", db, scope) {}
  void Start(std::vector<std::string> extra = {}) {
    extra.push_back("--ctl-socket");
    extra.push_back(sock);
    n.StartHelper({}, extra);
    REQUIRE(n.WaitForLog("control: serving helper-ctl on " + sock));
  }
  std::map<std::string, std::string> Boot() {
    auto r = n.k().StartInstance(time(nullptr));
    INFO(n.Log());
    REQUIRE(r.ok());
    return r.allow;
  }
  void Get(const std::string& id, Minor m = Minor::kV41,
           const std::string& hash = "") {
    auto r = n.k().EstablishState(id, hash, m);
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  void EndGrace() {
    auto r = n.k().EndGrace();
    INFO(n.Log());
    REQUIRE(r.ok());
  }
};

struct TakeOver {
  TempDir t;
  std::string conf = t.path() + "/nfs.conf";  // empty: no host defaults
  std::string file = t.path() + "/a.jsonl";
  Server a{t.path() + "/a", "A"};
  Server b{t.path() + "/b", "B"};

  TakeOver() { std::ofstream(conf) << "# empty\n"; }
  Result Ctl(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(conf);
    return RunCtl(args);
  }
  // Node 1: A, B (v4.0) and C (with a principal) hold state in scope A; D
  // held some but expired.
  void EstablishOnA() {
    a.Start();
    CHECK(a.Boot().empty());
    a.EndGrace();
    a.Get(kA);
    a.Get(kB, Minor::kV40);
    a.Get(kC, Minor::kV41, Hash("carol"));
    a.Get(kD);
    REQUIRE(a.n.k().Expire(kD).ok());
  }
  void Export() {
    Result r = Ctl({"export", "--scope", "A", "--ctl-socket", a.sock,
                    "--output", file, "--json"});
    INFO(r.err);
    REQUIRE(r.code == nfsdh::ctl::kExitOk);
    json j = json::parse(r.out);
    CHECK(j["clients"] == 3);
    CHECK(j["database"] == a.db);
  }
  json Import(const std::string& via) {
    Result r = Ctl({"import", "--scope", "B", "--ctl-socket", b.sock, "--db",
                    b.db, "--json", file});
    INFO(r.err);
    REQUIRE(r.code == nfsdh::ctl::kExitOk);
    json j = json::parse(r.out);
    CHECK(j["via"] == via);
    CHECK(j["source_scope"] == "A");
    CHECK(j["records"] == 3);
    CHECK(j["imported"] == 3);
    CHECK(j["kept"] == 0);
    return j;
  }
  // Node 2's next start: exactly the moved clients may reclaim.
  void CheckReclaims() {
    auto allow = b.Boot();
    CHECK(Ids(allow) == std::set<std::string>{kA, kB, kC});
    auto& k = b.n.k();
    CHECK(k.Reclaim(kA, "") == ReclaimResult::kAllowed);
    CHECK(k.Reclaim(kB, "") == ReclaimResult::kAllowed);
    CHECK(k.Reclaim(kC, Hash("carol")) == ReclaimResult::kAllowed);
    CHECK(k.Reclaim(kC, Hash("mallory")) == ReclaimResult::kReclaimBad);
    CHECK(k.Reclaim(kD, "") == ReclaimResult::kReclaimBad);
    CHECK(k.Reclaim(kE, "") == ReclaimResult::kReclaimBad);
  }
};

TEST_CASE("take-over: export from A, import into a fresh scope B, reclaim",
          "[ctl][scenario][transfer]") {
  TakeOver w;
  w.EstablishOnA();
  w.Export();
  SECTION("through node 2's daemon") {
    w.b.Start();
    json j = w.Import("daemon");
    CHECK(j["scope_state"] == "fresh");
    CHECK(j["stamp"] == 0);
    // The daemon's view of the scope it serves follows.
    Result r = RunCtl({"status", "--ctl-socket", w.b.sock, "--json"});
    REQUIRE(r.code == 0);
    CHECK(json::parse(r.out)["clients"] == 3);
    CHECK(w.b.n.WaitForLog("3 client record(s) imported into scope B"));
    w.CheckReclaims();
  }
  SECTION("into node 2's database before its daemon starts") {
    json j = w.Import("database");
    CHECK(j["scope_state"] == "fresh");
    w.b.Start();
    w.CheckReclaims();
  }
  // Reclaimers keep their records; the silent one is gone after grace.
  w.b.Get(kA);
  w.b.Get(kC, Minor::kV41, Hash("carol"));
  w.b.EndGrace();
  CHECK(RecordedIds(w.b.db, "B") == std::set<std::string>{kA, kC});
}

TEST_CASE("take-over: import into scope B while its grace period is open",
          "[ctl][scenario][transfer]") {
  TakeOver w;
  w.EstablishOnA();
  w.Export();
  w.b.Start();
  CHECK(w.b.Boot().empty());  // B's first instance, in grace
  w.b.Get(kE);                // a client of B itself
  json j = w.Import("daemon");
  CHECK(j["scope_state"] == "in_grace");
  // Not on the list the kernel already has...
  CHECK(w.b.n.k().Reclaim(kA, "") == ReclaimResult::kReclaimBad);
  // ...but on the list of the restart in grace.
  auto allow = w.b.Boot();
  CHECK(Ids(allow) == std::set<std::string>{kA, kB, kC, kE});
  CHECK(w.b.n.k().Reclaim(kA, "") == ReclaimResult::kAllowed);
  CHECK(w.b.n.k().Reclaim(kD, "") == ReclaimResult::kReclaimBad);
}

TEST_CASE("an import whose helper-ctl went away is dropped with what it staged",
          "[ctl][scenario][transfer]") {
  using nfsdh::ctl::ControlClient;
  using nfsdh::ctl::DaemonStat;
  using nfsdh::ctl::ImportReply;
  TempDir t;
  Server b{t.path() + "/b", "B"};
  // A one-second idle timeout instead of a minute (a test hook).
  b.n.StartHelper({{"NFSD_HELPER_TEST_CTL_IDLE", "1"}},
                  {"--ctl-socket", b.sock});
  REQUIRE(b.n.WaitForLog("control: serving helper-ctl on " + b.sock));
  CHECK(b.Boot().empty());  // B's first instance: imports are accepted

  std::unique_ptr<ControlClient> c;
  REQUIRE(ControlClient::Connect(b.sock, &c).ok());
  ImportReply first;
  REQUIRE(c->Import("B", 0, {{kA, "", 1}, {kB, "", 0}}, false, &first).ok());
  REQUIRE(first.stat == DaemonStat::kOk);
  CHECK(first.staged == 2);
  c.reset();  // helper-ctl killed between two pages

  // No further call comes: the server's own sweep drops the session and
  // frees what it staged, instead of holding it until the next import.
  CHECK(b.n.WaitForLog("import session " + std::to_string(first.session) +
                       " into scope B dropped with its 2 staged record(s)"));
  CHECK(RecordedIds(b.db, "B").empty());
  REQUIRE(ControlClient::Connect(b.sock, &c).ok());
  ImportReply late;
  REQUIRE(c->Import("B", first.session, {}, true, &late).ok());
  CHECK(late.stat == DaemonStat::kSession);
  CHECK_FALSE(late.committed);
  CHECK(RecordedIds(b.db, "B").empty());
}

TEST_CASE("take-over: import into a scope whose grace ended is refused",
          "[ctl][scenario][transfer]") {
  TakeOver w;
  w.EstablishOnA();
  w.Export();
  w.b.Start();
  CHECK(w.b.Boot().empty());
  w.b.EndGrace();
  w.b.Get(kE);
  auto before = ScopeOf(w.b.db, "B");
  REQUIRE(before);
  for (bool through_daemon : {true, false}) {
    INFO(through_daemon);
    if (!through_daemon) w.b.n.StopHelper();
    Result r = w.Ctl({"import", "--scope", "B", "--ctl-socket", w.b.sock,
                      "--db", w.b.db, "--json", w.file});
    CHECK(r.code == nfsdh::ctl::kExitError);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith(
                          "helper-ctl: refusing to import into scope B: the "
                          "grace period of scope B (instance id " +
                          std::to_string(*before->boot_time) +
                          ", not a time: instance ids only order a scope's "
                          "server instances) ended at "));
    CHECK_THAT(r.err, Catch::EndsWith("nothing imported\n"));
    CHECK(RecordedIds(w.b.db, "B") == std::set<std::string>{kE});
    auto after = ScopeOf(w.b.db, "B");
    REQUIRE(after);
    CHECK(after->boot_time == before->boot_time);
    CHECK(after->new_boot_time == before->new_boot_time);
  }
  w.b.Start();
  CHECK(Ids(w.b.Boot()) == std::set<std::string>{kE});
  CHECK(w.b.n.k().Reclaim(kA, "") == ReclaimResult::kReclaimBad);
}

// --- the HA callout ---

// Waits until `path` holds `text` (the callout runs after the reply).
bool WaitForFile(const std::string& path, const std::string& text) {
  auto end = std::chrono::steady_clock::now() + kStepTimeout;
  while (std::chrono::steady_clock::now() < end) {
    if (ReadFile(path) == text) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Script(const std::string& dir, const std::string& name,
                   const std::string& body) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  return path;
}

TEST_CASE("the HA callout records adds and removals after they are durable",
          "[scenario][callout]") {
  TempDir t;
  const std::string log = t.path() + "/callout.log";
  const std::string prog =
      Script(t.path(), "callout", "echo \"$@\" >> " + log + "\n");
  Server s(t.path() + "/s", "ha-1");
  s.Start({"--ha-callout", prog});
  s.Boot();
  s.EndGrace();
  s.Get(kA);
  s.Get(kC, Minor::kV40);
  s.Get(kA);  // a refresh adds nothing
  REQUIRE(s.n.k().Expire(kA).ok());
  REQUIRE(s.n.k().Expire(kA).ok());  // nothing left to remove
  std::string expect = "add-client ha-1 " + nfsdfs::HexString(kA) +
                       "\nadd-client ha-1 " + nfsdfs::HexString(kC) +
                       "\ndel-client ha-1 " + nfsdfs::HexString(kA) + "\n";
  INFO(s.n.Log());
  CHECK(WaitForFile(log, expect));
  // C stays silent through a grace period: its purge is a removal too.
  CHECK(Ids(s.Boot()) == std::set<std::string>{kC});
  s.EndGrace();
  expect += "del-client ha-1 " + nfsdfs::HexString(kC) + "\n";
  CHECK(WaitForFile(log, expect));
}

TEST_CASE("a callout past its timeout is killed and the upcalls go on",
          "[scenario][callout]") {
  TempDir t;
  const std::string prog = Script(t.path(), "slow", "exec sleep 30\n");
  Server s(t.path() + "/s", "default");
  s.Start({"--ha-callout", prog, "--ha-callout-timeout", "2"});
  s.Boot();
  s.EndGrace();
  auto t0 = std::chrono::steady_clock::now();
  s.Get(kA);  // starts the first callout
  // While it sleeps, creates are answered at once.
  for (int i = 0; i < 5; ++i) {
    auto c0 = std::chrono::steady_clock::now();
    s.Get("client-" + std::to_string(i));
    CHECK(std::chrono::steady_clock::now() - c0 < std::chrono::seconds(1));
  }
  CHECK(s.n.WaitForLog(prog + " add-client default " + nfsdfs::HexString(kA) +
                       " killed: still running after 2 s"));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::seconds(2));
  CHECK(s.n.HelperRunning());
  CHECK(s.n.k().EstablishState("late", "", Minor::kV41).ok());
}

TEST_CASE("a failing callout is logged, retried and never fatal",
          "[scenario][callout]") {
  TempDir t;
  const std::string prog = Script(t.path(), "fail", "exit 3\n");
  Server s(t.path() + "/s", "default");
  s.Start({"--ha-callout", prog});
  s.Boot();
  s.EndGrace();
  s.Get(kA);
  const std::string a = prog + " add-client default " + nfsdfs::HexString(kA);
  CHECK(s.n.WaitForLog(a + " failed: exit status 3; retrying in 1 s"));
  CHECK(s.n.WaitForLog(a + " failed: exit status 3; retrying in 2 s"));
  // The upcalls go on; B's event waits behind A's, which is never dropped.
  s.Get(kB);
  CHECK(s.n.WaitForLog(a + " failed: exit status 3; retrying in 4 s"));
  CHECK(s.n.Log().find("add-client default " + nfsdfs::HexString(kB)) ==
        std::string::npos);
  CHECK(s.n.HelperRunning());
}

TEST_CASE("helper-ctl purge and import through the daemon run the callout",
          "[ctl][scenario][transfer][callout]") {
  TakeOver w;
  w.EstablishOnA();
  w.Export();
  const std::string log = w.t.path() + "/callout.log";
  const std::string prog =
      Script(w.t.path(), "callout", "echo \"$@\" >> " + log + "\n");
  w.b.Start({"--ha-callout", prog});
  w.Import("daemon");
  // In the order of the export file: by id.
  std::string expect = "add-client B " + nfsdfs::HexString(kC) +
                       "\nadd-client B " + nfsdfs::HexString(kB) +
                       "\nadd-client B " + nfsdfs::HexString(kA) + "\n";
  INFO(w.b.n.Log());
  CHECK(WaitForFile(log, expect));
  Result r = RunCtl({"purge", "--scope", "B", "--ctl-socket", w.b.sock,
                     "--yes", "0x" + nfsdfs::HexString(kB)});
  INFO(r.err);
  REQUIRE(r.code == nfsdh::ctl::kExitOk);
  expect += "del-client B " + nfsdfs::HexString(kB) + "\n";
  CHECK(WaitForFile(log, expect));
  // helper-ctl status shows the outbox drained.
  json pending;
  auto end = std::chrono::steady_clock::now() + kStepTimeout;
  do {
    r = RunCtl({"status", "--ctl-socket", w.b.sock, "--json"});
    REQUIRE(r.code == 0);
    pending = json::parse(r.out)["callouts_pending"];
  } while (pending != 0 && std::chrono::steady_clock::now() < end &&
           (std::this_thread::sleep_for(std::chrono::milliseconds(50)), true));
  CHECK(pending == 0);
  r = RunCtl({"status", "--ctl-socket", w.a.sock, "--json"});
  REQUIRE(r.code == 0);
  CHECK(json::parse(r.out)["callouts_pending"].is_null());
}

}  // namespace
}  // namespace scenario
