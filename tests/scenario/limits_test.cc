// Resource limits, against the real helper: no file descriptor left (EMFILE)
// when a channel or a helper-ctl connection is to be opened, a full disk
// (ENOSPC, from the fault VFS), and a database another process holds
// locked. Each is logged clearly, backed off from on a
// timer rather than spun on, and survived: once the resource is back, the
// helper serves as before.
#include <dirent.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ctl/test_util.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdfs::Channel;

// Open descriptors of `pid` and the highest one.
std::pair<int, int> Fds(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  int n = 0, max = -1;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ++n;
    max = std::max(max, atoi(e->d_name));
  }
  closedir(d);
  return {n, max};
}

// Fds(pid) once two readings 100 ms apart agree: a helper that has just
// become ready may still hold a descriptor for a moment (e.g. reading
// /proc/self/status to drop its capabilities).
std::pair<int, int> SettledFds(pid_t pid) {
  auto last = Fds(pid);
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(100ms);
    auto now = Fds(pid);
    if (now == last) break;
    last = now;
  }
  return last;
}

// Sets the soft RLIMIT_NOFILE of `pid` and returns the one it replaced. The
// hard limit is left as it is: lowering it would need CAP_SYS_RESOURCE to
// raise it again (test machines and containers often lack that capability,
// and prlimit() then fails with EPERM), while any soft limit up to the hard
// one needs no privilege.
rlim_t SetSoftNofile(pid_t pid, rlim_t soft) {
  struct rlimit old;
  REQUIRE(prlimit(pid, RLIMIT_NOFILE, nullptr, &old) == 0);
  REQUIRE(soft <= old.rlim_max);
  struct rlimit rl = {soft, old.rlim_max};
  int r = prlimit(pid, RLIMIT_NOFILE, &rl, nullptr);
  int err = errno;
  INFO("prlimit(" << pid << ", RLIMIT_NOFILE, " << soft << ":" << old.rlim_max
                  << "): " << std::strerror(err));
  REQUIRE(r == 0);
  return old.rlim_cur;
}

// The command name of `pid` (what the kernel shows in /proc/PID/comm).
std::string Comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos;
       at = hay.find(needle, at + needle.size()))
    ++n;
  return n;
}

// How long the tests watch a helper that is out of descriptors, and the
// most CPU it may use meanwhile: a tenth of a core. A helper that spun on a
// readable listener or on a failing open would use all of one.
constexpr auto kShortage = 2s;
long MaxTicksDuringShortage() {
  return kShortage.count() * sysconf(_SC_CLK_TCK) / 10;
}

// User plus system CPU time of `pid`, in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

std::string Create(nfsdsim::SimKernel& k, const std::string& hex) {
  return std::to_string(k.PeekNextSeq(Channel::kCreateClient)) + " " +
         std::to_string(k.CurrentInstance()) + " \\x" + hex + " - v41\n";
}

TEST_CASE("no descriptor left for a helper-ctl connection: back off, serve on",
          "[scenario][limits][emfile]") {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string sock = t.path() + "/ctl/sock";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper({}, {"--ctl-socket", sock});
  REQUIRE(n.WaitForLog("control: serving helper-ctl on " + sock));
  REQUIRE(n.k().StartInstance(1000).ok());
  pid_t pid = n.HelperPid();
  REQUIRE(n.k().OpenPids(Channel::kCreateClient) == std::set<pid_t>{pid});
  auto [count, max] = SettledFds(pid);
  REQUIRE(count == max + 1);  // no gap: the limit leaves none free
  rlim_t saved = SetSoftNofile(pid, static_cast<rlim_t>(max + 1));

  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(c >= 0);
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, sock.c_str());
  REQUIRE(connect(c, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) ==
          0);  // the listen backlog takes it
  REQUIRE(
      n.WaitForLog("control: no file descriptor left to accept a "
                   "helper-ctl connection (Too many open files); trying "
                   "again every second"));
  // A timer, not a spin: while the connection waits, through at least one
  // retry, the helper uses little CPU, logs the shortage once, and still
  // answers the kernel.
  long before = CpuTicks(pid);
  std::this_thread::sleep_for(kShortage);
  long used = CpuTicks(pid) - before;
  INFO("CPU ticks used in " << kShortage.count() << " s: " << used);
  CHECK(used <= MaxTicksDuringShortage());
  CHECK(Count(n.Log(), "no file descriptor left") == 1);
  CHECK(Count(n.Log(), " accepted (") == 0);
  auto r = n.k().Await(
      n.k().Submit(Channel::kCreateClient, Create(n.k(), "41")), kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == 0);
  CHECK(RecordedIds(db).count("A") == 1);
  CHECK(n.HelperRunning());

  // Descriptors back: the connection that waited is accepted at the next
  // retry, and helper-ctl is served again.
  SetSoftNofile(pid, saved);
  CHECK(n.WaitForLog(" accepted ("));
  close(c);
  auto st =
      nfsdh::ctl::testing::RunCtl({"status", "--json", "--ctl-socket", sock});
  INFO(st.out << st.err);
  CHECK(st.code == 0);
  CHECK(n.HelperRunning());
}

