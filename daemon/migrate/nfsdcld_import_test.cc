#include "daemon/migrate/nfsdcld_import.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>

#include "daemon/migrate/test_sources.h"
#include "daemon/recovery/engine.h"
#include "daemon/store/store.h"

namespace nfsdh::migrate {
namespace {

using namespace testing;  // NOLINT: the fixtures of test_sources.h

struct MigrateDir {
  std::string path;
  MigrateDir() {
    char tmpl[] = "/tmp/nfsdh-migrate-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
    REQUIRE(mkdir((path + "/src").c_str(), 0700) == 0);
  }
  ~MigrateDir() {
    if (std::system(("rm -rf '" + path + "'").c_str()) != 0) {
      // A leftover temporary directory is harmless.
    }
  }
  std::string Src(const std::string& name = "main.sqlite") const {
    return path + "/src/" + name;
  }
  std::string Db() const { return path + "/state/state.sqlite"; }
};

const std::string kA = "Linux NFSv4.2 client-a";
const std::string kB = "Linux NFSv4.0 client-b/10.0.0.2 tcp";
const std::string kC = std::string("\x00\x01\xfe binary\n", 11);
const std::string kNew = "Linux NFSv4.2 new-during-grace";
const std::string kOld = "Linux NFSv4.2 expired-long-ago";
const std::string kHashA(32, '\xa1');
const std::string kHashB(32, '\xb2');

Source Read(const std::string& path, const std::string& cltrack = "") {
  Source src;
  Status s = ReadSource(path, cltrack, &src);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return src;
}

// id -> princhash of the imported clients.
std::map<std::string, std::string> Hashes(const Source& src) {
  std::map<std::string, std::string> out;
  for (const SourceClient& c : src.clients) out[c.id] = c.princhash;
  return out;
}

std::unique_ptr<store::Store> OpenStore(const std::string& path) {
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(path, store::Store::Mode::kReadWrite, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return st;
}

// What the scope's first start would allow: PlanStart, then the records
// that survive its purge (what allow_client sends).
std::map<std::string, std::string> FirstStartAllows(store::Store* st,
                                                    const std::string& scope) {
  std::optional<store::ScopeRow> row;
  REQUIRE(st->GetScope(scope, &row).ok());
  REQUIRE(row);
  recovery::ScopeState state;
  state.boot_time = row->boot_time;
  state.new_boot_time = row->new_boot_time;
  state.old_boot_time = row->old_boot_time;
  state.max_instance = row->max_instance;
  recovery::StartPlan plan = recovery::PlanStart(state, 2000000000);
  std::map<std::string, std::string> out;
  REQUIRE(st->ForEachClient(scope, [&](const store::ClientRow& c) {
              if (!plan.purge_older_than ||
                  c.instance >= *plan.purge_older_than)
                out[c.id] = c.princhash;
              return true;
            }).ok());
  return out;
}

TEST_CASE(
    "nfsdcld v4 not in grace: the current epoch's clients, with their "
    "principal hashes",
    "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 3, 0);
  AddRec(d.Src(), 3, kA, kHashA);
  AddRec(d.Src(), 3, kB);
  AddRec(d.Src(), 3, kC, std::string());  // an empty hash: no principal
  // A table of an older epoch that nfsdcld no longer reads.
  SqlExec(d.Src(), "CREATE TABLE \"" + RecTable(2) +
                       "\" (id BLOB PRIMARY KEY, princhash BLOB);");
  AddRec(d.Src(), 2, kOld);
  Source src = Read(d.Src());
  CHECK(src.kind == SourceKind::kNfsdcld);
  CHECK(src.schema_version == 4);
  CHECK(src.current_epoch == 3);
  CHECK(src.recovery_epoch == 0);
  CHECK(Hashes(src) ==
        std::map<std::string, std::string>{{kA, kHashA}, {kB, ""}, {kC, ""}});
  for (const SourceClient& c : src.clients) CHECK(c.minor == -1);
  CHECK(src.skipped.empty());
  CHECK_THAT(src.allowed_from, Catch::Contains(RecTable(3)));
}

TEST_CASE(
    "nfsdcld v4 in grace: the recovery epoch's clients, not those new "
    "in the current epoch",
    "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 5, 4);
  AddRec(d.Src(), 4, kA, kHashA);
  AddRec(d.Src(), 4, kB, kHashB);
  AddRec(d.Src(), 4, kC);
  // kA already reclaimed in epoch 5 (nfsdcld stores its hash again); kNew
  // got its record during grace but was never in the recovery epoch.
  AddRec(d.Src(), 5, kA, kHashA);
  AddRec(d.Src(), 5, kNew);
  Source src = Read(d.Src());
  CHECK(src.current_epoch == 5);
  CHECK(src.recovery_epoch == 4);
  CHECK(Hashes(src) == std::map<std::string, std::string>{
                           {kA, kHashA}, {kB, kHashB}, {kC, ""}});
  CHECK_THAT(src.allowed_from, Catch::Contains(RecTable(4)));
}

TEST_CASE("nfsdcld v3: ids without principal hashes, in and out of grace",
          "[migrate]") {
  MigrateDir d;
  SECTION("not in grace") {
    MakeNfsdcld(d.Src(), 3, 2, 0);
    AddRec(d.Src(), 2, kA);
    AddRec(d.Src(), 2, kB);
    Source src = Read(d.Src());
    CHECK(src.schema_version == 3);
    CHECK(Hashes(src) ==
          std::map<std::string, std::string>{{kA, ""}, {kB, ""}});
  }
  SECTION("in grace") {
    MakeNfsdcld(d.Src(), 3, 7, 6);
    AddRec(d.Src(), 6, kB);
    AddRec(d.Src(), 7, kNew);
    Source src = Read(d.Src());
    CHECK(Hashes(src) == std::map<std::string, std::string>{{kB, ""}});
  }
}

TEST_CASE(
    "nfsdcld's first start copies nfsdcltrack's clients and so does the "
    "import",
    "[migrate]") {
  MigrateDir d;
  const std::string track = d.Src("cltrack.sqlite");
  MakeNfsdcltrack(track);
  AddCltrack(track, kB, 1700000000, 0);
  AddCltrack(track, kC, 1700000001, 1);
  SECTION(
      "v4, first_time set, not in grace: nfsdcltrack's ids replace the "
      "current epoch's") {
    MakeNfsdcld(d.Src(), 4, 1, 0, "1");
    AddRec(d.Src(), 1, kA, kHashA);
    Source src = Read(d.Src(), track);
    CHECK(Hashes(src) ==
          std::map<std::string, std::string>{{kB, ""}, {kC, ""}});
    CHECK_THAT(src.allowed_from, Catch::Contains("nfsdcltrack"));
    // Without an nfsdcltrack database nfsdcld keeps its own table.
    CHECK(Hashes(Read(d.Src(), kNone)) ==
          std::map<std::string, std::string>{{kA, kHashA}});
    CHECK(Hashes(Read(d.Src(), d.Src("absent.sqlite"))) ==
          std::map<std::string, std::string>{{kA, kHashA}});
  }
  SECTION("first_time 0: nfsdcltrack's database is not looked at") {
    MakeNfsdcld(d.Src(), 4, 2, 0, "0");
    AddRec(d.Src(), 2, kA);
    CHECK(Hashes(Read(d.Src(), track)) ==
          std::map<std::string, std::string>{{kA, ""}});
  }
  SECTION("in grace: the recovery epoch, whatever first_time says") {
    MakeNfsdcld(d.Src(), 4, 2, 1, "1");
    AddRec(d.Src(), 1, kA);
    CHECK(Hashes(Read(d.Src(), track)) ==
          std::map<std::string, std::string>{{kA, ""}});
  }
  SECTION("v3 without first_time: nfsdcld's upgrade sets it") {
    MakeNfsdcld(d.Src(), 3, 1, 0, std::nullopt);
    AddRec(d.Src(), 1, kA);
    Source src = Read(d.Src(), track);
    CHECK(src.first_time);
    CHECK(Hashes(src) ==
          std::map<std::string, std::string>{{kB, ""}, {kC, ""}});
  }
  SECTION("v1: every client, or nfsdcltrack's when there is one") {
    MakeNfsdcldV1(d.Src());
    InsertRow(d.Src(), "clients", "id", kA);
    InsertRow(d.Src(), "clients", "id", kOld);
    Source own = Read(d.Src());
    CHECK(own.schema_version == 1);
    CHECK(own.kind == SourceKind::kNfsdcld);
    CHECK(Hashes(own) ==
          std::map<std::string, std::string>{{kA, ""}, {kOld, ""}});
    CHECK(Hashes(Read(d.Src(), track)) ==
          std::map<std::string, std::string>{{kB, ""}, {kC, ""}});
  }
}

TEST_CASE("nfsdcltrack: every row, its minor version from has_session",
          "[migrate]") {
  MigrateDir d;
  MakeNfsdcltrack(d.Src());
  AddCltrack(d.Src(), kA, 1700000100, 1);
  AddCltrack(d.Src(), kB, 1700000200, 0);
  AddCltrack(d.Src(), kC, 0, std::nullopt);  // from the legacy directory
  Source src = Read(d.Src());
  CHECK(src.kind == SourceKind::kNfsdcltrack);
  CHECK(src.schema_version == 2);
  CHECK_FALSE(src.current_epoch);
  REQUIRE(src.clients.size() == 3);
  std::map<std::string, SourceClient> by_id;
  for (const SourceClient& c : src.clients) by_id[c.id] = c;
  CHECK(by_id[kA].minor == 1);
  CHECK(by_id[kA].time == 1700000100);
  CHECK(by_id[kB].minor == 0);
  CHECK(by_id[kC].minor == -1);
  CHECK_FALSE(by_id[kC].time);
}

TEST_CASE("rows the kernel would refuse are left out and reported",
          "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 2, 0);
  AddRec(d.Src(), 2, kA, kHashA);
  AddRec(d.Src(), 2, std::nullopt);
  AddRec(d.Src(), 2, std::string());
  AddRec(d.Src(), 2, std::string(1025, 'x'));
  AddRec(d.Src(), 2, kB, std::string(16, '\x01'));
  AddRec(d.Src(), 2, std::string(1024, 'y'));
  Source src = Read(d.Src());
  CHECK(Hashes(src) == std::map<std::string, std::string>{
                           {kA, kHashA}, {std::string(1024, 'y'), ""}});
  REQUIRE(src.skipped.size() == 4);
  std::string all;
  for (const std::string& s : src.skipped) all += s + "\n";
  CHECK_THAT(all, Catch::Contains("a NULL id"));
  CHECK_THAT(all, Catch::Contains("an empty id"));
  CHECK_THAT(all, Catch::Contains("1025 bytes"));
  CHECK_THAT(all, Catch::Contains("principal hash of 16 bytes"));
}

TEST_CASE("an nfsdcld database that does not validate gives a clear error",
          "[migrate]") {
  MigrateDir d;
  Source src;
  SECTION("no file") {
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kNotFound);
  }
  SECTION("an empty file") {
    close(open(d.Src().c_str(), O_CREAT | O_WRONLY, 0600));
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("empty"));
  }
  SECTION("not an SQLite file") {
    FILE* f = fopen(d.Src().c_str(), "w");
    REQUIRE(f);
    fputs(std::string(4096, 'z').c_str(), f);
    fclose(f);
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kCorrupt);
  }
  SECTION("a damaged database") {
    MakeNfsdcld(d.Src(), 4, 2, 0);
    for (int i = 0; i < 50; ++i)
      AddRec(d.Src(), 2, std::string(900, 'a' + i % 26) + std::to_string(i));
    int fd = open(d.Src().c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::string junk(4096, '\x5a');
    REQUIRE(pwrite(fd, junk.data(), junk.size(), 4096) == 4096);
    close(fd);
    Status s = ReadSource(d.Src(), "", &src);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kCorrupt);
  }
  SECTION("an unknown schema version") {
    MakeNfsdcld(d.Src(), 4, 2, 0);
    SqlExec(d.Src(), "UPDATE parameters SET value = '5' WHERE key = 'version'");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("schema version '5'"));
  }
  SECTION("no parameters table") {
    SqlExec(d.Src(), "CREATE TABLE t (x)");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("no table parameters"));
  }
  SECTION("no grace table") {
    MakeNfsdcld(d.Src(), 4, 2, 0);
    SqlExec(d.Src(), "DROP TABLE grace");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("no table grace"));
  }
  SECTION("two rows in grace") {
    MakeNfsdcld(d.Src(), 4, 2, 0);
    SqlExec(d.Src(), "INSERT INTO grace VALUES (9, 8)");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
  }
  SECTION("no table for the epoch to allow") {
    MakeNfsdcld(d.Src(), 4, 3, 2);
    SqlExec(d.Src(), "DROP TABLE \"" + RecTable(2) + "\"");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("no table " + RecTable(2)));
  }
  SECTION("v4 without first_time (nfsdcld refuses it)") {
    MakeNfsdcld(d.Src(), 4, 2, 0, std::nullopt);
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("first_time"));
  }
  SECTION("an unpadded table of an unknown epoch (nfsdcld's health check)") {
    MakeNfsdcld(d.Src(), 4, 2, 0);
    SqlExec(d.Src(), "CREATE TABLE \"rec-1b\" (id BLOB PRIMARY KEY)");
    Status s = ReadSource(d.Src(), "", &src);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("rec-1b"));
  }
}

