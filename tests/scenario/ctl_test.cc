// helper-ctl against the live daemon: every verb over the control socket,
// the fallback of dump to the database, the root-only check, and clients of
// the control socket that misbehave while the kernel waits for replies.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ctl/exposition_check.h"
#include "ctl/test_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"
#include "nfsdfs-proto/qword.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdh::ctl::testing::Result;
using nfsdh::ctl::testing::RunCtl;
using nlohmann::json;

const std::string kA = "Linux NFSv4.1 client-a.example.org";
const std::string kB = "Linux NFSv4.0 client-b.example.org/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe\xff binary\n", 13);
const std::string kD = "client-d";

using nfsdh::ctl::testing::ReadFile;

json Parse(const Result& r) {
  INFO(r.out << r.err);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

// The words of the line of `text` that starts with `prefix`.
std::vector<std::string> Words(const std::string& text,
                               const std::string& prefix) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  }
  return {};
}

// One server (scope "default") whose helper serves helper-ctl on its own
// socket in the temporary directory.
struct World {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string sock = t.path() + "/run/ctl.sock";
  Node n{t.path() + "/nfsd", db};
  World() { Start(); }

  void Start() {
    n.StartHelper({}, {"--ctl-socket", sock});
    REQUIRE(n.WaitForLog("control: serving helper-ctl on " + sock));
  }
  // helper-ctl ARGS --ctl-socket SOCK, in-process.
  Result Ctl(std::vector<std::string> args) {
    args.push_back("--ctl-socket");
    args.push_back(sock);
    return RunCtl(args);
  }
  json Json(std::vector<std::string> args) {
    args.push_back("--json");
    Result r = Ctl(args);
    INFO(r.err);
    REQUIRE(r.code == nfsdh::ctl::kExitOk);
    return Parse(r);
  }
  void Boot() {
    auto r = n.k().StartInstance(time(nullptr));
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  void Get(const std::string& id, Minor m = Minor::kV41) {
    auto r = n.k().EstablishState(id, "", m);
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  void EndGrace() {
    auto r = n.k().EndGrace();
    INFO(n.Log());
    REQUIRE(r.ok());
  }
  // helper-ctl metrics, read back strictly (ctl/exposition_check.h).
  nfsdh::ctl::testing::Exposition Metrics() {
    Result r = Ctl({"metrics"});
    INFO(r.out << r.err);
    REQUIRE(r.code == nfsdh::ctl::kExitOk);
    CHECK(r.err.empty());
    nfsdh::ctl::testing::Exposition e;
    std::string error;
    INFO(error);
    REQUIRE(nfsdh::ctl::testing::ParseExposition(r.out, &e, &error));
    return e;
  }
};

// Runs the helper-ctl binary as `uid` (0: as is) with stdin from /dev/null.
Result RunBinaryAs(uid_t uid, const std::vector<std::string>& args,
                   const std::string& dir) {
  const std::string out_path = dir + "/ctl.out", err_path = dir + "/ctl.err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
      _exit(98);
    if (uid != 0 &&
        (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
      _exit(99);
    std::vector<char*> argv = {const_cast<char*>(HELPER_CTL_BIN)};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(HELPER_CTL_BIN, argv.data());
    _exit(97);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  Result r;
  r.code = WEXITSTATUS(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

// Runs the helper-ctl binary with a terminal as its standard input, on
// which `typed` is typed; its standard output and error go to files.
Result RunOnTerminal(const std::vector<std::string>& args,
                     const std::string& typed, const std::string& dir) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  const std::string slave = ptsname(master);
  const std::string out_path = dir + "/tty.out", err_path = dir + "/tty.err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setsid();
    int in = open(slave.c_str(), O_RDWR);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
      _exit(98);
    std::vector<char*> argv = {const_cast<char*>(HELPER_CTL_BIN)};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(HELPER_CTL_BIN, argv.data());
    _exit(97);
  }
  REQUIRE(write(master, typed.data(), typed.size()) ==
          static_cast<ssize_t>(typed.size()));
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  close(master);
  REQUIRE(WIFEXITED(status));
  Result r;
  r.code = WEXITSTATUS(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

TEST_CASE("helper-ctl status, dump, purge and end-grace against the daemon",
          "[ctl][scenario]") {
  World w;
  const std::string offline = w.t.path() + "/no/such.sock";

  // Before the first server instance.
  json st = w.Json({"status"});
  CHECK(st["socket"] == w.sock);
  CHECK(st["database"] == w.db);
  CHECK(st["schema_version"] == nfsdh::store::kSchemaVersion);
  CHECK(st["nfsdfs"] == w.t.path() + "/nfsd");
  CHECK(st["serving"] == true);
  CHECK(st["pid"].get<int64_t>() > 0);
  CHECK(st["scope"]["name"] == "default");
  CHECK(st["scope"]["current_instance"].is_null());
  CHECK(st["grace"]["open"] == false);
  CHECK(st["clients"] == 0);
  CHECK(st["last_start"].is_null());
  CHECK(st["purged"] == 0);
  CHECK(st["storage_errors"]["count"] == 0);
  CHECK(st["storage_errors"]["first"].is_null());
  REQUIRE(st["upcalls"].size() == 4);
  for (const char* ch :
       {"allow_client", "create_client", "expire_client", "grace_done"}) {
    INFO(ch);
    CHECK(st["upcalls"][ch]["open"] == true);
    CHECK(st["upcalls"][ch]["requests"] == 0);
  }
  CHECK(st["scopes"] == json::array());

  // An instance in which A, B and C get state, and one in which A reclaims
  // and D is new.
  w.Boot();
  w.EndGrace();
  w.Get(kA);
  w.Get(kB, Minor::kV40);
  w.Get(kC);
  w.Boot();
  REQUIRE(w.n.k().Reclaim(kA, "") == ReclaimResult::kAllowed);
  w.Get(kA);
  w.Get(kD);
  const int64_t instance = w.n.k().CurrentInstance();

  st = w.Json({"status"});
  CHECK(st["clients"] == 4);
  REQUIRE(st["last_start"].is_object());
  CHECK(st["last_start"]["instance"] == instance);
  CHECK(st["last_start"]["allowed"] == 3);
  CHECK(st["last_start"]["reclaimed"] == 1);
  CHECK(st["scope"]["new_boot_time"] == instance);
  CHECK(st["scope"]["in_grace"] == true);
  CHECK(st["grace"]["open"] == true);
  CHECK(st["grace"]["since"] == st["scope"]["grace_started"]);
  CHECK(st["upcalls"]["allow_client"]["requests"] == 2);
  CHECK(st["upcalls"]["allow_client"]["ok"] == 2);
  CHECK(st["upcalls"]["create_client"]["requests"] == 5);
  CHECK(st["upcalls"]["create_client"]["ok"] == 5);
  CHECK(st["upcalls"]["grace_done"]["ok"] == 1);
  CHECK(st["upcalls"]["expire_client"]["requests"] == 0);
  // Each request, sent after the previous one was answered, was a batch of
  // its own: 2 starts, 5 creates and a grace end.
  CHECK(st["batches"]["committed"] == 8);
  CHECK(st["batches"]["rolled_back"] == 0);
  CHECK(st["batches"]["requests"]["count"] == 8);
  CHECK(st["batches"]["requests"]["sum"] == 8);
  CHECK(st["batches"]["requests"]["buckets"][0] ==
        json({{"le", 1}, {"count", 8}}));
  CHECK(st["batches"]["commit_microseconds"]["count"] == 8);
  CHECK(st["scopes"] == json::array({"default"}));

  SECTION("status as a table") {
    Result r = w.Ctl({"status"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Catch::StartsWith("nfsd-helper "));
    CHECK_THAT(r.out,
               Catch::Contains("\n  socket            " + w.sock + "\n"));
    CHECK_THAT(
        r.out,
        Catch::Contains("\n  database          " + w.db + " (schema version " +
                        std::to_string(nfsdh::store::kSchemaVersion) + ")\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  clients           4 recorded\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  grace             open since "));
    CHECK_THAT(r.out, Catch::Contains("\n  last start        instance " +
                                      std::to_string(instance) + " at "));
    CHECK_THAT(r.out, Catch::Contains(": 3 allowed to reclaim, 1 reclaimed "
                                      "so far\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  batches           8 committed, 0 "
                                      "rolled back, 1.0 requests each on "
                                      "average\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  commit latency    p50 <= "));
    CHECK(Words(r.out, "  create_client") ==
          std::vector<std::string>{"create_client", "yes", "5", "5", "0", "0",
                                   "0"});
    CHECK(Words(r.out, "  allow_client") ==
          std::vector<std::string>{"allow_client", "yes", "2", "2", "0", "0",
                                   "0"});
  }

  SECTION("dump live, and the same from the database") {
    Result live = w.Ctl({"dump", "--json"});
    REQUIRE(live.code == 0);
    CHECK(live.err.empty());
    json j = Parse(live);
    CHECK(j["source"] == "daemon");
    CHECK(j["database"] == w.db);
    REQUIRE(j["scopes"].size() == 1);
    CHECK(j["scopes"][0]["client_count"] == 4);
    std::set<std::string> ids;
    for (const json& c : j["scopes"][0]["clients"]) ids.insert(c["id_hex"]);
    CHECK(ids ==
          std::set<std::string>{nfsdfs::HexString(kA), nfsdfs::HexString(kB),
                                nfsdfs::HexString(kC), nfsdfs::HexString(kD)});

    Result off =
        RunCtl({"dump", "--json", "--db", w.db, "--ctl-socket", offline});
    REQUIRE(off.code == 0);
    json jo = Parse(off);
    CHECK(jo["source"] == "database");
    CHECK(jo["scopes"] == j["scopes"]);

    Result table = w.Ctl({"dump"});
    REQUIRE(table.code == 0);
    CHECK(table.err == "(read from nfsd-helper on " + w.sock + ")\n");
    Result table_off = RunCtl({"dump", "--db", w.db, "--ctl-socket", offline});
    REQUIRE(table_off.code == 0);
    CHECK(table_off.err ==
          "(read from the database: the daemon is not running)\n");
    CHECK(table.out == table_off.out);

    // --db naming the daemon's database is still live; another is read.
    CHECK(Parse(w.Ctl({"dump", "--json", "--db", w.db}))["source"] == "daemon");
    {
      std::unique_ptr<nfsdh::store::Store> other;
      REQUIRE(nfsdh::store::Store::Open(w.t.path() + "/other.sqlite",
                                        nfsdh::store::Store::Mode::kReadWrite,
                                        &other)
                  .ok());
    }
    Result r = w.Ctl({"dump", "--db", w.t.path() + "/other.sqlite"});
    CHECK(r.err == "(read from the database: the daemon serves another one, " +
                       w.db + ")\n");
    CHECK_THAT(r.out, Catch::Contains("no scopes"));
  }

  SECTION("purge") {
    Result r = w.Ctl({"purge", "--scope", "default", "--yes", "--json", kB});
    INFO(r.err);
    REQUIRE(r.code == 0);
    json j = Parse(r);
    CHECK(j["scope"] == "default");
    CHECK(j["purged"]["id_text"] == kB);
    CHECK(j["purged"]["minor"] == 0);
    CHECK(RecordedIds(w.db) == std::set<std::string>{kA, kC, kD});
    REQUIRE(w.n.WaitForLog("by helper-ctl; it may not reclaim"));

    // As dump shows it: in quotes, or in hex.
    r = w.Ctl({"purge", "--scope", "default", "--yes", "\"" + kD + "\""});
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out,
               Catch::StartsWith("purged client \"client-d\" from "
                                 "scope default (instance " +
                                 std::to_string(instance) + ", last seen "));
    r = w.Ctl(
        {"purge", "--scope", "default", "--yes", "0x" + nfsdfs::HexString(kC)});
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out,
               Catch::StartsWith("purged client 0x" + nfsdfs::HexString(kC)));
    CHECK(RecordedIds(w.db) == std::set<std::string>{kA});

    st = w.Json({"status"});
    CHECK(st["clients"] == 1);
    CHECK(st["purged"] == 3);

    r = w.Ctl({"purge", "--scope", "default", "--yes", kB});
    CHECK(r.code == nfsdh::ctl::kExitError);
    CHECK(r.out.empty());
    CHECK(r.err ==
          "helper-ctl: scope default has no record of client \"" + kB + "\"\n");
    r = w.Ctl({"purge", "--scope", "nosuch", "--yes", kA});
    CHECK(r.code == nfsdh::ctl::kExitError);
    CHECK(r.err == "helper-ctl: no scope 'nosuch' in nfsd-helper's database\n");
    r = w.Ctl({"purge", "--scope", "bad scope", "--yes", kA});
    CHECK(r.code == nfsdh::ctl::kExitUsage);
    CHECK_THAT(r.err, Catch::StartsWith("helper-ctl purge: invalid scope "
                                        "name\n"));
    CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
  }

  SECTION("end-grace without v4_end_grace") {
    Result r = w.Ctl({"end-grace"});
    CHECK(r.code == nfsdh::ctl::kExitError);
    CHECK(r.out.empty());
    CHECK(r.err == "helper-ctl: " + w.t.path() +
                       "/nfsd/v4_end_grace does not exist: this kernel's nfsd "
                       "cannot end its grace period early (Linux 4.20 or "
                       "later can)\n");
  }

  SECTION("when the daemon is not running") {
    Result live = w.Ctl({"dump"});
    REQUIRE(live.code == 0);
    w.n.StopHelper();
    CHECK(access(w.sock.c_str(), F_OK) != 0);  // removed at exit
    const std::string not_running =
        "helper-ctl: nfsd-helper is not running: nothing answers on " + w.sock +
        "\n";
    for (std::vector<std::string> args :
         {std::vector<std::string>{"status"},
          std::vector<std::string>{"status", "--json"},
          std::vector<std::string>{"purge", "--scope", "default", "--yes", kA},
          std::vector<std::string>{"end-grace"}}) {
      Result r = w.Ctl(args);
      INFO(args[0]);
      CHECK(r.code == nfsdh::ctl::kExitNotRunning);
      CHECK(r.out.empty());
      CHECK(r.err == not_running);
    }
    // dump falls back to the database (which it must then be told).
    Result r = w.Ctl({"dump", "--db", w.db});
    CHECK(r.code == 0);
    CHECK(r.err == "(read from the database: the daemon is not running)\n");
    CHECK(r.out == live.out);
    r = w.Ctl({"dump", "--db", w.db, "--json"});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(Parse(r)["source"] == "database");
    // The binary says the same with the same exit status.
    r = RunBinaryAs(0, {"status", "--ctl-socket", w.sock}, w.t.path());
    CHECK(r.code == 3);
    CHECK(r.err == not_running);
  }
}

using nfsdh::ctl::testing::Exposition;
using nfsdh::ctl::testing::LabelMap;

// A sample's value, 0 when it is absent (a counter not yet written).
double Sample(const Exposition& e, const std::string& name,
              LabelMap labels = {}) {
  labels["scope"] = "default";
  return e.Value(name, labels).value_or(0);
}

TEST_CASE(
    "helper-ctl metrics counts the upcalls and batches the daemon "
    "handled",
    "[ctl][scenario][metrics]") {
  World w;
  const Exposition before = w.Metrics();
  auto grew = [&before](const Exposition& after, const std::string& name,
                        LabelMap labels = {}) {
    return Sample(after, name, labels) - Sample(before, name, labels);
  };
  // One start, then a burst of creates queued at once: the daemon reads
  // what is pending at each wake-up into one batch.
  w.Boot();
  const int64_t instance = w.n.k().CurrentInstance();
  constexpr int kCreates = 200;
  std::vector<nfsdsim::Ticket> tickets;
  for (int i = 0; i < kCreates; ++i)
    tickets.push_back(
        SubmitCreate(w.n.k(), instance, "client-" + std::to_string(i)));
  for (const auto& t : tickets)
    REQUIRE(w.n.k().Await(t, kStepTimeout).status == 0);

  const Exposition after = w.Metrics();
  const LabelMap create = {{"channel", "create_client"}};
  const LabelMap allow = {{"channel", "allow_client"}};
  CHECK(grew(after, "nfsd_helper_upcall_requests_total", create) == kCreates);
  CHECK(grew(after, "nfsd_helper_upcall_results_total",
             {{"channel", "create_client"}, {"result", "ok"}}) == kCreates);
  CHECK(grew(after, "nfsd_helper_upcall_results_total",
             {{"channel", "create_client"}, {"result", "failed"}}) == 0);
  CHECK(grew(after, "nfsd_helper_upcall_requests_total", allow) == 1);
  CHECK(Sample(after, "nfsd_helper_upcall_channel_open", create) == 1);

  // Every request sent went through exactly one committed batch.
  const double batches =
      grew(after, "nfsd_helper_batches_total", {{"outcome", "committed"}});
  CHECK(grew(after, "nfsd_helper_batch_requests_sum") == kCreates + 1);
  CHECK(batches >= 2);  // the start commits before any create is sent
  CHECK(batches <= kCreates + 1);
  CHECK(grew(after, "nfsd_helper_batch_requests_count") == batches);
  CHECK(grew(after, "nfsd_helper_batch_commit_duration_seconds_count") ==
        batches);
  CHECK(grew(after, "nfsd_helper_batch_commit_duration_seconds_sum") > 0);
  CHECK(grew(after, "nfsd_helper_batches_total",
             {{"outcome", "rolled_back"}}) == 0);
  CHECK(Sample(after, "nfsd_helper_batch_requests_bucket", {{"le", "+Inf"}}) ==
        Sample(after, "nfsd_helper_batch_requests_count"));

  CHECK(Sample(after, "nfsd_helper_clients") == kCreates);
  CHECK(Sample(after, "nfsd_helper_grace_open") == 1);
  CHECK(Sample(after, "nfsd_helper_current_instance") == instance);
  CHECK(Sample(after, "nfsd_helper_last_start_allowed_clients") == 0);
  CHECK(Sample(after, "nfsd_helper_storage_errors_total") == 0);

  // status shows the same batches.
  json st = w.Json({"status"});
  CHECK(st["batches"]["committed"].get<double>() ==
        Sample(after, "nfsd_helper_batches_total", {{"outcome", "committed"}}));
  CHECK(st["batches"]["requests"]["sum"].get<double>() ==
        Sample(after, "nfsd_helper_batch_requests_sum"));
  Result table = w.Ctl({"status"});
  CHECK_THAT(table.out, Catch::Contains("\n  batches           "));
  CHECK_THAT(table.out, Catch::Contains("\n  commit latency    p50 <= "));
}

TEST_CASE(
    "helper-ctl metrics --textfile replaces the file whole, and "
    "removes it when nfsd-helper is gone",
    "[ctl][scenario][metrics]") {
  World w;
  w.Boot();
  const std::string dir = w.t.path() + "/textfile";
  REQUIRE(mkdir(dir.c_str(), 0755) == 0);
  const std::string file = dir + "/nfsd_helper.prom";
  { std::ofstream(file) << "stale\n"; }
  REQUIRE(chmod(file.c_str(), 0600) == 0);

  // The real binary, under a umask that would make the file private.
  mode_t old_umask = umask(077);
  Result r = RunBinaryAs(
      0, {"metrics", "--textfile", file, "--ctl-socket", w.sock}, w.t.path());
  umask(old_umask);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
  struct stat st;
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  Exposition e;
  std::string error;
  INFO(error);
  REQUIRE(nfsdh::ctl::testing::ParseExposition(ReadFile(file), &e, &error));
  CHECK(Sample(e, "nfsd_helper_upcall_requests_total",
               {{"channel", "allow_client"}}) == 1);
  // Nothing else is left in the directory (no temporary file).
  CHECK(std::system(
            ("test \"$(ls -A '" + dir + "')\" = nfsd_helper.prom").c_str()) ==
        0);

  w.n.StopHelper();
  r = RunBinaryAs(0, {"metrics", "--textfile", file, "--ctl-socket", w.sock},
                  w.t.path());
  CHECK(r.code == nfsdh::ctl::kExitNotRunning);
  CHECK(r.err == "helper-ctl: nfsd-helper is not running: nothing answers on " +
                     w.sock + "\nhelper-ctl: removed " + file + "\n");
  CHECK(access(file.c_str(), F_OK) != 0);
  r = w.Ctl({"metrics"});
  CHECK(r.code == nfsdh::ctl::kExitNotRunning);
  CHECK(r.out.empty());
}

TEST_CASE("a live dump pages through many records", "[ctl][scenario]") {
  World w;
  w.Boot();
  w.EndGrace();
  // Enough records for several pages, created in large batches.
  const int64_t inst = w.n.k().CurrentInstance();
  std::vector<nfsdsim::Ticket> tickets;
  for (int i = 0; i < 2500; ++i) {
    tickets.push_back(
        SubmitCreate(w.n.k(), inst, "client-" + std::to_string(100000 + i)));
  }
  for (const auto& t : tickets)
    REQUIRE(w.n.k().Await(t, kStepTimeout).status == 0);

  json live = w.Json({"dump", "--scope", "default"});
  REQUIRE(live["scopes"].size() == 1);
  const json& clients = live["scopes"][0]["clients"];
  REQUIRE(clients.size() == 2500);
  CHECK(live["scopes"][0]["client_count"] == 2500);
  for (size_t i = 0; i < clients.size(); ++i) {
    INFO(i);
    REQUIRE(clients[i]["id_text"] == "client-" + std::to_string(100000 + i));
  }

  // A dump whose connection is lost between two pages (the helper closes
  // idle connections; here it restarts) goes on over a new one, from the
  // record after the last one shown.
  struct Tap : std::streambuf {
    std::string text;
    int lines = 0;
    std::function<void()> at_line_500;
    int_type overflow(int_type c) override {
      text += static_cast<char>(c);
      if (c == '\n' && ++lines == 500) at_line_500();
      return c;
    }
  } tap;
  tap.at_line_500 = [&w] {
    w.n.StopHelper();
    w.Start();
  };
  std::ostream tap_out(&tap);
  std::ostringstream tap_err;
  REQUIRE(nfsdh::ctl::RunVerb(
              nfsdh::ctl::kDumpVerb,
              {"--json", "--scope", "default", "--ctl-socket", w.sock}, tap_out,
              tap_err) == 0);
  INFO(tap_err.str());
  json resumed;
  REQUIRE_NOTHROW(resumed = json::parse(tap.text));
  CHECK(resumed["scopes"] == live["scopes"]);

  Result off = RunCtl({"dump", "--json", "--scope", "default", "--db", w.db,
                       "--ctl-socket", w.t.path() + "/none.sock"});
  REQUIRE(off.code == 0);
  CHECK(Parse(off)["scopes"] == live["scopes"]);
  CHECK(w.Json({"status"})["clients"] == 2500);
}

TEST_CASE("a purged client may not reclaim after a restart",
          "[ctl][scenario]") {
  World w;
  w.Boot();
  w.EndGrace();
  w.Get(kA);
  w.Get(kB);
  Result r = w.Ctl({"purge", "--scope", "default", "--yes", kA});
  INFO(r.err);
  REQUIRE(r.code == 0);

  // The helper restarts, then nfsd does.
  w.n.StopHelper();
  w.Start();
  auto start = w.n.k().StartInstance(time(nullptr));
  REQUIRE(start.ok());
  CHECK(Ids(start.allow) == std::set<std::string>{kB});
  CHECK(w.n.k().Reclaim(kA, "") == ReclaimResult::kReclaimBad);
  CHECK(w.n.k().Reclaim(kB, "") == ReclaimResult::kAllowed);
  w.Get(kB);
  json st = w.Json({"status"});
  CHECK(st["last_start"]["allowed"] == 1);
  CHECK(st["last_start"]["reclaimed"] == 1);
  CHECK(st["purged"] == 0);  // counted per daemon process
}

TEST_CASE("purge asks on a terminal", "[ctl][scenario]") {
  World w;
  w.Boot();
  w.EndGrace();
  w.Get(kA);
  const std::vector<std::string> args = {"purge", "--scope",      "default",
                                         kA,      "--ctl-socket", w.sock};
  Result r = RunOnTerminal(args, "n\n", w.t.path());
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "Purge the record of client \"" + kA +
                     "\" from scope default? It will not be allowed to "
                     "reclaim its state. [y/N] helper-ctl: nothing purged\n");
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});

  r = RunOnTerminal(args, "y\n", w.t.path());
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("purged client \"" + kA + "\""));
  CHECK(RecordedIds(w.db).empty());

  // Without a terminal, nothing happens without --yes.
  w.Get(kA);
  r = RunBinaryAs(0, args, w.t.path());
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl purge: refusing to purge "
                                      "without confirmation"));
  CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
}

