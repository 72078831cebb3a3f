#include "daemon/loop/loop.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace nfsdh::loop {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A pipe whose read end the loop can watch.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    REQUIRE(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    r = p[0];
    w = p[1];
  }
  ~Pipe() {
    close(r);
    close(w);
  }
  void Put(const std::string& s) {
    REQUIRE(write(w, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
};

// Runs `loop` until `done` or `limit`; false on the limit.
template <typename Pred>
bool RunUntil(Loop& loop, Pred done, Duration limit = 5000ms) {
  auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) return false;
    loop.RunFor(10ms);
  }
  return true;
}

TEST_CASE("loop: a one-shot timer fires once, after its delay", "[loop]") {
  Loop loop;
  int fired = 0;
  Clock::time_point at;
  Timer t(loop, [&] {
    ++fired;
    at = Clock::now();
  });
  CHECK_FALSE(t.armed());
  auto start = Clock::now();
  t.Start(100ms);
  CHECK(t.armed());
  REQUIRE(RunUntil(loop, [&] { return fired > 0; }));
  // libevent reads a coarse monotonic clock (a few ms per tick).
  CHECK(at - start >= 90ms);
  CHECK_FALSE(t.armed());
  loop.RunFor(200ms);
  CHECK(fired == 1);
}

TEST_CASE("loop: Start re-arms a timer, StartIfIdle does not, Stop disarms",
          "[loop]") {
  Loop loop;
  int fired = 0;
  Timer t(loop, [&] { ++fired; });
  t.Start(50ms);
  t.StartIfIdle(5000ms);  // armed: keeps the 50 ms
  REQUIRE(RunUntil(
      loop, [&] { return fired == 1; }, 2000ms));
  t.Start(5000ms);
  t.Start(30ms);  // replaces the 5 s
  REQUIRE(RunUntil(
      loop, [&] { return fired == 2; }, 2000ms));
  t.Start(30ms);
  t.Stop();
  CHECK_FALSE(t.armed());
  loop.RunFor(150ms);
  CHECK(fired == 2);
}

TEST_CASE("loop: a periodic timer fires until it is destroyed", "[loop]") {
  Loop loop;
  int fired = 0;
  auto t = std::make_unique<PeriodicTimer>(loop, 30ms, [&] { ++fired; });
  REQUIRE(RunUntil(loop, [&] { return fired >= 3; }));
  t.reset();
  int seen = fired;
  loop.RunFor(150ms);
  CHECK(fired == seen);
}

TEST_CASE("loop: a signal runs its callbacks on the loop, each watch once",
          "[loop]") {
  Loop loop;
  int a = 0, b = 0;
  {
    SignalWatch wa(loop, SIGUSR1, [&] { ++a; });
    SignalWatch wb(loop, SIGUSR1, [&] { ++b; });
    raise(SIGUSR1);
    // Delivered to libevent's handler at once, but run only by the loop.
    CHECK(a == 0);
    REQUIRE(RunUntil(loop, [&] { return a == 1 && b == 1; }));
  }
}

TEST_CASE("loop: a descriptor watch runs while readable and started",
          "[loop]") {
  Loop loop;
  Pipe p;
  int fired = 0;
  int watched = p.r;
  FdWatch w(loop, p.r, FdWatch::Event::kRead, [&] {
    ++fired;
    char buf[256];
    while (read(watched, buf, sizeof buf) > 0) {
    }
  });
  CHECK_FALSE(w.active());
  p.Put("x");
  loop.RunFor(50ms);
  CHECK(fired == 0);  // not started
  REQUIRE(w.Start().ok());
  CHECK(w.active());
  REQUIRE(RunUntil(loop, [&] { return fired == 1; }));
  loop.RunFor(50ms);
  CHECK(fired == 1);  // drained: not readable any more
  w.Stop();
  p.Put("y");
  loop.RunFor(50ms);
  CHECK(fired == 1);
  // Another descriptor, once started again.
  Pipe q;
  w.Reset(q.r);
  watched = q.r;
  CHECK(w.fd() == q.r);
  CHECK_FALSE(w.active());
  REQUIRE(w.Start().ok());
  q.Put("z");
  REQUIRE(RunUntil(loop, [&] { return fired == 2; }));
}

TEST_CASE("loop: a descriptor the kernel cannot poll is refused, not fatal",
          "[loop]") {
  Loop loop;
  char tmpl[] = "/tmp/nfsdh-loop-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  unlink(tmpl);
  FdWatch w(loop, fd, FdWatch::Event::kRead, [] {});
  Status s = w.Start();  // epoll refuses a regular file (EPERM)
  INFO(s.ToString());
  CHECK_FALSE(s.ok());
  CHECK_FALSE(w.active());
  close(fd);
}

