// The export format (ctl/EXPORT-FORMAT.md) and helper-ctl export/import
// against a database with no daemon running.
#include "ctl/export_format.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctl/test_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"

namespace nfsdh::ctl {
namespace {

using testing::Result;
using testing::RunCtl;
using testing::TempDir;

store::ClientRow Rec(const std::string& id, const std::string& hash = "",
                     int minor = 1) {
  store::ClientRow c;
  c.id = id;
  c.princhash = hash;
  c.minor = minor;
  return c;
}

std::string Header(int version = 1) {
  return "{\"format\":\"nfsd-helper-clients\",\"version\":" +
         std::to_string(version) +
         ",\"scope\":\"A\",\"exported\":\"2025-11-22T00:37:40Z\"}\n";
}

// Reads the whole text; returns the first error, or OK and the records.
Status ReadAll(const std::string& text, std::vector<store::ClientRow>* out) {
  std::istringstream in(text);
  ExportReader r(&in);
  ExportHeader h;
  Status s = r.ReadHeader(&h);
  if (!s.ok()) return s;
  for (;;) {
    store::ClientRow c;
    bool end = false;
    s = r.Next(&c, &end);
    if (!s.ok() || end) return s;
    out->push_back(c);
  }
}

TEST_CASE("export format: records round-trip, binary ids included",
          "[ctl][export]") {
  ExportHeader h;
  h.scope = "A";
  h.exported = 1763771860;
  h.source = "database";
  std::string text = ExportHeaderLine(h) +
                     ExportRecordLine(Rec(std::string("\0\x01\n", 3), "", 0)) +
                     ExportRecordLine(Rec("b", std::string(32, '\xff'), 1)) +
                     ExportEndLine(2);
  auto first = nlohmann::json::parse(text.substr(0, text.find('\n')));
  CHECK(first["format"] == "nfsd-helper-clients");
  CHECK(first["version"] == 1);
  CHECK(first["exported"] == "2025-11-22T00:37:40Z");
  CHECK(text.find("{\"id\":\"00010a\",\"princhash\":null,\"minor\":0}\n") !=
        std::string::npos);
  std::istringstream in(text);
  ExportReader r(&in);
  ExportHeader back;
  REQUIRE(r.ReadHeader(&back).ok());
  CHECK(back.scope == "A");
  CHECK(back.exported == 1763771860);
  std::vector<store::ClientRow> recs;
  REQUIRE(ReadAll(text, &recs).ok());
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].id == std::string("\0\x01\n", 3));
  CHECK(recs[0].princhash.empty());
  CHECK(recs[0].minor == 0);
  CHECK(recs[1].princhash == std::string(32, '\xff'));
}

TEST_CASE("export format: an unknown minor version is written as null",
          "[ctl][export]") {
  // nfsdcld never recorded the minor version: imported records have -1.
  const std::string line = ExportRecordLine(Rec("a", "", -1));
  CHECK(line == "{\"id\":\"61\",\"princhash\":null,\"minor\":null}\n");
  ExportHeader h;
  h.scope = "A";
  h.exported = 1763771860;
  std::vector<store::ClientRow> recs;
  const std::string text = ExportHeaderLine(h) + line +
                           "{\"id\":\"62\",\"minor\":0}\n" + ExportEndLine(2);
  Status s = ReadAll(text, &recs);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].minor == -1);
  CHECK(recs[1].minor == 0);
}

