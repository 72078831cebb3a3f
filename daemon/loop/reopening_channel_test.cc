#include "daemon/loop/reopening_channel.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nfsdh::loop {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Kind = Framer::Kind;

// ---- Framer: pure, so every case is spelled out -----------------------------

struct Out {
  std::string data;
  bool overlong;
  bool operator==(const Out& o) const {
    return data == o.data && overlong == o.overlong;
  }
};
std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "{\"" << o.data << "\", " << (o.overlong ? "overlong" : "ok")
            << "}";
}

// Feeds `reads` ("" is a read of 0) to a Framer with a `buffer`-byte buffer.
std::vector<Out> Frame(Kind kind, size_t buffer,
                       const std::vector<std::string>& reads) {
  Framer f(kind, buffer);
  std::vector<Out> out;
  for (const std::string& r : reads) {
    if (r.empty()) {
      f.ReadZero();
      continue;
    }
    REQUIRE(r.size() <= buffer);
    Message m;
    if (f.Piece(r, &m)) out.push_back({m.data, m.overlong});
  }
  return out;
}

TEST_CASE("framer: kMessage makes one message of each read", "[loop][framer]") {
  CHECK(Frame(Kind::kMessage, 4, {"ab", "abcd", "", "x"}) ==
        std::vector<Out>{{"ab", false}, {"abcd", false}, {"x", false}});
}

TEST_CASE(
    "framer: kRequest takes one request per read and refuses the first "
    "piece of an over-long one, discarding its rest",
    "[loop][framer]") {
  // PROTOCOL.md §1, with a 4-byte buffer.
  CHECK(Frame(Kind::kRequest, 4, {"1 a\n", "2b\n"}) ==
        std::vector<Out>{{"1 a\n", false}, {"2b\n", false}});
  // Without its newline, but shorter than the buffer: a whole request.
  CHECK(Frame(Kind::kRequest, 4, {"1 a", "2b\n"}) ==
        std::vector<Out>{{"1 a", false}, {"2b\n", false}});
  // Over-long: the first piece, flagged; the rest up to a short read or a
  // newline is discarded, never taken for a request.
  CHECK(Frame(Kind::kRequest, 4, {"1 aa", "aaaa", "a\n", "2b\n"}) ==
        std::vector<Out>{{"1 aa", true}, {"2b\n", false}});
  CHECK(Frame(Kind::kRequest, 4, {"1 aa", "aaa\n", "2b\n"}) ==
        std::vector<Out>{{"1 aa", true}, {"2b\n", false}});
  CHECK(Frame(Kind::kRequest, 4, {"1 aa", "aaaa", "aa", "2b\n"}) ==
        std::vector<Out>{{"1 aa", true}, {"2b\n", false}});
  // A read of 0 ends the discarding: what follows is a new request.
  CHECK(Frame(Kind::kRequest, 4, {"1 aa", "", "2bbb", "", "3c\n"}) ==
        std::vector<Out>{{"1 aa", true}, {"2bbb", true}, {"3c\n", false}});
  // Exactly as long as the buffer and ending in its newline: whole.
  CHECK(Frame(Kind::kRequest, 4, {"12a\n", "2b\n"}) ==
        std::vector<Out>{{"12a\n", false}, {"2b\n", false}});
}

TEST_CASE("framer: kJoined joins only reads that filled the buffer",
          "[loop][framer]") {
  // A short read ends the message, newline or not: an upcall without its
  // newline is never joined to the next one (commit 05ef210).
  CHECK(Frame(Kind::kJoined, 4, {"* u", "* u\n"}) ==
        std::vector<Out>{{"* u", false}, {"* u\n", false}});
  // A full read without a newline goes on in the next.
  CHECK(Frame(Kind::kJoined, 4, {"* us", "er 0", "\n"}) ==
        std::vector<Out>{{"* user 0\n", false}});
  CHECK(Frame(Kind::kJoined, 4, {"* us", "r 0"}) ==
        std::vector<Out>{{"* usr 0", false}});
  // A read of 0 does not end it: the rest may come later.
  CHECK(Frame(Kind::kJoined, 4, {"* us", "", "r\n"}) ==
        std::vector<Out>{{"* usr\n", false}});
  // More than twice the buffer without a newline: dropped, overlong.
  CHECK(Frame(Kind::kJoined, 4, {"aaaa", "aaaa", "aaaa", "b\n"}) ==
        std::vector<Out>{{"aaaaaaaaaaaa", true}, {"b\n", false}});
}

