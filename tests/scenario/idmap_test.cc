// nfsd-helper --idmap, black-box: the real daemon serves the simulated
// ID-mapping cache channels (tests/sim/cache_channel.h) next to the
// simulated client-tracking files, mapping with the system's own users
// (root and daemon, uid/gid 0 and 1 on every Debian system) through real
// libnfsidmap and NSS.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/scenario/harness.h"
#include "tests/sim/cache_channel.h"
#include "tests/sim/process.h"

namespace scenario {
namespace {

using nfsdsim::IdmapCache;
using Clock = std::chrono::steady_clock;

constexpr char kDomain[] = "test.example";

// A simulated server with both the client-tracking files and the idmap
// channels, and nfsd-helper --idmap serving them.
struct IdmapNode {
  TempDir tmp;
  std::string conf = tmp.path() + "/idmapd.conf";
  std::string rpc = tmp.path() + "/rpc";
  std::unique_ptr<Node> node;
  nfsdsim::CacheChannelSim idmap;

  // Without `mount`, the channels are missing until Mount().
  explicit IdmapNode(const std::string& extra_conf = "", bool mount = true) {
    std::ofstream(conf) << "[General]\nDomain = " << kDomain
                        << "\n[Mapping]\nNobody-User = nobody\n"
                           "Nobody-Group = nogroup\n"
                        << extra_conf;
    REQUIRE(mkdir(rpc.c_str(), 0755) == 0);
    if (mount) Mount();
    node = std::make_unique<Node>(tmp.path() + "/nfsd", tmp.path() + "/db");
  }
  void Mount() {
    std::string err;
    INFO(err);
    REQUIRE(idmap.Mount(rpc, &err));
  }
  std::vector<std::string> Args(const std::string& timeout = "77") const {
    return {"--idmap",          "--idmap-conf",  conf,
            "--idmap-rpc-dir",  rpc,             "--idmap-cache-timeout",
            timeout};
  }
  void Start(const std::map<std::string, std::string>& env = {}) {
    node->StartHelper(env, Args());
    REQUIRE(idmap.WaitForOpen(kStepTimeout));
  }
  nfsdsim::Downcall Ask(IdmapCache c, const std::string& type,
                        const std::string& key) {
    nfsdsim::IdmapTicket t = idmap.Upcall(c, "*", type, key);
    std::optional<nfsdsim::Downcall> d = idmap.Await(t, kStepTimeout);
    INFO(key << ": " << idmap.LastRejection(c));
    REQUIRE(d.has_value());
    return *d;
  }
  std::string Ctl(const std::string& args) {
    std::string cmd = std::string(HELPER_CTL_BIN) + " " + args +
                      " --ctl-socket " + tmp.path() + "/nfsd.ctl.sock";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }
};

std::string At(const char* user) { return std::string(user) + "@" + kDomain; }

size_t CountOf(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos;
       at = s.find(needle, at + 1))
    ++n;
  return n;
}

// The capability lines (CapInh ... CapAmb) of every thread of `pid`, by
// thread id.
std::map<std::string, std::map<std::string, std::string>> ThreadCaps(
    pid_t pid) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("Cap", 0) != 0) continue;
      size_t colon = line.find(':');
      out[e->d_name][line.substr(0, colon)] = line.substr(colon + 1);
    }
  }
  closedir(d);
  return out;
}

TEST_CASE("idmap: users and groups map both ways, unknown ones as nfsd wants",
          "[scenario][idmap]") {
  IdmapNode n;
  n.Start();
  const int64_t now = time(nullptr);

  nfsdsim::Downcall d = n.Ask(IdmapCache::kIdToName, "user", "0");
  CHECK(d.value == At("root"));
  // now + the configured 77 s, on the wall clock.
  CHECK(d.expiry >= now + 77);
  CHECK(d.expiry <= now + 77 + 5);
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "1").value == At("daemon"));
  CHECK(n.Ask(IdmapCache::kIdToName, "group", "0").value == At("root"));
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("root")).value == "0");
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("daemon")).value == "1");
  CHECK(n.Ask(IdmapCache::kNameToId, "group", At("daemon")).value == "1");

  // An id without a name: the nobody names (a positive entry, as rpc.idmapd
  // answers), so the client shows "nobody".
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "3999999").value == "nobody");
  CHECK(n.Ask(IdmapCache::kIdToName, "group", "3999999").value == "nogroup");
  // A name without an id: a negative entry (nfsd answers NFS4ERR_BADOWNER),
  // never nobody's id.
  nfsdsim::Downcall neg =
      n.Ask(IdmapCache::kNameToId, "user", At("no-such-user"));
  CHECK_FALSE(neg.value.has_value());
  CHECK(neg.line == "* user no-such-user@test.example " +
                        std::to_string(neg.expiry) + "\n");
  CHECK_FALSE(
      n.Ask(IdmapCache::kNameToId, "group", "root@other.example").value);
  // The authname is echoed, escapes and all.
  nfsdsim::IdmapTicket t =
      n.idmap.Upcall(IdmapCache::kIdToName, "my client", "user", "0");
  auto sp = n.idmap.Await(t, kStepTimeout);
  REQUIRE(sp);
  CHECK(sp->authname == "my client");
  CHECK(n.idmap.Stats(IdmapCache::kIdToName).rejected == 0);
  CHECK(n.idmap.Stats(IdmapCache::kNameToId).rejected == 0);

  // helper-ctl status reports what was answered.
  nlohmann::json j = nlohmann::json::parse(n.Ctl("status --json"));
  const auto& im = j.at("idmap");
  CHECK(im.at("enabled") == true);
  CHECK(im.at("idtoname").at("open") == true);
  CHECK(im.at("idtoname").at("requests") == 6);
  CHECK(im.at("idtoname").at("hits") == 4);
  CHECK(im.at("idtoname").at("misses") == 2);
  CHECK(im.at("nametoid").at("hits") == 3);
  CHECK(im.at("nametoid").at("misses") == 2);
  CHECK(im.at("nametoid").at("errors") == 0);
  std::string table = n.Ctl("status");
  CHECK(table.find("IDMAP") != std::string::npos);
  n.node->StopHelper();
}