TEST_CASE(
    "an unpadded table of the current epoch is read, as nfsdcld "
    "renames it",
    "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 27, 0);
  SqlExec(d.Src(), "ALTER TABLE \"" + RecTable(27) + "\" RENAME TO \"rec-1b\"");
  InsertRow(d.Src(), "rec-1b", "id, princhash", kA, kHashA);
  CHECK(Hashes(Read(d.Src())) ==
        std::map<std::string, std::string>{{kA, kHashA}});
}

TEST_CASE(
    "the source is never changed (checksum), even through a full "
    "import",
    "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 5, 4);
  AddRec(d.Src(), 4, kA, kHashA);
  AddRec(d.Src(), 5, kNew);
  REQUIRE(chmod(d.Src().c_str(), 0400) == 0);
  const std::string sum = Sha256(d.Src());
  struct stat before;
  REQUIRE(stat(d.Src().c_str(), &before) == 0);
  const std::set<std::string> listing = Listing(d.path + "/src");

  auto st = OpenStore(d.Db());
  Source src = Read(d.Src());
  REQUIRE(WriteImport(st.get(), "default", src, 1000, false).ok());
  ImportAtFirstStart(st.get(), "other", d.Src(), kNone, 1001);

  CHECK(Sha256(d.Src()) == sum);
  struct stat after;
  REQUIRE(stat(d.Src().c_str(), &after) == 0);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(after.st_mode == before.st_mode);
  // No journal, WAL or shared-memory file was left beside it.
  CHECK(Listing(d.path + "/src") == listing);
}

