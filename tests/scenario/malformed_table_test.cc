// The hostile-input table: every kind of broken request the kernel side can
// produce (PROTOCOL.md §2 and §5), each sent to the real helper, each getting
// its documented status and a log line naming it, with the helper still
// serving afterwards. Also duplicate sequence numbers, a reply the kernel
// no longer waits for (a write the channel refuses), and an allow list the
// channel refuses.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdfs::Channel;

struct Served {
  TempDir t;
  std::string db = t.path() + "/state/state.sqlite";
  Node n{t.path() + "/nfsd", db};
  Served() {
    n.StartHelper();
    REQUIRE(n.k().StartInstance(1000).ok());
    REQUIRE(n.k().EndGrace().ok());
  }
  nfsdsim::AwaitResult Send(Channel c, const std::string& line) {
    auto t = n.k().Submit(c, line);
    INFO(t.error);
    REQUIRE(t.ok());
    return n.k().Await(t, kStepTimeout);
  }
  // A valid create is still answered 0 and recorded.
  void StillServing(const std::string& id) {
    std::string inst = std::to_string(n.k().CurrentInstance());
    auto r = Send(Channel::kCreateClient,
                  "7777 " + inst + " \\x" + id + " - v41\n");
    REQUIRE(r.answered);
    CHECK(r.status == 0);
    CHECK(n.HelperRunning());
  }
};

std::string Hex(size_t bytes) { return "\\x" + std::string(2 * bytes, 'a'); }

