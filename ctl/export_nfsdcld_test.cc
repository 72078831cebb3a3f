// helper-ctl export-nfsdcld as an operator runs it: its arguments and
// defaults, its refusals (a helper serving the scope, no such scope), its
// output, and the migrate round trip nfsdcld -> import-nfsdcld ->
// export-nfsdcld, which must give back the same clients.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "ctl/test_util.h"
#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/migrate/test_sources.h"
#include "daemon/store/scope_lock.h"
#include "daemon/store/store.h"

namespace nfsdh::ctl {
namespace {

using testing::RunCtl;
using testing::TempDir;

const std::string kA = "Linux NFSv4.2 handback-a";
const std::string kB = "Linux NFSv4.0 handback-b/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe handback-c", 14);
const std::string kHashA(32, '\xa1');

struct Env {
  TempDir t;
  std::string db = t.path + "/state/state.sqlite";
  std::string target = t.path + "/nfsdcld/main.sqlite";
  std::string conf = t.path + "/nfs.conf";
  Env() { std::ofstream(conf) << "[nfsd-helper]\n"; }
  // export-nfsdcld with the test's paths and `extra`.
  testing::Result Export(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "export-nfsdcld", "--db", db,         "--nfsdcld-db", target,
        "--config",       conf,   "--nfsdfs", "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCtl(args);
  }
  // A scope past its grace period (boot_time 100) with three records.
  void MakeScope(const std::string& scope = "default") {
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(db, store::Store::Mode::kReadWrite, &st).ok());
    REQUIRE(st->Begin().ok());
    store::ScopeRow row;
    row.name = scope;
    row.boot_time = 100;
    row.max_instance = 100;
    REQUIRE(st->PutScope(row).ok());
    for (const std::string& id : {kA, kB, kC}) {
      store::ClientRow c;
      c.scope = scope;
      c.id = id;
      c.princhash = id == kA ? kHashA : "";
      c.instance = 100;
      REQUIRE(st->UpsertClient(c).ok());
    }
    REQUIRE(st->Commit().ok());
  }
};

