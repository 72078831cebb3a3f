// Reboot stories of the stock kernel's cld protocol: the real nfsd-helper
// binary (--nfsdfs none --cld-pipe <pipe>) against the simulated rpc_pipefs
// cld pipe (tests/sim/sim_cld_pipe.h), which plays nfsd 6.1: the pipe appears at
// every nfsd start and vanishes at every stop, and nfsd gives a tracker one
// second to open it.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ctl/test_util.h"
#include "tests/scenario/harness.h"
#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/cld_pipe_story.h"

namespace scenario {
namespace {

using nfsdsim::CldOps;
using nfsdsim::CldPipe;
using nfsdsim::CldPipeOptions;
using nfsdsim::CldTracker;
using nfsdsim::CldTrackerConfig;
using nfsdsim::CldTrackerKind;
using nfsdsim::ClientId;
using nfsdsim::ReclaimResult;

struct CldNode {
  explicit CldNode(int kernel_version = 2) : CldNode(Options(kernel_version)) {}
  // With `with_nfsdfs`, the helper's --nfsdfs is a directory holding a
  // plain v4_end_grace file that the test writes as nfsd would
  // (SetKernelGraceEnded).
  explicit CldNode(const CldPipeOptions& options, bool with_nfsdfs = false)
      : pipe(options) {
    mount = t.path() + "/pipefs";
    REQUIRE(mkdir(mount.c_str(), 0700) == 0);
    state = t.path() + "/state";
    std::string err;
    INFO(err);
    REQUIRE(pipe.Mount(mount, &err));
    CldTrackerConfig tc;
    tc.kind = CldTrackerKind::kNfsdHelper;
    tc.binary = NFSD_HELPER_BIN;
    tc.pipefs_dir = mount;
    tc.state_dir = state;
    if (with_nfsdfs) {
      nfsdfs = t.path() + "/nfsdfs";
      REQUIRE(mkdir(nfsdfs.c_str(), 0700) == 0);
      SetKernelGraceEnded(false);
      tc.nfsdfs_dir = nfsdfs;
    }
    tracker = std::make_unique<CldTracker>(tc);
    REQUIRE(tracker->Start(&err));
  }
  // What nfsd's v4_end_grace says: Y once the instance ended its grace.
  void SetKernelGraceEnded(bool ended) {
    std::ofstream(nfsdfs + "/v4_end_grace", std::ios::trunc)
        << (ended ? "Y\n" : "N\n");
  }
  // Waits until the database says the scope's grace period has ended.
  bool WaitGraceRecorded() {
    for (int i = 0; i < 100; ++i) {
      auto row = ScopeOf(db());
      if (row && row->boot_time && !row->new_boot_time) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  ~CldNode() {
    pipe.StopNfsd();
    tracker.reset();
  }
  static CldPipeOptions Options(int kernel_version) {
    CldPipeOptions o;
    o.kernel_version = kernel_version;
    o.upcall_timeout = kStepTimeout;
    return o;
  }
  std::string db() const { return state + "/state.sqlite"; }

  // Plays a story (tests/sim/cld_pipe_story.h); every upcall must be
  // answered and every expected reclaim decision must hold.
  void Run(const std::string& story) {
    std::vector<nfsdsim::StoryStep> steps;
    std::string err;
    INFO(err);
    REQUIRE(nfsdsim::ParseStory(story, &steps, &err));
    nfsdsim::StoryResult r = nfsdsim::RunStory(pipe, *tracker, steps);
    std::string transcript;
    for (const auto& l : r.transcript) transcript += l + "\n";
    INFO(transcript);
    INFO(tracker->Log());
    CHECK(r.error == "");
    CHECK(r.ok);
  }

  TempDir t;
  std::string mount, state, nfsdfs;
  CldPipe pipe;
  std::unique_ptr<CldTracker> tracker;
};

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t i = hay.find(needle); i != std::string::npos;
       i = hay.find(needle, i + 1))
    ++n;
  return n;
}

TEST_CASE("cld: the first start is answered in time, with version 2",
          "[scenario][cld]") {
  CldNode n;
  nfsdsim::CldStartResult r = n.pipe.StartNfsd();
  INFO(n.tracker->Log());
  CHECK(r.ops == CldOps::kV2);
  CHECK(r.get_version.version == 2);
  CHECK(r.grace_start.ok());
  CHECK(r.reclaim.empty());
  CHECK(r.grace_skipped);
  CHECK(r.grace_done.ok());
  auto row = ScopeOf(n.db());
  REQUIRE(row);
  CHECK(row->boot_time);
  CHECK_FALSE(row->new_boot_time);
}

TEST_CASE("cld: restart, reclaim, expiry and principals", "[scenario][cld]") {
  CldNode n;
  n.Run(
      "start; complete A; create B@kb; complete C; expire C; restart; "
      "reclaim A=allow; reclaim B@kb=allow; reclaim B@other=bad; "
      "reclaim B=bad; reclaim C=bad; reclaim Z=bad; "
      "complete A; reclaim A=nograce; create B@kb; gracedone; "
      "restart; reclaim A=allow; reclaim B@kb=allow");
  CHECK(RecordedIds(n.db()) ==
        std::set<std::string>{ClientId("A"), ClientId("B")});
}

TEST_CASE(
    "cld: a client that did not reclaim in a completed grace period "
    "is denied",
    "[scenario][cld]") {
  CldNode n;
  n.Run(
      "start; complete A; complete B; restart; reclaim A=allow; "
      "complete A; gracedone; restart; reclaim A=allow; reclaim B=bad");
  CHECK(RecordedIds(n.db()) == std::set<std::string>{ClientId("A")});
}

TEST_CASE("cld: restarts during grace keep the old allow list",
          "[scenario][cld]") {
  CldNode n;
  n.Run(
      "start; complete A; complete C; restart; reclaim C=allow; "
      "complete C; restart; reclaim C=allow; restart; reclaim A=allow; "
      "complete A; gracedone; restart; reclaim A=allow; reclaim C=bad");
}

TEST_CASE("cld: the helper killed and restarted while nfsd runs",
          "[scenario][cld]") {
  CldNode n;
  n.Run("start; complete A; restart-tracker; complete B");
  // Killed with nothing to read: an upcall made meanwhile waits for the
  // next helper, which finds the pipe already there.
  REQUIRE(n.tracker->Kill9());
  REQUIRE(n.pipe.WaitForClosed(kStepTimeout));
  const uint64_t before = n.pipe.Stats().upcalls;
  auto create = std::async(std::launch::async,
                           [&] { return n.pipe.Create(ClientId("C"), ""); });
  for (int i = 0; i < 500 && n.pipe.Stats().upcalls == before; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(create.wait_for(200ms) == std::future_status::timeout);
  std::string err;
  INFO(err);
  REQUIRE(n.tracker->Start(&err));
  REQUIRE(create.wait_for(kStepTimeout) == std::future_status::ready);
  CHECK(create.get().ok());
  n.Run(
      "restart; reclaim A=allow; reclaim B=allow; reclaim C=allow; "
      "reclaim D=bad");
}

TEST_CASE("cld: the pipe removed and made again is reopened at once",
          "[scenario][cld]") {
  CldNode n;
  n.Run("start; complete A; complete B");
  for (int i = 0; i < 3; ++i) {
    n.pipe.StopNfsd();
    REQUIRE(n.pipe.WaitForClosed(kStepTimeout));
    // nfsd gives the tracker one second to open the new pipe.
    nfsdsim::CldStartResult r = n.pipe.StartNfsd();
    INFO(n.tracker->Log());
    REQUIRE(r.ops == CldOps::kV2);
    CHECK(r.reclaim.size() == 2);
  }
  std::string log = n.tracker->Log();
  // The start and three restarts: each open and each close logged once.
  CHECK(Count(log, "cld: opened ") == 4);
  CHECK(Count(log, "cld: closed ") == 3);
  n.Run("reclaim A=allow; reclaim B=allow");
}

TEST_CASE("cld: the pipe served beside the four files stays open while they "
          "are busy",
          "[scenario][cld]") {
  // Both protocols served: a kernel with the four files whose nfsd made the
  // cld pipe too (it started while no helper held allow_client). Every
  // wake-up of the four files reads the pipe as well. The pipe used to
  // count each such read as a wake-up of its own that found nothing, and
  // closed itself ("readable, but nothing to read") after three.
  TempDir t;
  std::string pipefs = t.path() + "/pipefs";
  REQUIRE(mkdir(pipefs.c_str(), 0700) == 0);
  CldPipe pipe(CldNode::Options(2));
  std::string err;
  INFO(err);
  REQUIRE(pipe.Mount(pipefs, &err));
  {
    Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
    n.StartHelper({}, {"--cld-pipe", pipe.PipePath()});
    REQUIRE(pipe.StartNfsd().ops == CldOps::kV2);
    REQUIRE(n.WaitForLog("cld: opened " + pipe.PipePath()));
    REQUIRE(n.k().StartInstance(1000).ok());
    for (const char* id : {"A", "B", "C", "D", "E"})
      REQUIRE(n.k().EstablishState(id, "", Minor::kV41).ok());
    // Longer than the second after which a closed pipe is reopened.
    std::this_thread::sleep_for(1500ms);
    std::string log = n.Log();
    INFO(log);
    CHECK(Count(log, "cld: closed ") == 0);
    CHECK(Count(log, "cld: opened ") == 1);
    n.StopHelper();
  }
  pipe.StopNfsd();
}

TEST_CASE("cld: a version-1 kernel never allows a client with a principal",
          "[scenario][cld]") {
  CldNode n(1);
  nfsdsim::CldStartResult r = n.pipe.StartNfsd();
  CHECK(r.ops == CldOps::kV1);
  CHECK(r.get_version.version == 2);  // the kernel takes 1
  n.Run("complete A; restart; reclaim A=allow");
}

TEST_CASE("cld: helper-ctl status lists the cld channel", "[scenario][cld]") {
  CldNode n;
  n.Run("start; complete A; complete B");
  auto r = nfsdh::ctl::testing::RunCtl(
      {"status", "--json", "--ctl-socket", n.state + "/ctl.sock"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  // The Create upcalls of A and B, and the handshake, were counted.
  CHECK_THAT(r.out, Catch::Contains("\"cld\""));
}

// An operator of a stock kernel sees the cld pipe nfsd-helper serves and
// its state, not an nfsd filesystem "waiting for upcall files".
TEST_CASE("cld: helper-ctl status shows the cld pipe and whether it is open",
          "[scenario][cld][ctl]") {
  CldNode n;  // --nfsdfs none; nfsd not started: no pipe yet
  const std::string sock = n.state + "/ctl.sock";
  const std::string pipe = n.mount + "/nfsd/cld";
  auto status = [&sock](bool json) {
    std::vector<std::string> args = {"status", "--ctl-socket", sock};
    if (json) args.push_back("--json");
    auto r = nfsdh::ctl::testing::RunCtl(args);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    return r.out;
  };
  std::string table = status(false);
  INFO(table);
  CHECK_THAT(table, Catch::Contains("\n  cld pipe          " + pipe +
                                    " (waiting for nfsd to create it)\n"));
  CHECK_THAT(table, Catch::Contains("\n  nfsdfs            none (upcall files "
                                    "not served)\n"));
  auto j = nlohmann::json::parse(status(true));
  CHECK(j["protocols"]["cld"]["path"] == pipe);
  CHECK(j["protocols"]["cld"]["state"] == "waiting");
  CHECK(j["protocols"]["nfsdfs"]["state"] == "not_configured");
  CHECK(j["serving"] == false);

  n.Run("start; complete A");
  table = status(false);
  CHECK_THAT(table,
             Catch::Contains("\n  cld pipe          " + pipe + " (open)\n"));
  CHECK_THAT(table, !Catch::Contains("waiting"));
  j = nlohmann::json::parse(status(true));
  CHECK(j["protocols"]["cld"]["state"] == "open");
  CHECK(j["serving"] == true);
  CHECK(j["upcalls"]["cld"]["open"] == true);
}

// A stock kernel's nfsd filesystem has no allow_client: the helper serves
// the cld pipe only and reads the directory for v4_end_grace.
TEST_CASE("cld: helper-ctl status says the kernel has no upcall files",
          "[scenario][cld][ctl]") {
  CldNode n(CldNode::Options(2), true);
  n.Run("start; complete A");
  auto r = nfsdh::ctl::testing::RunCtl(
      {"status", "--ctl-socket", n.state + "/ctl.sock"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\n  nfsdfs            " + n.nfsdfs +
                                    " (this kernel has no upcall files)\n"));
  CHECK_THAT(r.out, Catch::Contains("\n  cld pipe          " + n.mount +
                                    "/nfsd/cld (open)\n"));
  r = nfsdh::ctl::testing::RunCtl(
      {"status", "--json", "--ctl-socket", n.state + "/ctl.sock"});
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["protocols"]["nfsdfs"]["path"] == n.nfsdfs);
  CHECK(j["protocols"]["nfsdfs"]["state"] == "not_offered");
  CHECK(j["protocols"]["cld"]["state"] == "open");
}

// Holds SQLite's write lock on `db` (BEGIN EXCLUSIVE) while it lives, as an
// administrator's sqlite3 shell left in a transaction would: the helper's
// writes fail with SQLITE_BUSY once its busy timeout has passed.
class WriteLockHolder {
 public:
  explicit WriteLockHolder(const std::string& db) {
    REQUIRE(sqlite3_open(db.c_str(), &db_) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
  }
  ~WriteLockHolder() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

// The driver waits for a downcall longer than the helper waits for a lock.
CldPipeOptions BusyOptions() {
  CldPipeOptions o = CldNode::Options(2);
  o.upcall_timeout = 30s;
  return o;
}

// RFC 7530 §9.6.3.4, second edge condition (research/recovery.md scenario
// 16): A and B hold state; the server restarts; A is partitioned and never
// reclaims; grace ends; B may now take state that conflicts with A's. At
// the next restart A must not reclaim, even though the helper could not
// record the end of that grace period when nfsd told it.
TEST_CASE(
    "cld: a GraceDone that could not be stored still ends the grace period "
    "before the next start",
    "[scenario][cld]") {
  CldNode n(BusyOptions(), true);
  n.Run("start; complete A; complete B; restart; reclaim B=allow");
  {
    WriteLockHolder lock(n.db());
    // nfsd ends its grace period whatever the answer (-EIO here).
    nfsdsim::CldCallResult done = n.pipe.GraceDone();
    INFO(n.tracker->Log());
    REQUIRE(done.sent);
    CHECK(done.status == -EIO);
  }
  // B, reclaiming in time, then takes a lock that conflicts with A's; nfsd
  // restarts at once (its new instance's v4_end_grace says N).
  n.Run("complete B; restart; reclaim B=allow; reclaim A=bad");
  CHECK(RecordedIds(n.db()) == std::set<std::string>{ClientId("B")});
  CHECK_THAT(n.tracker->Log(),
             Catch::Contains("ended its grace period (recorded after nfsd "
                             "ended it)"));
}

TEST_CASE(
    "cld: a GraceDone that failed is recorded by the retry, with no upcall "
    "to carry it",
    "[scenario][cld]") {
  CldNode n(BusyOptions());  // --nfsdfs none
  n.Run(
      "start; complete A; complete B; restart; reclaim B=allow; "
      "complete B");
  {
    WriteLockHolder lock(n.db());
    nfsdsim::CldCallResult done = n.pipe.GraceDone();
    INFO(n.tracker->Log());
    CHECK(done.status == -EIO);
  }
  INFO(n.tracker->Log());
  CHECK(n.WaitGraceRecorded());
  n.Run("restart; reclaim B=allow; reclaim A=bad");
}

TEST_CASE(
    "cld: a grace end that no helper heard is recorded from v4_end_grace "
    "when the helper starts",
    "[scenario][cld]") {
  CldPipeOptions o = CldNode::Options(2);
  o.no_reader_timeout = 300ms;  // the GraceDone upcall is lost
  CldNode n(o, true);
  n.Run("start; complete A; complete B; restart; reclaim B=allow; "
        "complete B");
  REQUIRE(n.tracker->Kill9());
  REQUIRE(n.pipe.WaitForClosed(kStepTimeout));
  nfsdsim::CldCallResult done = n.pipe.GraceDone();
  CHECK(done.status == -ETIMEDOUT);
  n.SetKernelGraceEnded(true);
  std::string err;
  INFO(err);
  REQUIRE(n.tracker->Start(&err));
  INFO(n.tracker->Log());
  CHECK(n.WaitGraceRecorded());
  CHECK_THAT(n.tracker->Log(), Catch::Contains("v4_end_grace says nfsd has "
                                               "ended its grace period"));
  n.SetKernelGraceEnded(false);  // as the next nfsd start does
  n.Run("restart; reclaim B=allow; reclaim A=bad");
}

TEST_CASE(
    "cld: a restart during grace still allows the clients of the last "
    "grace period when v4_end_grace says N",
    "[scenario][cld]") {
  CldNode n(CldNode::Options(2), true);
  n.Run(
      "start; complete A; complete B; restart; reclaim B=allow; "
      "restart-tracker; restart; reclaim A=allow; reclaim B=allow");
  auto row = ScopeOf(n.db());
  REQUIRE(row);
  CHECK(row->new_boot_time);
}

// The kernel answers a write to v4_end_grace only after the tracker has
// answered the GraceDone it sends (Linux 6.1's cld path waits for ever).
// Here v4_end_grace is a FIFO that is opened for reading, which lets the
// write finish, only once an upcall queued after the end-grace began has
// been answered: a daemon that wrote the file from its loop never would.
TEST_CASE("cld: helper-ctl end-grace leaves the helper free to answer "
          "upcalls",
          "[scenario][cld][ctl]") {
  CldNode n(CldNode::Options(2), true);
  n.Run("start; complete A");
  const std::string fifo = n.nfsdfs + "/v4_end_grace";
  REQUIRE(unlink(fifo.c_str()) == 0);
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  auto end_grace = std::async(std::launch::async, [&] {
    return nfsdh::ctl::testing::RunCtl(
        {"end-grace", "--ctl-socket", n.state + "/ctl.sock"});
  });
  for (int i = 0; i < 100 && n.tracker->Log().find("helper-ctl ends nfsd's "
                                                   "grace period") ==
                                 std::string::npos;
       ++i)
    std::this_thread::sleep_for(50ms);
  // An upcall while the file is being written.
  nfsdsim::CldCallResult create = n.pipe.Create(ClientId("B"), "");
  INFO(n.tracker->Log());
  CHECK(create.ok());
  std::string got;
  {
    std::ifstream in(fifo);  // lets the write through
    std::getline(in, got);
  }
  REQUIRE(end_grace.wait_for(kStepTimeout) == std::future_status::ready);
  auto r = end_grace.get();
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(got == "Y");
}

// tests/campaign found this one: the database fails for good, so a grace end
// that nfsd made stays pending; the helper is killed; nfsd restarts (its new
// instance resets v4_end_grace); a clean helper must still know that grace
// ended, from the marker file it left beside the database.
TEST_CASE(
    "cld: a pending grace end survives a helper killed while the database "
    "cannot be written",
    "[scenario][cld]") {
  CldNode n(CldNode::Options(2), true);
  n.Run(
      "start; complete A; complete B; restart; reclaim B=allow; "
      "complete B");
  const std::string marker = n.db() + ".grace-end.default";
  {
    WriteLockHolder lock(n.db());
    nfsdsim::CldCallResult done = n.pipe.GraceDone();
    INFO(n.tracker->Log());
    CHECK(done.status == -EIO);
    struct stat st;
    CHECK(stat(marker.c_str(), &st) == 0);
    REQUIRE(n.tracker->Kill9());
  }
  std::string err;
  INFO(err);
  REQUIRE(n.tracker->Start(&err));
  INFO(n.tracker->Log());
  CHECK(n.WaitGraceRecorded());
  n.Run("restart; reclaim B=allow; reclaim A=bad");
  struct stat st;
  CHECK(stat(marker.c_str(), &st) != 0);
}

// tests/campaign seed 1022: a GraceStart that the helper could not record
// leaves nfsd running an instance without an allow list (it falls back to
// Check upcalls); when that instance's grace ends, the clients that did not
// reclaim in it must lose their records, not those of the instance before.
TEST_CASE(
    "cld: a GraceStart that was not recorded is recorded before its grace "
    "end",
    "[scenario][cld]") {
  CldNode n(CldNode::Options(2), true);
  n.Run(
      "start; complete A; complete B; restart; reclaim A=allow; "
      "reclaim B=allow; complete A; complete B");
  {
    WriteLockHolder lock(n.db());
    // nfsd restarts: the GraceStart is answered -EIO, nfsd falls back to
    // per-client Check, and each Check is answered -EIO too.
    nfsdsim::CldStartResult r = n.pipe.RestartNfsd();
    INFO(n.tracker->Log());
    CHECK(r.grace_start.status == -EIO);
    CHECK(n.pipe.Reclaim(ClientId("A"), "") != ReclaimResult::kAllowed);
    n.SetKernelGraceEnded(true);
    n.pipe.GraceDone();
  }
  INFO(n.tracker->Log());
  // Recorded once the database can be written: a new instance, and its end.
  CHECK(n.WaitGraceRecorded());
  n.SetKernelGraceEnded(false);
  // Neither may reclaim: the allow list is empty, so grace is skipped.
  n.Run("restart; reclaim A=nograce; reclaim B=nograce");
  CHECK(RecordedIds(n.db()).empty());
}

TEST_CASE(
    "cld: a pending-steps file the helper cannot read stops it, and it "
    "changes nothing",
    "[scenario][cld]") {
  CldNode n(CldNode::Options(2), true);
  n.Run("start; complete A; restart");
  REQUIRE(n.tracker->Stop(nullptr));
  const std::string marker = n.db() + ".grace-end.default";
  std::ofstream(marker) << "end soon\n";
  auto before = ScopeOf(n.db());
  REQUIRE(before);
  std::string err;
  CHECK_FALSE(n.tracker->Start(&err));
  INFO(n.tracker->Log());
  CHECK_THAT(n.tracker->Log(), Catch::Contains("grace-end.default: not "
                                               "understood"));
  auto after = ScopeOf(n.db());
  REQUIRE(after);
  CHECK(after->new_boot_time == before->new_boot_time);
  CHECK(after->boot_time == before->boot_time);
  // A file naming steps it understands is applied and removed.
  std::ofstream(marker, std::ios::trunc)
      << "end " << *before->new_boot_time << "\n";
  REQUIRE(n.tracker->Start(&err));
  CHECK(n.WaitGraceRecorded());
  struct stat st;
  CHECK(stat(marker.c_str(), &st) != 0);
}

}  // namespace
}  // namespace scenario