TEST_CASE("every malformed request gets its documented error and a log line",
          "[scenario][input][malformed]") {
  Served s;
  const std::string inst = std::to_string(s.n.k().CurrentInstance());
  struct Case {
    const char* what;
    Channel c;
    std::string line;
    int status;  // the documented reply
  };
  const int kInval = -EINVAL;
  const Case cases[] = {
      // Too long: 4097 bytes and more, with a readable seq.
      {"4097-byte line", Channel::kCreateClient,
       "1001 " + inst + " " + Hex((4097 - 13 - inst.size()) / 2) + " - v41\n",
       kInval},
      {"12000-byte line (read in two parts)", Channel::kExpireClient,
       "1002 " + inst + " " + Hex(5990) + "\n", kInval},
      {"4097-byte grace_done", Channel::kGraceDone,
       "1003 " + inst + std::string(4097, ' ') + "\n", kInval},
      // Bad escapes.
      {"non-hex digits", Channel::kCreateClient,
       "1011 " + inst + " \\xzz - v41\n", kInval},
      {"odd number of hex digits", Channel::kCreateClient,
       "1012 " + inst + " \\x414 - v41\n", kInval},
      {"lone backslash in a number", Channel::kExpireClient,
       "1013 " + inst + "\\ \\x41\n", kInval},
      {"octal escape that is no digit", Channel::kGraceDone,
       "1014 \\061\\040" + inst + "\n", kInval},
      {"escaped principal hash dash", Channel::kCreateClient,
       "1015 " + inst + " \\x41 \\055 v41\n", kInval},
      {"NUL byte", Channel::kCreateClient,
       "1016 " + inst + " \\x41 -" + std::string(1, '\0') + " v41\n", kInval},
      // Wrong field counts.
      {"create with 4 fields", Channel::kCreateClient,
       "1021 " + inst + " \\x41 -\n", kInval},
      {"create with 6 fields", Channel::kCreateClient,
       "1022 " + inst + " \\x41 - v41 v41\n", kInval},
      {"expire with 2 fields", Channel::kExpireClient, "1023 " + inst + "\n",
       kInval},
      {"expire with 4 fields", Channel::kExpireClient,
       "1024 " + inst + " \\x41 -\n", kInval},
      {"grace_done with 3 fields", Channel::kGraceDone,
       "1025 " + inst + " extra\n", kInval},
      {"start with 3 fields", Channel::kAllowClient, "1026 start 1\n", kInval},
      {"start with 5 fields", Channel::kAllowClient, "1027 start 1 1000 2\n",
       kInval},
      {"double space", Channel::kCreateClient,
       "1028 " + inst + "  \\x41 - v41\n", kInval},
      {"trailing space", Channel::kGraceDone, "1029 " + inst + " \n", kInval},
      // Client ids of 0 and 1025 bytes.
      {"zero-length id", Channel::kCreateClient,
       "1031 " + inst + " \\x - v41\n", kInval},
      {"zero-length id (expire)", Channel::kExpireClient,
       "1032 " + inst + " \\x\n", kInval},
      {"1025-byte id", Channel::kCreateClient,
       "1033 " + inst + " " + Hex(1025) + " - v41\n", kInval},
      {"1025-byte id (expire)", Channel::kExpireClient,
       "1034 " + inst + " " + Hex(1025) + "\n", kInval},
      {"31-byte principal hash", Channel::kCreateClient,
       "1035 " + inst + " \\x41 " + Hex(31) + " v41\n", kInval},
      // Bad instances: malformed ones are -EINVAL, well-formed ones the
      // helper never issued are -ESTALE.
      {"instance 0", Channel::kCreateClient, "1041 0 \\x41 - v41\n", kInval},
      {"instance with a leading zero", Channel::kExpireClient,
       "1042 0" + inst + " \\x41\n", kInval},
      {"negative instance", Channel::kGraceDone, "1043 -" + inst + "\n",
       kInval},
      {"instance 2^63", Channel::kCreateClient,
       "1044 9223372036854775808 \\x41 - v41\n", kInval},
      {"instance not a number", Channel::kExpireClient, "1045 x \\x41\n",
       kInval},
      {"unknown instance", Channel::kCreateClient,
       "1046 " + std::to_string(s.n.k().CurrentInstance() + 1) +
           " \\x41 - v41\n",
       -ESTALE},
      {"older instance", Channel::kGraceDone,
       "1047 " + std::to_string(s.n.k().CurrentInstance() - 1) + "\n",
       -ESTALE},
      // Other bad words and numbers.
      {"unknown minor version", Channel::kCreateClient,
       "1051 " + inst + " \\x41 - v42\n", kInval},
      {"unknown start keyword", Channel::kAllowClient, "1052 begin 1 1000\n",
       kInval},
      {"unsupported protocol version", Channel::kAllowClient,
       "1053 start 2 1000\n", -EPROTONOSUPPORT},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto r = s.Send(c.c, c.line);
    REQUIRE(r.answered);
    CHECK(r.status == c.status);
    if (c.c == Channel::kAllowClient) CHECK(r.instance == 0);
    // The log names the request by its sequence number.
    std::string seq = c.line.substr(0, c.line.find(' '));
    std::string needle =
        c.status == kInval ? "malformed request " + seq + " refused with -EINVAL"
        : c.status == -ESTALE ? " " + seq + ": instance "
                              : "the kernel speaks protocol version 2";
    INFO(needle);
    CHECK(s.n.WaitForLog(needle));
  }
  // A line without a readable sequence number cannot be answered: it is
  // logged, and the kernel withdraws it after its timeout.
  s.n.k().SetRequestTimeout(500ms);
  auto lost = s.n.k().Submit(Channel::kExpireClient, "x1 \\x41\n");
  REQUIRE(lost.ok());
  auto r = s.n.k().Await(lost, kStepTimeout);
  CHECK(r.withdrawn);
  CHECK(s.n.WaitForLog("without a readable sequence number"));
  s.n.k().SetRequestTimeout(kStepTimeout);
  // Nothing of all that was applied, and the helper serves on.
  CHECK(RecordedIds(s.db).empty());
  s.StillServing("4242");
  CHECK(RecordedIds(s.db) == std::set<std::string>{"BB"});
  auto scope = ScopeOf(s.db);
  REQUIRE(scope);
  CHECK_FALSE(scope->new_boot_time.has_value());  // no start was applied
}

