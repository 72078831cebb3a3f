// The systemd readiness protocol (Type=notify), seen from the service
// manager's side of $NOTIFY_SOCKET.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

// A datagram socket playing systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof a.sun_path);
    path.copy(a.sun_path, path.size());
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifySocket() { close(fd_); }
  const std::string& path() const { return path_; }

  // Collects messages until one contains `needle`, or `timeout` passes.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (received_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) received_.append(buf, n).append("\n");
    }
    return true;
  }
  const std::string& received() const { return received_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string received_;
};

TEST_CASE("READY=1 once every channel is served, STOPPING=1 on SIGTERM",
          "[scenario][systemd]") {
  TempDir t;
  NotifySocket sd(t.path() + "/notify");
  Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
  n.StartHelper({{"NOTIFY_SOCKET", sd.path()}});
  REQUIRE(sd.WaitFor("READY=1", kStepTimeout));
  CHECK_THAT(sd.received(), Catch::Contains("STATUS=serving " + t.path() +
                                            "/nfsd for scope default"));
  n.StopHelper();
  CHECK(sd.WaitFor("STOPPING=1", kStepTimeout));
}

TEST_CASE("no READY=1 while the upcall files are missing",
          "[scenario][systemd]") {
  TempDir t;
  NotifySocket sd(t.path() + "/notify");
  nfsdsim::Process helper;
  nfsdsim::ProcessOptions po;
  po.env = {{"NOTIFY_SOCKET", sd.path()}};
  REQUIRE(helper.Start({NFSD_HELPER_BIN, "--foreground", "--nfsdfs",
                        t.path() + "/no-nfsd", "--cld-pipe", "none", "--db",
                        t.path() + "/state/state.sqlite"},
                       po));
  REQUIRE(sd.WaitFor("STATUS=waiting for " + t.path() +
                         "/no-nfsd/allow_client",
                     kStepTimeout));
  CHECK_FALSE(sd.WaitFor("READY=1", 1500ms));
  REQUIRE(helper.Signal(SIGTERM));
  auto st = helper.Wait(kStepTimeout);
  REQUIRE(st);
  CHECK(st->success());
  CHECK_THAT(helper.Stderr(), Catch::Contains("retrying every second"));
}

}  // namespace
}  // namespace scenario

namespace scenario {
namespace {

TEST_CASE("under journald every log line carries its syslog priority",
          "[scenario][systemd]") {
  TempDir t;
  Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
  n.StartHelper({{"JOURNAL_STREAM", "8:12345"}});
  // A malformed request logs a warning (4); starting an instance a notice
  // (5); debug lines (7) come from --debug.
  auto bad = n.k().Submit(nfsdfs::Channel::kGraceDone, "7 x\n");
  REQUIRE(n.k().Await(bad, kStepTimeout).status == -EINVAL);
  REQUIRE(n.k().StartInstance(1000).ok());
  REQUIRE(n.WaitForLog("<5>scope default: server instance"));
  REQUIRE(n.WaitForLog("<4>grace_done: malformed request 7"));
  std::string log = n.Log();
  size_t lines = 0;
  for (size_t i = 0; i < log.size();) {
    size_t nl = log.find('\n', i);
    std::string line = log.substr(i, nl - i);
    INFO(line);
    CHECK(line.size() > 3);
    CHECK(line[0] == '<');
    CHECK(line[1] >= '0');
    CHECK(line[1] <= '7');
    CHECK(line[2] == '>');
    ++lines;
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  CHECK(lines >= 3);
}

}  // namespace
}  // namespace scenario
