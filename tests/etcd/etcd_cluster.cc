#include "tests/etcd/etcd_cluster.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace nfsdh::etcdtest {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Fails the test (or the benchmark) that needs the cluster: an exception,
// which Catch2 reports with its message.
void Require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// The first port the kernel takes for outgoing connections
// (net.ipv4.ip_local_port_range).
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 0, hi = 0;
  if (in >> lo >> hi && lo > 0) return lo;
  return 32768;
}

// A port free on loopback now, below the ephemeral range: a port the
// kernel hands out for bind(0) may also be given to any outgoing
// connection (the members' to each other, say) before the member that is
// to listen on it starts, or while it is down for a restart; one below the
// range is never. Never the same port twice in this process.
int FreePort() {
  static std::set<int> given;
  static std::mt19937 rng(std::random_device{}() ^
                          static_cast<unsigned>(getpid()));
  const int hi = EphemeralLow() - 1;
  const int lo = hi > 12000 ? 10000 : 1024;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = std::uniform_int_distribution<int>(lo, hi)(rng);
    if (given.count(port) != 0) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Require(fd >= 0, std::string("socket: ") + strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (free) {
      given.insert(port);
      return port;
    }
  }
  throw std::runtime_error("no free port below " + std::to_string(hi + 1) +
                           " on 127.0.0.1");
}

// The last `n` lines of a file (the directory goes with the cluster, so a
// failure shows them).
std::string Tail(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::ostringstream out;
  for (const std::string& l : lines) out << l << "\n";
  return out.str();
}

size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

}  // namespace

std::string PostForTest(const std::string& url, const std::string& body,
                        int timeout_ms) {
  CURL* h = curl_easy_init();
  if (h == nullptr) return "";
  std::string out;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_cleanup(h);
  return rc == CURLE_OK ? out : std::string();
}

EtcdCluster::EtcdCluster(int members, const std::string& parent) {
  const char* bin = getenv("NFSDH_ETCD");
  binary_ = bin != nullptr ? bin : "/usr/bin/etcd";
  Require(access(binary_.c_str(), X_OK) == 0,
          "no etcd binary " + binary_ +
              " (Debian package etcd-server, installed by "
              "scripts/install-deps.sh)");
  std::string tmpl = parent + "/nfsdh-etcd-XXXXXX";
  Require(mkdtemp(tmpl.data()) != nullptr,
          "mkdtemp " + tmpl + ": " + strerror(errno));
  dir_ = tmpl;
  token_ = "nfsdh-test-" + std::to_string(getpid()) + "-" +
           dir_.substr(dir_.rfind('-') + 1);
  try {
    for (int i = 0; i < members; ++i) {
      Member m;
      m.name = "m" + std::to_string(i);
      m.client_port = FreePort();
      m.peer_port = FreePort();
      members_.push_back(m);
    }
    for (int i = 0; i < members; ++i) Start(i, "new");
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (int i = 0; i < members; ++i) WaitHealthy(i, deadline, "");
  } catch (...) {
    Cleanup();  // the destructor does not run
    throw;
  }
}

EtcdCluster::~EtcdCluster() { Cleanup(); }

void EtcdCluster::Cleanup() {
  for (Member& m : members_) {
    if (m.pid > 0) {
      kill(m.pid, SIGCONT);
      kill(m.pid, SIGKILL);
      waitpid(m.pid, nullptr, 0);
      m.pid = -1;
    }
  }
  if (!dir_.empty() && std::system(("rm -rf '" + dir_ + "'").c_str()) != 0) {
    // A leftover temporary directory is harmless.
  }
  dir_.clear();
}