TEST_CASE("a sequence number used again is answered again",
          "[scenario][input][malformed]") {
  Served s;
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  // The kernel keeps a seq unique only among outstanding requests: once
  // answered it may come back, for the same request (a replay) or another.
  CHECK(s.Send(Channel::kCreateClient, "5 " + inst + " \\x41 - v41\n")
            .status == 0);
  CHECK(s.Send(Channel::kCreateClient, "5 " + inst + " \\x41 - v41\n")
            .status == 0);
  CHECK(s.Send(Channel::kCreateClient, "5 " + inst + " \\x42 - v40\n")
            .status == 0);
  CHECK(s.Send(Channel::kExpireClient, "5 " + inst + " \\x41\n").status == 0);
  CHECK(s.Send(Channel::kExpireClient, "5 " + inst + " \\x41\n").status == 0);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"B"});
  s.StillServing("43");
}

TEST_CASE("a reply the kernel no longer waits for is logged, not fatal",
          "[scenario][input][malformed]") {
  Served s;
  std::string inst = std::to_string(s.n.k().CurrentInstance());
  // Hold the database's write lock, so the helper reads the request and
  // then waits for the lock (250 ms, daemon.cc) while the kernel withdraws
  // the request (after 100 ms): its -EIO reply goes to a channel where
  // nobody waits for it and is refused. On a loaded machine the helper may
  // not even read the request before it is withdrawn; then try again.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(s.db.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  s.n.k().SetRequestTimeout(100ms);
  const uint64_t rejected =
      s.n.k().Stats(Channel::kCreateClient).rejected_writes;
  uint64_t late = 0;  // requests read, then withdrawn
  std::string id;
  for (int i = 0; i < 20 && late == 0; ++i) {
    id = std::to_string(77 + i);
    uint64_t read = s.n.k().Stats(Channel::kCreateClient).read;
    auto t = s.n.k().Submit(Channel::kCreateClient,
                            id + " " + inst + " \\x41 - v41\n");
    REQUIRE(t.ok());
    auto r = s.n.k().Await(t, kStepTimeout);
    CHECK(r.withdrawn);
    if (s.n.k().Stats(Channel::kCreateClient).read > read) ++late;
  }
  REQUIRE(late == 1);
  CHECK(s.n.WaitForLog("reply to request " + id + " was not delivered"));
  REQUIRE(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(db);
  CHECK(s.n.k().Stats(Channel::kCreateClient).rejected_writes == rejected + 1);
  s.n.k().SetRequestTimeout(kStepTimeout);
  s.StillServing("44");
}

TEST_CASE("a start whose allow list was not wholly written is answered -EIO",
          "[scenario][input][malformed]") {
  Served s;
  REQUIRE(s.n.k().EstablishState("A", "", Minor::kV41).ok());
  // A record the kernel refuses to take (a 5-byte principal hash), stamped
  // with the running instance so that the next start keeps it: the write of
  // the allow list fails with EINVAL.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(s.db.c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  std::string insert =
      "INSERT INTO v4clients VALUES ('default', X'5a', X'0102030405', 1, " +
      std::to_string(s.n.k().CurrentInstance()) + ", 0, 0)";
  REQUIRE(sqlite3_exec(db, insert.c_str(), nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  auto before = ScopeOf(s.db);
  REQUIRE(before);

  auto r = s.n.k().StartInstance(2000);
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.status == -EIO);
  CHECK(r.instance == 0);
  CHECK(r.allow.empty());
  CHECK(s.n.WaitForLog("was not wholly written"));
  // Nothing the failed start did is kept: no new instance, no purge.
  auto after = ScopeOf(s.db);
  REQUIRE(after);
  CHECK(after->boot_time == before->boot_time);
  CHECK(after->new_boot_time == before->new_boot_time);
  CHECK(after->max_instance == before->max_instance);
  CHECK(RecordedIds(s.db) == std::set<std::string>{"A", "Z"});

  // Once the record is gone, the kernel's next start succeeds.
  REQUIRE(sqlite3_exec(db, "DELETE FROM v4clients WHERE id = X'5a'", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto again = s.n.k().StartInstance(2001);
  CHECK(again.ok());
  CHECK(Ids(again.allow) == std::set<std::string>{"A"});
  CHECK(s.n.HelperRunning());
}

}  // namespace
}  // namespace scenario
