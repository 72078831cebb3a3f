// Tests of the simulated kernel itself. The test plays the helper with plain
// open/read/write/poll/close on the FUSE mount (the FUSE server runs on the
// SimKernel's own thread), and blocking driver calls run on std::async
// threads. Catch2 assertions are made on the main thread only.
#include "tests/sim/sim_kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nfsdfs-proto/message.h"
#include "nfsdfs-proto/qword.h"
#include "tests/sim/process.h"

namespace nfsdsim {
namespace {

using namespace std::chrono_literals;
using nfsdfs::ChannelFileName;
using Clock = std::chrono::steady_clock;

// A fresh mkdtemp directory with the simulator mounted on it; unmounted and
// removed again whatever the test does.
class TempMount {
 public:
  explicit TempMount(SimOptions options = {}) : sim(std::move(options)) {
    char tmpl[] = "/tmp/nfsd-sim-test.XXXXXX";
    const char* d = mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    dir = d;
    std::string error;
    if (!sim.Mount(dir, &error)) {
      rmdir(dir.c_str());
      FAIL("Mount: " << error);
    }
  }
  ~TempMount() {
    sim.Unmount();
    rmdir(dir.c_str());
  }
  std::string Path(Channel c) const { return dir + "/" + ChannelFileName(c); }

  SimKernel sim;
  std::string dir;
};

// An open file of the helper's side, closed at scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

int OpenRw(const std::string& path) {
  return open(path.c_str(), O_RDWR | O_CLOEXEC);
}

// One read() of at most n bytes; "<errno ...>" on failure.
std::string ReadOnce(int fd, size_t n = 8192) {
  std::string buf(n, '\0');
  ssize_t r = read(fd, buf.data(), n);
  if (r < 0) return std::string("<errno ") + strerror(errno) + ">";
  buf.resize(static_cast<size_t>(r));
  return buf;
}

// Waits up to timeout_ms for POLLIN, then reads once.
std::string ReadWhenReady(int fd, int timeout_ms = 5000) {
  pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "<no POLLIN>";
  return ReadOnce(fd);
}

// 0 if the whole write succeeded, else errno (or -1 for a short write).
int WriteErr(int fd, std::string_view s) {
  ssize_t r = write(fd, s.data(), s.size());
  if (r < 0) return errno;
  return static_cast<size_t>(r) == s.size() ? 0 : -1;
}

std::string CreateLine(uint64_t seq, const std::string& client_id,
                       int64_t instance = 100) {
  nfsdfs::CreateRequest r;
  r.seq = seq;
  r.instance = instance;
  r.client_id = client_id;
  r.minor = Minor::kV41;
  return nfsdfs::EncodeRequest(r);
}

Ticket QueueCreate(SimKernel& sim, const std::string& client_id) {
  return sim.SubmitWithSeq(Channel::kCreateClient, [&](uint64_t seq) {
    return CreateLine(seq, client_id);
  });
}

const std::string kHashA(32, '\xa1');
const std::string kHashOther(32, '\x5e');

bool IsMounted(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + dir + " ") != std::string::npos) return true;
  }
  return false;
}

// A minimal helper for the driver tests: serves all four files with epoll on
// its own thread and answers everything with success. allow_client gets the
// configured allow list and instances 1000, 1001, ... In batch mode it reads
// everything pending and answers in reverse order.
class FakeHelper {
 public:
  FakeHelper(const TempMount& m, bool reverse_batches = false)
      : reverse_(reverse_batches) {
    for (Channel c : kAllChannels) fds_.push_back(OpenRw(m.Path(c)));
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeHelper() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) close(fd);
  }
  void SetAllowList(std::vector<std::pair<std::string, std::string>> list) {
    std::lock_guard<std::mutex> lk(mu_);
    allow_ = std::move(list);
  }
  std::vector<std::string> Seen(Channel c) {
    std::lock_guard<std::mutex> lk(mu_);
    return seen_[static_cast<int>(c)];
  }
  bool opened() const {
    return std::all_of(fds_.begin(), fds_.end(),
                       [](int fd) { return fd >= 0; });
  }

 private:
  void Loop() {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < fds_.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, fds_[i], &ev);
    }
    while (!stop_) {
      epoll_event evs[4];
      int n = epoll_wait(ep, evs, 4, 20);
      for (int i = 0; i < n; ++i) Serve(evs[i].data.u32);
    }
    close(ep);
  }
  void Serve(uint32_t index) {
    Channel c = kAllChannels[index];
    int fd = fds_[index];
    std::vector<std::string> lines;
    while (true) {
      std::string line = ReadOnce(fd);
      if (line.empty() || line[0] == '<') break;
      lines.push_back(line);
      if (!reverse_) break;
    }
    if (reverse_) std::reverse(lines.begin(), lines.end());
    for (const std::string& line : lines) {
      std::lock_guard<std::mutex> lk(mu_);
      seen_[static_cast<int>(c)].push_back(line);
      uint64_t seq = nfsdfs::PeekSeq(line).value_or(0);
      std::string reply;
      if (c == Channel::kAllowClient) {
        for (const auto& [id, hash] : allow_) {
          reply += nfsdfs::EncodeAllowClient(seq, id, hash);
        }
        reply += nfsdfs::EncodeAllowDone(seq, 0, next_instance_++);
      } else {
        reply = nfsdfs::EncodeStatusReply(seq, 0);
      }
      (void)!write(fd, reply.data(), reply.size());
    }
  }

  const bool reverse_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> allow_;
  std::vector<std::string> seen_[4];
  int64_t next_instance_ = 1000;
};

// ---- The files --------------------------------------------------------------