TEST_CASE("no descriptor left for a channel: logged, retried, then served",
          "[scenario][limits][emfile]") {
  TempDir t;
  std::string mount = t.path() + "/nfsd";
  std::string db = t.path() + "/state/state.sqlite";
  std::string sock = t.path() + "/ctl.sock";
  REQUIRE(mkdir(mount.c_str(), 0700) == 0);
  nfsdsim::SimOptions so;
  so.request_timeout = kStepTimeout;
  nfsdsim::SimKernel k(so);
  REQUIRE(k.Mount(mount));
  // Never the host's cld pipe or old trackers' databases.
  std::vector<std::string> argv = {NFSD_HELPER_BIN,
                                   "--foreground",
                                   "--nfsdfs",
                                   mount,
                                   "--db",
                                   db,
                                   "--ctl-socket",
                                   sock,
                                   "--cld-pipe",
                                   "none",
                                   "--nfsdcld-db",
                                   "none",
                                   "--nfsdcltrack-db",
                                   "none"};
  // How many descriptors a helper holds once it serves.
  int needed = 0;
  {
    nfsdsim::Process p;
    REQUIRE(p.Start(argv));
    REQUIRE(p.WaitForStderr("serving " + mount, kStepTimeout));
    auto [count, max] = SettledFds(p.pid());
    REQUIRE(count == max + 1);
    needed = max + 1;
    p.Signal(SIGTERM);
    REQUIRE(p.Wait(kStepTimeout));
    REQUIRE(k.WaitForAllClosed(kStepTimeout));
  }
  // Two short: the database and the control socket open, the last two
  // channels (at least the last one) do not. Only the soft limit is lowered
  // (prlimit's "N:"), so that it can be raised again without privilege.
  struct rlimit own;
  REQUIRE(getrlimit(RLIMIT_NOFILE, &own) == 0);
  REQUIRE(own.rlim_cur >= static_cast<rlim_t>(needed));
  std::vector<std::string> limited = {
      "prlimit", "--nofile=" + std::to_string(needed - 2) + ":"};
  limited.insert(limited.end(), argv.begin(), argv.end());
  nfsdsim::Process p;
  REQUIRE(p.Start(limited));
  std::string line = "(no file descriptor left); retrying every second";
  {
    bool logged = p.WaitForStderr(line, kStepTimeout);
    INFO(p.Stderr());
    REQUIRE(logged);
  }
  REQUIRE(Comm(p.pid()) == "nfsd-helper");  // prlimit exec'd it
  size_t open = 0;
  for (auto c : nfsdsim::kAllChannels) open += k.OpenHandles(c) > 0;
  CHECK(open >= 1);
  CHECK(open < 4);
  // Each failed open is named with the reason, once per retry: at most
  // one line per missing channel and second, no spin.
  CHECK(p.Stderr().find("Too many open files (no file descriptor left)") !=
        std::string::npos);
  size_t lines_before = Count(p.Stderr(), line);
  long before = CpuTicks(p.pid());
  std::this_thread::sleep_for(kShortage);
  long used = CpuTicks(p.pid()) - before;
  size_t lines = Count(p.Stderr(), line) - lines_before;
  INFO("CPU ticks used in " << kShortage.count() << " s: " << used << ", "
                            << lines << " log line(s)");
  CHECK(used <= MaxTicksDuringShortage());
  CHECK(lines >= 4 - open);  // retried, at least once per missing channel
  CHECK(lines <= (4 - open) * (kShortage.count() + 1));
  CHECK(p.IsRunning());
  CHECK(p.Stderr().find("serving " + mount) == std::string::npos);

  // Descriptors back: within the next retry every channel is served, the
  // helper says so, and serves a server start and a new client.
  SetSoftNofile(p.pid(), own.rlim_cur);
  for (auto c : nfsdsim::kAllChannels) {
    CHECK(k.WaitForStats(
        c, [](const nfsdsim::ChannelStats& s) { return s.open_handles > 0; },
        kStepTimeout));
  }
  CHECK(p.WaitForStderr("serving " + mount, kStepTimeout));
  auto start = k.StartInstance(1000);
  CHECK(start.ok());
  CHECK(k.EstablishState("A", "", Minor::kV41).ok());
  CHECK(RecordedIds(db) == std::set<std::string>{"A"});
  p.Signal(SIGTERM);
  auto exit = p.Wait(kStepTimeout);
  REQUIRE(exit);
  CHECK(exit->success());
  k.Unmount();
}

