// One request per read() (PROTOCOL.md §1), against the real helper: a read
// that returns fewer bytes than the helper's buffer is one whole request,
// and a request longer than the buffer, which the kernel returns in pieces
// before any other request, is refused as a whole. No piece of one request
// is ever joined to another or handled as a request of its own.
#include <catch2/catch.hpp>
#include <cerrno>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdfs::Channel;

// The helper's read buffer (daemon/daemon.cc).
constexpr size_t kReadBuffer = 8192;

struct Served {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n{t.path() + "/nfsd", db};
  std::string inst;
  Served() {
    n.StartHelper();
    REQUIRE(n.k().StartInstance(1000).ok());
    REQUIRE(n.k().EndGrace().ok());
    inst = std::to_string(n.k().CurrentInstance());
  }
  nfsdsim::Ticket Queue(Channel c, const std::string& line) {
    auto t = n.k().Submit(c, line);
    INFO(t.error);
    REQUIRE(t.ok());
    return t;
  }
  std::string Create(uint64_t seq, const std::string& hex) {
    return std::to_string(seq) + " " + inst + " \\x" + hex + " - v41\n";
  }
};

TEST_CASE("a request without its final newline is refused alone",
          "[scenario][input][reads]") {
  Served s;
  std::string cut = s.Create(601, "41");
  cut.pop_back();
  auto first = s.Queue(Channel::kCreateClient, cut);
  auto second = s.Queue(Channel::kCreateClient, s.Create(602, "42"));
  auto r1 = s.n.k().Await(first, kStepTimeout);
  auto r2 = s.n.k().Await(second, kStepTimeout);
  REQUIRE(r1.answered);
  CHECK(r1.status == -EINVAL);
  // The next request is read, and answered, as a request of its own.
  REQUIRE(r2.answered);
  CHECK(r2.status == 0);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"B"});
  CHECK(s.n.WaitForLog("malformed request 601 refused with -EINVAL"));
}

TEST_CASE("the tail of an over-long request is never handled as a request",
          "[scenario][input][reads]") {
  Served s;
  // Two buffers full, then a tail that reads as a create of its own.
  std::string head = "1001 " + s.inst + " \\x";
  head += std::string(2 * kReadBuffer - head.size(), 'a');
  std::string tail = s.Create(77, "4242");
  auto t = s.Queue(Channel::kCreateClient, head + tail);
  auto next = s.Queue(Channel::kCreateClient, s.Create(1002, "43"));
  auto rn = s.n.k().Await(next, kStepTimeout);
  REQUIRE(rn.answered);
  CHECK(rn.status == 0);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"C"});
  CHECK(s.n.k().Stats(Channel::kCreateClient).rejected_writes == 0);
  auto r = s.n.k().Await(t, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == -EINVAL);
  CHECK(s.n.WaitForLog("malformed request 1001 refused with -EINVAL"));
}

TEST_CASE("a 1 MiB request with a readable sequence number gets -EINVAL",
          "[scenario][input][reads]") {
  Served s;
  std::string line =
      "1003 " + s.inst + " \\x" + std::string(1 << 20, 'b') + "\n";
  auto t = s.Queue(Channel::kExpireClient, line);
  auto next = s.Queue(Channel::kCreateClient, s.Create(1004, "44"));
  auto rn = s.n.k().Await(next, kStepTimeout);
  REQUIRE(rn.answered);
  CHECK(rn.status == 0);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"D"});
  auto r = s.n.k().Await(t, kStepTimeout);
  REQUIRE(r.answered);
  CHECK(r.status == -EINVAL);
  // Logged escaped and cut short, not 1 MiB of it.
  CHECK(s.n.WaitForLog("malformed request 1003 refused with -EINVAL"));
  CHECK(s.n.Log().size() < 64 * 1024);
  CHECK(s.n.HelperRunning());
}

}  // namespace
}  // namespace scenario