TEST_CASE("idmap: an upcall without its newline is dropped alone, not "
          "joined to the next one",
          "[idmap][scenario]") {
  IdmapNode n;
  n.Start();
  n.idmap.RawUpcall(IdmapCache::kIdToName, "* user 0");
  n.idmap.RawUpcall(IdmapCache::kNameToId, "* user");
  // The upcalls that follow are answered as if the others were not there.
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "0").value == At("root"));
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("root")).value == "0");
  CHECK(n.node->WaitForLog("dropped an upcall without its newline"));
  n.node->StopHelper();
}

TEST_CASE("idmap: no thread of the serving helper holds a capability",
          "[scenario][idmap][privileges]") {
  IdmapNode n;
  n.Start();
  REQUIRE(n.node->k().StartInstance(1000).ok());
  // A lookup answered: the workers exist and have worked.
  REQUIRE(n.Ask(IdmapCache::kIdToName, "user", "0").value == At("root"));
  pid_t pid = n.node->HelperPid();
  REQUIRE(n.node->WaitForLog("capabilities dropped: "));
  auto threads = ThreadCaps(pid);
  // The loop's thread and the lookup workers.
  CHECK(threads.size() > 1);
  for (const auto& [tid, caps] : threads) {
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
      INFO("thread " << tid << (tid == std::to_string(pid) ? " (main)" : "")
                     << " " << set);
      REQUIRE(caps.count(set) == 1);
      CHECK(caps.at(set) == "\t0000000000000000");
    }
  }
  // Without them everything is still served: lookups on the workers,
  // client tracking, and helper-ctl on the control socket.
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("daemon")).value == "1");
  CHECK(n.node->k().EstablishState("A", "", Minor::kV41).ok());
  CHECK(n.Ctl("status").find("IDMAP") != std::string::npos);
  // The channels re-opened, root's own files, after nfsd went away.
  std::string err;
  n.idmap.Unmount();
  REQUIRE(n.idmap.Mount(n.rpc, &err));
  REQUIRE(n.idmap.WaitForOpen(kStepTimeout));
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "1").value == At("daemon"));
  const std::string serving =
      "idmap: serving " + n.idmap.Path(IdmapCache::kIdToName);
  for (int i = 0; i < 1000 && CountOf(n.node->Log(), serving) < 2; ++i)
    usleep(10000);
  CHECK(CountOf(n.node->Log(), serving) == 2);
  n.node->StopHelper();
}