TEST_CASE("framer: Reset forgets what was joined or discarded",
          "[loop][framer]") {
  Framer j(Kind::kJoined, 4);
  Message m;
  CHECK_FALSE(j.Piece("abcd", &m));
  j.Reset();
  REQUIRE(j.Piece("e\n", &m));
  CHECK(m.data == "e\n");
  Framer r(Kind::kRequest, 4);
  REQUIRE(r.Piece("abcd", &m));
  CHECK(r.discarding());
  r.Reset();
  CHECK_FALSE(r.discarding());
  REQUIRE(r.Piece("x\n", &m));
  CHECK(m.data == "x\n");
}

// ---- The channel, on FIFOs
// ---------------------------------------------------

// What the process writes on stderr (where Log() goes) while it exists.
class StderrCapture {
 public:
  StderrCapture() {
    char tmpl[] = "/tmp/nfsdh-stderr-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path_ = tmpl;
    fflush(stderr);
    saved_ = dup(2);
    REQUIRE(saved_ >= 0);
    REQUIRE(dup2(fd, 2) == 2);
    close(fd);
  }
  ~StderrCapture() {
    fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    unlink(path_.c_str());
  }
  std::string Text() const {
    fflush(stderr);
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t Count(const std::string& needle) const {
    std::string t = Text();
    size_t n = 0;
    for (size_t at = t.find(needle); at != std::string::npos;
         at = t.find(needle, at + 1))
      ++n;
    return n;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-chan-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    if (std::system(("rm -rf '" + path + "'").c_str()) != 0) {
      // Left in /tmp.
    }
  }
};

template <typename Pred>
bool RunUntil(Loop& loop, Pred done, Duration limit = 5000ms) {
  auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > end) return false;
    loop.RunFor(10ms);
  }
  return true;
}

// A channel on `path` whose owner reads everything pending at each wake-up,
// as the daemon does.
struct Served {
  Loop loop;
  std::vector<Message> got;
  int opens = 0, closes = 0;
  // Runs first at each wake-up (a test's way to play another reader).
  std::function<void()> before_read;
  std::unique_ptr<ReopeningChannel> ch;

  explicit Served(ReopeningChannel::Options o) {
    ch = std::make_unique<ReopeningChannel>(
        loop, std::move(o),
        [this] {
          if (before_read) before_read();
          Message m;
          while (ch->Read(&m) == ReopeningChannel::ReadResult::kMessage)
            got.push_back(m);
        },
        [this] { ++(ch->is_open() ? opens : closes); });
  }
  static ReopeningChannel::Options Opts(const std::string& path) {
    ReopeningChannel::Options o;
    o.path = path;
    o.log_prefix = "test: ";
    o.missing_hint = " (hint)";
    return o;
  }
};

void Write(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, data.data(), data.size()) ==
          static_cast<ssize_t>(data.size()));
  close(fd);
}

TEST_CASE(
    "channel: a missing file is looked for every second, and logged "
    "once per distinct errno",
    "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/dir/file";
  StderrCapture log;
  Served s(Served::Opts(path));
  REQUIRE(s.ch->Start().ok());
  CHECK_FALSE(s.ch->is_open());
  CHECK_FALSE(s.ch->ready());
  s.loop.RunFor(2300ms);  // two retries
  CHECK(log.Count("test: cannot open " + path +
                  ": No such file or directory; retrying every second "
                  "(hint)") == 1);
  // Another reason is logged once more.
  REQUIRE(mkdir((t.path + "/dir").c_str(), 0700) == 0);
  REQUIRE(mkdir(path.c_str(), 0700) == 0);  // EISDIR
  s.loop.RunFor(1200ms);
  CHECK(log.Count("Is a directory; retrying every second (hint)") == 1);
  REQUIRE(rmdir(path.c_str()) == 0);
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  REQUIRE(RunUntil(
      s.loop, [&] { return s.ch->is_open(); }, 2500ms));
  CHECK(s.opens == 1);
  CHECK(s.ch->ready());
  CHECK(s.ch->fd() >= 0);
  Write(path, "1 hello\n");
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 1; }));
  CHECK(s.got[0].data == "1 hello\n");
  CHECK_FALSE(s.got[0].overlong);
}