TEST_CASE("sim: presents exactly the four files, mode 0600, nonseekable",
          "[sim]") {
  TempMount m;
  std::set<std::string> names;
  DIR* d = opendir(m.dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      names.insert(e->d_name);
    }
  }
  closedir(d);
  CHECK(names == std::set<std::string>{"allow_client", "create_client",
                                       "expire_client", "grace_done"});

  for (Channel c : kAllChannels) {
    struct stat st;
    REQUIRE(stat(m.Path(c).c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == geteuid());
    CHECK(m.sim.Path(c) == m.Path(c));

    Fd fd(OpenRw(m.Path(c)));
    REQUIRE(fd.get() >= 0);
    errno = 0;
    CHECK(lseek(fd.get(), 0, SEEK_SET) == -1);
    CHECK(errno == ESPIPE);
  }
  struct stat st;
  CHECK(stat((m.dir + "/no_such_file").c_str(), &st) == -1);
  CHECK(open((m.dir + "/new_file").c_str(), O_RDWR | O_CREAT, 0600) == -1);
}

TEST_CASE("sim: counts open files and their processes", "[sim]") {
  TempMount m;
  CHECK_FALSE(m.sim.WaitForOpen(50ms));
  Fd a(OpenRw(m.Path(Channel::kAllowClient)));
  Fd b(OpenRw(m.Path(Channel::kCreateClient)));
  Fd b2(OpenRw(m.Path(Channel::kCreateClient)));
  Fd c(OpenRw(m.Path(Channel::kExpireClient)));
  CHECK(m.sim.OpenHandles(Channel::kCreateClient) == 2);
  CHECK(m.sim.OpenHandles(Channel::kGraceDone) == 0);
  CHECK_FALSE(m.sim.WaitForOpen(50ms));
  Fd g(OpenRw(m.Path(Channel::kGraceDone)));
  CHECK(m.sim.WaitForOpen(1s));
  CHECK(m.sim.OpenPids(Channel::kCreateClient) == std::set<pid_t>{getpid()});
  CHECK(m.sim.Stats(Channel::kCreateClient).opens == 2);

  b2.Close();
  // Release reaches the FUSE server asynchronously after close().
  CHECK(m.sim.WaitForStats(
      Channel::kCreateClient,
      [](const ChannelStats& s) { return s.open_handles == 1; }, 5s));
  a.Close();
  b.Close();
  c.Close();
  g.Close();
  CHECK(m.sim.WaitForAllClosed(5s));
  CHECK(m.sim.TotalStats().open_handles == 0);
}

TEST_CASE("sim: read returns 0 when nothing is pending and never blocks",
          "[sim]") {
  TempMount m;
  // Deliberately without O_NONBLOCK: the files must not block regardless.
  Fd fd(open(m.Path(Channel::kCreateClient).c_str(), O_RDWR));
  REQUIRE(fd.get() >= 0);
  auto start = Clock::now();
  CHECK(ReadOnce(fd.get()) == "");
  CHECK(ReadOnce(fd.get()) == "");
  CHECK(Clock::now() - start < 2s);
  CHECK(m.sim.Stats(Channel::kCreateClient).read == 0);
}

TEST_CASE("sim: one read returns exactly one whole request", "[sim]") {
  TempMount m;
  Ticket t1 = QueueCreate(m.sim, "client-1");
  Ticket t2 = QueueCreate(m.sim, "client-2");
  Ticket t3 = QueueCreate(m.sim, "client-3");
  REQUIRE(t1.ok());
  // Sequence numbers: the next free one per file, starting at 1.
  CHECK(t1.seq == 1u);
  CHECK(t2.seq == 2u);
  CHECK(t3.seq == 3u);

  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  REQUIRE(fd.get() >= 0);
  CHECK(ReadOnce(fd.get()) == CreateLine(1, "client-1"));
  CHECK(ReadOnce(fd.get()) == CreateLine(2, "client-2"));
  CHECK(ReadOnce(fd.get()) == CreateLine(3, "client-3"));
  CHECK(ReadOnce(fd.get()) == "");
  ChannelStats s = m.sim.Stats(Channel::kCreateClient);
  CHECK(s.queued == 3);
  CHECK(s.read == 3);
  CHECK(s.pending == 0);
  CHECK(s.outstanding == 3);
  // Other files are independent queues.
  CHECK(m.sim.Stats(Channel::kExpireClient).queued == 0);
}

TEST_CASE("sim: sequence numbers are per file and never reused", "[sim]") {
  TempMount m;
  CHECK(m.sim.PeekNextSeq(Channel::kCreateClient) == 1);
  CHECK(QueueCreate(m.sim, "a").seq == 1u);
  CHECK(m.sim
            .SubmitWithSeq(Channel::kExpireClient,
                           [](uint64_t seq) {
                             return std::to_string(seq) + " 100 \\x61\n";
                           })
            .seq == 1u);
  // A raw line with its own seq moves the counter past it.
  Ticket raw = m.sim.Submit(Channel::kCreateClient, CreateLine(10, "b"));
  REQUIRE(raw.ok());
  CHECK(raw.seq == 10u);
  CHECK(m.sim.PeekNextSeq(Channel::kCreateClient) == 11);
  // The kernel never has two outstanding requests with one seq.
  Ticket dup = m.sim.Submit(Channel::kCreateClient, CreateLine(10, "c"));
  CHECK_FALSE(dup.ok());
  CHECK(dup.error.find("10") != std::string::npos);
  // make_line may use the simulator (it runs without the lock).
  Ticket built = m.sim.SubmitWithSeq(Channel::kCreateClient, [&](uint64_t seq) {
    return CreateLine(seq, "d", m.sim.CurrentInstance() + 1);
  });
  CHECK(built.seq == 11u);
  // A line without a readable seq is queued, but can never be answered.
  Ticket garbage = m.sim.Submit(Channel::kCreateClient, "garbage\n");
  CHECK(garbage.ok());
  CHECK_FALSE(garbage.seq.has_value());
  CHECK(m.sim.Stats(Channel::kCreateClient).pending == 4);
}