void EtcdCluster::WaitHealthy(int i, Clock::time_point deadline,
                              const char* what) const {
  while (!Healthy(i, 1000)) {
    if (Clock::now() >= deadline) {
      const std::string log = dir_ + "/" + members_[i].name + ".log";
      throw std::runtime_error(std::string(what) + "etcd member " +
                               std::to_string(i) +
                               " did not become healthy in 30 s; the end of "
                               "its log " +
                               log + ":\n" + Tail(log, 20));
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

std::string EtcdCluster::endpoint(int i) const {
  return "http://127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

std::string EtcdCluster::endpoint_list() const {
  std::string out;
  for (const std::string& e : endpoints()) out += (out.empty() ? "" : ",") + e;
  return out;
}

std::vector<std::string> HelperClusterArgs(const EtcdCluster& etcd,
                                           const std::string& node,
                                           int lease_ttl) {
  return {"--etcd-endpoints", etcd.endpoint_list(),
          "--cluster",        "test",
          "--node",           node,
          "--etcd-lease-ttl", std::to_string(lease_ttl)};
}

std::string EtcdCluster::InitialCluster() const {
  std::string out;
  for (const Member& m : members_) {
    if (!out.empty()) out += ",";
    out += m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
  }
  return out;
}

void EtcdCluster::Start(int i, const std::string& state) {
  Member& m = members_[i];
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  const std::string client = endpoint(i);
  std::vector<std::string> args = {
      binary_,
      "--name",
      m.name,
      "--data-dir",
      dir_ + "/" + m.name,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--initial-cluster",
      InitialCluster(),
      "--initial-cluster-state",
      state,
      "--initial-cluster-token",
      token_,
      // Faster elections than the defaults (100 ms, 1000 ms) make the
      // tests quicker without changing what they show.
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
      "--log-level",
      "warn",
  };
  const std::string log = dir_ + "/" + m.name + ".log";
  pid_t pid = fork();
  Require(pid >= 0, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    // etcd must not keep the test's other descriptors (a lock, a pipe).
    for (int f = 3; f < 1024; ++f) close(f);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  m.pid = pid;
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  Require(m.pid > 0, "etcd member " + std::to_string(i) + " is not running");
  kill(m.pid, SIGCONT);  // a paused member must die too
  kill(m.pid, SIGKILL);
  waitpid(m.pid, nullptr, 0);
  m.pid = -1;
}

void EtcdCluster::Pause(int i) {
  Require(members_[i].pid > 0 && kill(members_[i].pid, SIGSTOP) == 0,
          "cannot pause etcd member " + std::to_string(i));
}

void EtcdCluster::Resume(int i) {
  Require(members_[i].pid > 0 && kill(members_[i].pid, SIGCONT) == 0,
          "cannot resume etcd member " + std::to_string(i));
}

void EtcdCluster::Restart(int i, bool wait_healthy) {
  Require(members_[i].pid <= 0,
          "etcd member " + std::to_string(i) + " is still running");
  Start(i, "existing");
  if (!wait_healthy) return;
  WaitHealthy(i, Clock::now() + std::chrono::seconds(30), "restarted: ");
}

bool EtcdCluster::Healthy(int i, int timeout_ms) const {
  if (members_[i].pid <= 0) return false;
  const std::string body =
      PostForTest(endpoint(i) + "/v3/maintenance/status", "{}", timeout_ms);
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  // A member that answers status and knows a leader serves requests.
  return j.is_object() && j.contains("leader") && j["leader"] != "0";
}

int EtcdCluster::Leader(int timeout_ms) const {
  const auto deadline = Clock::now() + milliseconds(timeout_ms);
  do {
    for (int i = 0; i < size(); ++i) {
      if (members_[i].pid <= 0) continue;
      const std::string body =
          PostForTest(endpoint(i) + "/v3/maintenance/status", "{}", 1000);
      nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
      if (!j.is_object() || !j.contains("header") || !j.contains("leader"))
        continue;
      if (j["header"].value("member_id", "") == j.value("leader", "x"))
        return i;
    }
    std::this_thread::sleep_for(milliseconds(100));
  } while (Clock::now() < deadline);
  return -1;
}

}  // namespace nfsdh::etcdtest
