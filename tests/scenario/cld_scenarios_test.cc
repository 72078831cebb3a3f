// Reboot stories of the stock kernel's cld protocol: the real nfsd-helper
// binary (--nfsdfs none --cld-pipe <pipe>) against the simulated rpc_pipefs
// cld pipe (tests/sim/cld_pipe.h), which plays nfsd 6.1: the pipe appears at
// every nfsd start and vanishes at every stop, and nfsd gives a tracker one
// second to open it.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "ctl/test_util.h"
#include "tests/scenario/harness.h"
#include "tests/sim/cld_pipe.h"
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

struct CldNode {
  explicit CldNode(int kernel_version = 2) : pipe(Options(kernel_version)) {
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
    tracker = std::make_unique<CldTracker>(tc);
    REQUIRE(tracker->Start(&err));
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
  std::string mount, state;
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

}  // namespace
}  // namespace scenario