TEST_CASE("export format: what is refused, and why", "[ctl][export]") {
  const std::string rec = "{\"id\":\"61\",\"princhash\":null,\"minor\":1}\n";
  const std::string end1 = "{\"end\":true,\"clients\":1}\n";
  struct Case {
    std::string text, error;
  };
  const Case cases[] = {
      {"", "the file is empty"},
      {"hello\n", "line 1: not an nfsd-helper export"},
      {"{\"format\":\"other\",\"version\":1}\n",
       "line 1: not an nfsd-helper export: format \"other\""},
      {Header(2) + rec + end1,
       "line 1: unsupported export format version 2; this helper-ctl reads "
       "version 1"},
      {Header() + rec, "ends after 1 record(s) without its end line"},
      {Header() + rec + "{\"end\":true,\"clients\":2}\n",
       "line 3: the end line counts 2 record(s), the file has 1"},
      {Header() + rec + end1 + rec, "line 4: text after the end line"},
      {Header() + "{\"id\":\"6\",\"minor\":1}\n" + end1,
       "line 2: \"id\" is not an even number of hex digits"},
      {Header() + "{\"id\":\"\",\"minor\":1}\n" + end1,
       "line 2: \"id\" must be 1 to 1024 bytes, not 0"},
      {Header() + "{\"id\":\"61\",\"princhash\":\"00\",\"minor\":1}\n" + end1,
       "line 2: \"princhash\" must be 32 bytes, not 1"},
      {Header() + "{\"id\":\"61\",\"minor\":4}\n" + end1,
       "line 2: \"minor\" must be 0"},
      {Header() + rec + rec + "{\"end\":true,\"clients\":2}\n",
       "line 3: a second record of client 61"},
      {Header() + "{\"id\":\"62\",\"minor\":1}\n" + rec + end1,
       "line 3: records are not in increasing id order"},
      {Header() + rec + "{\"end\":true,\"clients\":1}",
       "line 3: the last line does not end in a newline"},
      {Header() + std::string(70000, 'x') + "\n", "line 2: longer than"},
  };
  for (const Case& c : cases) {
    INFO(c.text.substr(0, 200));
    std::vector<store::ClientRow> recs;
    Status s = ReadAll(c.text, &recs);
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains(c.error));
  }
}

// A database with scope A (grace ended, three clients), scope G (in grace)
// and scope E (grace ended, one client); an empty nfs.conf; no daemon.
struct Offline {
  TempDir t;
  std::string db = t.path + "/state.sqlite";
  std::string conf = t.path + "/nfs.conf";
  std::string sock = t.path + "/none.sock";
  Offline() {
    std::ofstream(conf) << "[nfsd-helper]\n";
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(db, store::Store::Mode::kReadWrite, &st).ok());
    REQUIRE(st->Begin().ok());
    store::ScopeRow a;
    a.name = "A";
    a.boot_time = 100;
    a.max_instance = 100;
    REQUIRE(st->PutScope(a).ok());
    store::ScopeRow g;
    g.name = "G";
    g.boot_time = 50;
    g.new_boot_time = 200;
    g.max_instance = 200;
    REQUIRE(st->PutScope(g).ok());
    store::ScopeRow e = a;
    e.name = "E";
    REQUIRE(st->PutScope(e).ok());
    for (const char* id : {"c1", "c2", "c3"}) {
      store::ClientRow c = Rec(id, id[1] == '2' ? std::string(32, 'h') : "");
      c.scope = "A";
      c.instance = 100;
      REQUIRE(st->UpsertClient(c).ok());
    }
    store::ClientRow c = Rec("c1");
    c.scope = "E";
    c.instance = 100;
    REQUIRE(st->UpsertClient(c).ok());
    c.scope = "G";
    c.instance = 200;
    REQUIRE(st->UpsertClient(c).ok());
    REQUIRE(st->Commit().ok());
  }
  Result Ctl(std::vector<std::string> args) {
    for (const char* a :
         {"--ctl-socket", sock.c_str(), "--config", conf.c_str()})
      args.push_back(a);
    return RunCtl(args);
  }
  std::map<std::string, int64_t> Records(const std::string& scope) {
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(db, store::Store::Mode::kReadOnly, &st).ok());
    std::map<std::string, int64_t> out;
    REQUIRE(st->ForEachClient(scope, [&](const store::ClientRow& c) {
                out[c.id] = c.instance;
                return true;
              }).ok());
    return out;
  }
};