TEST_CASE("sim: a short read returns the rest of the request on the next reads",
          "[sim]") {
  TempMount m;
  const std::string long_id(1024, 'L');
  QueueCreate(m.sim, long_id);
  QueueCreate(m.sim, "second");
  const std::string line1 = CreateLine(1, long_id);
  REQUIRE(line1.size() > 2048);

  Fd fd1(OpenRw(m.Path(Channel::kCreateClient)));
  Fd fd2(OpenRw(m.Path(Channel::kCreateClient)));
  std::string got = ReadOnce(fd1.get(), 10);
  CHECK(got == line1.substr(0, 10));
  // POLLIN stays set while the rest is unread.
  pollfd p = {fd1.get(), POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 1);
  // Another open file does not get the rest, it gets the next request.
  CHECK(ReadOnce(fd2.get()) == CreateLine(2, "second"));
  got += ReadOnce(fd1.get(), 100);
  CHECK(got.size() == 110);
  got += ReadOnce(fd1.get(), 4096);
  CHECK(got == line1);
  CHECK(ReadOnce(fd1.get()) == "");
  CHECK(m.sim.Stats(Channel::kCreateClient).read == 2);

  // A request read in part is read: it can be answered.
  CHECK(WriteErr(fd1.get(), "1 0\n") == 0);
  CHECK(m.sim.Stats(Channel::kCreateClient).answered == 1);
}

// ---- poll -------------------------------------------------------------------

TEST_CASE("sim: poll reports POLLIN when a request is queued", "[sim]") {
  TempMount m;
  Fd fd(OpenRw(m.Path(Channel::kGraceDone)));
  REQUIRE(fd.get() >= 0);

  pollfd p = {fd.get(), POLLIN | POLLOUT, 0};
  REQUIRE(poll(&p, 1, 0) == 1);
  CHECK((p.revents & POLLOUT) != 0);  // POLLOUT: always
  CHECK((p.revents & POLLIN) == 0);

  SECTION("poll() sleeping in the kernel is woken") {
    std::thread submitter([&] {
      std::this_thread::sleep_for(200ms);
      m.sim.Submit(Channel::kGraceDone, "1 100\n");
    });
    p = {fd.get(), POLLIN, 0};
    auto start = Clock::now();
    int n = poll(&p, 1, 5000);
    auto waited = Clock::now() - start;
    submitter.join();
    REQUIRE(n == 1);
    CHECK((p.revents & POLLIN) != 0);
    CHECK(waited >= 150ms);  // it really slept until the request came
    CHECK(waited < 4s);      // and did not just time out
    CHECK(ReadOnce(fd.get()) == "1 100\n");
    p = {fd.get(), POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0);
  }

  SECTION("epoll_wait() is woken") {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    REQUIRE(epoll_ctl(ep, EPOLL_CTL_ADD, fd.get(), &ev) == 0);
    epoll_event out[1];
    CHECK(epoll_wait(ep, out, 1, 0) == 0);
    std::thread submitter([&] {
      std::this_thread::sleep_for(200ms);
      m.sim.Submit(Channel::kGraceDone, "7 100\n");
    });
    auto start = Clock::now();
    int n = epoll_wait(ep, out, 1, 5000);
    auto waited = Clock::now() - start;
    submitter.join();
    CHECK(n == 1);
    CHECK((out[0].events & EPOLLIN) != 0);
    CHECK(waited >= 150ms);
    CHECK(waited < 4s);
    CHECK(ReadOnce(fd.get()) == "7 100\n");
    // Level-triggered: nothing pending, no event.
    CHECK(epoll_wait(ep, out, 1, 0) == 0);
    // And a second request wakes it again.
    m.sim.Submit(Channel::kGraceDone, "8 100\n");
    CHECK(epoll_wait(ep, out, 1, 5000) == 1);
    close(ep);
  }
}

TEST_CASE("sim: putting a request back wakes a poller", "[sim]") {
  TempMount m;
  Fd reader(OpenRw(m.Path(Channel::kExpireClient)));
  Fd waiter(OpenRw(m.Path(Channel::kExpireClient)));
  m.sim.Submit(Channel::kExpireClient, "1 100 \\x61\n");
  CHECK(ReadOnce(reader.get()) == "1 100 \\x61\n");
  pollfd p = {waiter.get(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 0) == 0);
  std::thread closer([&] {
    std::this_thread::sleep_for(100ms);
    reader.Close();
  });
  int n = poll(&p, 1, 5000);
  closer.join();
  CHECK(n == 1);
  CHECK(ReadOnce(waiter.get()) == "1 100 \\x61\n");
}

// ---- Writes -----------------------------------------------------------------

