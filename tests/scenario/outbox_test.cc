// The HA callout's durable outbox (--ha-callout; daemon/callout/callout.h):
// every event is written in the transaction of the change that causes it and
// run until the callout succeeds, in order, across failures, timeouts, a
// restart after kill -9, and more events than fit in memory at once.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "ctl/test_util.h"
#include "daemon/store/store.h"
#include "nfsdfs-proto/qword.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdh::ctl::testing::ReadFile;

const std::string kA = "Linux NFSv4.1 client-a.example.org";
const std::string kB = std::string("\x00\x01\xfe\xff binary id \n", 16);

std::string Script(const std::string& dir, const std::string& name,
                   const std::string& body) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << "#!/bin/sh\n" << body;
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  return path;
}

size_t Lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Waits until `path` holds `text`, or `limit` passed.
bool WaitForFile(const std::string& path, const std::string& text,
                 std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (ReadFile(path) == text) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A callout that fails its first `failures` runs (exit 7), counting every
// run in <dir>/runs, and appends the arguments of each successful run to
// <dir>/log.
std::string FlakyCallout(const std::string& dir, int failures) {
  return Script(dir, "flaky",
                "cd " + dir +
                    "\nn=$(cat runs 2>/dev/null || echo 0)\nn=$((n + 1))\n"
                    "echo $n > runs\nif [ $n -le " +
                    std::to_string(failures) +
                    " ]; then exit 7; fi\necho \"$@\" >> log\n");
}

TEST_CASE("a failing HA callout is retried until it succeeds, in order",
          "[scenario][callout][outbox]") {
  TempDir t;
  const std::string prog = FlakyCallout(t.path(), 2);
  Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
  n.StartHelper({}, {"--ha-callout", prog});
  REQUIRE(n.k().StartInstance(time(nullptr)).ok());
  REQUIRE(n.k().EndGrace().ok());
  REQUIRE(n.k().EstablishState(kA, "", Minor::kV41).ok());
  REQUIRE(n.k().Expire(kA).ok());
  const std::string hex = nfsdfs::HexString(kA);
  // Back-off of 1 s then 2 s; generous on a loaded machine.
  bool delivered = WaitForFile(t.path() + "/log",
                               "add-client default " + hex +
                                   "\ndel-client default " + hex + "\n",
                               std::chrono::seconds(60));
  INFO(n.Log());
  CHECK(delivered);
  // Two failures and one success for each event: delivered once.
  CHECK(ReadFile(t.path() + "/runs") == "4\n");
  CHECK(n.WaitForLog(prog + " add-client default " + hex +
                     " failed: exit status 7; retrying in 1 s"));
  CHECK(n.WaitForLog(prog + " add-client default " + hex +
                     " failed: exit status 7; retrying in 2 s"));
  CHECK(n.HelperRunning());
}

TEST_CASE("a callout past its timeout is killed and run again",
          "[scenario][callout][outbox]") {
  TempDir t;
  // The first run hangs; the next ones record their arguments.
  const std::string prog = Script(
      t.path(), "hang",
      "cd " + t.path() +
          "\nif [ ! -e hung ]; then touch hung; exec sleep 30; fi\n"
          "echo \"$@\" >> log\n");
  Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
  n.StartHelper({}, {"--ha-callout", prog, "--ha-callout-timeout", "1"});
  REQUIRE(n.k().StartInstance(time(nullptr)).ok());
  REQUIRE(n.k().EndGrace().ok());
  REQUIRE(n.k().EstablishState(kB, "", Minor::kV40).ok());
  const std::string hex = nfsdfs::HexString(kB);
  bool delivered = WaitForFile(t.path() + "/log",
                               "add-client default " + hex + "\n",
                               std::chrono::seconds(60));
  INFO(n.Log());
  CHECK(delivered);
  CHECK(n.WaitForLog(prog + " add-client default " + hex +
                     " killed: still running after 1 s; retrying in 1 s"));
}

TEST_CASE("a callout lost to kill -9 after the COMMIT runs after a restart",
          "[scenario][callout][outbox][crash]") {
  TempDir t;
  const std::string log = t.path() + "/log";
  const std::string prog =
      Script(t.path(), "record", "echo \"$@\" >> " + log + "\n");
  Node n(t.path() + "/nfsd", t.path() + "/state/state.sqlite");
  n.StartHelper({}, {"--ha-callout", prog});
  REQUIRE(n.k().StartInstance(time(nullptr)).ok());
  REQUIRE(n.k().EndGrace().ok());
  n.StopHelper();
  // The next batch, the create, commits and the helper dies before it
  // could run the callout (or answer the kernel).
  n.StartHelper({{"NFSD_HELPER_TEST_CRASH", "after-commit:1"}},
                {"--ha-callout", prog});
  auto reply = std::async(std::launch::async, [&] {
    return n.k().EstablishState(kA, "", Minor::kV41).status;
  });
  auto death = n.WaitHelperDeath();
  REQUIRE(death.signal == SIGKILL);
  CHECK(ReadFile(log).empty());
  n.StartHelper({}, {"--ha-callout", prog});
  CHECK(reply.get() == 0);
  bool delivered =
      WaitForFile(log, "add-client default " + nfsdfs::HexString(kA) + "\n",
                  std::chrono::seconds(60));
  INFO(n.Log());
  CHECK(delivered);
}

TEST_CASE("a grace end that purges more records than any queue held calls "
          "out every one",
          "[scenario][callout][outbox]") {
  // More than the 10000 events the callout's memory queue once held.
  constexpr int kRecords = 10050;
  TempDir t;
  const std::string db = t.path() + "/state/state.sqlite";
  {
    // Records that may reclaim at the next start, and will not.
    std::unique_ptr<nfsdh::store::Store> st;
    REQUIRE(nfsdh::store::Store::Open(
                db, nfsdh::store::Store::Mode::kReadWrite, &st)
                .ok());
    REQUIRE(st->Begin().ok());
    nfsdh::store::ScopeRow row;
    row.name = "default";
    row.boot_time = 100;
    row.max_instance = 100;
    REQUIRE(st->PutScope(row).ok());
    for (int i = 0; i < kRecords; ++i) {
      nfsdh::store::ClientRow c;
      c.scope = "default";
      c.id = "client-" + std::to_string(i);
      c.instance = 100;
      c.minor = 1;
      REQUIRE(st->UpsertClient(c).ok());
    }
    REQUIRE(st->Commit().ok());
  }
  const std::string log = t.path() + "/log";
  const std::string prog =
      Script(t.path(), "record", "echo \"$1 $3\" >> " + log + "\n");
  Node n(t.path() + "/nfsd", db);
  n.StartHelper({}, {"--ha-callout", prog});
  REQUIRE(n.k().StartInstance(time(nullptr)).allow.size() ==
          static_cast<size_t>(kRecords));
  REQUIRE(n.k().EndGrace().ok());
  // Until all are there, or nothing more arrives for 30 s.
  size_t seen = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (seen < static_cast<size_t>(kRecords) &&
         std::chrono::steady_clock::now() - last_progress <
             std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    size_t now = Lines(ReadFile(log));
    if (now != seen) last_progress = std::chrono::steady_clock::now();
    seen = now;
  }
  std::set<std::string> lines;
  std::istringstream in(ReadFile(log));
  for (std::string l; std::getline(in, l);) lines.insert(l);
  std::set<std::string> expect;
  for (int i = 0; i < kRecords; ++i)
    expect.insert("del-client " +
                  nfsdfs::HexString("client-" + std::to_string(i)));
  size_t missing = 0;
  for (const std::string& e : expect) missing += lines.count(e) == 0;
  CHECK(seen == static_cast<size_t>(kRecords));
  CHECK(missing == 0);
  CHECK(lines.size() == expect.size());
  CHECK(n.Log().find("queue full") == std::string::npos);
  CHECK(RecordedIds(db).empty());
}

}  // namespace
}  // namespace scenario