TEST_CASE(
    "channel: kRequest hands over the first piece of an over-long "
    "request and discards its rest",
    "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/allow_client";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  auto o = Served::Opts(path);
  o.read_buffer = 64;
  Served s(o);
  REQUIRE(s.ch->Start().ok());
  REQUIRE(s.ch->is_open());
  Write(path, "7 " + std::string(100, 'x'));  // no newline: over-long
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 1; }));
  CHECK(s.got[0].overlong);
  CHECK(s.got[0].data == "7 " + std::string(62, 'x'));
  Write(path, "8 ok\n");
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 2; }));
  CHECK(s.got[1].data == "8 ok\n");
  CHECK_FALSE(s.got[1].overlong);
}

TEST_CASE(
    "channel: a hang-up closes the file, which is opened again a "
    "second later",
    "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/pipe";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  StderrCapture log;
  auto o = Served::Opts(path);
  o.access = O_RDONLY;  // the writer's going away shows as a hang-up
  Served s(o);
  REQUIRE(s.ch->Start().ok());
  REQUIRE(s.ch->is_open());
  Write(path, "m\n");  // opens, writes and closes: data, then POLLHUP
  REQUIRE(RunUntil(s.loop, [&] { return s.closes == 1; }));
  REQUIRE(s.got.size() == 1);
  CHECK(s.got[0].data == "m\n");
  CHECK(log.Count("test: " + path + ": hang-up; reopening") == 1);
  CHECK_FALSE(s.ch->is_open());
  auto closed_at = Clock::now();
  REQUIRE(RunUntil(s.loop, [&] { return s.opens == 2; }));
  CHECK(Clock::now() - closed_at >= 900ms);
  // The new open file is served.
  Write(path, "n\n");
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 2; }));
  CHECK(s.got[1].data == "n\n");
}

TEST_CASE("channel: a read that fails closes the file and reopens it",
          "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/pipe";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  // A reader, so that a write-only open succeeds; the channel's reads then
  // fail with EBADF.
  int reader = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  StderrCapture log;
  auto o = Served::Opts(path);
  o.access = O_WRONLY;
  Served s(o);
  REQUIRE(s.ch->Start().ok());
  REQUIRE(s.ch->is_open());
  Message m;
  CHECK(s.ch->Read(&m) == ReopeningChannel::ReadResult::kClosed);
  CHECK(s.closes == 1);
  CHECK(log.Count("test: read " + path + ": Bad file descriptor; reopening") ==
        1);
  CHECK(s.ch->Read(&m) == ReopeningChannel::ReadResult::kClosed);
  REQUIRE(RunUntil(s.loop, [&] { return s.opens == 2; }));
  close(reader);
}

TEST_CASE(
    "channel: wake-ups with nothing to read close the file, but only "
    "if nothing was read since the last one",
    "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/fifo";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  StderrCapture log;
  Served s(Served::Opts(path));
  REQUIRE(s.ch->Start().ok());
  // Another reader of the same file takes each message first.
  int thief = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(thief >= 0);
  int stolen = 0;
  s.before_read = [&] {
    char buf[64];
    if (read(thief, buf, sizeof buf) > 0) ++stolen;
  };
  for (int i = 1; i < ReopeningChannel::kMaxEmptyWakeups; ++i) {
    Write(path, "x\n");
    REQUIRE(RunUntil(s.loop, [&] { return stolen == i; }));
  }
  CHECK(s.ch->is_open());
  // A message the channel reads itself starts the count again.
  s.before_read = nullptr;
  Write(path, "mine\n");
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 1; }));
  s.before_read = [&] {
    char buf[64];
    if (read(thief, buf, sizeof buf) > 0) ++stolen;
  };
  for (int i = 1; i < ReopeningChannel::kMaxEmptyWakeups; ++i) {
    Write(path, "x\n");
    REQUIRE(RunUntil(s.loop, [&] {
      return stolen == ReopeningChannel::kMaxEmptyWakeups - 1 + i;
    }));
  }
  CHECK(s.ch->is_open());
  Write(path, "x\n");
  REQUIRE(RunUntil(s.loop, [&] { return s.closes == 1; }));
  CHECK(log.Count("test: " + path +
                  ": readable, but nothing to read; reopening") == 1);
  close(thief);
}

