// Tests of `helper-ctl dump`: databases are written with the real Store write
// API, read back through the verb in-process, and once through the built
// binary.
#include <fcntl.h>
#include <grp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <streambuf>

#include "common/defaults.h"
#include "ctl/format.h"
#include "ctl/test_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"

namespace nfsdh::ctl {
namespace {

using nlohmann::json;
using store::ClientRow;
using store::ScopeRow;
using store::Store;
using testing::Lines;
using testing::Result;
using testing::RunCtl;
using testing::TempDir;

const std::string kBinaryId("\x00\x01\xfe\xff", 4);
const std::string kPrinchash(32, '\xab');
const std::string kQuotedId = "say \"hi\"\\now";
const std::string kTabId = "tab\there";

std::unique_ptr<Store> OpenRw(const std::string& path) {
  std::unique_ptr<Store> st;
  Status s = Store::Open(path, Store::Mode::kReadWrite, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return st;
}

ClientRow Client(const std::string& scope, const std::string& id, int minor,
                 int64_t instance, int64_t first, int64_t last,
                 const std::string& princhash = "") {
  ClientRow c;
  c.scope = scope;
  c.id = id;
  c.princhash = princhash;
  c.minor = minor;
  c.instance = instance;
  c.first_seen = first;
  c.last_seen = last;
  return c;
}

// Three scopes:
//   default  in grace (new_boot_time set), old_boot_time unset, 6 clients;
//   empty    every optional field unset, no clients;
//   ha-1     out of grace, 1 client.
void WriteFixture(const std::string& db) {
  auto st = OpenRw(db);
  REQUIRE(st->Begin().ok());
  ScopeRow d;
  d.name = "default";
  d.boot_time = 1763700000;
  d.new_boot_time = 1763771860;
  d.max_instance = 1763771860;
  d.kernel_boot_time = 1763771853;
  d.grace_started = 1763771860;
  d.grace_ended = 1763700100;
  REQUIRE(st->PutScope(d).ok());
  ScopeRow e;
  e.name = "empty";
  REQUIRE(st->PutScope(e).ok());
  ScopeRow h;
  h.name = "ha-1";
  h.boot_time = 1700000000;
  h.old_boot_time = 1690000000;
  h.max_instance = 1700000000;
  h.kernel_boot_time = 1699999990;
  h.grace_started = 1700000000;
  h.grace_ended = 1700000090;
  REQUIRE(st->PutScope(h).ok());

  REQUIRE(st->UpsertClient(Client("default", kBinaryId, 0, 1763700000,
                                  1763700000, 1763700000, kPrinchash))
              .ok());
  REQUIRE(st->UpsertClient(Client("default", "Linux NFSv4.0 host/10.0.0.1 tcp",
                                  0, 1763771860, 1763771860, 1763771860))
              .ok());
  REQUIRE(st->UpsertClient(Client("default", "linux-client-1", 1, 1763771860,
                                  1763771000, 1763771900))
              .ok());
  REQUIRE(st->UpsertClient(Client("default", kQuotedId, 1, 1763771860,
                                  1763771860, 1763771860))
              .ok());
  REQUIRE(st->UpsertClient(Client("default", kTabId, 1, 1763771860, 1763771860,
                                  1763771860))
              .ok());
  REQUIRE(st->UpsertClient(Client("default", "\x7f", 1, 1763771860, 1763771860,
                                  1763771860))
              .ok());
  REQUIRE(st->UpsertClient(Client("ha-1", "ha-client", 1, 1700000000,
                                  1690000000, 1700000000, kPrinchash))
              .ok());
  REQUIRE(st->Commit().ok());
}

using nfsdh::ctl::testing::ReadFile;

json ParseJson(const std::string& text) {
  json j;
  INFO(text);
  REQUIRE_NOTHROW(j = json::parse(text));
  return j;
}

// The line of `text` that contains `needle` (exactly one must).
std::string LineWith(const std::string& text, const std::string& needle) {
  std::string found;
  int n = 0;
  for (const std::string& line : Lines(text)) {
    if (line.find(needle) != std::string::npos) {
      found = line;
      ++n;
    }
  }
  INFO("looking for " << needle << " in\n" << text);
  REQUIRE(n == 1);
  return found;
}

std::string Spaces(size_t n) { return std::string(n, ' '); }

// A control socket no daemon answers on, so that dump reads the database
// (whatever runs on this machine), and what it then says on stderr.
std::string NoDaemon(const TempDir& t) { return t.path + "/no-daemon.sock"; }
const char kFallbackNote[] =
    "(read from the database: the daemon is not running)\n";

TEST_CASE("format: ids, hashes, minor versions, times", "[ctl]") {
  CHECK(IsPrintable("linux-client-1"));
  CHECK(IsPrintable(" ~"));
  CHECK(IsPrintable(""));
  CHECK_FALSE(IsPrintable("a\tb"));
  CHECK_FALSE(IsPrintable("\x7f"));
  CHECK_FALSE(IsPrintable("caf\xc3\xa9"));  // UTF-8 is not ASCII
  CHECK_FALSE(IsPrintable(std::string("a\0b", 3)));
  CHECK(IdCell("linux-client-1") == "\"linux-client-1\"");
  CHECK(IdCell(kQuotedId) == "\"say \\\"hi\\\"\\\\now\"");
  CHECK(IdCell(kBinaryId) == "0x0001feff");
  CHECK(IdCell(kTabId) ==
        "0x74616209686572"
        "65");
  CHECK(PrinchashCell("") == "-");
  std::string hash;
  for (int i = 0; i < 32; ++i) hash += "ab";
  CHECK(PrinchashCell(kPrinchash) == hash);
  CHECK(MinorName(0) == "4.0");
  CHECK(MinorName(1) == "4.1+");
  CHECK(MinorName(7) == "?7");
  CHECK(MinorName(-1) == "unknown");  // nfsdcld did not record it
  CHECK(TimeCell(std::nullopt) == "-");
  CHECK(TimeCell(1763771860) == "1763771860  2025-11-22T00:37:40Z");
  CHECK(TimeCell(0) == "0  1970-01-01T00:00:00Z");
}

TEST_CASE("dump --wide: the table shows every scope and client", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  Result r =
      RunCtl({"dump", "--db", db, "--ctl-socket", NoDaemon(t), "--wide"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(r.err == kFallbackNote);
  std::vector<std::string> lines = Lines(r.out);
  CHECK(lines.at(0) == "database " + db + " (schema version " +
                           std::to_string(store::kSchemaVersion) + ")");

  // Scopes in name order.
  size_t d = r.out.find("\nscope default\n");
  size_t e = r.out.find("\nscope empty\n");
  size_t h = r.out.find("\nscope ha-1\n");
  REQUIRE(d != std::string::npos);
  REQUIRE(e != std::string::npos);
  REQUIRE(h != std::string::npos);
  CHECK(d < e);
  CHECK(e < h);
  const std::string def = r.out.substr(d, e - d);
  const std::string empty = r.out.substr(e, h - e);

  SECTION("scope fields: numbers, dates, and - when unset") {
    CHECK_THAT(def, Catch::Contains("\n  boot_time         1763700000  "
                                    "2025-11-21T04:40:00Z\n"
                                    "  new_boot_time     1763771860  "
                                    "2025-11-22T00:37:40Z\n"
                                    "  old_boot_time     -\n"
                                    "  max_instance      1763771860\n"
                                    "  kernel_boot_time  1763771853  "
                                    "2025-11-22T00:37:33Z\n"
                                    "  grace             open since "
                                    "2025-11-22T00:37:40Z\n"
                                    "  grace_started     1763771860  "
                                    "2025-11-22T00:37:40Z\n"
                                    "  grace_ended       1763700100  "
                                    "2025-11-21T04:41:40Z\n"
                                    "  clients           6\n"));
    CHECK(empty ==
          "\nscope empty\n"
          "  boot_time         -\n"
          "  new_boot_time     -\n"
          "  old_boot_time     -\n"
          "  max_instance      0\n"
          "  kernel_boot_time  -\n"
          "  grace             closed, none has ended yet\n"
          "  grace_started     -\n"
          "  grace_ended       -\n"
          "  clients           0\n");
    CHECK_THAT(r.out.substr(h),
               Catch::Contains("  grace             closed, last ended "
                               "2023-11-14T22:14:50Z\n"));
  }

  SECTION("client rows: printable ids quoted, others in hex, aligned") {
    const std::string header = LineWith(def, "PRINCHASH");
    CHECK(header == "  " + Spaces(2) + "INSTANCE  MINOR    FIRST_SEEN" +
                        Spaces(10) + "  LAST_SEEN" + Spaces(11) +
                        "  PRINCHASH" + Spaces(55) + "  ID");
    std::string hash;
    for (int i = 0; i < 32; ++i) hash += "ab";
    CHECK(
        LineWith(def, "0x0001feff") ==
        "  1763700000  4.0      2025-11-21T04:40:00Z  2025-11-21T04:40:00Z  " +
            hash + "  0x0001feff");
    CHECK(LineWith(def, "linux-client-1") ==
          "  1763771860  4.1+     2025-11-22T00:23:20Z  2025-11-22T00:38:20Z  "
          "-" +
              Spaces(63) + "  \"linux-client-1\"");
    CHECK_THAT(
        LineWith(def, "host/10.0.0.1"),
        Catch::EndsWith("  4.0      2025-11-22T00:37:40Z  "
                        "2025-11-22T00:37:40Z  -" +
                        Spaces(63) + "  \"Linux NFSv4.0 host/10.0.0.1 tcp\""));
    CHECK_THAT(LineWith(def, "say"),
               Catch::EndsWith("  \"say \\\"hi\\\"\\\\now\""));
    CHECK_THAT(LineWith(def, "0x746162"),
               Catch::EndsWith("  0x7461620968657265"));
    CHECK_THAT(LineWith(def, "0x7f"), Catch::EndsWith("  0x7f"));
    // The ID column starts at the same offset on every row.
    const size_t id_col = header.find("ID");
    int rows = 0;
    for (const std::string& line : Lines(def)) {
      if (line.size() > 3 && line.rfind("  17", 0) == 0) {
        ++rows;
        INFO(line);
        CHECK(line.find_first_of("\"0", id_col) == id_col);
        CHECK(line.substr(id_col - 2, 2) == "  ");
      }
    }
    CHECK(rows == 6);
    // Rows come in id order (as bytes): binary 0x00.. first, 0x7f last.
    CHECK(def.find("0x0001feff") < def.find("\"Linux"));
    CHECK(def.find("\"Linux") < def.find("\"linux"));
    CHECK(def.find("\"linux") < def.find("\"say"));
    CHECK(def.find("\"say") < def.find("0x746162"));
    CHECK(def.find("0x746162") < def.find("0x7f"));
  }

  SECTION("a scope without clients has no client table") {
    CHECK(empty.find("INSTANCE") == std::string::npos);
  }
}

// What a server's database holds: Linux clients of both minor versions (the
// ids Linux sends: "Linux NFSv4.0 <client>/<server> tcp" and "Linux
// NFSv4.1 <hostname>"), some with a Kerberos principal, a record imported
// from nfsdcld, 10-digit instance ids, and a scope in grace.
void WriteRealisticFixture(const std::string& db) {
  auto st = OpenRw(db);
  REQUIRE(st->Begin().ok());
  ScopeRow d;
  d.name = "nfs-ha-service-east";
  d.boot_time = 1763700000;
  d.new_boot_time = 1796282684;
  d.old_boot_time = 1763600000;
  d.max_instance = 1796282684;
  d.kernel_boot_time = 1796282680;
  d.grace_started = 1796282684;
  d.grace_ended = 1796282683;
  REQUIRE(st->PutScope(d).ok());
  int i = 0;
  for (const std::string& id :
       {std::string("Linux NFSv4.0 192.168.100.123/192.168.100.1 tcp"),
        std::string("Linux NFSv4.0 10.20.30.40/10.20.30.1 tcp"),
        std::string("Linux NFSv4.1 build-server-07.lab.example.com"),
        std::string("Linux NFSv4.2 workstation-123.example.org"),
        std::string("Linux NFSv4.1 k8s-node-42.cluster.local"),
        std::string("\x8a\x11\x00\x42\x01\x02\x03\x04", 8)}) {
    ++i;
    REQUIRE(st->UpsertClient(Client(d.name, id,
                                    id.find("4.0") != id.npos ? 0
                                    : i == 5                  ? -1
                                                              : 1,
                                    1796282684, 1763771000 + i, 1796282690 + i,
                                    i % 2 ? kPrinchash : ""))
                .ok());
  }
  REQUIRE(st->Commit().ok());
}

TEST_CASE("dump: the default table fits 100 columns", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteRealisticFixture(db);
  Result r = RunCtl({"dump", "--db", db, "--ctl-socket", NoDaemon(t)});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  int rows = 0;
  for (const std::string& line : Lines(r.out)) {
    INFO(line);
    CHECK(line.size() <= 100);
    if (line.find("\"Linux") != std::string::npos) ++rows;
  }
  CHECK(rows == 5);
  // Every record is there, with what tells an operator whether it may
  // reclaim: instance, minor version, last seen.
  CHECK_THAT(r.out, Catch::Contains("\n    INSTANCE  MINOR    LAST_SEEN" +
                                    Spaces(11) + "  ID\n"));
  CHECK_THAT(r.out, Catch::Contains("\n  1796282684  4.0      "
                                    "2026-12-03T07:24:51Z  "
                                    "\"Linux NFSv4.0 192.168.100.123/"
                                    "192.168.100.1 tcp\"\n"));
  CHECK_THAT(r.out, Catch::Contains("  unknown  "));
  CHECK_THAT(r.out, Catch::Contains("  0x8a11004201020304\n"));
  std::string hash;
  for (int i = 0; i < 32; ++i) hash += "ab";
  CHECK_THAT(r.out, !Catch::Contains("FIRST_SEEN"));
  CHECK_THAT(r.out, !Catch::Contains(hash));

  // --wide shows every column in full, as --json does.
  Result wide =
      RunCtl({"dump", "--db", db, "--ctl-socket", NoDaemon(t), "--wide"});
  REQUIRE(wide.code == kExitOk);
  CHECK_THAT(wide.out, Catch::Contains("  FIRST_SEEN  "));
  CHECK_THAT(wide.out, Catch::Contains("  " + hash + "  \"Linux NFSv4.0 192"));
  CHECK(RunCtl({"dump", "--db", db, "--wide", "--json"}).code == kExitUsage);
}

TEST_CASE("dump takes db and ctl-socket from nfs.conf", "[ctl][config]") {
  TempDir t;
  const std::string db = t.path + "/configured.sqlite";
  WriteFixture(db);
  const std::string conf = t.path + "/nfs.conf";
  std::ofstream(conf) << "[nfsd-helper]\ndb = " << db
                      << "\nctl-socket = " << NoDaemon(t) << "\n";
  // No --db and no --ctl-socket: both come from the file.
  Result r = RunCtl({"dump", "--config", conf, "--scope", "ha-1"});
  INFO(r.out << r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(r.err == kFallbackNote);
  CHECK(Lines(r.out).at(0) == "database " + db + " (schema version " +
                                  std::to_string(store::kSchemaVersion) + ")");
  CHECK_THAT(r.out, Catch::Contains("\"ha-client\""));
  // The command line wins.
  r = RunCtl({"dump", "--config", conf, "--db", t.path + "/other.sqlite"});
  CHECK(r.code == kExitError);
  CHECK(r.err == "helper-ctl: no database at " + t.path + "/other.sqlite" +
                     ": is nfsd-helper configured to use another --db?\n");
  // A --config that cannot be read is an error.
  r = RunCtl({"dump", "--config", t.path + "/none.conf"});
  CHECK(r.code == kExitError);
  CHECK(r.out.empty());
}

TEST_CASE("dump --scope shows that scope only", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);

  Result r = RunCtl(
      {"dump", "--db", db, "--scope", "ha-1", "--ctl-socket", NoDaemon(t)});
  REQUIRE(r.code == kExitOk);
  CHECK(r.err == kFallbackNote);
  CHECK(r.out ==
        "database " + db + " (schema version " +
            std::to_string(store::kSchemaVersion) +
            ")\n"
            "\n"
            "scope ha-1\n"
            "  boot_time         1700000000  2023-11-14T22:13:20Z\n"
            "  new_boot_time     -\n"
            "  old_boot_time     1690000000  2023-07-22T04:26:40Z\n"
            "  max_instance      1700000000\n"
            "  kernel_boot_time  1699999990  2023-11-14T22:13:10Z\n"
            "  grace             closed, last ended 2023-11-14T22:14:50Z\n"
            "  grace_started     1700000000  2023-11-14T22:13:20Z\n"
            "  grace_ended       1700000090  2023-11-14T22:14:50Z\n"
            "  clients           1\n"
            "\n"
            "    INSTANCE  MINOR    LAST_SEEN             ID\n"
            "  1700000000  4.1+     2023-11-14T22:13:20Z  \"ha-client\"\n");

  r = RunCtl({"dump", "--scope=default", "--json", "--db=" + db});
  REQUIRE(r.code == kExitOk);
  json j = ParseJson(r.out);
  REQUIRE(j["scopes"].size() == 1);
  CHECK(j["scopes"][0]["name"] == "default");
  CHECK(j["scopes"][0]["client_count"] == 6);
}

TEST_CASE("dump --json writes one document", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  Result r = RunCtl({"dump", "--db", db, "--json"});
  REQUIRE(r.code == kExitOk);
  CHECK(r.err.empty());
  json j = ParseJson(r.out);

  CHECK(j["database"] == db);
  CHECK(j["schema_version"] == store::kSchemaVersion);
  CHECK(j["source"] == "database");
  REQUIRE(j["scopes"].is_array());
  REQUIRE(j["scopes"].size() == 3);
  std::vector<std::string> names;
  for (const json& s : j["scopes"]) names.push_back(s["name"]);
  CHECK(names == std::vector<std::string>{"default", "empty", "ha-1"});

  SECTION("scope fields") {
    const json& d = j["scopes"][0];
    CHECK(d["boot_time"] == 1763700000);
    CHECK(d["boot_time_utc"] == "2025-11-21T04:40:00Z");
    CHECK(d["new_boot_time"] == 1763771860);
    CHECK(d["new_boot_time_utc"] == "2025-11-22T00:37:40Z");
    CHECK(d["old_boot_time"].is_null());
    CHECK(d["old_boot_time_utc"].is_null());
    CHECK(d["max_instance"] == 1763771860);
    CHECK(d["current_instance"] == 1763771860);
    CHECK(d["in_grace"] == true);
    CHECK(d["kernel_boot_time"] == 1763771853);
    CHECK(d["kernel_boot_time_utc"] == "2025-11-22T00:37:33Z");
    CHECK(d["grace_started"] == 1763771860);
    CHECK(d["grace_started_utc"] == "2025-11-22T00:37:40Z");
    CHECK(d["grace_ended"] == 1763700100);
    CHECK(d["grace_ended_utc"] == "2025-11-21T04:41:40Z");
    CHECK(d["client_count"] == 6);

    const json& e = j["scopes"][1];
    for (const char* k :
         {"boot_time", "boot_time_utc", "new_boot_time", "new_boot_time_utc",
          "old_boot_time", "old_boot_time_utc", "current_instance",
          "kernel_boot_time", "kernel_boot_time_utc", "grace_started",
          "grace_started_utc", "grace_ended", "grace_ended_utc"}) {
      INFO(k);
      REQUIRE(e.contains(k));
      CHECK(e[k].is_null());
    }
    CHECK(e["in_grace"] == false);
    CHECK(e["max_instance"] == 0);
    CHECK(e["clients"] == json::array());
    CHECK(e["client_count"] == 0);

    const json& h = j["scopes"][2];
    CHECK(h["in_grace"] == false);
    CHECK(h["current_instance"] == 1700000000);  // boot_time when not in grace
    CHECK(h["old_boot_time"] == 1690000000);
  }

  SECTION("clients: binary and printable ids, hashes, versions") {
    const json& clients = j["scopes"][0]["clients"];
    REQUIRE(clients.size() == 6);
    std::vector<std::string> ids;
    for (const json& c : clients) ids.push_back(c["id_hex"]);
    CHECK(ids == std::vector<std::string>{
                     "0001feff",
                     "4c696e7578204e465376342e3020686f73742f31302e"
                     "302e302e3120746370",
                     "6c696e75782d636c69656e742d31", "73617920226869225c6e6f77",
                     "7461620968657265", "7f"});

    const json& bin = clients[0];
    CHECK(bin["id_text"].is_null());
    std::string hash;
    for (int i = 0; i < 32; ++i) hash += "ab";
    CHECK(bin["princhash_hex"] == hash);
    CHECK(bin["minor"] == 0);
    CHECK(bin["minor_version"] == "4.0");
    CHECK(bin["instance"] == 1763700000);

    const json& text = clients[2];
    CHECK(text["id_text"] == "linux-client-1");
    CHECK(text["princhash_hex"].is_null());
    CHECK(text["minor"] == 1);
    CHECK(text["minor_version"] == "4.1+");
    CHECK(text["instance"] == 1763771860);
    CHECK(text["first_seen"] == 1763771000);
    CHECK(text["first_seen_utc"] == "2025-11-22T00:23:20Z");
    CHECK(text["last_seen"] == 1763771900);
    CHECK(text["last_seen_utc"] == "2025-11-22T00:38:20Z");

    CHECK(clients[1]["id_text"] == "Linux NFSv4.0 host/10.0.0.1 tcp");
    CHECK(clients[3]["id_text"] == kQuotedId);  // raw text, JSON-escaped
    CHECK(clients[4]["id_text"].is_null());     // a tab is not printable
    CHECK(clients[5]["id_text"].is_null());     // nor is DEL
    for (const json& c : clients) {
      // Every key is present, even when null.
      for (const char* k : {"id_hex", "id_text", "princhash_hex", "minor",
                            "minor_version", "instance", "first_seen",
                            "first_seen_utc", "last_seen", "last_seen_utc"})
        CHECK(c.contains(k));
    }
  }
}

TEST_CASE("dump of a database without scopes", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  OpenRw(db);  // what the daemon leaves before its first start request
  Result r = RunCtl({"dump", "--db", db});
  CHECK(r.code == kExitOk);
  CHECK_THAT(r.out, Catch::Contains("no scopes"));
  r = RunCtl({"dump", "--db", db, "--json"});
  CHECK(r.code == kExitOk);
  json j = ParseJson(r.out);
  CHECK(j["scopes"] == json::array());
  r = RunCtl({"dump", "--db", db, "--scope", "default"});
  CHECK(r.code == kExitError);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "helper-ctl: no scope 'default' in " + db + "; it has no scopes yet\n");
}

TEST_CASE("dump streams many clients", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  {
    auto st = OpenRw(db);
    REQUIRE(st->Begin().ok());
    ScopeRow s;
    s.name = "default";
    s.boot_time = 5;
    s.max_instance = 5;
    REQUIRE(st->PutScope(s).ok());
    for (int i = 0; i < 3000; ++i)
      REQUIRE(
          st->UpsertClient(
                Client("default", "c" + std::to_string(100000 + i), 1, 5, 5, 5))
              .ok());
    REQUIRE(st->Commit().ok());
  }
  Result r = RunCtl({"dump", "--db", db});
  REQUIRE(r.code == kExitOk);
  size_t rows = 0;
  for (const std::string& line : Lines(r.out))
    if (line.find("\"c1") != std::string::npos) ++rows;
  CHECK(rows == 3000);
  // The instance column is as wide as its heading when instances are short.
  CHECK_THAT(r.out, Catch::Contains("\n         5  4.1+     "));
  r = RunCtl({"dump", "--db", db, "--json"});
  REQUIRE(r.code == kExitOk);
  json j = ParseJson(r.out);
  CHECK(j["scopes"][0]["clients"].size() == 3000);
  CHECK(j["scopes"][0]["client_count"] == 3000);
  CHECK(j["scopes"][0]["clients"][2999]["id_text"] == "c102999");
}

TEST_CASE("dump reads while the daemon writes, and changes nothing", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);

  SECTION("an open write transaction neither blocks nor shows") {
    auto writer = OpenRw(db);
    REQUIRE(writer->Begin().ok());
    REQUIRE(
        writer->UpsertClient(Client("ha-1", "uncommitted", 1, 1700000000, 1, 1))
            .ok());
    Result r = RunCtl({"dump", "--db", db, "--scope", "ha-1", "--json"});
    REQUIRE(r.code == kExitOk);
    json j = ParseJson(r.out);
    CHECK(j["scopes"][0]["client_count"] == 1);
    REQUIRE(writer->Commit().ok());
    r = RunCtl({"dump", "--db", db, "--scope", "ha-1", "--json"});
    REQUIRE(r.code == kExitOk);
    j = ParseJson(r.out);
    CHECK(j["scopes"][0]["client_count"] == 2);
    CHECK(j["scopes"][0]["clients"][1]["id_text"] == "uncommitted");
  }
  SECTION("the file is not modified") {
    const std::string before = ReadFile(db);
    struct stat st_before;
    REQUIRE(stat(db.c_str(), &st_before) == 0);
    REQUIRE(RunCtl({"dump", "--db", db}).code == kExitOk);
    REQUIRE(RunCtl({"dump", "--db", db, "--json"}).code == kExitOk);
    CHECK(ReadFile(db) == before);
    struct stat st_after;
    REQUIRE(stat(db.c_str(), &st_after) == 0);
    CHECK(st_after.st_mode == st_before.st_mode);
    CHECK(st_after.st_mtim.tv_sec == st_before.st_mtim.tv_sec);
    CHECK(st_after.st_mtim.tv_nsec == st_before.st_mtim.tv_nsec);
  }
}

TEST_CASE("dump: missing, damaged and foreign databases", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";

  SECTION("missing") {
    Result r = RunCtl({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK(r.out.empty());
    CHECK(r.err == "helper-ctl: no database at " + db +
                       ": is nfsd-helper configured to use another --db?\n");
    CHECK(access(db.c_str(), F_OK) != 0);  // and it was not created
    r = RunCtl({"dump", "--db", t.path + "/no/such/dir/state.sqlite"});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: no database at "));
    CHECK(access((t.path + "/no").c_str(), F_OK) != 0);
  }
  SECTION("missing at the default path") {
    if (access(kDefaultDb, F_OK) == 0) return;  // a real one is installed
    Result r = RunCtl({"dump"});
    CHECK(r.code == kExitError);
    CHECK(r.err == std::string("helper-ctl: no database at ") + kDefaultDb +
                       ": is nfsd-helper configured to use another --db?\n");
  }
  SECTION("garbage bytes: not ours (nfsd-helper never sets them aside)") {
    const std::string junk(8192, 'x');
    std::ofstream(db) << junk;
    Result r = RunCtl({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: " + db +
                                        " is not an nfsd-helper database"));
    CHECK_THAT(r.err, !Catch::Contains("aside"));
    CHECK(ReadFile(db) == junk);
    CHECK(RunCtl({"dump", "--db", db, "--json"}).code == kExitError);
  }
  SECTION("a damaged b-tree page: corrupt") {
    {
      auto w = OpenRw(db);
      REQUIRE(w->Begin().ok());
      ScopeRow s;
      s.name = "default";
      REQUIRE(w->PutScope(s).ok());
      for (int i = 0; i < 2000; ++i)
        REQUIRE(
            w->UpsertClient(Client("default",
                                   std::string(200, 'a') + std::to_string(i), 1,
                                   5, 5, 5))
                .ok());
      REQUIRE(w->Commit().ok());
    }
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", 0, 0, 0) ==
            SQLITE_OK);
    sqlite3_close(h);
    int fd = open(db.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::string junk(4096, '\xee');
    REQUIRE(pwrite(fd, junk.data(), junk.size(), 4096 * 20) == 4096);
    close(fd);
    Result r = RunCtl({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains(" is corrupt: "));
  }
  SECTION("another program's SQLite database: not ours, not corrupt") {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "CREATE TABLE grace (current INTEGER)", 0, 0, 0) ==
            SQLITE_OK);
    sqlite3_close(h);
    Result r = RunCtl({"dump", "--db", db, "--json"});
    CHECK(r.code == kExitError);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: " + db +
                                        " is not an nfsd-helper database"));
    CHECK_THAT(r.err, !Catch::Contains("corrupt"));
  }
  SECTION("an empty file") {
    std::ofstream(db).close();
    Result r = RunCtl({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK(r.err == "helper-ctl: " + db + " is an empty file\n");
  }
  SECTION("a newer schema") {
    OpenRw(db);
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA user_version=99", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(h);
    Result r = RunCtl({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("schema version 99"));
  }
  SECTION("a directory") {
    Result r = RunCtl({"dump", "--db", t.path});
    CHECK(r.code == kExitError);
    CHECK(r.err ==
          "helper-ctl: " + t.path + " is a directory, not a database\n");
  }
}

// Runs `args` in a child process that has dropped root for nobody, and
// returns what it printed on the error stream and its exit status.
Result RunCtlAsNobody(const std::vector<std::string>& args) {
  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(pipefd[0]);
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
      _exit(99);
    Result r = RunCtl(args);
    std::string msg = r.err;
    (void)!write(pipefd[1], msg.data(), msg.size());
    _exit(r.code);
  }
  close(pipefd[1]);
  Result r;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) r.err.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  return r;
}

TEST_CASE("dump: permission denied", "[ctl]") {
  if (geteuid() != 0) {
    WARN("not root: cannot drop privileges to test permission errors");
    return;
  }
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);  // 0600 in a 0700 directory, like the daemon's

  SECTION("the directory cannot be searched") {
    Result r = RunCtlAsNobody({"dump", "--db", db});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: permission denied: "));
    CHECK_THAT(r.err, Catch::Contains("run helper-ctl as root"));
  }
  SECTION("the file cannot be read") {
    REQUIRE(chmod(t.path.c_str(), 0755) == 0);
    Result r = RunCtlAsNobody({"dump", "--db", db, "--json"});
    CHECK(r.code == kExitError);
    CHECK(r.err == "helper-ctl: permission denied: open " + db +
                       ": Permission denied\nhelper-ctl: the database is "
                       "readable by root only; run helper-ctl as root\n");
  }
}

TEST_CASE("dump: a WAL database in a directory the reader cannot write",
          "[ctl]") {
  if (geteuid() != 0) {
    WARN("not root: cannot drop privileges to test permission errors");
    return;
  }
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);  // closed: no -wal or -shm file remains
  REQUIRE(access((db + "-shm").c_str(), F_OK) != 0);
  REQUIRE(chmod(t.path.c_str(), 0755) == 0);
  REQUIRE(chmod(db.c_str(), 0644) == 0);
  Result r = RunCtlAsNobody({"dump", "--db", db});
  CHECK(r.code == kExitError);
  CHECK(r.err == "helper-ctl: cannot read " + db + ": SQLite needs to create " +
                     db + "-shm to read a database in WAL mode, and " + t.path +
                     " is not writable; run helper-ctl as root, or copy the "
                     "database to a writable directory\n");
}

TEST_CASE("dump: unknown scope", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  Result r = RunCtl({"dump", "--db", db, "--scope", "defualt"});
  CHECK(r.code == kExitError);
  CHECK(r.out.empty());
  CHECK(r.err == "helper-ctl: no scope 'defualt' in " + db +
                     "; did you mean 'default'?\n");
  r = RunCtl({"dump", "--db", db, "--scope", "nfs-ha-east", "--json"});
  CHECK(r.code == kExitError);
  CHECK(r.out.empty());
  CHECK(r.err == "helper-ctl: no scope 'nfs-ha-east' in " + db +
                     "; its scopes are: default empty ha-1\n");
}

TEST_CASE("dump: usage errors", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  const std::string usage =
      "usage: helper-ctl dump [--db PATH] [--scope NAME] [--ctl-socket PATH] "
      "[--config FILE] [--wide] [--json]\n";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"dump", "--db", db, "extra"}, "unexpected argument 'extra'"},
           {{"dump", "--db", db, "--jsno"},
            "unknown option '--jsno'; did you mean '--json'?"},
           {{"dump", "--db"}, "option '--db' needs a PATH"},
           {{"dump", "--db="}, "option '--db' needs a non-empty PATH"},
           {{"dump", "--db", db, "--scope", "a", "--scope", "b"},
            "option '--scope' given twice"},
           {{"dump", "--db", db, "--json=yes"},
            "option '--json' takes no value"},
           {{"dump", "-j"}, "unknown option '-j'"},
       }) {
    Result r = RunCtl(c.args);
    INFO(c.message);
    CHECK(r.code == kExitUsage);
    CHECK(r.out.empty());
    CHECK(r.err == "helper-ctl dump: " + c.message + "\n" + usage);
  }
}