std::map<std::string, std::string> ReadBack(const std::string& path) {
  migrate::Source src;
  Status s = migrate::ReadSource(path, kNone, &src);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::map<std::string, std::string> out;
  for (const migrate::SourceClient& c : src.clients) out[c.id] = c.princhash;
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST_CASE("export-nfsdcld: usage errors change nothing", "[ctl]") {
  Env e;
  e.MakeScope();
  CHECK(e.Export({"extra"}).code == kExitUsage);
  CHECK(e.Export({"--scope", "no/slash"}).code == kExitUsage);
  CHECK(RunCtl({"export-nfsdcld", "--nfsdcld-db", "none"}).code == kExitUsage);
  CHECK(RunCtl({"export-nfsdcld", "--db", e.db, "--forse"}).code == kExitUsage);
  CHECK_FALSE(Exists(e.target));
}

TEST_CASE("export-nfsdcld: writes the scope's clients, and says so", "[ctl]") {
  Env e;
  e.MakeScope();
  auto r = e.Export();
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::StartsWith("handed back 3 client(s) of scope "
                                      "default from "));
  CHECK_THAT(r.out, Catch::Contains("current epoch 1, recovery epoch 0"));
  CHECK_THAT(r.out, Catch::Contains("\"Linux NFSv4.2 handback-a\""));
  CHECK(ReadBack(e.target) ==
        std::map<std::string, std::string>{{kA, kHashA}, {kB, ""}, {kC, ""}});

  r = e.Export({"--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["scope"] == "default");
  CHECK(j["nfsdcld_db"] == e.target);
  CHECK(j["schema_version"] == 4);
  CHECK(j["current_epoch"] == 2);  // the replaced database's + 1
  CHECK(j["recovery_epoch"] == 0);
  CHECK(j["keep_from"] == 100);
  CHECK(j["left_out"] == 0);
  CHECK(j["clients"].size() == 3);
  CHECK_THAT(j["replaced"].get<std::string>(),
             Catch::StartsWith("an nfsdcld database"));
}

TEST_CASE(
    "export-nfsdcld --retire moves nfsd-helper's database aside after the "
    "write, so that a later start imports nfsdcld's records",
    "[ctl]") {
  Env e;
  e.MakeScope();
  const std::string pending = e.db + ".grace-end.default";
  std::ofstream(pending) << "end\n";  // a pending-steps file
  auto r = e.Export({"--retire", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  auto j = nlohmann::json::parse(r.out);
  const std::string aside = j["retired"].get<std::string>();
  CHECK_THAT(aside, Catch::StartsWith(e.db + ".handed-back-"));
  CHECK_FALSE(Exists(e.db));
  CHECK_FALSE(Exists(pending));
  CHECK(Exists(aside));
  CHECK(Exists(aside + ".grace-end.default"));
  CHECK(ReadBack(e.target).size() == 3);
  // The file set aside is the database, intact.
  std::unique_ptr<store::Store> st;
  REQUIRE(store::Store::Open(aside, store::Store::Mode::kReadOnly, &st).ok());
  // Without --retire the database stays where it is.
  Env f;
  f.MakeScope();
  r = f.Export();
  REQUIRE(r.code == kExitOk);
  CHECK(Exists(f.db));
  CHECK_THAT(r.out, !Catch::Contains("moved to"));
  // Not while another helper (another scope) uses the database.
  Env h;
  h.MakeScope();
  {
    std::unique_ptr<store::DatabaseLock> other;
    REQUIRE(store::DatabaseLock::AcquireShared(h.db, geteuid(), &other).ok());
    r = h.Export({"--retire"});
    INFO(r.err);
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("another nfsd-helper"));
    CHECK(Exists(h.db));
    CHECK_FALSE(Exists(h.target));
  }
  CHECK(h.Export({"--retire"}).code == kExitOk);
  CHECK_FALSE(Exists(h.db));
  // Nothing is moved when nothing could be written.
  Env g;
  g.MakeScope();
  REQUIRE(system(("mkdir -p '" + g.target + "'").c_str()) == 0);  // refused
  r = g.Export({"--retire"});
  CHECK(r.code == kExitError);
  CHECK(Exists(g.db));
}

TEST_CASE(
    "export-nfsdcld: nfsdcld's storagedir in nfs.conf is the default "
    "target",
    "[ctl]") {
  Env e;
  e.MakeScope();
  const std::string dir = e.t.path + "/elsewhere";
  std::ofstream(e.conf, std::ios::trunc)
      << "[nfsdcld]\nstoragedir = " << dir << "\n";
  auto r = RunCtl(
      {"export-nfsdcld", "--db", e.db, "--config", e.conf, "--nfsdfs", "none"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(ReadBack(dir + "/main.sqlite").size() == 3);
}

TEST_CASE(
    "export-nfsdcld: refused while a helper serves the scope, or "
    "without the scope",
    "[ctl]") {
  Env e;
  e.MakeScope();
  SECTION("a helper holds the scope's lock") {
    std::unique_ptr<store::ScopeLock> lock;
    REQUIRE(store::ScopeLock::Acquire(e.db, "default", geteuid(), &lock).ok());
    auto r = e.Export();
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("served by another nfsd-helper"));
    CHECK_THAT(r.err, Catch::Contains("stop nfsd-helper"));
    CHECK_THAT(r.err, !Catch::Contains("only one helper"));
  }
  SECTION("another scope's helper does not matter") {
    e.MakeScope("other");
    std::unique_ptr<store::ScopeLock> lock;
    REQUIRE(store::ScopeLock::Acquire(e.db, "other", geteuid(), &lock).ok());
    CHECK(e.Export().code == kExitOk);
    return;
  }
  SECTION("no such scope") {
    auto r = e.Export({"--scope", "nope"});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("no scope 'nope'"));
  }
  SECTION("no database") {
    auto r = RunCtl({"export-nfsdcld", "--db", e.t.path + "/none.sqlite",
                     "--nfsdcld-db", e.target, "--config", e.conf});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("cannot read the database"));
  }
  CHECK_FALSE(Exists(e.target));
}

// nfsdcld -> import-nfsdcld -> export-nfsdcld: the clients nfsdcld would
// have allowed are the clients it is handed back.
TEST_CASE("export-nfsdcld: the migrate round trip gives the same clients",
          "[ctl][migrate]") {
  using namespace migrate::testing;  // NOLINT: the fixtures
  Env e;
  REQUIRE(mkdir((e.t.path + "/src").c_str(), 0700) == 0);
  const std::string src = e.t.path + "/src/main.sqlite";
  SECTION("nfsdcld stopped in grace") {
    MakeNfsdcld(src, 4, 5, 4);
    AddRec(src, 4, kA, kHashA);
    AddRec(src, 4, kB);
    AddRec(src, 4, kC);
    AddRec(src, 5, kA, kHashA);
    AddRec(src, 5, "Linux NFSv4.2 new-in-grace");
  }
  SECTION("nfsdcld not in grace, schema 3") {
    MakeNfsdcld(src, 3, 7, 0);
    AddRec(src, 7, kB);
    AddRec(src, 7, kC);
  }
  SECTION("nfsdcltrack") {
    MakeNfsdcltrack(src);
    AddCltrack(src, kB, 1700000000, 0);
    AddCltrack(src, kC, 1700000100, 1);
  }
  const std::map<std::string, std::string> before = ReadBack(src);
  REQUIRE_FALSE(before.empty());
  auto r = RunCtl({"import-nfsdcld", src, "--db", e.db, "--nfsdcltrack-db",
                   "none", "--ctl-socket", e.t.path + "/none.sock"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  r = e.Export();
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(ReadBack(e.target) == before);
}

// A crash at any moment leaves the old database or the new one, whole:
// helper-ctl killed by SIGKILL after a growing delay, many times.
TEST_CASE("export-nfsdcld: killed at any moment, the target is old or new",
          "[ctl][crash]") {
  using namespace migrate::testing;  // NOLINT: the fixtures
  Env e;
  constexpr int kClients = 20000;
  {
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(e.db, store::Store::Mode::kReadWrite, &st).ok());
    REQUIRE(st->Begin().ok());
    store::ScopeRow row;
    row.name = "default";
    row.boot_time = 100;
    row.max_instance = 100;
    REQUIRE(st->PutScope(row).ok());
    for (int i = 0; i < kClients; ++i) {
      store::ClientRow c;
      c.scope = "default";
      c.id = "Linux NFSv4.2 crash-" + std::to_string(i);
      c.instance = 100;
      REQUIRE(st->UpsertClient(c).ok());
    }
    REQUIRE(st->Commit().ok());
  }
  REQUIRE(mkdir((e.t.path + "/nfsdcld").c_str(), 0700) == 0);
  MakeNfsdcld(e.target, 4, 3, 0);
  AddRec(e.target, 3, kA);
  const std::string old_sum = Sha256(e.target);
  auto spawn = [&]() {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const char* argv[] = {HELPER_CTL_BIN, "export-nfsdcld", "--db",
                            e.db.c_str(),   "--nfsdcld-db",   e.target.c_str(),
                            "--config",     e.conf.c_str(),   "--nfsdfs",
                            "none",         "--force",        nullptr};
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execv(HELPER_CTL_BIN, const_cast<char**>(argv));
      _exit(127);
    }
    return pid;
  };
  auto reset = [&]() {
    REQUIRE(unlink(e.target.c_str()) == 0);
    MakeNfsdcld(e.target, 4, 3, 0);
    AddRec(e.target, 3, kA);
    REQUIRE(Sha256(e.target) == old_sum);
  };
  // How long one whole export takes here (several times longer under a
  // sanitizer or a loaded machine): the kills are spread over that and a
  // quarter more, so that some fall before the rename and some after.
  const auto t0 = std::chrono::steady_clock::now();
  pid_t whole = spawn();
  int status = 0;
  REQUIRE(waitpid(whole, &status, 0) == whole);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  REQUIRE(ReadBack(e.target).size() == kClients);
  reset();
  constexpr int kKills = 30;
  int old_seen = 0, new_seen = 0;
  for (int i = 0; i < kKills; ++i) {
    const auto delay_us = took * 5 / 4 * i / (kKills - 1);
    pid_t pid = spawn();
    usleep(static_cast<useconds_t>(delay_us));
    kill(pid, SIGKILL);
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("killed after " << delay_us << " us of a " << took << " us export");
    if (Sha256(e.target) == old_sum) {
      ++old_seen;
      continue;
    }
    ++new_seen;
    CHECK(ReadBack(e.target).size() == kClients);
    reset();  // from the old database again
  }
  // Both outcomes happened: the kills fell before and after the rename.
  CHECK(old_seen > 0);
  CHECK(new_seen > 0);
}

}  // namespace
}  // namespace nfsdh::ctl