TEST_CASE("export and import without a daemon", "[ctl][export]") {
  Offline o;
  const std::string file = o.t.path + "/a.jsonl";
  Result r = o.Ctl(
      {"export", "--scope", "A", "--db", o.db, "--output", file, "--json"});
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["clients"] == 3);
  CHECK(j["output"] == file);

  SECTION("into a fresh scope") {
    r = o.Ctl({"import", "--scope", "B", "--db", o.db, "--json", file});
    INFO(r.err);
    REQUIRE(r.code == kExitOk);
    j = nlohmann::json::parse(r.out);
    CHECK(j["via"] == "database");
    CHECK(j["source_scope"] == "A");
    CHECK(j["records"] == 3);
    CHECK(j["imported"] == 3);
    CHECK(j["kept"] == 0);
    CHECK(j["scope_state"] == "fresh");
    CHECK(o.Records("B") ==
          std::map<std::string, int64_t>{{"c1", 0}, {"c2", 0}, {"c3", 0}});
  }
  SECTION("into a scope in grace: stamped boot_time, existing kept") {
    r = o.Ctl({"import", "--scope", "G", "--db", o.db, "--json", file});
    INFO(r.err);
    REQUIRE(r.code == kExitOk);
    j = nlohmann::json::parse(r.out);
    CHECK(j["imported"] == 2);
    CHECK(j["kept"] == 1);
    CHECK(j["scope_state"] == "in_grace");
    CHECK(j["stamp"] == 50);
    CHECK(o.Records("G") ==
          std::map<std::string, int64_t>{{"c1", 200}, {"c2", 50}, {"c3", 50}});
  }
  SECTION("into a scope whose grace ended: refused, nothing changes") {
    r = o.Ctl({"import", "--scope", "E", "--db", o.db, file});
    CHECK(r.code == kExitError);
    CHECK(r.out.empty());
    CHECK_THAT(r.err,
               Catch::StartsWith("helper-ctl: refusing to import into scope "
                                 "E: the grace period of scope E (instance "
                                 "id 100, not a time: instance ids only "
                                 "order a scope's server instances) ended"));
    CHECK(o.Records("E") == std::map<std::string, int64_t>{{"c1", 100}});
  }
  SECTION("a damaged file imports nothing") {
    std::string text;
    {
      std::ifstream in(file);
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    // Cut off the end line: the records before it are not imported.
    text.resize(text.rfind("{\"end\""));
    std::ofstream(file, std::ios::trunc) << text;
    r = o.Ctl({"import", "--scope", "B", "--db", o.db, file});
    CHECK(r.code == kExitError);
    CHECK_THAT(r.err, Catch::Contains("without its end line"));
    CHECK_THAT(r.err, Catch::EndsWith("nothing imported\n"));
    CHECK(o.Records("B").empty());
  }
}

TEST_CASE("records of unknown minor version move to another scope",
          "[ctl][export]") {
  Offline o;
  {
    // What the first-start import of an nfsdcld database stores.
    std::unique_ptr<store::Store> st;
    REQUIRE(store::Store::Open(o.db, store::Store::Mode::kReadWrite, &st).ok());
    REQUIRE(st->Begin().ok());
    store::ClientRow c = Rec("c4", "", -1);
    c.scope = "A";
    c.instance = 0;
    REQUIRE(st->UpsertClient(c).ok());
    REQUIRE(st->Commit().ok());
  }
  Result r =
      RunCtl({"dump", "--db", o.db, "--scope", "A", "--ctl-socket", o.sock});
  REQUIRE(r.code == kExitOk);
  CHECK_THAT(r.out, Catch::Contains(" unknown "));
  CHECK_THAT(r.out, !Catch::Contains("?-1"));

  const std::string file = o.t.path + "/a.jsonl";
  r = o.Ctl({"export", "--scope", "A", "--db", o.db, "--output", file});
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  CHECK_THAT(testing::ReadFile(file),
             Catch::Contains("{\"id\":\"6334\",\"princhash\":null,"
                             "\"minor\":null}\n"));
  r = o.Ctl({"import", "--scope", "B", "--db", o.db, file});
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  std::map<std::string, int> minors;
  std::unique_ptr<store::Store> st;
  REQUIRE(store::Store::Open(o.db, store::Store::Mode::kReadOnly, &st).ok());
  REQUIRE(st->ForEachClient("B", [&](const store::ClientRow& c) {
              minors[c.id] = c.minor;
              return true;
            }).ok());
  CHECK(minors == std::map<std::string, int>{
                      {"c1", 1}, {"c2", 1}, {"c3", 1}, {"c4", -1}});
}