TEST_CASE("a WAL-mode source is read without creating files beside it",
          "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 2, 0);
  AddRec(d.Src(), 2, kA);
  SqlExec(d.Src(), "PRAGMA journal_mode=WAL");
  const std::string sum = Sha256(d.Src());
  const std::set<std::string> listing = Listing(d.path + "/src");
  CHECK(Hashes(Read(d.Src())) == std::map<std::string, std::string>{{kA, ""}});
  CHECK(Sha256(d.Src()) == sum);
  CHECK(Listing(d.path + "/src") == listing);
}

TEST_CASE(
    "an import writes the records, the scope and its record in one "
    "transaction: the first start allows exactly them",
    "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 5, 4);
  AddRec(d.Src(), 4, kA, kHashA);
  AddRec(d.Src(), 4, kB);
  AddRec(d.Src(), 5, kNew);
  auto st = OpenStore(d.Db());
  std::string sync;
  REQUIRE(st->Pragma("synchronous", &sync).ok());
  CHECK(sync == "2");  // FULL
  Source src = Read(d.Src());

  SECTION("dry run: nothing is written") {
    REQUIRE(WriteImport(st.get(), "default", src, 1000, true).ok());
    std::optional<store::ScopeRow> row;
    REQUIRE(st->GetScope("default", &row).ok());
    CHECK_FALSE(row);
    int64_t n = -1;
    REQUIRE(st->CountClients("default", &n).ok());
    CHECK(n == 0);
    std::optional<store::ImportRow> imp;
    REQUIRE(st->GetImport("default", &imp).ok());
    CHECK_FALSE(imp);
  }
  SECTION("the import, then no second one") {
    REQUIRE(WriteImport(st.get(), "default", src, 1000, false).ok());
    std::optional<store::ScopeRow> row;
    REQUIRE(st->GetScope("default", &row).ok());
    REQUIRE(row);
    CHECK_FALSE(row->boot_time);
    CHECK_FALSE(row->new_boot_time);
    CHECK(row->max_instance == 0);
    std::optional<store::ClientRow> a;
    REQUIRE(st->GetClient("default", kA, &a).ok());
    REQUIRE(a);
    CHECK(a->princhash == kHashA);
    CHECK(a->minor == -1);
    CHECK(a->instance == 0);
    CHECK(a->first_seen == 1000);
    std::optional<store::ImportRow> imp;
    REQUIRE(st->GetImport("default", &imp).ok());
    REQUIRE(imp);
    CHECK(imp->source == d.Src());
    CHECK(imp->kind == "nfsdcld");
    CHECK(imp->schema_version == 4);
    CHECK(imp->current_epoch == 5);
    CHECK(imp->recovery_epoch == 4);
    CHECK(imp->clients == 2);
    CHECK(FirstStartAllows(st.get(), "default") ==
          std::map<std::string, std::string>{{kA, kHashA}, {kB, ""}});

    // Not repeated: refused, and nothing changes.
    Status s = WriteImport(st.get(), "default", src, 2000, false);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("already imported"));
    // When, as a date (the import's time, 1000 seconds after the epoch).
    CHECK_THAT(s.message(), Catch::Contains(" at 1970-01-01T00:16:40Z;"));
    CHECK_THAT(s.message(), !Catch::Contains(" 1000"));
    REQUIRE(st->GetClient("default", kA, &a).ok());
    CHECK(a->first_seen == 1000);
    REQUIRE(st->GetImport("default", &imp).ok());
    CHECK(imp->imported_at == 1000);
  }
  SECTION("a scope that has had an instance is refused") {
    REQUIRE(st->Begin().ok());
    store::ScopeRow used;
    used.name = "default";
    used.boot_time = used.max_instance = 1700000000;
    REQUIRE(st->PutScope(used).ok());
    REQUIRE(st->Commit().ok());
    Status s = WriteImport(st.get(), "default", src, 1000, false);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("server instances"));
    // The id is named as one, not left to be read as a time.
    CHECK_THAT(s.message(), Catch::Contains("(the latest has instance id "
                                            "1700000000)"));
    int64_t n = -1;
    REQUIRE(st->CountClients("default", &n).ok());
    CHECK(n == 0);
  }
  SECTION("a scope with records is refused") {
    REQUIRE(st->Begin().ok());
    store::ClientRow c;
    c.scope = "default";
    c.id = kOld;
    REQUIRE(st->UpsertClient(c).ok());
    REQUIRE(st->Commit().ok());
    Status s = WriteImport(st.get(), "default", src, 1000, false);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("1 client record"));
    std::optional<store::ClientRow> a;
    REQUIRE(st->GetClient("default", kA, &a).ok());
    CHECK_FALSE(a);
  }
}