TEST_CASE("idmap: a slow name lookup does not delay client tracking",
          "[scenario][idmap]") {
  IdmapNode n;
  constexpr int kSlowMs = 3000;
  n.Start({{"LD_PRELOAD", NFSDH_SLOW_NSS_SO},
           {"NFSDH_SLOW_NSS_NAME", "slowpoke"},
           {"NFSDH_SLOW_NSS_MS", std::to_string(kSlowMs)}});
  REQUIRE(n.node->k().StartInstance(1700000000).ok());

  const auto t0 = Clock::now();
  nfsdsim::IdmapTicket slow =
      n.idmap.Upcall(IdmapCache::kNameToId, "*", "user", At("slowpoke"));
  // Let the daemon read it and hand it to a worker.
  REQUIRE(n.idmap.Stats(IdmapCache::kNameToId).upcalls == 1);
  while (n.idmap.Stats(IdmapCache::kNameToId).read == 0 &&
         Clock::now() - t0 < kStepTimeout)
    usleep(1000);
  const auto t_create = Clock::now();
  nfsdsim::StatusResult created =
      n.node->k().EstablishState("client-during-slow-lookup", Hash("p"),
                                 Minor::kV41);
  const auto create_done = Clock::now();
  // The other channel is served by another worker meanwhile.
  const auto t_other = Clock::now();
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "0").value == At("root"));
  const auto other_done = Clock::now();
  std::optional<nfsdsim::Downcall> d = n.idmap.Await(slow, kStepTimeout);
  const auto slow_done = Clock::now();
  REQUIRE(created.ok());
  REQUIRE(d.has_value());
  CHECK_FALSE(d->value.has_value());  // no such user: negative

  using ms = std::chrono::milliseconds;
  auto create_ms = std::chrono::duration_cast<ms>(create_done - t_create);
  auto other_ms = std::chrono::duration_cast<ms>(other_done - t_other);
  auto slow_ms = std::chrono::duration_cast<ms>(d->at - t0);
  WARN("create_client answered in " << create_ms.count()
                                    << " ms, idtoname in " << other_ms.count()
                                    << " ms, the slow nametoid in "
                                    << slow_ms.count() << " ms");
  CHECK(slow_ms.count() >= kSlowMs);
  CHECK(create_ms.count() < 1000);
  CHECK(other_ms.count() < 1000);
  CHECK(create_done < d->at);
  CHECK(slow_done >= d->at);
  n.node->StopHelper();
}

TEST_CASE("idmap: a lookup that hangs is answered as failed and does not "
          "hold back the answers behind it",
          "[scenario][idmap]") {
  IdmapNode n;
  // Far longer than nfsd waits for an answer.
  constexpr int kHangMs = 60000;
  n.Start({{"LD_PRELOAD", NFSDH_SLOW_NSS_SO},
           {"NFSDH_SLOW_NSS_NAME", "slowpoke"},
           {"NFSDH_SLOW_NSS_MS", std::to_string(kHangMs)}});
  const auto t0 = Clock::now();
  nfsdsim::IdmapTicket slow =
      n.idmap.Upcall(IdmapCache::kNameToId, "*", "user", At("slowpoke"));
  // Behind it on the same channel: answered at once by another worker,
  // written only in upcall order.
  nfsdsim::IdmapTicket fast =
      n.idmap.Upcall(IdmapCache::kNameToId, "*", "user", At("root"));
  std::optional<nfsdsim::Downcall> f = n.idmap.Await(fast, 20s);
  std::optional<nfsdsim::Downcall> d = n.idmap.Await(slow, 1s);
  REQUIRE(f.has_value());
  CHECK(f->value == "0");
  REQUIRE(d.has_value());
  // Answered as a failed lookup is: a negative entry (nfsd answers
  // NFS4ERR_BADOWNER), never an id.
  CHECK_FALSE(d->value.has_value());
  using ms = std::chrono::milliseconds;
  auto slow_ms = std::chrono::duration_cast<ms>(d->at - t0).count();
  auto fast_ms = std::chrono::duration_cast<ms>(f->at - t0).count();
  WARN("the hung lookup was answered after " << slow_ms
                                             << " ms, the one behind it after "
                                             << fast_ms << " ms");
  // Not before the bound (5 s), and long before the lookup ends.
  CHECK(slow_ms >= 4900);
  CHECK(fast_ms < kHangMs / 2);
  CHECK(n.node->WaitForLog("no answer from the name service within 5 s"));
  // The channel goes on: a later lookup is answered as usual.
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("daemon")).value == "1");
  CHECK(n.idmap.Stats(IdmapCache::kNameToId).rejected == 0);
  n.node->StopHelper();
}

TEST_CASE("idmap: nfsd-helper refuses a channel another process serves",
          "[scenario][idmap]") {
  IdmapNode n;
  // Play rpc.idmapd: hold the idtoname channel open from another process.
  nfsdsim::Process squatter;
  std::string err;
  REQUIRE(squatter.Start({"/bin/sh", "-c",
                          "exec 3<>'" + n.idmap.Path(IdmapCache::kIdToName) +
                              "'; exec sleep 60"},
                         {}, &err));
  for (int i = 0; i < 1000 && n.idmap.OpenPids(IdmapCache::kIdToName).empty();
       ++i)
    usleep(10000);
  REQUIRE_FALSE(n.idmap.OpenPids(IdmapCache::kIdToName).empty());

  nfsdsim::Process helper;
  std::vector<std::string> argv = {NFSD_HELPER_BIN, "--foreground",
                                   "--nfsdfs",      n.tmp.path() + "/nfsd",
                                   "--db",          n.tmp.path() + "/db",
                                   "--ctl-socket",  n.tmp.path() + "/c.sock"};
  for (const std::string& a : n.Args()) argv.push_back(a);
  REQUIRE(helper.Start(argv, {}, &err));
  std::optional<nfsdsim::ExitStatus> st = helper.Wait(kStepTimeout);
  REQUIRE(st.has_value());
  CHECK_FALSE(st->success());
  helper.WaitForStderrEnd(kStepTimeout);
  std::string log = helper.Stderr();
  INFO(log);
  CHECK(log.find("is already served by pid " +
                 std::to_string(squatter.pid()) + " (sleep)") !=
        std::string::npos);
  CHECK(log.find("rpc.idmapd must not both answer it") != std::string::npos);
  CHECK(n.idmap.Stats(IdmapCache::kNameToId).open_handles == 0);
}