TEST_CASE("sim: a write that matches no outstanding request fails with EINVAL",
          "[sim]") {
  TempMount m;
  Ticket t1 = QueueCreate(m.sim, "one");
  Ticket t2 = QueueCreate(m.sim, "two");  // stays unread
  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  REQUIRE(ReadOnce(fd.get()) == CreateLine(1, "one"));

  const std::vector<std::string> bad = {
      "99 0\n",       // unknown seq
      "2 0\n",        // queued but not read yet
      "1 zero\n",     // malformed status
      "1 0",          // no final newline
      "1  0\n",       // double space
      "\n",           // empty line
      "1 0\n1 0\n",   // one request answered twice
      "1 0\n99 0\n",  // a valid line and an invalid one: nothing applied
      "1 0 extra\n",  // wrong field count
      std::string("1 0\0\n", 5),          // NUL byte
      "1 -5\n" + std::string(8200, ' '),  // longer than 8191 bytes
      "1 done 0 5\n",  // an allow_client line on create_client
  };
  for (const std::string& w : bad) {
    INFO("write: " << nfsdfs::EscapeForLog(w.substr(0, 40)));
    CHECK(WriteErr(fd.get(), w) == EINVAL);
  }
  ChannelStats s = m.sim.Stats(Channel::kCreateClient);
  CHECK(s.rejected_writes == bad.size());
  CHECK(s.answered == 0);
  CHECK(s.outstanding == 1);
  CHECK(s.pending == 1);
  CHECK_FALSE(m.sim.LastRejection(Channel::kCreateClient).empty());
  CHECK_FALSE(m.sim.Await(t1, 0ms).answered);

  // The request is still there to be answered properly.
  CHECK(WriteErr(fd.get(), "1 -5\n") == 0);
  AwaitResult a = m.sim.Await(t1, 1s);
  CHECK(a.answered);
  CHECK(a.status == -5);
  CHECK(a.lines == std::vector<std::string>{"1 -5\n"});
  // A second answer has nothing left to match.
  CHECK(WriteErr(fd.get(), "1 0\n") == EINVAL);
  CHECK(m.sim.Stats(Channel::kCreateClient).rejected_writes == bad.size() + 1);
  CHECK(m.sim.Stats(Channel::kCreateClient).accepted_writes == 1);
  (void)t2;
}

TEST_CASE("sim: several outstanding requests may be answered in any order",
          "[sim]") {
  TempMount m;
  std::vector<Ticket> t;
  for (int i = 1; i <= 5; ++i)
    t.push_back(QueueCreate(m.sim, "c" + std::to_string(i)));
  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  for (int i = 1; i <= 5; ++i) {
    REQUIRE(ReadOnce(fd.get()) == CreateLine(i, "c" + std::to_string(i)));
  }
  CHECK(WriteErr(fd.get(), "5 -5\n") == 0);
  CHECK(WriteErr(fd.get(), "3 0\n1 -116\n") == 0);  // two in one write
  CHECK(WriteErr(fd.get(), "4 -22\n") == 0);
  CHECK_FALSE(m.sim.Await(t[1], 0ms).answered);
  CHECK(WriteErr(fd.get(), "2 -93\n") == 0);
  const int expected[] = {-116, -93, 0, -22, -5};
  for (int i = 0; i < 5; ++i) {
    AwaitResult a = m.sim.Await(t[i], 1s);
    CHECK(a.answered);
    CHECK(a.status == expected[i]);
  }
  CHECK(m.sim.Stats(Channel::kCreateClient).answered == 5);
  CHECK(m.sim.Stats(Channel::kCreateClient).outstanding == 0);
}

// ---- allow_client
// -------------------------------------------------------------

TEST_CASE("sim: an allow_client reply may span several writes", "[sim]") {
  TempMount m;
  Fd fd(OpenRw(m.Path(Channel::kAllowClient)));
  REQUIRE(fd.get() >= 0);
  auto start = std::async(std::launch::async,
                          [&] { return m.sim.StartInstance(1763771853); });
  std::string line = ReadWhenReady(fd.get());
  auto parsed = nfsdfs::ParseStartRequest(line);
  REQUIRE(std::holds_alternative<nfsdfs::StartRequest>(parsed));
  const auto& req = std::get<nfsdfs::StartRequest>(parsed);
  CHECK(req.version == 1);
  CHECK(req.kernel_boot_time == 1763771853);
  const uint64_t seq = req.seq;
  CHECK(seq == 1);
  CHECK(m.sim.InGrace());

  REQUIRE(WriteErr(fd.get(),
                   nfsdfs::EncodeAllowClient(seq, "client-a", kHashA)) == 0);
  // Not complete before `done`.
  CHECK(start.wait_for(200ms) == std::future_status::timeout);
  CHECK(m.sim.CurrentInstance() == 0);
  // A status-style line is not an allow_client reply.
  CHECK(WriteErr(fd.get(), std::to_string(seq) + " 0\n") == EINVAL);
  // Nothing may follow `done` in the same write (and nothing is applied).
  CHECK(WriteErr(fd.get(), nfsdfs::EncodeAllowDone(seq, 0, 777) +
                               nfsdfs::EncodeAllowClient(seq, "late", "")) ==
        EINVAL);
  REQUIRE(WriteErr(fd.get(), nfsdfs::EncodeAllowClient(seq, "client-b", "") +
                                 nfsdfs::EncodeAllowDone(seq, 0, 777)) == 0);
  StartResult r = start.get();
  CHECK(r.ok());
  CHECK_FALSE(r.timed_out);
  CHECK(r.instance == 777);
  CHECK(r.seq == seq);
  std::map<std::string, std::string> expected = {{"client-a", kHashA},
                                                 {"client-b", ""}};
  CHECK(r.allow == expected);
  CHECK(m.sim.AllowSet() == expected);
  CHECK(m.sim.CurrentInstance() == 777);
  CHECK(m.sim.InGrace());
  // After done the request is gone.
  CHECK(WriteErr(fd.get(), nfsdfs::EncodeAllowDone(seq, 0, 778)) == EINVAL);
  CHECK(m.sim.Stats(Channel::kAllowClient).rejected_writes == 3);

  // The kernel's reclaim decisions.
  CHECK(m.sim.Reclaim("client-a", kHashA) == ReclaimResult::kAllowed);
  CHECK(m.sim.Reclaim("client-a", kHashOther) == ReclaimResult::kReclaimBad);
  CHECK(m.sim.Reclaim("client-a", "") == ReclaimResult::kReclaimBad);
  CHECK(m.sim.Reclaim("client-b", kHashOther) == ReclaimResult::kAllowed);
  CHECK(m.sim.Reclaim("client-b", "") == ReclaimResult::kAllowed);
  CHECK(m.sim.Reclaim("client-c", "") == ReclaimResult::kReclaimBad);

  // grace_done with the current instance ends grace.
  Fd gfd(OpenRw(m.Path(Channel::kGraceDone)));
  auto end = std::async(std::launch::async, [&] { return m.sim.EndGrace(); });
  std::string gline = ReadWhenReady(gfd.get());
  auto g = nfsdfs::ParseGraceDoneRequest(gline);
  REQUIRE(std::holds_alternative<nfsdfs::GraceDoneRequest>(g));
  CHECK(std::get<nfsdfs::GraceDoneRequest>(g).instance == 777);
  REQUIRE(WriteErr(gfd.get(),
                   nfsdfs::EncodeStatusReply(
                       std::get<nfsdfs::GraceDoneRequest>(g).seq, 0)) == 0);
  CHECK(end.get().ok());
  CHECK_FALSE(m.sim.InGrace());
  CHECK(m.sim.Reclaim("client-a", kHashA) == ReclaimResult::kNoGrace);
}