TEST_CASE("the first-start import: only into a database never served from",
          "[migrate]") {
  MigrateDir d;
  MakeNfsdcld(d.Src(), 4, 2, 0);
  AddRec(d.Src(), 2, kA);
  const std::string track = d.Src("cltrack.sqlite");
  MakeNfsdcltrack(track);
  AddCltrack(track, kB, 1700000000, 1);
  auto st = OpenStore(d.Db());
  auto ids = [&](const std::string& scope) {
    std::set<std::string> out;
    REQUIRE(st->ForEachClient(scope, [&](const store::ClientRow& c) {
                out.insert(c.id);
                return true;
              }).ok());
    return out;
  };
  SECTION("nfsdcld's database first") {
    ImportAtFirstStart(st.get(), "default", d.Src(), track, 1000);
    CHECK(ids("default") == std::set<std::string>{kA});
    // Once imported, never again, not into another scope either.
    ImportAtFirstStart(st.get(), "ns2", d.Src(), track, 1001);
    CHECK(ids("ns2").empty());
  }
  SECTION("nfsdcltrack's when nfsdcld has none") {
    ImportAtFirstStart(st.get(), "default", d.Src("absent"), track, 1000);
    CHECK(ids("default") == std::set<std::string>{kB});
  }
  SECTION("none turns it off") {
    ImportAtFirstStart(st.get(), "default", kNone, kNone, 1000);
    std::optional<store::ImportRow> imp;
    REQUIRE(st->GetImport("default", &imp).ok());
    CHECK_FALSE(imp);
  }
  SECTION("not when another scope has been served") {
    REQUIRE(st->Begin().ok());
    store::ScopeRow used;
    used.name = "other";
    used.boot_time = used.max_instance = 1700000000;
    REQUIRE(st->PutScope(used).ok());
    REQUIRE(st->Commit().ok());
    ImportAtFirstStart(st.get(), "default", d.Src(), track, 1000);
    CHECK(ids("default").empty());
  }
  SECTION("a source that does not validate imports nothing") {
    SqlExec(d.Src(), "UPDATE parameters SET value = '9' WHERE key = 'version'");
    ImportAtFirstStart(st.get(), "default", d.Src(), track, 1000);
    CHECK(ids("default").empty());
    std::optional<store::ImportRow> imp;
    REQUIRE(st->GetImport("default", &imp).ok());
    CHECK_FALSE(imp);
  }
}