TEST_CASE("export creates its file readable by root only", "[ctl][export]") {
  // The records are as private as the database they come from (0600).
  Offline o;
  const mode_t before = umask(022);
  const std::string file = o.t.path + "/a.jsonl";
  Result r = o.Ctl({"export", "--scope", "A", "--db", o.db, "--output", file});
  struct stat st;
  REQUIRE(stat(file.c_str(), &st) == 0);
  const mode_t first = st.st_mode & 07777;
  // A stale temporary file of an interrupted export is no exception.
  std::ofstream(file + ".tmp") << "x";
  REQUIRE(chmod((file + ".tmp").c_str(), 0644) == 0);
  Result again =
      o.Ctl({"export", "--scope", "A", "--db", o.db, "--output", file});
  umask(before);
  INFO(r.err << again.err);
  REQUIRE(r.code == kExitOk);
  REQUIRE(again.code == kExitOk);
  CHECK(first == 0600);
  REQUIRE(stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(testing::Lines(testing::ReadFile(file)).size() == 5);
}

TEST_CASE("export to the standard output, and its usage errors",
          "[ctl][export]") {
  Offline o;
  Result r = o.Ctl({"export", "--scope", "A", "--db", o.db});
  REQUIRE(r.code == kExitOk);
  auto lines = testing::Lines(r.out);
  REQUIRE(lines.size() == 5);
  CHECK(nlohmann::json::parse(lines[4])["clients"] == 3);
  CHECK(o.Ctl({"export", "--db", o.db}).code == kExitUsage);
  CHECK(o.Ctl({"export", "--scope", "A", "--db", o.db, "--json"}).code ==
        kExitUsage);
  r = o.Ctl({"export", "--scope", "nope", "--db", o.db});
  CHECK(r.code == kExitError);
  CHECK_THAT(r.err, Catch::Contains("no scope 'nope'"));
  CHECK(o.Ctl({"import", "--scope", "B", "--db", o.db}).code == kExitUsage);
  CHECK(o.Ctl({"import", "--db", o.db, "x"}).code == kExitUsage);
}

TEST_CASE("helper-ctl takes db and ctl-socket from nfs.conf",
          "[ctl][export][config]") {
  Offline o;
  std::ofstream(o.conf, std::ios::trunc)
      << "[nfsd-helper]\ndb = " << o.db << "\nctl-socket = " << o.sock << "\n";
  // No --db: the configured database is read.
  Result r = RunCtl({"export", "--scope", "A", "--config", o.conf});
  INFO(r.err);
  REQUIRE(r.code == kExitOk);
  CHECK(testing::Lines(r.out).size() == 5);
  // The command line wins.
  r = RunCtl({"export", "--scope", "A", "--config", o.conf, "--db",
              o.t.path + "/other.sqlite"});
  CHECK(r.code == kExitError);
  CHECK_THAT(r.err, Catch::Contains("other.sqlite"));
  // A drop-in file overrides nfs.conf.
  REQUIRE(mkdir((o.conf + ".d").c_str(), 0755) == 0);
  std::ofstream(o.conf + ".d/x.conf")
      << "[nfsd-helper]\ndb = " << o.t.path << "/dropin.sqlite\n";
  r = RunCtl({"export", "--scope", "A", "--config", o.conf});
  CHECK(r.code == kExitError);
  CHECK_THAT(r.err, Catch::Contains("dropin.sqlite"));
  // A --config that cannot be read is an error.
  r = RunCtl({"export", "--scope", "A", "--config", o.t.path + "/none.conf"});
  CHECK(r.code == kExitError);
}

}  // namespace
}  // namespace nfsdh::ctl
