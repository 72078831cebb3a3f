// The batch runner in process: the four files' requests, handed to it as the
// daemon reads them, over socket pairs that keep write boundaries (as the
// nfsd filesystem's files do), applied to a real SQLite file. What is
// checked is what the kernel sees: which replies, in which form, before or
// after COMMIT, and what a batch that does not commit leaves behind.
#include "daemon/batch/runner.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "daemon/tracker/tracker.h"
#include "nfsdfs-proto/message.h"
#include "tests/fault/fault_vfs.h"

namespace nfsdh::batch {

using channels::Endpoint;
using channels::Protocol;

namespace {

// One upcall file: the runner's end (an Endpoint) and the kernel's.
struct File {
  Endpoint ep;
  int kernel = -1;
  explicit File(Protocol p) : ep(p) {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    kernel = sv[0];
    ep.fd = sv[1];
  }
  ~File() {
    close(kernel);
    close(ep.fd);
  }
  // Every write the runner made so far, one string each.
  std::vector<std::string> Writes() {
    std::vector<std::string> out;
    char buf[16384];
    for (;;) {
      ssize_t n = recv(kernel, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

std::string StartReq(uint64_t seq, int64_t kernel_boot_time);

struct Fixture {
  std::string dir, db;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<tracker::Tracker> tracker;
  std::unique_ptr<Runner> runner;
  File allow{Protocol::kAllowClient}, create{Protocol::kCreateClient},
      expire{Protocol::kExpireClient}, done{Protocol::kGraceDone};

  Fixture() {
    char tmpl[] = "/tmp/nfsdh-runner-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    db = dir + "/state.sqlite";
    Open();
  }
  ~Fixture() {
    runner.reset();
    tracker.reset();
    store.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  // (Re)opens the database, through the fault VFS when it is the default.
  void Open() {
    runner.reset();
    tracker.reset();
    store.reset();
    Status s = store::Store::Open(db, store::Store::Mode::kReadWrite, &store);
    INFO(s.ToString());
    REQUIRE(s.ok());
    tracker = std::make_unique<tracker::Tracker>(store.get(), "default");
    REQUIRE(tracker->Load().ok());
    runner = std::make_unique<Runner>(tracker.get());
  }
  std::map<std::string, int64_t> Records() {
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(db, store::Store::Mode::kReadOnly, &st).ok());
    std::map<std::string, int64_t> out;
    REQUIRE(st->ForEachClient("default", [&](const store::ClientRow& r) {
                out[r.id] = r.instance;
                return true;
              }).ok());
    return out;
  }
  // Starts an instance and returns it.
  int64_t Start(int64_t now) {
    std::vector<Upcall> ups = {{&allow.ep, StartReq(1, 77)}};
    REQUIRE(runner->Run(ups, now).committed);
    std::vector<std::string> w = allow.Writes();
    REQUIRE(!w.empty());
    auto parsed = nfsdfs::ParseAllowReply(w.back());
    auto* line = std::get_if<std::variant<nfsdfs::AllowClientLine,
                                          nfsdfs::AllowDoneLine>>(&parsed);
    REQUIRE(line);
    REQUIRE(std::holds_alternative<nfsdfs::AllowDoneLine>(*line));
    REQUIRE(std::get<nfsdfs::AllowDoneLine>(*line).status == 0);
    return std::get<nfsdfs::AllowDoneLine>(*line).instance;
  }
};

std::string StartReq(uint64_t seq, int64_t kernel_boot_time) {
  nfsdfs::StartRequest r;
  r.seq = seq;
  r.version = nfsdfs::kProtocolVersion;
  r.kernel_boot_time = kernel_boot_time;
  return nfsdfs::EncodeRequest(r);
}

std::string Done(uint64_t seq, int64_t inst) {
  nfsdfs::GraceDoneRequest r;
  r.seq = seq;
  r.instance = inst;
  return nfsdfs::EncodeRequest(r);
}

std::string Create(uint64_t seq, int64_t inst, const std::string& id) {
  nfsdfs::CreateRequest r;
  r.seq = seq;
  r.instance = inst;
  r.client_id = id;
  return nfsdfs::EncodeRequest(r);
}

std::string Expire(uint64_t seq, int64_t inst, const std::string& id) {
  nfsdfs::ExpireRequest r;
  r.seq = seq;
  r.instance = inst;
  r.client_id = id;
  return nfsdfs::EncodeRequest(r);
}

TEST_CASE("runner: one batch, every reply after COMMIT, malformed requests "
          "answered and counted once",
          "[batch][runner]") {
  Fixture f;
  int64_t inst = f.Start(1000);
  std::vector<std::string> before_commit;
  f.runner->set_commit_hooks(
      [&] {
        for (File* file : {&f.create, &f.expire, &f.done})
          for (std::string& w : file->Writes()) before_commit.push_back(w);
      },
      {});
  std::vector<Upcall> ups = {
      {&f.create.ep, Create(10, inst, "alpha")},
      {&f.create.ep, Create(11, inst - 1, "beta")},  // a stale instance
      {&f.create.ep, "12 create_client nonsense\n"},  // malformed, seq 12
      {&f.create.ep, "what is this\n"},                // no seq: no answer
      {&f.expire.ep, Expire(13, inst, "nobody")},
      {&f.create.ep, "14 " + std::string(8189, 'x'), true},  // overlong
  };
  Runner::Result r = f.runner->Run(ups, 1001);
  CHECK(r.committed);
  CHECK(r.requests == ups.size());
  CHECK(before_commit.empty());  // nothing was answered before COMMIT
  CHECK(f.create.Writes() ==
        std::vector<std::string>{"10 0\n", "11 -116\n", "12 -22\n",
                                 "14 -22\n"});
  CHECK(f.expire.Writes() == std::vector<std::string>{"13 0\n"});
  const ChannelCounters& c = f.create.ep.counters;
  CHECK(c.requests == 5);
  CHECK(c.ok == 1);
  CHECK(c.stale == 1);
  CHECK(c.malformed == 3);
  CHECK(c.failed == 0);
  CHECK(f.Records() == std::map<std::string, int64_t>{{"alpha", inst}});
  CHECK(f.tracker->stats().clients == 1);
  CHECK(f.runner->stats().committed == 2);
  CHECK(f.runner->stats().rolled_back == 0);
}

TEST_CASE("runner: a batch that does not commit answers -EIO for every "
          "promise and leaves the scope as it was",
          "[batch][runner][fault]") {
  faultvfs::ScopedDefault vfs;
  Fixture f;
  int64_t inst = f.Start(1000);
  {
    std::vector<Upcall> ups = {{&f.create.ep, Create(1, inst, "kept")}};
    REQUIRE(f.runner->Run(ups, 1001).committed);
    REQUIRE(f.create.Writes() == std::vector<std::string>{"1 0\n"});
  }
  const store::ScopeRow row = f.tracker->row();
  const ScopeStats stats = f.tracker->stats();

  faultvfs::FaultSpec spec;
  spec.op = faultvfs::Op::kSync;
  spec.k = 1;
  spec.persistent = true;
  faultvfs::Arm(spec);
  std::vector<Upcall> ups = {
      {&f.create.ep, Create(20, inst, "lost")},
      {&f.create.ep, Create(21, inst - 1, "stale")},
      {&f.expire.ep, Expire(22, inst, "kept")},
      {&f.done.ep, Done(23, inst)},
      {&f.allow.ep, StartReq(24, 78)},
      {&f.create.ep, "25 create_client bad\n"},
  };
  Runner::Result r = f.runner->Run(ups, 1002);
  faultvfs::Disarm();
  CHECK_FALSE(r.committed);
  CHECK(r.failure.code() == Status::Code::kIo);
  CHECK(faultvfs::Hits() >= 1);
  // Promises turn into -EIO; refusals stay what they were.
  CHECK(f.create.Writes() ==
        std::vector<std::string>{"20 -5\n", "21 -116\n", "25 -22\n"});
  CHECK(f.expire.Writes() == std::vector<std::string>{"22 -5\n"});
  CHECK(f.done.Writes() == std::vector<std::string>{"23 -5\n"});
  // The start's allow list went out before the commit; its end says -EIO.
  std::vector<std::string> allow = f.allow.Writes();
  REQUIRE(!allow.empty());
  CHECK(allow.back() == "24 done -5 0\n");
  CHECK(f.create.ep.counters.failed == 1);
  CHECK(f.expire.ep.counters.failed == 1);
  CHECK(f.allow.ep.counters.failed == 1);
  CHECK(f.runner->stats().rolled_back == 1);
  // The tracker's row and counts are those of the last commit.
  CHECK(f.tracker->row().boot_time == row.boot_time);
  CHECK(f.tracker->row().new_boot_time == row.new_boot_time);
  CHECK(f.tracker->row().max_instance == row.max_instance);
  CHECK(f.tracker->stats().clients == stats.clients);
  CHECK(f.tracker->stats().start_instance == stats.start_instance);
  CHECK(f.tracker->stats().allowed == stats.allowed);
  // And so is the database, seen from another connection.
  f.Open();
  CHECK(f.Records() == std::map<std::string, int64_t>{{"kept", inst}});
  CHECK(f.tracker->row().new_boot_time == inst);
  CHECK(f.tracker->row().boot_time == row.boot_time);

  // The next batch, with the disk back, works from that state.
  std::vector<Upcall> again = {{&f.create.ep, Create(30, inst, "lost")}};
  REQUIRE(f.runner->Run(again, 1003).committed);
  CHECK(f.create.Writes() == std::vector<std::string>{"30 0\n"});
  CHECK(f.Records() ==
        std::map<std::string, int64_t>{{"kept", inst}, {"lost", inst}});
}

TEST_CASE("runner: the allow list streams before the commit, done after it",
          "[batch][runner]") {
  Fixture f;
  int64_t inst = f.Start(1000);
  std::vector<Upcall> creates;
  // Few enough replies for the socket's buffer (nobody reads it during
  // Run), long enough ids for an allow list of several writes.
  for (int i = 0; i < 40; ++i)
    creates.push_back({&f.create.ep,
                       Create(100 + i, inst, "client-" + std::to_string(i) +
                                                 std::string(1000, 'x'))});
  REQUIRE(f.runner->Run(creates, 1001).committed);
  f.create.Writes();
  std::vector<Upcall> done = {{&f.done.ep, Done(2, inst)}};
  REQUIRE(f.runner->Run(done, 1002).committed);
  REQUIRE(f.done.Writes() == std::vector<std::string>{"2 0\n"});

  std::vector<std::string> at_commit;
  f.runner->set_commit_hooks([&] { at_commit = f.allow.Writes(); }, {});
  std::vector<Upcall> start = {{&f.allow.ep, StartReq(3, 79)}};
  REQUIRE(f.runner->Run(start, 1003).committed);
  std::vector<std::string> after = f.allow.Writes();
  // The list, several lines per write and none longer than a downcall, was
  // all written when COMMIT ran; "done 0" came only after.
  REQUIRE(at_commit.size() > 1);
  size_t lines = 0;
  for (const std::string& w : at_commit) {
    CHECK(w.size() <= nfsdfs::kMaxDowncallLen);
    for (char ch : w) lines += ch == '\n';
  }
  CHECK(lines == 40);
  REQUIRE(after.size() == 1);
  CHECK(after[0].rfind("3 done 0 ", 0) == 0);
  CHECK(f.allow.ep.counters.ok == 2);
  CHECK(f.tracker->stats().allowed == 40);
}

}  // namespace
}  // namespace nfsdh::batch