TEST_CASE("a database another process holds locked fails the batch at once "
          "and is logged",
          "[scenario][limits]") {
  // Another writer (helper-ctl import-nfsdcld, a second helper) is an
  // anomaly; the event loop must not wait for it: every upcall waits
  // behind that loop, and nfsd gives a cld tracker about a second.
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  std::string sock = t.path() + "/ctl.sock";
  Node n(t.path() + "/nfsd", db);
  n.StartHelper({}, {"--ctl-socket", sock});
  REQUIRE(n.k().StartInstance(1000).ok());

  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &other, SQLITE_OPEN_READWRITE,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = n.k().EstablishState("A", "", Minor::kV41);
  const auto waited = std::chrono::steady_clock::now() - t0;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close_v2(other);
  INFO("answered after "
       << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
       << " ms");
  CHECK(r.status == -EIO);
  // Generous for a loaded machine; the loop waits a few hundred ms at most.
  CHECK(waited < 3s);
  CHECK(n.WaitForLog("another process holds the database's write lock"));
  // The lock gone, the same client is recorded.
  CHECK(n.k().EstablishState("A", "", Minor::kV41).ok());
  CHECK(RecordedIds(db) == std::set<std::string>{"A"});
  n.StopHelper();
}

#ifdef NFSDH_FAULTVFS_SO
TEST_CASE("a full disk answers -EIO, is logged and shown, and passes",
          "[scenario][limits]") {
  // ENOSPC on the K-th write of the process, once: for the smallest K that
  // falls on a create's transaction, the create is answered -EIO, the log
  // and helper-ctl status say why, and the same create then succeeds.
  bool seen = false;
  for (int k = 1; k <= 60 && !seen; ++k) {
    TempDir t;
    std::string db = t.path() + "/state/state.sqlite";
    std::string sock = t.path() + "/ctl.sock";
    Node n(t.path() + "/nfsd", db);
    // The database exists first, so that the K-th write is a request's.
    n.StartHelper({}, {"--ctl-socket", sock});
    n.StopHelper();
    n.StartHelper({{"LD_PRELOAD", NFSDH_FAULTVFS_SO},
                   {"NFSDH_FAULT", "write:" + std::to_string(k) + ":enospc"},
                   {"NFSDH_FAULT_QUIET", "1"}},
                  {"--ctl-socket", sock});
    auto s = n.k().StartInstance(1000);
    if (!s.ok()) continue;  // the fault fell on the start
    auto g = n.k().EndGrace();
    if (!g.ok()) continue;
    auto r = n.k().EstablishState("A", "", Minor::kV41);
    if (r.status == 0) continue;  // the fault fell earlier
    INFO("K = " << k);
    REQUIRE(r.status == -EIO);
    seen = true;
    CHECK(RecordedIds(db).empty());
    CHECK(n.WaitForLog("storage failure, 1 request(s) answered -EIO"));
    INFO(n.Log());
    CHECK(n.Log().find("full") != std::string::npos);
    auto st =
        nfsdh::ctl::testing::RunCtl({"status", "--json", "--ctl-socket", sock});
    INFO(st.out << st.err);
    REQUIRE(st.code == 0);
    auto j = nlohmann::json::parse(st.out);
    CHECK(j["storage_errors"]["count"] == 1);
    std::string first = j["storage_errors"]["first"]["message"];
    CHECK(first.find("full") != std::string::npos);
    // Space is back: the kernel's retry succeeds.
    CHECK(n.k().EstablishState("A", "", Minor::kV41).ok());
    CHECK(RecordedIds(db) == std::set<std::string>{"A"});
    CHECK(n.HelperRunning());
  }
  CHECK(seen);
}
#endif

}  // namespace
}  // namespace scenario