TEST_CASE("sim: a downcall may be at most 8191 bytes", "[sim]") {
  TempMount m;
  Fd fd(OpenRw(m.Path(Channel::kAllowClient)));
  auto start =
      std::async(std::launch::async, [&] { return m.sim.StartInstance(5); });
  const uint64_t seq = nfsdfs::PeekSeq(ReadWhenReady(fd.get())).value_or(0);
  REQUIRE(seq == 1);
  // Client ids of the maximal 1024 bytes: about 2 KiB per `client` line.
  auto client = [&](char c) {
    return nfsdfs::EncodeAllowClient(seq, std::string(1024, c), kHashA);
  };
  const std::string three = client('a') + client('b') + client('c');
  const std::string too_long =
      three + client('d') + nfsdfs::EncodeAllowDone(seq, 0, 9);
  REQUIRE(too_long.size() > 8191);
  CHECK(WriteErr(fd.get(), too_long) == EINVAL);
  CHECK(m.sim.LastRejection(Channel::kAllowClient).find("8191") !=
        std::string::npos);
  const std::string fits = three + nfsdfs::EncodeAllowDone(seq, 0, 9);
  REQUIRE(fits.size() <= 8191);
  CHECK(WriteErr(fd.get(), fits) == 0);
  StartResult r = start.get();
  CHECK(r.ok());
  CHECK(r.allow.size() == 3);
  CHECK(r.allow.count(std::string(1024, 'd')) == 0);
}

TEST_CASE("sim: a failed start allows nobody but keeps grace", "[sim]") {
  TempMount m;
  Fd fd(OpenRw(m.Path(Channel::kAllowClient)));
  auto start =
      std::async(std::launch::async, [&] { return m.sim.StartInstance(5); });
  std::string line = ReadWhenReady(fd.get());
  uint64_t seq = nfsdfs::PeekSeq(line).value_or(0);
  REQUIRE(seq != 0);
  REQUIRE(WriteErr(fd.get(), nfsdfs::EncodeAllowClient(seq, "x", "")) == 0);
  REQUIRE(WriteErr(fd.get(), nfsdfs::EncodeAllowDone(seq, -5, 0)) == 0);
  StartResult r = start.get();
  CHECK_FALSE(r.timed_out);
  CHECK(r.status == -5);
  CHECK_FALSE(r.ok());
  CHECK(r.allow.empty());
  CHECK(m.sim.CurrentInstance() == 0);
  CHECK(m.sim.InGrace());
  CHECK(m.sim.Reclaim("x", "") == ReclaimResult::kReclaimBad);
}

// ---- Replay (PROTOCOL.md §6)
// ----------------------------------------------------

TEST_CASE("sim: requests read but unanswered are put back on release",
          "[sim]") {
  TempMount m;
  Ticket t1 = QueueCreate(m.sim, "one");
  Ticket t2 = QueueCreate(m.sim, "two");
  Ticket t3 = QueueCreate(m.sim, "three");
  Ticket t4 = QueueCreate(m.sim, "four");

  {
    Fd first(OpenRw(m.Path(Channel::kCreateClient)));
    REQUIRE(ReadOnce(first.get()) == CreateLine(1, "one"));
    REQUIRE(ReadOnce(first.get()) == CreateLine(2, "two"));
    REQUIRE(ReadOnce(first.get()) == CreateLine(3, "three"));
    REQUIRE(WriteErr(first.get(), "2 0\n") == 0);
  }
  REQUIRE(m.sim.WaitForStats(
      Channel::kCreateClient,
      [](const ChannelStats& s) { return s.open_handles == 0; }, 5s));
  ChannelStats s = m.sim.Stats(Channel::kCreateClient);
  CHECK(s.requeued == 2);
  CHECK(s.pending == 3);
  CHECK(s.outstanding == 0);

  // The next helper sees the same lines, at the head, in original order.
  Fd second(OpenRw(m.Path(Channel::kCreateClient)));
  CHECK(ReadOnce(second.get()) == CreateLine(1, "one"));
  CHECK(ReadOnce(second.get()) == CreateLine(3, "three"));
  CHECK(ReadOnce(second.get()) == CreateLine(4, "four"));
  CHECK(ReadOnce(second.get()) == "");
  CHECK(WriteErr(second.get(), "3 0\n1 0\n4 0\n") == 0);
  for (const Ticket& t : {t1, t2, t3, t4}) CHECK(m.sim.Await(t, 1s).answered);
  CHECK(m.sim.Stats(Channel::kCreateClient).read == 6);

  bool saw_requeue = false;
  for (const auto& e : m.sim.Transcript()) {
    saw_requeue = saw_requeue || e.note == "requeued";
  }
  CHECK(saw_requeue);
}