TEST_CASE("end-grace writes Y to v4_end_grace", "[ctl][scenario]") {
  // A plain directory for --nfsdfs: no upcall files (the helper waits for
  // them), but a v4_end_grace file like the kernel's.
  TempDir t;
  const std::string dir = t.path() + "/nfsd";
  const std::string file = dir + "/v4_end_grace";
  const std::string sock = t.path() + "/run/ctl.sock";
  REQUIRE(mkdir(dir.c_str(), 0755) == 0);
  std::ofstream(file).close();
  nfsdsim::Process helper;
  std::string error;
  INFO(error);
  REQUIRE(helper.Start(
      {NFSD_HELPER_BIN, "--foreground", "--nfsdfs", dir, "--cld-pipe", "none",
       "--db", t.path() + "/state/state.sqlite", "--ctl-socket", sock},
      {}, &error));
  INFO(helper.Stderr());
  REQUIRE(helper.WaitForStderr("control: serving helper-ctl on", kStepTimeout));

  Result r = RunCtl({"end-grace", "--json", "--ctl-socket", sock});
  INFO(r.err);
  REQUIRE(r.code == 0);
  json j = Parse(r);
  CHECK(j["file"] == file);
  CHECK(j["written"] == "Y");
  CHECK(j["was_in_grace"] == false);
  CHECK(ReadFile(file) == "Y");
  REQUIRE(helper.WaitForStderr(
      "control: helper-ctl ends nfsd's grace period through " + file,
      kStepTimeout));

  std::ofstream(file, std::ios::trunc).close();
  r = RunCtl({"end-grace", "--ctl-socket", sock});
  REQUIRE(r.code == 0);
  CHECK(r.out == "wrote Y to " + file +
                     ": the kernel ends its grace period now (nfsd-helper's "
                     "scope was not in grace)\n");
  CHECK(ReadFile(file) == "Y");

  REQUIRE(helper.Signal(SIGTERM));
  auto st = helper.Wait(kStepTimeout);
  REQUIRE(st);
  CHECK(st->success());
}

