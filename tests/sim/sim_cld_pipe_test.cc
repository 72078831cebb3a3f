// Tests of the simulated cld pipe: first its rpc_pipefs semantics, driven by
// hand through the file system, then the whole protocol with Debian's own
// /usr/sbin/nfsdcld as the tracker, the reference implementation: if it
// works with the simulator, the simulator speaks the real protocol.
#include "tests/sim/sim_cld_pipe.h"

#include <fcntl.h>
#include <linux/nfsd/cld.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

#include "tests/sim/cld_pipe_story.h"

namespace nfsdsim {
namespace {

using namespace std::chrono_literals;
namespace cld = nfsdfs::cld;

class TmpDir {
 public:
  TmpDir() {
    char tmpl[] = "/tmp/nfsdh-cld-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TmpDir() {
    if (std::system(("rm -rf '" + path_ + "'").c_str()) != 0) {
      // Best effort.
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A mounted pipe with short timeouts, in a fresh directory.
struct Fixture {
  explicit Fixture(CldPipeOptions o = Defaults()) : pipe(o) {
    mount = dir.path() + "/pipefs";
    REQUIRE(mkdir(mount.c_str(), 0700) == 0);
    state = dir.path() + "/state";
    std::string err;
    INFO(err);
    REQUIRE(pipe.Mount(mount, &err));
  }
  static CldPipeOptions Defaults() {
    CldPipeOptions o;
    o.upcall_timeout = 10s;
    return o;
  }
  TmpDir dir;
  std::string mount;
  std::string state;
  CldPipe pipe;
};

// Reads one whole upcall from fd (blocking on poll).
std::string ReadUpcall(int fd, size_t bufsize = cld::kMaxMessageSize) {
  pollfd p = {fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 10000) == 1);
  REQUIRE((p.revents & POLLIN) != 0);
  std::string buf(bufsize, '\0');
  ssize_t n = read(fd, buf.data(), buf.size());
  REQUIRE(n > 0);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

cld::Message Decode(const std::string& bytes) {
  auto d = cld::DecodeUpcall(bytes);
  REQUIRE(std::holds_alternative<cld::Message>(d));
  return std::get<cld::Message>(d);
}

bool WriteAll(int fd, const std::string& s) {
  return write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

int WaitFd(const std::string& path) {
  for (int i = 0; i < 500; ++i) {
    int fd = open(path.c_str(), O_RDWR);
    if (fd >= 0) return fd;
    std::this_thread::sleep_for(5ms);
  }
  return -1;
}

TEST_CASE("cld pipe: one upcall per read, downcalls matched by xid",
          "[cld_pipe]") {
  Fixture f;
  // The directory exists from the start; the pipe only while nfsd runs.
  struct stat st;
  REQUIRE(stat((f.mount + "/nfsd").c_str(), &st) == 0);
  REQUIRE(S_ISDIR(st.st_mode));
  REQUIRE(stat(f.pipe.PipePath().c_str(), &st) != 0);

  auto start =
      std::async(std::launch::async, [&] { return f.pipe.StartNfsd(); });
  int fd = WaitFd(f.pipe.PipePath());
  REQUIRE(fd >= 0);

  // GetVersion comes as a version-1 message; a short buffer gets its first
  // part, the next read the rest.
  std::string first = ReadUpcall(fd, 100);
  REQUIRE(first.size() == 100);
  std::string rest(2000, '\0');
  ssize_t n = read(fd, rest.data(), rest.size());
  REQUIRE(n == static_cast<ssize_t>(sizeof(struct cld_msg) - 100));
  rest.resize(static_cast<size_t>(n));
  cld::Message gv = Decode(first + rest);
  CHECK(gv.vers == 1);
  CHECK(gv.cmd == static_cast<uint8_t>(cld::Command::kGetVersion));
  // Nothing else is queued: a read returns 0 bytes at once.
  char c;
  CHECK(read(fd, &c, 1) == 0);

  cld::Message reply = gv;
  reply.version = 2;
  // A downcall of the wrong size, or with an unknown xid, is EINVAL.
  std::string wrong = cld::Encode(reply) + "x";
  CHECK(write(fd, wrong.data(), wrong.size()) == -1);
  CHECK(errno == EINVAL);
  cld::Message stranger = reply;
  stranger.xid = gv.xid + 1000;
  std::string s = cld::Encode(stranger);
  CHECK(write(fd, s.data(), s.size()) == -1);
  CHECK(errno == EINVAL);
  REQUIRE(WriteAll(fd, cld::Encode(reply)));

  // GraceStart in the version-2 format; two clients, then the final 0.
  cld::Message gs = Decode(ReadUpcall(fd));
  CHECK(gs.vers == 2);
  CHECK(gs.cmd == static_cast<uint8_t>(cld::Command::kGraceStart));
  cld::Message rec = gs;
  rec.status = -EINPROGRESS;
  rec.name = "client-x";
  rec.princhash = std::string(32, '\x07');
  REQUIRE(WriteAll(fd, cld::Encode(rec)));
  rec.name = "client-y";
  rec.princhash.clear();
  REQUIRE(WriteAll(fd, cld::Encode(rec)));
  // A v1-sized downcall is refused now that messages are v2.
  cld::Message v1 = gs;
  v1.vers = 1;
  std::string v1b = cld::Encode(v1);
  CHECK(write(fd, v1b.data(), v1b.size()) == -1);
  CHECK(errno == EINVAL);
  cld::Message done = gs;
  done.status = 0;
  REQUIRE(WriteAll(fd, cld::Encode(done)));

  REQUIRE(start.wait_for(10s) == std::future_status::ready);
  CldStartResult r = start.get();
  CHECK(r.ops == CldOps::kV2);
  CHECK(r.get_version.version == 2);
  REQUIRE(r.reclaim.size() == 2);
  CHECK(r.reclaim["client-x"] == std::string(32, '\x07'));
  CHECK(r.reclaim["client-y"].empty());
  CHECK_FALSE(r.grace_skipped);
  CHECK(f.pipe.InGrace());

  // The kernel decides reclaims from that set and the principal hash.
  CHECK(f.pipe.Reclaim("client-x", std::string(32, '\x07')) ==
        ReclaimResult::kAllowed);
  CHECK(f.pipe.Reclaim("client-x", std::string(32, '\x08')) ==
        ReclaimResult::kReclaimBad);
  CHECK(f.pipe.Reclaim("client-y", "anything") == ReclaimResult::kAllowed);
  CHECK(f.pipe.Reclaim("client-z", "") == ReclaimResult::kReclaimBad);

  // nfsd stops: the pipe goes away under the open file.
  f.pipe.StopNfsd();
  CHECK(read(fd, &c, 1) == -1);
  CHECK(errno == EPIPE);
  CHECK(write(fd, s.data(), s.size()) == -1);
  CHECK(errno == EPIPE);
  pollfd p = {fd, POLLIN, 0};
  REQUIRE(poll(&p, 1, 1000) == 1);
  CHECK((p.revents & (POLLERR | POLLHUP)) == (POLLERR | POLLHUP));
  CHECK(stat(f.pipe.PipePath().c_str(), &st) != 0);
  CHECK(f.pipe.Reclaim("client-x", std::string(32, '\x07')) ==
        ReclaimResult::kNoGrace);
  close(fd);
}

TEST_CASE("cld pipe: a partly read upcall is sent again after close",
          "[cld_pipe]") {
  Fixture f;
  auto start =
      std::async(std::launch::async, [&] { return f.pipe.StartNfsd(); });
  int fd = WaitFd(f.pipe.PipePath());
  REQUIRE(fd >= 0);
  std::string part = ReadUpcall(fd, 10);
  REQUIRE(part.size() == 10);
  // A second open file keeps the pipe open while the first one closes.
  int fd2 = open(f.pipe.PipePath().c_str(), O_RDWR);
  REQUIRE(fd2 >= 0);
  close(fd);
  // The same GetVersion, with the same xid, comes again in full.
  cld::Message gv = Decode(ReadUpcall(fd2));
  uint32_t xid;
  memcpy(&xid, part.data() + 4, sizeof xid);
  CHECK(gv.xid == xid);
  CHECK(f.pipe.Stats().resent == 1);
  gv.version = 1;  // answer as an old tracker: v1 messages
  REQUIRE(WriteAll(fd2, cld::Encode(gv)));
  cld::Message gs = Decode(ReadUpcall(fd2));
  CHECK(gs.vers == 1);
  gs.status = 0;
  REQUIRE(WriteAll(fd2, cld::Encode(gs)));
  // Nobody may reclaim, so grace is skipped: GraceDone follows at once.
  cld::Message gd = Decode(ReadUpcall(fd2));
  CHECK(gd.cmd == static_cast<uint8_t>(cld::Command::kGraceDone));
  CHECK(gd.vers == 1);
  gd.status = 0;
  REQUIRE(WriteAll(fd2, cld::Encode(gd)));
  CldStartResult r = start.get();
  CHECK(r.ops == CldOps::kV1);
  CHECK(r.grace_skipped);
  CHECK(r.grace_done.ok());
  close(fd2);
}

TEST_CASE("cld pipe: without a reader upcalls wait, then fail with ETIMEDOUT",
          "[cld_pipe]") {
  CldPipeOptions o = Fixture::Defaults();
  o.open_wait = 300ms;
  o.no_reader_timeout = 300ms;
  Fixture f(o);
  // Nobody opens the pipe within the wait: no client tracking at all.
  auto t0 = std::chrono::steady_clock::now();
  CldStartResult r = f.pipe.StartNfsd();
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  CHECK(r.ops == CldOps::kNone);
  CHECK_FALSE(f.pipe.PipeExists());
  CHECK(f.pipe.InGrace());
  CHECK(f.pipe.Reclaim("anyone", "") == ReclaimResult::kReclaimBad);

  // A tracker that opened the pipe and went away: queued upcalls wait for a
  // reader, and fail with -ETIMEDOUT when none comes.
  auto start =
      std::async(std::launch::async, [&] { return f.pipe.StartNfsd(); });
  int fd = WaitFd(f.pipe.PipePath());
  REQUIRE(fd >= 0);
  cld::Message gv = Decode(ReadUpcall(fd));
  gv.version = 2;
  REQUIRE(WriteAll(fd, cld::Encode(gv)));
  cld::Message gs = Decode(ReadUpcall(fd));
  gs.status = -EINPROGRESS;
  gs.name = "client-a";
  REQUIRE(WriteAll(fd, cld::Encode(gs)));
  gs.status = 0;
  REQUIRE(WriteAll(fd, cld::Encode(gs)));
  REQUIRE(start.get().ops == CldOps::kV2);
  close(fd);
  REQUIRE(f.pipe.WaitForClosed(5s));
  CldCallResult c = f.pipe.Create("client-a", "");
  CHECK(c.sent);
  CHECK_FALSE(c.timed_out);
  CHECK(c.status == -ETIMEDOUT);
  CHECK(f.pipe.Stats().failed_etimedout == 1);
  f.pipe.StopNfsd();
}

TEST_CASE("cld pipe: an unanswered upcall times out the driver, not the test",
          "[cld_pipe]") {
  CldPipeOptions o = Fixture::Defaults();
  o.upcall_timeout = 300ms;
  Fixture f(o);
  auto start =
      std::async(std::launch::async, [&] { return f.pipe.StartNfsd(); });
  int fd = WaitFd(f.pipe.PipePath());
  REQUIRE(fd >= 0);
  cld::Message gv = Decode(ReadUpcall(fd));  // read, never answered
  CldStartResult r = start.get();
  CHECK(r.get_version.timed_out);
  CHECK_FALSE(r.ok());
  CHECK(f.pipe.Stats().driver_timeouts == 1);
  // Its late downcall matches nothing any more.
  gv.version = 2;
  std::string b = cld::Encode(gv);
  CHECK(write(fd, b.data(), b.size()) == -1);
  CHECK(errno == EINVAL);
  close(fd);
}

// ---- With Debian's nfsdcld
// ----------------------------------------------------

struct NfsdcldFixture : Fixture {
  explicit NfsdcldFixture(CldPipeOptions o = Defaults()) : Fixture(o) {
    REQUIRE(access(kNfsdcldBin, X_OK) == 0);  // nfs-kernel-server
    CldTrackerConfig tc;
    tc.kind = CldTrackerKind::kNfsdcld;
    tc.pipefs_dir = mount;
    tc.state_dir = state;
    tracker = std::make_unique<CldTracker>(tc);
    std::string err;
    INFO(err);
    REQUIRE(tracker->Start(&err));
  }
  ~NfsdcldFixture() {
    pipe.StopNfsd();
    tracker.reset();
  }
  StoryResult Run(const std::string& story) {
    std::vector<StoryStep> steps;
    std::string err;
    INFO(err);
    REQUIRE(ParseStory(story, &steps, &err));
    StoryResult r = RunStory(pipe, *tracker, steps);
    std::string transcript;
    for (const auto& l : r.transcript) transcript += l + "\n";
    INFO(transcript);
    INFO(tracker->Log());
    CHECK(r.error == "");
    CHECK(r.ok);
    return r;
  }
  std::unique_ptr<CldTracker> tracker;
};

TEST_CASE("cld pipe with nfsdcld: handshake and an empty first start",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  CldStartResult r = f.pipe.StartNfsd();
  INFO(f.tracker->Log());
  CHECK(r.ops == CldOps::kV2);
  CHECK(r.get_version.ok());
  CHECK(r.get_version.version == 2);
  CHECK(r.grace_start.ok());
  CHECK(r.reclaim.empty());
  CHECK(r.grace_skipped);  // nothing to reclaim: grace ends at once
  CHECK(r.grace_done.ok());
  CHECK_FALSE(f.pipe.InGrace());
  struct stat st;
  CHECK(stat((f.state + "/main.sqlite").c_str(), &st) == 0);
}

TEST_CASE("cld pipe with nfsdcld: create, restart, reclaim, grace done",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  f.Run(
      "start; complete A; create B@kb; complete C; expire C; restart; "
      // In grace: A and B had records, C expired, Z never had one; B's
      // principal hash is checked by the kernel.
      "reclaim A=allow; reclaim B@kb=allow; reclaim B@other=bad; "
      "reclaim B=bad; reclaim C=bad; reclaim Z=bad; "
      // A's RECLAIM_COMPLETE ends A's reclaims; B (v4.0) recreates its record.
      "complete A; reclaim A=nograce; create B@kb; gracedone; "
      "reclaim B@kb=nograce; "
      // Both made it into the new epoch.
      "restart; reclaim A=allow; reclaim B@kb=allow");
  // Each of the three pipes (start and two restarts) was noticed through
  // inotify, as with rpc_pipefs. nfsdcld logs it from its own event loop,
  // possibly after it answered the upcalls of the new pipe.
  auto noticed = [&] {
    const std::string log = f.tracker->Log();
    int n = 0;
    for (size_t p = log.find("cld_inotify_cb: called for EV_READ");
         p != std::string::npos;
         p = log.find("cld_inotify_cb: called for EV_READ", p + 1)) {
      ++n;
    }
    return n;
  };
  for (int i = 0; i < 500 && noticed() < 3; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  INFO(f.tracker->Log());
  CHECK(noticed() == 3);
  CHECK(f.pipe.Stats().pipes_created == 3);
}

TEST_CASE("cld pipe with nfsdcld: every client reclaimed ends grace early",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  f.Run(
      "start; complete A; complete B; restart; reclaim A=allow; "
      "complete A");
  CHECK(f.pipe.InGrace());
  f.Run("reclaim B=allow; complete B");
  CHECK_FALSE(f.pipe.InGrace());
}

TEST_CASE("cld pipe with nfsdcld: restarts during grace keep the old set",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  // A stays silent through two instances that never finish grace; C
  // reclaims in the first of them only, and is still allowed in the next;
  // once an instance completes grace without C, C is out.
  f.Run(
      "start; complete A; complete C; restart; reclaim C=allow; "
      "complete C; restart; reclaim C=allow; restart; reclaim A=allow; "
      "complete A; gracedone; restart; reclaim A=allow; reclaim C=bad");
}

TEST_CASE("cld pipe with nfsdcld: killed and restarted while nfsd runs",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  f.Run("start; complete A; restart-tracker; complete B");
  // Killed with nothing to read; an upcall made meanwhile waits for the
  // next nfsdcld, which finds the pipe already there.
  REQUIRE(f.tracker->Kill9());
  REQUIRE(f.pipe.WaitForClosed(10s));
  const uint64_t before = f.pipe.Stats().upcalls;
  auto create = std::async(std::launch::async,
                           [&] { return f.pipe.Create(ClientId("C"), ""); });
  for (int i = 0; i < 200 && f.pipe.Stats().upcalls == before; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(f.pipe.Stats().upcalls == before + 1);
  CHECK(create.wait_for(200ms) == std::future_status::timeout);
  std::string err;
  INFO(err);
  REQUIRE(f.tracker->Start(&err));
  REQUIRE(create.wait_for(10s) == std::future_status::ready);
  CHECK(create.get().ok());
  f.Run(
      "restart; reclaim A=allow; reclaim B=allow; reclaim C=allow; "
      "reclaim D=bad");
}

TEST_CASE("cld pipe with nfsdcld: a v1 kernel sends no principal hashes",
          "[cld_pipe][nfsdcld]") {
  CldPipeOptions o = Fixture::Defaults();
  o.kernel_version = 1;
  NfsdcldFixture f(o);
  CldStartResult r = f.pipe.StartNfsd();
  CHECK(r.ops == CldOps::kV1);
  CHECK(r.get_version.version == 2);  // nfsdcld offers 2, the kernel takes 1
  // Without hashes a principal cannot be checked.
  f.Run("complete A@ka; restart; reclaim A@other=allow");
}

TEST_CASE("cld pipe with nfsdcld: Check upcalls of old kernels",
          "[cld_pipe][nfsdcld]") {
  NfsdcldFixture f;
  f.Run("start; complete A; restart");
  // What the v0 operations send for each reclaim; nfsdcld answers it from
  // its recovery epoch.
  CldCallResult yes = f.pipe.Check(ClientId("A"));
  CHECK(yes.ok());
  CldCallResult no = f.pipe.Check(ClientId("Z"));
  CHECK(no.status == -EACCES);
}

TEST_CASE("cld pipe: nfsdcld database for migration tests",
          "[cld_pipe][nfsdcld]") {
  TmpDir d;
  std::string err;
  StoryResult r;
  INFO(err);
  REQUIRE(MakeNfsdcldDatabase(kDefaultDbStory, d.path() + "/db", &err, &r));
  CHECK(r.decisions ==
        std::vector<std::string>{"reclaim A: allow", "reclaim B: allow"});
  // nfsdcld's own schema: a grace row in grace (recovery epoch set) and
  // one table per epoch.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((d.path() + "/db/main.sqlite").c_str(), &db,
                          SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string dump;
  auto collect = [](void* out, int n, char** vals, char** /*names*/) {
    std::string& o = *static_cast<std::string*>(out);
    for (int i = 0; i < n; ++i) o += std::string(i ? "|" : "") + vals[i];
    o += "\n";
    return 0;
  };
  REQUIRE(sqlite3_exec(db,
                       "select current, recovery from grace; "
                       "select name from sqlite_master where name like "
                       "'rec-%' order by name;",
                       collect, &dump, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(dump == "3|2\nrec-0000000000000002\nrec-0000000000000003\n");
}

}  // namespace
}  // namespace nfsdsim