TEST_CASE(
    "channel: a file drained by another channel's wake-up is not taken "
    "for broken",
    "[loop][channel]") {
  // Two channels read together at every wake-up of either (as the daemon
  // drains all its files in one batch): when both are readable at once,
  // the second one's wake-up finds its file already drained.
  TempDir t;
  std::string pa = t.path + "/a", pb = t.path + "/b";
  REQUIRE(mkfifo(pa.c_str(), 0600) == 0);
  REQUIRE(mkfifo(pb.c_str(), 0600) == 0);
  Loop loop;
  std::unique_ptr<ReopeningChannel> a, b;
  size_t got = 0;
  int changes = 0;
  auto drain = [&] {
    Message m;
    for (auto* c : {a.get(), b.get()})
      while (c->Read(&m) == ReopeningChannel::ReadResult::kMessage) ++got;
  };
  a = std::make_unique<ReopeningChannel>(loop, Served::Opts(pa), drain,
                                         [&] { ++changes; });
  b = std::make_unique<ReopeningChannel>(loop, Served::Opts(pb), drain,
                                         [&] { ++changes; });
  REQUIRE(a->Start().ok());
  REQUIRE(b->Start().ok());
  REQUIRE(changes == 2);
  for (int i = 1; i <= 3 * ReopeningChannel::kMaxEmptyWakeups; ++i) {
    Write(pa, "x\n");
    Write(pb, "y\n");
    REQUIRE(RunUntil(loop, [&] { return got == 2u * i; }));
    loop.RunFor(5ms);
  }
  // Both wake-ups of every round came; neither file was closed.
  CHECK(a->is_open());
  CHECK(b->is_open());
  CHECK(changes == 2);
}

TEST_CASE("channel: a file that cannot be polled is refused and retried",
          "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/regular";
  std::ofstream(path) << "x\n";
  StderrCapture log;
  Served s(Served::Opts(path));
  REQUIRE(s.ch->Start().ok());
  CHECK_FALSE(s.ch->is_open());
  s.loop.RunFor(1200ms);
  CHECK_FALSE(s.ch->is_open());
  CHECK(s.opens == 0);
  CHECK(log.Count("cannot watch descriptor") == 1);
}

TEST_CASE("channel: another process holding the file open is named",
          "[loop][channel]") {
  TempDir t;
  std::string dir = t.path + "/nfsd";
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  std::string path = dir + "/allow_client";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = open(path.c_str(), O_RDWR);
    if (fd < 0) _exit(1);
    if (write(ready[1], "r", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  StderrCapture log;
  {
    Served s(Served::Opts(path));
    REQUIRE(s.ch->Start().ok());
    CHECK(s.ch->is_open());
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  INFO(log.Text());
  CHECK(log.Count("test: " + path + " is also served by pid " +
                  std::to_string(pid) + " (") == 1);
  CHECK(log.Count("each upcall goes to whichever reads it first") == 1);
}

TEST_CASE("channel: Pause stops the wake-ups, Resume brings them back",
          "[loop][channel]") {
  TempDir t;
  std::string path = t.path + "/fifo";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  Served s(Served::Opts(path));
  REQUIRE(s.ch->Start().ok());
  s.ch->Pause();
  Write(path, "a\n");
  s.loop.RunFor(100ms);
  CHECK(s.got.empty());
  s.ch->Resume();
  REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == 1; }));
}