TEST_CASE("sim: a partly read request is put back whole", "[sim]") {
  TempMount m;
  m.sim.Submit(Channel::kGraceDone, "41 123456\n");
  {
    Fd first(OpenRw(m.Path(Channel::kGraceDone)));
    REQUIRE(ReadOnce(first.get(), 3) == "41 ");
  }
  REQUIRE(m.sim.WaitForStats(
      Channel::kGraceDone,
      [](const ChannelStats& s) { return s.requeued == 1; }, 5s));
  Fd second(OpenRw(m.Path(Channel::kGraceDone)));
  CHECK(ReadOnce(second.get()) == "41 123456\n");
}

TEST_CASE(
    "sim: a replayed allow_client forgets the client lines of the dead helper",
    "[sim]") {
  TempMount m;
  auto start =
      std::async(std::launch::async, [&] { return m.sim.StartInstance(9); });
  std::string line;
  {
    Fd first(OpenRw(m.Path(Channel::kAllowClient)));
    line = ReadWhenReady(first.get());
    REQUIRE(WriteErr(first.get(), nfsdfs::EncodeAllowClient(1, "stale", "")) ==
            0);
  }
  Fd second(OpenRw(m.Path(Channel::kAllowClient)));
  CHECK(ReadWhenReady(second.get()) == line);
  REQUIRE(WriteErr(second.get(), nfsdfs::EncodeAllowClient(1, "fresh", "") +
                                     nfsdfs::EncodeAllowDone(1, 0, 50)) == 0);
  StartResult r = start.get();
  CHECK(r.ok());
  CHECK(r.allow == std::map<std::string, std::string>{{"fresh", ""}});
}

TEST_CASE("sim: the requests of a SIGKILLed helper process are put back",
          "[sim]") {
  TempMount m;
  const std::string path = m.Path(Channel::kCreateClient);
  Ticket t = QueueCreate(m.sim, "victim");
  const std::string line = CreateLine(1, "victim");
  Process p;
  std::string error;
  // The shell opens the file O_RDWR, dd does one 4096-byte read of it (the
  // request goes to stdout, which is captured), then the process sleeps.
  REQUIRE(p.Start({"/bin/sh", "-c",
                   "exec 3<>\"$0\"; dd bs=4096 count=1 <&3 2>/dev/null; "
                   "exec sleep 60",
                   path},
                  {}, &error));
  REQUIRE(p.WaitForStderr(line, 10s));
  CHECK(m.sim.OpenPids(Channel::kCreateClient) == std::set<pid_t>{p.pid()});
  CHECK(m.sim.Stats(Channel::kCreateClient).outstanding == 1);
  REQUIRE(p.Kill9());
  auto st = p.Wait(10s);
  REQUIRE(st.has_value());
  CHECK(st->signal == SIGKILL);
  REQUIRE(m.sim.WaitForAllClosed(10s));
  CHECK(m.sim.Stats(Channel::kCreateClient).requeued == 1);
  Fd fd(OpenRw(path));
  CHECK(ReadOnce(fd.get()) == line);
  CHECK(WriteErr(fd.get(), "1 0\n") == 0);
  CHECK(m.sim.Await(t, 1s).answered);
}

// ---- Timeouts (PROTOCOL.md §7)
// --------------------------------------------------

TEST_CASE("sim: unanswered requests are withdrawn after the timeout", "[sim]") {
  SimOptions o;
  o.request_timeout = 300ms;
  TempMount m(o);
  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  auto start = Clock::now();
  Ticket read_one = QueueCreate(m.sim, "read");
  Ticket unread = QueueCreate(m.sim, "unread");
  Ticket garbage = m.sim.Submit(Channel::kCreateClient, "no seq here\n");
  REQUIRE(ReadOnce(fd.get()) == CreateLine(1, "read"));

  AwaitResult a = m.sim.Await(read_one, 5s);
  CHECK(Clock::now() - start >= 250ms);
  CHECK(a.withdrawn);
  CHECK(a.timed_out);
  CHECK_FALSE(a.answered);
  CHECK(m.sim.Await(unread, 5s).withdrawn);
  CHECK(m.sim.Await(garbage, 5s).withdrawn);
  // Withdrawn requests are no longer delivered, and a late reply fails.
  CHECK(ReadOnce(fd.get()) == "");
  CHECK(WriteErr(fd.get(), "1 0\n") == EINVAL);
  ChannelStats s = m.sim.Stats(Channel::kCreateClient);
  CHECK(s.withdrawn == 3);
  CHECK(s.answered == 0);
  CHECK(s.rejected_writes == 1);

  // The driver calls report the timeout, and the kernel records nothing.
  auto t0 = Clock::now();
  StatusResult r = m.sim.EstablishState("nobody-answers", "", Minor::kV40);
  CHECK(r.timed_out);
  CHECK(r.status == kTimedOutStatus);
  CHECK_FALSE(r.ok());
  CHECK(Clock::now() - t0 >= 250ms);
  CHECK(Clock::now() - t0 < 5s);
  CHECK(m.sim.RecordedClients().empty());
}

TEST_CASE("sim: Await with its own timeout leaves the request outstanding",
          "[sim]") {
  TempMount m;
  Ticket t = QueueCreate(m.sim, "slow");
  AwaitResult a = m.sim.Await(t, 50ms);
  CHECK(a.timed_out);
  CHECK_FALSE(a.withdrawn);
  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  REQUIRE(ReadOnce(fd.get()) == CreateLine(1, "slow"));
  REQUIRE(WriteErr(fd.get(), "1 0\n") == 0);
  CHECK(m.sim.Await(t, 1s).answered);
}

