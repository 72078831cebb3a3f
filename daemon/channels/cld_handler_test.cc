// The cld channel without the kernel: upcalls written into one end of a
// SOCK_SEQPACKET socket pair (which keeps message boundaries, as rpc_pipefs
// does), read with the daemon's own reader and handled by the daemon's batch
// runner (daemon/batch/runner.h) over a real SQLite file.
#include "nfsdfs-proto/cld.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/batch/runner.h"
#include "daemon/channels/cld_pipe.h"
#include "daemon/store/store.h"
#include "daemon/tracker/tracker.h"
#include "tests/fault/fault_vfs.h"

namespace nfsdh {
namespace {

using nfsdfs::cld::Command;
using nfsdfs::cld::Message;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-cld-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

Message Up(uint8_t vers, Command cmd, uint32_t xid, std::string name = "",
           std::string princhash = "") {
  Message m;
  m.vers = vers;
  m.cmd = static_cast<uint8_t>(cmd);
  m.xid = xid;
  m.name = std::move(name);
  m.princhash = std::move(princhash);
  return m;
}

const std::string kHashA(32, '\xa1');

// The records of the scope, as another connection sees them after COMMIT.
std::map<std::string, store::ClientRow> Records(const std::string& db) {
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(db, store::Store::Mode::kReadOnly, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::map<std::string, store::ClientRow> out;
  REQUIRE(st->ForEachClient("default", [&](const store::ClientRow& r) {
              out[r.id] = r;
              return true;
            }).ok());
  return out;
}

store::ScopeRow ScopeOf(const std::string& db) {
  std::unique_ptr<store::Store> st;
  REQUIRE(store::Store::Open(db, store::Store::Mode::kReadOnly, &st).ok());
  std::optional<store::ScopeRow> row;
  REQUIRE(st->GetScope("default", &row).ok());
  REQUIRE(row);
  return *row;
}

// The helper's side (a store and the scope's row, as the daemon keeps them)
// and the kernel's side of one cld pipe.
class Pipe {
 public:
  Pipe() {
    db_ = dir_.path + "/state.sqlite";
    Reopen();
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    kernel_ = sv[0];
    helper_ = sv[1];
    ep_.fd = helper_;
    // The daemon opens the pipe non-blocking; an empty socket would block.
    REQUIRE(fcntl(helper_, F_SETFL, O_NONBLOCK) == 0);
  }
  ~Pipe() {
    close(kernel_);
    close(helper_);
  }

  // Opens the store again (after installing a VFS, say), with a tracker
  // that queues the HA callout's events, as the daemon's does with
  // --ha-callout.
  void Reopen() {
    runner_.reset();
    tracker_.reset();
    store_.reset();
    Status s = store::Store::Open(db_, store::Store::Mode::kReadWrite, &store_);
    INFO(s.ToString());
    REQUIRE(s.ok());
    tracker_ = std::make_unique<tracker::Tracker>(store_.get(), "default");
    REQUIRE(tracker_->Load().ok());
    tracker_->set_callouts(true);
    runner_ = std::make_unique<batch::Runner>(tracker_.get());
  }

  const std::string& db() const { return db_; }
  const store::ScopeRow& row() const { return tracker_->row(); }
  const ScopeStats& stats() const { return tracker_->stats(); }
  const ChannelCounters& counters() const { return ep_.counters; }
  // The records added and removed by committed batches, in order, as the
  // outbox holds them for the HA callout: "+id" or "-id".
  std::vector<std::string> TakeChanges() {
    std::vector<std::string> out;
    std::optional<store::CalloutRow> next;
    while (store_->NextCallout(taken_, &next).ok() && next) {
      CHECK(next->scope == row().name);
      out.push_back((next->added ? "+" : "-") + next->id);
      taken_ = next->seq;
    }
    return out;
  }

  void Send(const Message& m) { SendRaw(nfsdfs::cld::Encode(m)); }
  // Fills the kernel's side with version-2 GetVersion downcalls for xid 0
  // until the helper's next write fails (EAGAIN), as if the kernel had
  // stopped reading. The next Serve() takes them off before its COMMIT.
  void Clog() {
    Message filler;
    filler.vers = 2;
    filler.cmd = static_cast<uint8_t>(Command::kGetVersion);
    filler.xid = 0;
    std::string bytes = nfsdfs::cld::Encode(filler);
    while (send(helper_, bytes.data(), bytes.size(), MSG_DONTWAIT) ==
           static_cast<ssize_t>(bytes.size())) {
    }
    REQUIRE(errno == EAGAIN);
  }
  void SendRaw(const std::string& bytes) {
    REQUIRE(send(kernel_, bytes.data(), bytes.size(), 0) ==
            static_cast<ssize_t>(bytes.size()));
  }

  // Reads every upcall pending, as the daemon does at a wake-up, and
  // handles them in one batch: one transaction, replies after COMMIT.
  // Returns how many were read; *before_commit gets the downcalls the
  // kernel had received when COMMIT was about to run.
  size_t Serve(int64_t now, std::vector<std::string>* before_commit = nullptr,
               bool* committed_out = nullptr) {
    std::vector<std::string> msgs;
    REQUIRE(ReadCldMessages(helper_, &msgs, 4096) == CldRead::kDrained);
    std::vector<batch::Upcall> upcalls;
    for (std::string& m : msgs) upcalls.push_back({&ep_, std::move(m), false});
    // The downcalls written before COMMIT: taken off at the commit.
    runner_->set_commit_hooks(
        [&] {
          std::vector<std::string> early = ReceiveRaw();
          if (before_commit) *before_commit = early;
          pending_.insert(pending_.end(), early.begin(), early.end());
        },
        {});
    bool committed = runner_->Run(upcalls, now).committed;
    if (committed_out) *committed_out = committed;
    return msgs.size();
  }

  // Every downcall the kernel received so far, decoded at `size` bytes.
  std::vector<Message> Replies(size_t size) {
    std::vector<std::string> raw = pending_;
    pending_.clear();
    for (std::string& r : ReceiveRaw()) raw.push_back(std::move(r));
    std::vector<Message> out;
    for (const std::string& r : raw) {
      INFO("downcall of " << r.size() << " bytes");
      auto d = nfsdfs::cld::DecodeDowncall(r, size);
      REQUIRE(std::holds_alternative<Message>(d));
      out.push_back(std::get<Message>(d));
    }
    return out;
  }

  // One upcall answered by exactly one downcall: that downcall.
  Message Call(const Message& up, int64_t now) {
    Send(up);
    REQUIRE(Serve(now) == 1);
    std::vector<Message> r = Replies(nfsdfs::cld::MessageSize(up.vers));
    REQUIRE(r.size() == 1);
    CHECK(r[0].xid == up.xid);
    CHECK(r[0].cmd == up.cmd);
    return r[0];
  }

  // GraceStart: the allowed clients (name -> princhash), and the final
  // status.
  std::map<std::string, std::string> GraceStart(uint8_t vers, uint32_t xid,
                                                int64_t now,
                                                int* status = nullptr) {
    Send(Up(vers, Command::kGraceStart, xid));
    REQUIRE(Serve(now) == 1);
    std::vector<Message> r = Replies(nfsdfs::cld::MessageSize(vers));
    REQUIRE(!r.empty());
    std::map<std::string, std::string> allowed;
    for (size_t i = 0; i < r.size(); ++i) {
      CHECK(r[i].xid == xid);
      CHECK(r[i].cmd == static_cast<uint8_t>(Command::kGraceStart));
      if (i + 1 < r.size()) {
        CHECK(r[i].status == -EINPROGRESS);
        allowed[r[i].name] = r[i].princhash;
      }
    }
    int final_status = r.back().status;
    CHECK(final_status != -EINPROGRESS);
    if (status)
      *status = final_status;
    else
      CHECK(final_status == 0);
    return allowed;
  }

 private:
  std::vector<std::string> ReceiveRaw() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(kernel_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.emplace_back(buf, static_cast<size_t>(n));
    }
    return out;
  }

  TempDir dir_;
  std::string db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<tracker::Tracker> tracker_;
  std::unique_ptr<batch::Runner> runner_;
  channels::Endpoint ep_{channels::Protocol::kCld};
  int kernel_ = -1, helper_ = -1;
  std::vector<std::string> pending_;
  int64_t taken_ = 0;  // the last outbox entry TakeChanges returned
};

TEST_CASE("cld: GetVersion answers version 2 at the size of the upcall",
          "[cld]") {
  Pipe p;
  for (uint8_t vers : {1, 2}) {
    INFO("upcall version " << int(vers));
    Message r = p.Call(Up(vers, Command::kGetVersion, 40 + vers), 1000);
    CHECK(r.status == 0);
    CHECK(r.version == 2);
    CHECK(r.vers == vers);
  }
  CHECK(p.counters().requests == 2);
  CHECK(p.counters().ok == 2);
}

TEST_CASE("cld: GraceStart streams the allowed clients, then 0", "[cld]") {
  Pipe p;
  CHECK(p.GraceStart(2, 1, 1000).empty());  // a fresh database
  REQUIRE(p.row().new_boot_time == 1000);
  CHECK(p.Call(Up(2, Command::kCreate, 2, "client-a", kHashA), 1001).status ==
        0);
  CHECK(p.Call(Up(2, Command::kCreate, 3, "client-b"), 1002).status == 0);
  CHECK(p.Call(Up(2, Command::kGraceDone, 4), 1003).status == 0);

  auto allowed = p.GraceStart(2, 5, 2000);
  CHECK(allowed == std::map<std::string, std::string>{{"client-a", kHashA},
                                                      {"client-b", ""}});
  store::ScopeRow row = ScopeOf(p.db());
  CHECK(row.boot_time == 1000);
  CHECK(row.new_boot_time == 2000);
  CHECK(p.stats().allowed == 2);

  SECTION("a version-1 kernel cannot check a principal: withheld") {
    auto v1 = p.GraceStart(1, 6, 3000);
    CHECK(v1 == std::map<std::string, std::string>{{"client-b", ""}});
  }
}

TEST_CASE("cld: the final GraceStart reply waits for COMMIT", "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Send(Up(2, Command::kGraceStart, 7));
  std::vector<std::string> early;
  REQUIRE(p.Serve(2000, &early) == 1);
  // The allow list streams from the transaction; the status follows it.
  REQUIRE(early.size() == 1);
  auto first = nfsdfs::cld::DecodeDowncall(early[0], 1067);
  REQUIRE(std::holds_alternative<Message>(first));
  CHECK(std::get<Message>(first).status == -EINPROGRESS);
  auto r = p.Replies(1067);
  REQUIRE(r.size() == 2);
  CHECK(r[1].status == 0);
}

TEST_CASE("cld: a GraceStart whose allow list was not wholly written is "
          "answered -EIO",
          "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kGraceDone, 3), 1002);
  store::ScopeRow before = ScopeOf(p.db());
  p.Clog();
  p.Send(Up(2, Command::kGraceStart, 7));
  REQUIRE(p.Serve(2000) == 1);
  std::vector<Message> r;
  for (const Message& m : p.Replies(1067))
    if (m.xid == 7) r.push_back(m);
  // No client could be sent: the final status says the list is not whole.
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == -EIO);
  CHECK(p.counters().failed == 1);
  // Nothing the failed start did is kept: the kernel starts again.
  store::ScopeRow after = ScopeOf(p.db());
  CHECK(after.boot_time == before.boot_time);
  CHECK(after.new_boot_time == before.new_boot_time);
  CHECK(after.max_instance == before.max_instance);
  CHECK(p.row().new_boot_time == before.new_boot_time);
  CHECK(p.GraceStart(2, 8, 3000) ==
        std::map<std::string, std::string>{{"client-a", ""}});
}

TEST_CASE("cld: Create is on disk before its reply, with its hash", "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Send(Up(2, Command::kCreate, 9, "client-a", kHashA));
  std::vector<std::string> early;
  REQUIRE(p.Serve(1005, &early) == 1);
  CHECK(early.empty());  // nothing was promised before COMMIT
  auto r = p.Replies(1067);
  REQUIRE(r.size() == 1);
  CHECK(r[0].status == 0);
  auto recs = Records(p.db());
  REQUIRE(recs.count("client-a"));
  CHECK(recs["client-a"].princhash == kHashA);
  CHECK(recs["client-a"].instance == 1000);

  SECTION("a version-1 Create records no hash") {
    CHECK(p.Call(Up(1, Command::kCreate, 10, "client-v1"), 1006).status == 0);
    auto v1 = Records(p.db());
    REQUIRE(v1.count("client-v1"));
    CHECK(v1["client-v1"].princhash.empty());
  }
}

TEST_CASE("cld: Create before any GraceStart starts an instance for it",
          "[cld]") {
  Pipe p;
  CHECK(p.Call(Up(2, Command::kCreate, 1, "client-a"), 5000).status == 0);
  CHECK(ScopeOf(p.db()).new_boot_time == 5000);
  CHECK(Records(p.db()).count("client-a"));
}

TEST_CASE("cld: records added and removed are queued for the HA callout",
          "[cld][callout]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kCreate, 3, "client-b"), 1001);
  p.Call(Up(2, Command::kCreate, 4, "client-a"), 1001);  // a refresh
  p.Call(Up(2, Command::kRemove, 5, "client-b"), 1001);
  p.Call(Up(2, Command::kRemove, 6, "client-b"), 1001);  // already gone
  p.Call(Up(2, Command::kCreate, 7, "client-c"), 1001);
  p.Call(Up(2, Command::kGraceDone, 8), 1002);
  CHECK(p.TakeChanges() ==
        std::vector<std::string>{"+client-a", "+client-b", "-client-b",
                                 "+client-c"});
  // A new instance in which only client-a reclaims: client-c goes at its
  // grace end.
  p.GraceStart(2, 9, 2000);
  p.Call(Up(2, Command::kCreate, 10, "client-a"), 2001);
  p.Call(Up(2, Command::kGraceDone, 11), 2002);
  CHECK(p.TakeChanges() == std::vector<std::string>{"-client-c"});
}

TEST_CASE("cld: Remove deletes the record, and is idempotent", "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kCreate, 3, "client-b"), 1001);
  CHECK(p.Call(Up(2, Command::kRemove, 4, "client-a"), 1002).status == 0);
  CHECK(p.Call(Up(2, Command::kRemove, 5, "client-a"), 1003).status == 0);
  auto recs = Records(p.db());
  CHECK(recs.count("client-a") == 0);
  CHECK(recs.count("client-b") == 1);
  CHECK(p.stats().clients == 1);
}

TEST_CASE("cld: Check allows recorded clients only, and records them",
          "[cld]") {
  Pipe p;
  p.GraceStart(1, 1, 1000);
  p.Call(Up(1, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kCreate, 3, "client-h", kHashA), 1001);
  p.Call(Up(1, Command::kGraceDone, 4), 1002);
  // A kernel that checks per client sends no GraceStart: the first Check
  // outside a grace period starts the instance.
  CHECK(p.Call(Up(1, Command::kCheck, 5, "client-a"), 2000).status == 0);
  CHECK(ScopeOf(p.db()).new_boot_time == 2000);
  CHECK(Records(p.db())["client-a"].instance == 2000);
  CHECK(p.Call(Up(1, Command::kCheck, 6, "stranger"), 2001).status == -EACCES);
  // Its principal cannot be verified by a Check: refused.
  CHECK(p.Call(Up(1, Command::kCheck, 7, "client-h"), 2002).status == -EACCES);
  CHECK(Records(p.db()).count("stranger") == 0);
}

TEST_CASE("cld: GraceDone ends grace and drops who did not reclaim", "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kCreate, 3, "client-b"), 1001);
  p.Call(Up(2, Command::kGraceDone, 4), 1002);
  p.GraceStart(2, 5, 2000);
  p.Call(Up(2, Command::kCreate, 6, "client-a"), 2001);  // reclaims
  CHECK(p.stats().reclaimed == 1);
  CHECK(p.Call(Up(2, Command::kGraceDone, 7), 2002).status == 0);
  store::ScopeRow row = ScopeOf(p.db());
  CHECK(row.boot_time == 2000);
  CHECK(row.old_boot_time == 1000);
  CHECK_FALSE(row.new_boot_time);
  auto recs = Records(p.db());
  CHECK(recs.count("client-a") == 1);
  CHECK(recs.count("client-b") == 0);
  // Not in grace: nothing to end, nothing changes.
  CHECK(p.Call(Up(2, Command::kGraceDone, 8), 2003).status == 0);
  CHECK(ScopeOf(p.db()).boot_time == 2000);
  // The expired client is not on the next allow list.
  CHECK(p.GraceStart(2, 9, 3000) ==
        std::map<std::string, std::string>{{"client-a", ""}});
}

TEST_CASE("cld: a restart in grace keeps every client allowed", "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  p.Call(Up(2, Command::kCreate, 2, "client-a"), 1001);
  p.Call(Up(2, Command::kCreate, 3, "client-b"), 1001);
  p.Call(Up(2, Command::kGraceDone, 4), 1002);
  p.GraceStart(2, 5, 2000);
  p.Call(Up(2, Command::kCreate, 6, "client-a"), 2001);
  // nfsd restarts before its grace period ended: b had no chance yet.
  auto allowed = p.GraceStart(2, 7, 2500);
  CHECK(allowed.size() == 2);
  store::ScopeRow row = ScopeOf(p.db());
  CHECK(row.boot_time == 1000);
  CHECK(row.new_boot_time == 2500);
}

TEST_CASE("cld: unknown commands get -EOPNOTSUPP", "[cld]") {
  Pipe p;
  Message up = Up(2, static_cast<Command>(9), 77);
  Message r = p.Call(up, 1000);
  CHECK(r.status == -EOPNOTSUPP);
  Message r1 = p.Call(Up(1, static_cast<Command>(200), 78), 1000);
  CHECK(r1.status == -EOPNOTSUPP);
}

TEST_CASE("cld: malformed upcalls get -EINVAL when their xid is readable",
          "[cld]") {
  Pipe p;
  SECTION("a name longer than its array") {
    std::string m = nfsdfs::cld::Encode(Up(2, Command::kCreate, 31, "x"));
    uint16_t len = 2000;
    m.replace(8, 2, reinterpret_cast<const char*>(&len), 2);
    p.SendRaw(m);
    REQUIRE(p.Serve(1000) == 1);
    auto r = p.Replies(1067);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == -EINVAL);
    CHECK(r[0].xid == 31);
    CHECK(r[0].cmd == static_cast<uint8_t>(Command::kCreate));
    CHECK(Records(p.db()).empty());
  }
  SECTION("an empty client id") {
    CHECK(p.Call(Up(1, Command::kCreate, 32, ""), 1000).status == -EINVAL);
  }
  SECTION("a size that is not its version's") {
    std::string m = nfsdfs::cld::Encode(Up(1, Command::kRemove, 33, "x"));
    p.SendRaw(m.substr(0, 500));
    REQUIRE(p.Serve(1000) == 1);
    auto r = p.Replies(1034);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == -EINVAL);
    CHECK(r[0].xid == 33);
  }
  SECTION("an unknown version") {
    std::string m = nfsdfs::cld::Encode(Up(1, Command::kCreate, 34, "x"));
    m[0] = 7;
    p.SendRaw(m);
    REQUIRE(p.Serve(1000) == 1);
    auto r = p.Replies(1034);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == -EINVAL);
    CHECK(r[0].xid == 34);
  }
  SECTION("shorter than a header: logged, cannot be answered") {
    p.SendRaw("abc");
    REQUIRE(p.Serve(1000) == 1);
    CHECK(p.Replies(1034).empty());
  }
  CHECK(p.counters().malformed == 1);
}