// Open descriptors of `pid` and the highest one, once two readings 100 ms
// apart agree.
std::pair<int, int> SettledFds(pid_t pid) {
  auto read = [pid] {
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
    return std::make_pair(n, max);
  };
  auto last = read();
  for (int i = 0; i < 50; ++i) {
    usleep(100000);
    auto now = read();
    if (now == last) break;
    last = now;
  }
  return last;
}

// Sets the soft RLIMIT_NOFILE of `pid` (the hard one is left alone, so that
// no privilege is needed to raise it again) and returns the one it replaced.
rlim_t SetSoftNofile(pid_t pid, rlim_t soft) {
  struct rlimit rl;
  REQUIRE(prlimit(pid, RLIMIT_NOFILE, nullptr, &rl) == 0);
  rlim_t old = rl.rlim_cur;
  REQUIRE(soft <= rl.rlim_max);
  rl.rlim_cur = soft;
  REQUIRE(prlimit(pid, RLIMIT_NOFILE, &rl, nullptr) == 0);
  return old;
}

TEST_CASE("idmap: no descriptor left for a channel is named as such, retried "
          "every second, then served",
          "[scenario][idmap][limits][emfile]") {
  // The idmap channels used to log only the first reason a channel could
  // not be opened, so a shortage of descriptors after a missing channel
  // was never named at all.
  IdmapNode n("", /*mount=*/false);
  std::vector<std::string> argv = {NFSD_HELPER_BIN,
                                   "--foreground",
                                   "--nfsdfs",
                                   n.tmp.path() + "/nfsd",
                                   "--db",
                                   n.tmp.path() + "/db",
                                   "--ctl-socket",
                                   n.tmp.path() + "/c.sock",
                                   "--cld-pipe",
                                   "none",
                                   "--nfsdcld-db",
                                   "none",
                                   "--nfsdcltrack-db",
                                   "none"};
  for (const std::string& a : n.Args()) argv.push_back(a);
  // What idmap.Path() gives once mounted.
  const std::string paths[2] = {n.rpc + "/nfs4.idtoname/channel",
                                n.rpc + "/nfs4.nametoid/channel"};
  nfsdsim::Process p;
  REQUIRE(p.Start(argv));
  // nfsd not loaded yet: the channels are missing.
  for (const std::string& path : paths) {
    bool missing = p.WaitForStderr("idmap: cannot open " + path +
                                       ": No such file or directory; retrying "
                                       "every second (is nfsd loaded?)",
                                   kStepTimeout);
    INFO(p.Stderr());
    REQUIRE(missing);
  }
  // Then no descriptor is left, and nfsd comes.
  auto [count, max] = SettledFds(p.pid());
  REQUIRE(count == max + 1);  // no gap: the limit leaves none free
  rlim_t saved = SetSoftNofile(p.pid(), static_cast<rlim_t>(max + 1));
  n.Mount();
  REQUIRE(n.idmap.Path(IdmapCache::kIdToName) == paths[0]);
  const std::string shortage =
      "idmap: cannot open " + paths[0] +
      ": Too many open files (no file descriptor left); retrying every "
      "second";
  // Named at every retry, once a second.
  bool twice = false;
  for (auto end = Clock::now() + kStepTimeout; !twice && Clock::now() < end;
       usleep(50000))
    twice = CountOf(p.Stderr(), shortage) >= 2;
  {
    INFO(p.Stderr());
    REQUIRE(twice);
  }
  CHECK(p.Stderr().find("idmap: serving") == std::string::npos);
  // Descriptors back: served at the next retry.
  SetSoftNofile(p.pid(), saved);
  for (const std::string& path : paths)
    CHECK(p.WaitForStderr("idmap: serving " + path, kStepTimeout));
  CHECK(n.Ask(IdmapCache::kNameToId, "user", At("root")).value == "0");
  CHECK(n.Ask(IdmapCache::kIdToName, "user", "0").value == At("root"));
  REQUIRE(p.Signal(SIGTERM));
  REQUIRE(p.Wait(kStepTimeout));
}

}  // namespace
}  // namespace scenario