TEST_CASE("sim: Stop withdraws unanswered requests and forgets nfsd's state",
          "[sim]") {
  TempMount m;
  std::unique_ptr<FakeHelper> helper = std::make_unique<FakeHelper>(m);
  REQUIRE(helper->opened());
  helper->SetAllowList({{"old-client", ""}});
  StartResult r = m.sim.StartInstance(1);
  REQUIRE(r.ok());
  REQUIRE(m.sim.EstablishState("c", "", Minor::kV40).ok());
  helper.reset();  // nobody answers any more
  auto pending = std::async(std::launch::async, [&] {
    return m.sim.EstablishState("d", "", Minor::kV41);
  });
  REQUIRE(m.sim.WaitForStats(
      Channel::kCreateClient,
      [](const ChannelStats& s) { return s.pending == 1; }, 5s));
  m.sim.Stop();
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  CHECK(pending.get().timed_out);
  CHECK(m.sim.CurrentInstance() == 0);
  CHECK_FALSE(m.sim.InGrace());
  CHECK(m.sim.AllowSet().empty());
  CHECK(m.sim.RecordedClients().empty());
  CHECK(m.sim.Reclaim("old-client", "") == ReclaimResult::kNoGrace);
  CHECK(m.sim.Stats(Channel::kCreateClient).pending == 0);
}

// ---- The driver
// -------------------------------------------------------------------

TEST_CASE("sim: the driver plays nfsd with the current instance", "[sim]") {
  TempMount m;
  FakeHelper helper(m);
  REQUIRE(helper.opened());
  REQUIRE(m.sim.WaitForOpen(5s));
  helper.SetAllowList({{"a", kHashA}});

  StartResult r = m.sim.StartInstance(42);
  REQUIRE(r.ok());
  CHECK(r.instance == 1000);
  CHECK(m.sim.InGrace());
  CHECK(m.sim.Reclaim("a", kHashA) == ReclaimResult::kAllowed);

  REQUIRE(m.sim.ReclaimComplete("a", kHashA).ok());
  REQUIRE(m.sim.EstablishState("b", "", Minor::kV40).ok());
  CHECK(m.sim.RecordedClients() ==
        std::map<std::string, Minor>{{"a", Minor::kV41}, {"b", Minor::kV40}});
  REQUIRE(m.sim.Expire("b").ok());
  CHECK(m.sim.RecordedClients() ==
        std::map<std::string, Minor>{{"a", Minor::kV41}});
  REQUIRE(m.sim.EndGrace().ok());
  CHECK_FALSE(m.sim.InGrace());

  // What the helper saw carries the instance of the running server.
  auto creates = helper.Seen(Channel::kCreateClient);
  REQUIRE(creates.size() == 2);
  auto c0 = nfsdfs::ParseCreateRequest(creates[0]);
  REQUIRE(std::holds_alternative<nfsdfs::CreateRequest>(c0));
  CHECK(std::get<nfsdfs::CreateRequest>(c0).instance == 1000);
  CHECK(std::get<nfsdfs::CreateRequest>(c0).client_id == "a");
  CHECK(std::get<nfsdfs::CreateRequest>(c0).princhash == kHashA);
  CHECK(std::get<nfsdfs::CreateRequest>(c0).minor == Minor::kV41);
  auto e0 =
      nfsdfs::ParseExpireRequest(helper.Seen(Channel::kExpireClient).at(0));
  REQUIRE(std::holds_alternative<nfsdfs::ExpireRequest>(e0));
  CHECK(std::get<nfsdfs::ExpireRequest>(e0).instance == 1000);
  CHECK(std::get<nfsdfs::ExpireRequest>(e0).client_id == "b");

  // A restart: new instance, grace again, clients recorded again from zero.
  m.sim.Stop();
  StartResult r2 = m.sim.StartInstance(43);
  REQUIRE(r2.ok());
  CHECK(r2.instance == 1001);
  CHECK(m.sim.CurrentInstance() == 1001);
  CHECK(m.sim.InGrace());
  CHECK(m.sim.RecordedClients().empty());
  REQUIRE(m.sim.EndGrace().ok());
  auto graces = helper.Seen(Channel::kGraceDone);
  REQUIRE(graces.size() == 2);
  CHECK(graces[1] == "2 1001\n");
}

TEST_CASE("sim: many concurrent driver calls, answered out of order", "[sim]") {
  TempMount m;
  FakeHelper helper(m, /*reverse_batches=*/true);
  REQUIRE(m.sim.StartInstance(1).ok());
  constexpr int kThreads = 16;
  std::vector<std::future<StatusResult>> results;
  for (int i = 0; i < kThreads; ++i) {
    results.push_back(std::async(std::launch::async, [&m, i] {
      return m.sim.EstablishState("client-" + std::to_string(i), "",
                                  i % 2 ? Minor::kV40 : Minor::kV41);
    }));
  }
  std::set<uint64_t> seqs;
  for (auto& f : results) {
    StatusResult r = f.get();
    CHECK(r.ok());
    seqs.insert(r.seq);
  }
  CHECK(seqs.size() == kThreads);
  CHECK(*seqs.begin() == 1);
  CHECK(*seqs.rbegin() == kThreads);
  CHECK(m.sim.RecordedClients().size() == kThreads);
  CHECK(m.sim.Stats(Channel::kCreateClient).answered == kThreads);
  CHECK(m.sim.TotalStats().rejected_writes == 0);
}

