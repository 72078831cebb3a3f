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
                        t.path() + "/no-nfsd", "--db",
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