TEST_CASE("end-grace with --nfsdfs none names no file", "[ctl][scenario]") {
  TempDir t;
  const std::string sock = t.path() + "/run/ctl.sock";
  nfsdsim::Process helper;
  std::string error;
  INFO(error);
  REQUIRE(helper.Start({NFSD_HELPER_BIN, "--foreground", "--nfsdfs", "none",
                        "--cld-pipe", t.path() + "/pipefs/nfsd/cld", "--db",
                        t.path() + "/state/state.sqlite", "--ctl-socket", sock},
                       {}, &error));
  INFO(helper.Stderr());
  REQUIRE(helper.WaitForStderr("control: serving helper-ctl on", kStepTimeout));
  Result r = RunCtl({"end-grace", "--ctl-socket", sock});
  CHECK(r.code == nfsdh::ctl::kExitError);
  CHECK(r.err ==
        "helper-ctl: cannot end the grace period: nfsd-helper serves no nfsd "
        "filesystem (--nfsdfs none), so it cannot tell where v4_end_grace "
        "is\n");
  struct stat st;
  CHECK(stat("none", &st) != 0);
  REQUIRE(helper.Signal(SIGTERM));
  REQUIRE(helper.Wait(kStepTimeout));
}

TEST_CASE("only root may use the control socket", "[ctl][scenario]") {
  if (geteuid() != 0) {
    WARN("not root: cannot run helper-ctl as another user");
    return;
  }
  World w;
  w.Boot();
  w.EndGrace();
  w.Get(kA);
  struct stat st;
  REQUIRE(lstat(w.sock.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
  REQUIRE(stat((w.t.path() + "/run").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);

  SECTION("nobody cannot reach the socket") {
    Result r =
        RunBinaryAs(65534, {"status", "--ctl-socket", w.sock}, w.t.path());
    CHECK(r.code == 1);
    CHECK(r.out.empty());
    CHECK(r.err ==
          "helper-ctl: permission denied: connect " + w.sock +
              ": Permission denied\nhelper-ctl: only root may use "
              "nfsd-helper's control socket; run helper-ctl as root\n");
  }
  SECTION("nobody who can reach it is refused by the daemon") {
    // For this test only: let anyone connect.
    REQUIRE(chmod(w.t.path().c_str(), 0711) == 0);
    REQUIRE(chmod((w.t.path() + "/run").c_str(), 0711) == 0);
    REQUIRE(chmod(w.sock.c_str(), 0666) == 0);
    for (std::vector<std::string> args :
         {std::vector<std::string>{"status"},
          std::vector<std::string>{"purge", "--scope", "default", "--yes", kA},
          std::vector<std::string>{"end-grace", "--json"}}) {
      INFO(args[0]);
      args.push_back("--ctl-socket");
      args.push_back(w.sock);
      Result r = RunBinaryAs(65534, args, w.t.path());
      CHECK(r.code == 1);
      CHECK(r.out.empty());
      CHECK(r.err ==
            "helper-ctl: permission denied: nfsd-helper refused the request: "
            "only root may use its control socket " +
                w.sock +
                "\nhelper-ctl: only root may use nfsd-helper's control socket; "
                "run helper-ctl as root\n");
    }
    CHECK(w.n.WaitForLog("control: refused a request from uid 65534"));
    CHECK(RecordedIds(w.db) == std::set<std::string>{kA});
    // Root still may.
    CHECK(w.Ctl({"status"}).code == 0);
  }
}

// --- clients that misbehave ---

int Connect(const std::string& path, bool nonblocking = false) {
  int fd =
      socket(AF_UNIX,
             SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  REQUIRE(fd >= 0);
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof sa.sun_path);
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int rc = connect(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
  if (rc != 0 && !(nonblocking && (errno == EAGAIN || errno == EINPROGRESS))) {
    INFO(strerror(errno));
    REQUIRE(rc == 0);
  }
  return fd;
}

// One ONC RPC call record (record mark, then the call header with
// AUTH_NONE) of the control program, without arguments.
std::string CallRecord(uint32_t xid, uint32_t proc) {
  const uint32_t words[] = {xid, 0 /* CALL */, 2, 0x2e465348, 1, proc, 0, 0, 0,
                            0};
  std::string body;
  for (uint32_t w : words) {
    uint32_t n = htonl(w);
    body.append(reinterpret_cast<const char*>(&n), 4);
  }
  uint32_t mark = htonl(0x80000000u | static_cast<uint32_t>(body.size()));
  return std::string(reinterpret_cast<const char*>(&mark), 4) + body;
}

// The longest time create_client took to be answered, over `n` new
// clients named `prefix` and a number.
std::chrono::milliseconds SlowestCreate(World& w, int n,
                                        const std::string& prefix) {
  std::chrono::milliseconds worst{0};
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = w.n.k().EstablishState(
        n == 1 ? prefix : prefix + std::to_string(i), "", Minor::kV41);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    INFO(w.n.Log());
    REQUIRE(r.ok());
    worst = std::max(worst, took);
  }
  return worst;
}

TEST_CASE("clients of the control socket cannot hold up the upcalls",
          "[ctl][scenario]") {
  World w;
  w.Boot();
  w.EndGrace();
  using Clock = std::chrono::steady_clock;

  // Half a record (the mark says 100 bytes, 10 come), then silence.
  int half = Connect(w.sock);
  std::string partial = CallRecord(1, 1);
  uint32_t mark = htonl(0x80000000u | 100);
  memcpy(partial.data(), &mark, 4);
  REQUIRE(send(half, partial.data(), 14, MSG_NOSIGNAL) == 14);

  // Garbage: a record mark of 2 GiB.
  int junk = Connect(w.sock);
  std::string garbage(4096, '\xff');
  REQUIRE(send(junk, garbage.data(), garbage.size(), MSG_NOSIGNAL) > 0);

  // A flood of status calls whose replies are never read, going on while
  // the kernel creates clients: the daemon must stop reading them rather
  // than wait for room to write the replies.
  int flood = Connect(w.sock);
  REQUIRE(fcntl(flood, F_SETFL, O_NONBLOCK) == 0);
  std::atomic<bool> stop{false};
  std::atomic<size_t> calls{0};
  std::thread flooder([&] {
    std::string rest;  // of a record sent in part
    while (!stop) {
      if (rest.empty())
        rest = CallRecord(1000 + static_cast<uint32_t>(calls.load()), 1);
      ssize_t n = send(flood, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n > 0) {
        rest.erase(0, n);
        if (rest.empty()) ++calls;
      } else {
        usleep(500);
      }
    }
  });
  // And more connections than the daemon serves at once (accepted after
  // the others: the listen backlog is first in, first out).
  std::vector<int> crowd;
  for (int i = 0; i < 40; ++i) crowd.push_back(Connect(w.sock, true));

  std::chrono::milliseconds worst{0};
  int creates = 0;
  for (auto until = Clock::now() + std::chrono::milliseconds(2500);
       Clock::now() < until; ++creates)
    worst = std::max(worst,
                     SlowestCreate(w, 1, "victim-" + std::to_string(creates)));
  stop = true;
  flooder.join();
  INFO(creates << " creates, " << calls << " status calls");
  CHECK(worst < std::chrono::milliseconds(1000));
  CHECK(calls > 100);
  CHECK(w.n.WaitForLog("does not read its replies; paused"));

  // Once the crowd is gone, helper-ctl gets in again; the others are still
  // connected and still harmless.
  for (int fd : crowd) close(fd);
  auto t0 = Clock::now();
  Result r = w.Ctl({"status", "--json"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(Clock::now() - t0 < std::chrono::seconds(3));
  CHECK(Parse(r)["clients"] == creates);
  worst = SlowestCreate(w, 5, "late-");
  CHECK(worst < std::chrono::milliseconds(1000));
  close(half);
  close(flood);
  close(junk);
  CHECK(w.Ctl({"status"}).code == 0);
}

TEST_CASE("the control socket: a stale one is replaced, a live one kept",
          "[ctl][scenario]") {
  TempDir t;
  const std::string sock = t.path() + "/run/ctl.sock";
  REQUIRE(mkdir((t.path() + "/run").c_str(), 0700) == 0);
  {
    // A socket file nobody listens on, as a killed daemon leaves it.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock.c_str(), sock.size() + 1);
    REQUIRE(bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) == 0);
    close(fd);
  }
  const std::string db = t.path() + "/state/state.sqlite";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper({}, {"--ctl-socket", sock});
  CHECK(n.WaitForLog("control: removed the stale socket " + sock));
  Result r = RunCtl({"status", "--json", "--ctl-socket", sock});
  REQUIRE(r.code == 0);
  CHECK(Parse(r)["database"] == db);

  // A second helper (another nfsd filesystem, another database) told to use
  // the same socket leaves it alone and serves its upcalls without one.
  const std::string dir2 = t.path() + "/nfsd2";
  REQUIRE(mkdir(dir2.c_str(), 0755) == 0);
  nfsdsim::Process second;
  REQUIRE(second.Start(
      {NFSD_HELPER_BIN, "--foreground", "--nfsdfs", dir2, "--cld-pipe", "none",
       "--db", t.path() + "/state2/state.sqlite", "--ctl-socket", sock}));
  INFO(second.Stderr());
  REQUIRE(second.WaitForStderr("another nfsd-helper answers on " + sock,
                               kStepTimeout));
  CHECK(second.IsRunning());
  REQUIRE(second.Signal(SIGTERM));
  auto st = second.Wait(kStepTimeout);
  REQUIRE(st);
  CHECK(st->success());
  r = RunCtl({"status", "--json", "--ctl-socket", sock});
  REQUIRE(r.code == 0);
  CHECK(Parse(r)["database"] == db);

  // Gone with the helper that made it.
  n.StopHelper();
  CHECK(access(sock.c_str(), F_OK) != 0);

  // Anything but a socket is never removed.
  std::ofstream(sock) << "keep me";
  n.StartHelper({}, {"--ctl-socket", sock});
  CHECK(n.WaitForLog("exists and is not a socket; not replacing it"));
  CHECK(ReadFile(sock) == "keep me");
  r = RunCtl({"status", "--ctl-socket", sock});
  CHECK(r.code == nfsdh::ctl::kExitNotRunning);
  n.StopHelper();
  CHECK(ReadFile(sock) == "keep me");
}

}  // namespace
}  // namespace scenario