// A stream that fails every write, like stdout on a full disk.
class FullBuf : public std::streambuf {
 protected:
  int_type overflow(int_type) override { return traits_type::eof(); }
};

TEST_CASE("dump: an output error is an error", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  for (bool as_json : {false, true}) {
    FullBuf buf;
    std::ostream out(&buf);
    std::ostringstream err;
    std::vector<std::string> args = {"--db", db, "--ctl-socket", NoDaemon(t)};
    if (as_json) args.push_back("--json");
    CHECK(RunVerb(kDumpVerb, args, out, err) == kExitError);
    // A table is announced on stderr; JSON says it in "source".
    CHECK(err.str() == std::string(as_json ? "" : kFallbackNote) +
                           "helper-ctl: cannot write the output\n");
  }
}

// Runs the built helper-ctl with stdout going to `out_path`; returns the exit
// status and what it wrote on stderr.
Result RunBinary(const std::vector<std::string>& args,
                 const std::string& out_path, const std::string& err_path) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(98);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(HELPER_CTL_BIN));
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(HELPER_CTL_BIN, argv.data());
    _exit(97);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  Result r;
  r.code = WEXITSTATUS(status);
  if (out_path != "/dev/full") r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

TEST_CASE("the helper-ctl binary", "[ctl]") {
  TempDir t;
  const std::string db = t.path + "/state.sqlite";
  WriteFixture(db);
  const std::string out = t.path + "/out", err = t.path + "/err";

  Result r = RunBinary({"dump", "--db", db, "--json"}, out, err);
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  json j = ParseJson(r.out);
  CHECK(j["scopes"].size() == 3);
  CHECK(j["scopes"][0]["clients"][2]["id_text"] == "linux-client-1");

  r = RunBinary({"dump", "--db", db, "--scope", "ha-1"}, out, err);
  CHECK(r.code == 0);
  CHECK(r.out == RunCtl({"dump", "--db", db, "--scope", "ha-1"}).out);

  r = RunBinary({"dupm"}, out, err);
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "helper-ctl: unknown verb 'dupm'; did you mean 'dump'?\n");

  r = RunBinary({}, out, err);
  CHECK(r.code == 2);

  r = RunBinary({"dump", "--db", t.path + "/nope"}, out, err);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: no database at "));

  r = RunBinary({"--help"}, out, err);
  CHECK(r.code == 0);
  CHECK(r.out == RunCtl({"help"}).out);

  // A full disk is an error, not a silent success.
  r = RunBinary({"dump", "--db", db}, "/dev/full", err);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("cannot write the output"));
  r = RunBinary({"help"}, "/dev/full", err);
  CHECK(r.code == 1);
}

}  // namespace
}  // namespace nfsdh::ctl