TEST_CASE("cld: every Create pending at a wake-up is one transaction",
          "[cld]") {
  Pipe p;
  p.GraceStart(2, 1, 1000);
  for (uint32_t i = 0; i < 6; ++i)
    p.Send(Up(2, Command::kCreate, 100 + i, "client-" + std::to_string(i)));
  p.Send(Up(2, Command::kGetVersion, 200));
  std::vector<std::string> early;
  bool committed = false;
  CHECK(p.Serve(1001, &early, &committed) == 7);  // one drain read them all
  CHECK(committed);
  CHECK(early.empty());  // no reply before the one COMMIT
  CHECK(Records(p.db()).size() == 6);
  std::vector<uint32_t> xids;
  for (const Message& m : p.Replies(1067)) {
    CHECK(m.status == 0);
    xids.push_back(m.xid);
  }
  CHECK(xids == std::vector<uint32_t>{100, 101, 102, 103, 104, 105, 200});
}

TEST_CASE("cld: a failed COMMIT turns every promise into -EIO",
          "[cld][fault]") {
  faultvfs::ScopedDefault vfs;
  Pipe p;
  p.Reopen();  // through the fault VFS
  p.GraceStart(2, 1, 1000);
  for (uint32_t i = 0; i < 3; ++i)
    p.Send(Up(2, Command::kCreate, 10 + i, "client-" + std::to_string(i)));
  p.Send(Up(2, Command::kGetVersion, 20));
  p.Send(Up(2, static_cast<Command>(9), 21));
  faultvfs::FaultSpec spec;
  spec.op = faultvfs::Op::kSync;
  spec.k = 1;
  spec.persistent = true;
  faultvfs::Arm(spec);
  bool committed = true;
  REQUIRE(p.Serve(1001, nullptr, &committed) == 5);
  faultvfs::Disarm();
  CHECK_FALSE(committed);
  CHECK(faultvfs::Hits() >= 1);
  std::map<uint32_t, int> status;
  for (const Message& m : p.Replies(1067)) status[m.xid] = m.status;
  CHECK(status ==
        std::map<uint32_t, int>{
            {10, -EIO}, {11, -EIO}, {12, -EIO}, {20, 0}, {21, -EOPNOTSUPP}});
  CHECK(p.counters().failed == 3);
  p.Reopen();
  CHECK(Records(p.db()).empty());
}

}  // namespace
}  // namespace nfsdh