TEST_CASE("loop: an object may destroy itself, or another, from a callback",
          "[loop]") {
  Loop loop;
  Pipe p;
  std::unique_ptr<FdWatch> self;
  std::unique_ptr<FdWatch> other;
  int self_fired = 0, other_fired = 0;
  // Both readable in one wake-up: whichever runs first destroys the other,
  // which then does not run; each destroys itself too.
  self = std::make_unique<FdWatch>(loop, p.r, FdWatch::Event::kRead, [&] {
    ++self_fired;
    other.reset();
    self.reset();
  });
  other = std::make_unique<FdWatch>(loop, p.r, FdWatch::Event::kRead, [&] {
    ++other_fired;
    self.reset();
    other.reset();
  });
  REQUIRE(self->Start().ok());
  REQUIRE(other->Start().ok());
  p.Put("x");
  REQUIRE(RunUntil(loop, [&] { return !self && !other; }));
  CHECK(self_fired + other_fired == 1);

  std::unique_ptr<Timer> t;
  int fired = 0;
  t = std::make_unique<Timer>(loop, [&] {
    ++fired;
    t.reset();
  });
  t->Start(0ms);
  REQUIRE(RunUntil(loop, [&] { return !t; }));
  CHECK(fired == 1);
}

TEST_CASE("loop: Break ends Run after the callback that asks", "[loop]") {
  Loop loop;
  int fired = 0;
  PeriodicTimer t(loop, 10ms, [&] {
    if (++fired == 3) loop.Break();
  });
  auto start = Clock::now();
  loop.Run();  // the periodic timer would keep it running for ever
  CHECK(fired == 3);
  CHECK(Clock::now() - start < 5s);
}

pid_t Child(int code, Duration after) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    usleep(static_cast<useconds_t>(after.count() * 1000));
    _exit(code);
  }
  return pid;
}

TEST_CASE("loop: a child watch reaps its child and reports how it ended",
          "[loop]") {
  Loop loop;
  std::vector<int> statuses;
  pid_t pid = Child(7, 50ms);
  ChildWatch w(loop, pid, [&](int status, int error) {
    CHECK(error == 0);
    statuses.push_back(status);
  });
  CHECK(w.pid() == pid);
  REQUIRE(RunUntil(loop, [&] { return w.reaped(); }));
  REQUIRE(statuses.size() == 1);
  CHECK(WIFEXITED(statuses[0]));
  CHECK(WEXITSTATUS(statuses[0]) == 7);
  loop.RunFor(50ms);
  CHECK(statuses.size() == 1);  // once
}

TEST_CASE("loop: a child that exited before its watch was made is reaped",
          "[loop]") {
  Loop loop;
  pid_t pid = Child(3, 0ms);
  // Its SIGCHLD went to nobody: it is a zombie by now.
  for (int i = 0; i < 500; ++i) {
    siginfo_t si = {};
    if (waitid(P_PID, static_cast<id_t>(pid), &si,
               WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid)
      break;
    usleep(10000);
  }
  int code = -1;
  ChildWatch w(loop, pid, [&](int status, int) { code = WEXITSTATUS(status); });
  REQUIRE(RunUntil(loop, [&] { return w.reaped(); }));
  CHECK(code == 3);
}

TEST_CASE("loop: a child watch reaps its own child, never another", "[loop]") {
  Loop loop;
  pid_t other = Child(5, 0ms);
  pid_t mine = Child(6, 100ms);
  int code = -1;
  ChildWatch w(loop, mine,
               [&](int status, int) { code = WEXITSTATUS(status); });
  REQUIRE(RunUntil(loop, [&] { return w.reaped(); }));
  CHECK(code == 6);
  // The other child was left for its own parent code to reap.
  int status = 0;
  REQUIRE(waitpid(other, &status, 0) == other);
  CHECK(WEXITSTATUS(status) == 5);
}

TEST_CASE("loop: a child watch may be replaced from its own callback",
          "[loop]") {
  // What the HA callout does: the end of one child starts the next.
  Loop loop;
  std::unique_ptr<ChildWatch> w;
  std::vector<int> codes;
  std::function<void(int, int)> next = [&](int status, int) {
    codes.push_back(WEXITSTATUS(status));
    if (codes.size() < 3)
      w = std::make_unique<ChildWatch>(
          loop, Child(static_cast<int>(codes.size()), 10ms), next);
  };
  w = std::make_unique<ChildWatch>(loop, Child(0, 10ms), next);
  REQUIRE(RunUntil(loop, [&] { return codes.size() == 3; }));
  CHECK(codes == std::vector<int>{0, 1, 2});
}

}  // namespace
}  // namespace nfsdh::loop