TEST_CASE("sim: the log callback sees every event and may call the simulator",
          "[sim]") {
  std::mutex mu;
  std::vector<std::string> log;
  SimKernel* sim_ptr = nullptr;
  SimOptions o;
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lk(mu);
    // Calling back must not deadlock: the callback runs without the lock.
    if (sim_ptr) sim_ptr->TotalStats();
    log.push_back(line);
  };
  {
    TempMount m(o);
    {
      std::lock_guard<std::mutex> lk(mu);
      sim_ptr = &m.sim;
    }
    Fd fd(OpenRw(m.Path(Channel::kExpireClient)));
    m.sim.Submit(Channel::kExpireClient, "3 100 \\x61\n");
    REQUIRE(ReadOnce(fd.get()) == "3 100 \\x61\n");
    CHECK(WriteErr(fd.get(), "4 0\n") == EINVAL);
    CHECK(WriteErr(fd.get(), "3 0\n") == 0);
    fd.Close();
    REQUIRE(m.sim.WaitForAllClosed(5s));
    std::lock_guard<std::mutex> lk(mu);
    sim_ptr = nullptr;
  }  // the destructor delivers what is still queued
  std::string all;
  for (const auto& l : log) all += l + "\n";
  INFO(all);
  CHECK(all.find("open expire_client") != std::string::npos);
  CHECK(all.find("queue expire_client: 3 100") != std::string::npos);
  CHECK(all.find("read expire_client: 3 100") != std::string::npos);
  CHECK(all.find("EINVAL expire_client: seq 4") != std::string::npos);
  CHECK(all.find("write expire_client: 3 0") != std::string::npos);
  CHECK(all.find("release expire_client") != std::string::npos);
}

// ---- Unmount
// --------------------------------------------------------------------

TEST_CASE("sim: Unmount aborts open files and leaves no mount behind",
          "[sim]") {
  TempMount m;
  REQUIRE(IsMounted(m.dir));
  Fd fd(OpenRw(m.Path(Channel::kCreateClient)));
  REQUIRE(fd.get() >= 0);
  Ticket t = QueueCreate(m.sim, "left");
  m.sim.Unmount();
  CHECK_FALSE(m.sim.mounted());
  CHECK_FALSE(IsMounted(m.dir));
  CHECK(m.sim.Await(t, 1s).withdrawn);
  char buf[64];
  CHECK(read(fd.get(), buf, sizeof(buf)) == -1);
  m.sim.Unmount();  // idempotent

  // The same SimKernel mounts again.
  std::string error;
  REQUIRE(m.sim.Mount(m.dir, &error));
  CHECK(IsMounted(m.dir));
  Fd fd2(OpenRw(m.Path(Channel::kGraceDone)));
  CHECK(fd2.get() >= 0);
}

// ---- Process
// --------------------------------------------------------------------

TEST_CASE("sim: Process reports exit codes and captures stderr", "[sim]") {
  char tmpl[] = "/tmp/nfsd-sim-log.XXXXXX";
  int log_fd = mkstemp(tmpl);
  REQUIRE(log_fd >= 0);
  close(log_fd);
  std::vector<std::string> lines;
  std::mutex lines_mu;
  {
    ProcessOptions o;
    o.stderr_path = tmpl;
    o.env["NFSD_SIM_TEST_VAR"] = "value-42";
    o.on_stderr_line = [&](std::string_view l) {
      std::lock_guard<std::mutex> lk(lines_mu);
      lines.emplace_back(l);
    };
    Process p;
    REQUIRE(p.Start(
        {"sh", "-c", "echo first >&2; echo \"$NFSD_SIM_TEST_VAR\" >&2; exit 3"},
        o));
    auto st = p.Wait(10s);
    REQUIRE(st.has_value());
    CHECK(st->exited);
    CHECK(st->code == 3);
    CHECK_FALSE(st->success());
    CHECK(st->ToString() == "exit 3");
    CHECK_FALSE(p.IsRunning());
    CHECK(p.WaitForStderr("value-42", 5s));
    CHECK(p.Stderr() == "first\nvalue-42\n");
  }  // the destructor joins the capture thread
  CHECK(lines == std::vector<std::string>{"first", "value-42"});
  std::ifstream in(tmpl);
  std::stringstream content;
  content << in.rdbuf();
  CHECK(content.str() == "first\nvalue-42\n");
  unlink(tmpl);
}

TEST_CASE("sim: Process signals, SIGKILL, Wait timeout and destructor",
          "[sim]") {
  pid_t pid;
  {
    Process p;
    REQUIRE(p.Start({"sleep", "60"}));
    pid = p.pid();
    CHECK(p.IsRunning());
    CHECK_FALSE(p.Wait(50ms).has_value());
    REQUIRE(p.Signal(SIGTERM));
    auto st = p.Wait(10s);
    REQUIRE(st.has_value());
    CHECK_FALSE(st->exited);
    CHECK(st->signal == SIGTERM);
    CHECK(st->ToString() == "killed by SIGTERM");
    CHECK_FALSE(p.Signal(SIGTERM));  // reaped: never signals a recycled pid
  }
  {
    Process p;
    REQUIRE(p.Start({"sleep", "60"}));
    REQUIRE(p.Kill9());
    auto st = p.Wait(10s);
    REQUIRE(st.has_value());
    CHECK(st->signal == SIGKILL);
  }
  {
    Process p;
    REQUIRE(p.Start({"sleep", "60"}));
    pid = p.pid();
  }  // killed and reaped here
  CHECK(kill(pid, 0) == -1);
  CHECK(errno == ESRCH);
}

TEST_CASE("sim: Process reports a missing program and leaks no descriptors",
          "[sim]") {
  {
    Process p;
    std::string error;
    CHECK_FALSE(p.Start({"/nonexistent/nfsd-helper"}, {}, &error));
    CHECK(error.find("/nonexistent/nfsd-helper") != std::string::npos);
    CHECK_FALSE(p.IsRunning());
  }
  // A descriptor opened without O_CLOEXEC must not reach the child.
  int fd = open("/dev/null", O_RDONLY);
  REQUIRE(fd >= 3);
  Process p;
  REQUIRE(p.Start({"sh", "-c",
                   "if [ -e /proc/self/fd/" + std::to_string(fd) +
                       " ]; then echo leaked; else echo clean; fi"}));
  REQUIRE(p.Wait(10s).has_value());
  CHECK(p.WaitForStderr("\n", 5s));
  CHECK(p.Stderr() == "clean\n");
  close(fd);
}

}  // namespace
}  // namespace nfsdsim