TEST_CASE("a schema 1 store is migrated to schema 2 with its records",
          "[migrate][store]") {
  MigrateDir d;
  REQUIRE(mkdir((d.path + "/state").c_str(), 0700) == 0);
  SqlExec(d.Db(),
          "CREATE TABLE scopes (name TEXT PRIMARY KEY NOT NULL, boot_time "
          "INTEGER, new_boot_time INTEGER, old_boot_time INTEGER, "
          "max_instance INTEGER NOT NULL DEFAULT 0, kernel_boot_time INTEGER, "
          "grace_started INTEGER, grace_ended INTEGER) STRICT;"
          "CREATE TABLE v4clients (scope TEXT NOT NULL, id BLOB NOT NULL, "
          "princhash BLOB, minor INTEGER NOT NULL, instance INTEGER NOT NULL, "
          "first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY "
          "KEY (scope, id)) STRICT, WITHOUT ROWID;"
          "CREATE INDEX v4clients_by_instance ON v4clients (scope, instance);"
          "INSERT INTO scopes (name, boot_time, max_instance) VALUES "
          "('default', 1700000000, 1700000000);"
          "INSERT INTO v4clients VALUES ('default', x'41', NULL, 1, "
          "1700000000, 1, 2);"
          "PRAGMA user_version=1; PRAGMA application_id=1313231688;");
  auto st = OpenStore(d.Db());
  std::string v;
  REQUIRE(st->Pragma("user_version", &v).ok());
  CHECK(v == std::to_string(store::kSchemaVersion));
  std::optional<store::ClientRow> c;
  REQUIRE(st->GetClient("default", "A", &c).ok());
  CHECK(c);
  std::string why;
  REQUIRE(ScopeInUse(st.get(), "default", &why).ok());
  CHECK_THAT(why, Catch::Contains("server instances"));
}

}  // namespace
}  // namespace nfsdh::migrate