TEST_CASE(
    "channel: kInotify opens the file the moment it appears and closes "
    "it when it is removed",
    "[loop][channel]") {
  TempDir t;
  std::string dir = t.path + "/nfsd";
  std::string path = dir + "/cld";
  StderrCapture log;
  auto o = Served::Opts(path);
  o.framing = Kind::kMessage;
  o.appearance = ReopeningChannel::Appearance::kInotify;
  o.missing_hint = " (nfsd makes it)";
  o.missing_dir_hint = " (mounted?)";
  o.log_open_close = true;
  Served s(o);
  REQUIRE(s.ch->Start().ok());
  // The directory is missing: its parent is watched, and looked at every
  // second.
  CHECK_FALSE(s.ch->ready());
  CHECK(log.Count("test: cannot watch " + dir +
                  ": No such file or directory; looking for it every "
                  "second (mounted?)") == 1);
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(RunUntil(
      s.loop, [&] { return s.ch->ready(); }, 2500ms));
  CHECK_FALSE(s.ch->is_open());
  CHECK(log.Count("test: waiting for " + path + " to appear (nfsd makes it)") ==
        1);
  for (int round = 1; round <= 3; ++round) {
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    // inotify: well within the second nfsd waits, not at the next retry.
    auto made = Clock::now();
    REQUIRE(RunUntil(s.loop, [&] { return s.ch->is_open(); }));
    CHECK(Clock::now() - made < 500ms);
    CHECK(s.opens == round);
    Write(path, "msg");
    REQUIRE(RunUntil(s.loop, [&] { return s.got.size() == size_t(round); }));
    REQUIRE(unlink(path.c_str()) == 0);
    REQUIRE(RunUntil(s.loop, [&] { return !s.ch->is_open(); }));
    CHECK(s.closes == round);
  }
  CHECK(log.Count("test: opened " + path) == 3);
  CHECK(log.Count("test: closed " + path + " (removed)") == 3);
}

// The child of the EMFILE test: serves `path` with no descriptor to spare,
// then with some; the parent reads what it logged. Exit status: 0, or the
// step that failed.
int EmfileChild(const std::string& path, const std::string& log_path) {
  int logfd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (logfd < 0 || dup2(logfd, 2) != 2) return 10;
  close(logfd);
  unsetenv("JOURNAL_STREAM");
  Served s(Served::Opts(path));
  // No descriptor left: the lowest free one is above the limit.
  int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (probe < 0) return 11;
  close(probe);
  struct rlimit old;
  if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 12;
  struct rlimit tight = {static_cast<rlim_t>(probe), old.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &tight) != 0) return 13;
  if (!s.ch->Start().ok()) return 14;
  if (s.ch->is_open()) return 15;
  s.loop.RunFor(2500ms);  // the first try and two retries, no spin
  if (s.ch->is_open()) return 16;
  fprintf(stderr, "-- descriptors back --\n");
  if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 17;
  auto end = Clock::now() + 3s;
  while (!s.ch->is_open() && Clock::now() < end) s.loop.RunFor(50ms);
  if (!s.ch->is_open()) return 18;
  return 0;
}

TEST_CASE(
    "channel: no file descriptor left is named as such at every "
    "retry, once a second, until the file opens",
    "[loop][channel][emfile]") {
  TempDir t;
  std::string path = t.path + "/create_client";
  std::string log_path = t.path + "/log";
  REQUIRE(mkfifo(path.c_str(), 0600) == 0);
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(EmfileChild(path, log_path));
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  std::ifstream in(log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string log = ss.str();
  INFO(log);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::string line = "test: cannot open " + path +
                     ": Too many open files (no file descriptor left); "
                     "retrying every second\n";
  size_t lines = 0;
  for (size_t at = log.find(line); at != std::string::npos;
       at = log.find(line, at + 1))
    ++lines;
  // 2.5 s without a descriptor: the first try and a retry every second.
  CHECK(lines >= 2);
  CHECK(lines <= 4);
  // Nothing about a missing file: it was there all along.
  CHECK(log.find("(hint)") == std::string::npos);
}

}  // namespace
}  // namespace nfsdh::loop
