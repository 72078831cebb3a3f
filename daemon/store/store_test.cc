#include "daemon/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <optional>
#include <string>
#include <vector>

namespace nfsdh::store {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-store-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::unique_ptr<Store> OpenRw(const std::string& path) {
  std::unique_ptr<Store> st;
  Status s = Store::Open(path, Store::Mode::kReadWrite, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return st;
}

int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

ClientRow Client(const std::string& id, int64_t instance, int64_t now = 100) {
  ClientRow c;
  c.scope = "default";
  c.id = id;
  c.instance = instance;
  c.first_seen = c.last_seen = now;
  return c;
}

TEST_CASE("a new database is private, versioned, WAL and durable",
          "[store]") {
  TempDir t;
  std::string dir = t.path + "/state";
  std::string db = dir + "/state.sqlite";
  auto st = OpenRw(db);
  struct stat sb;
  REQUIRE(stat(dir.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 07777) == 0700);
  REQUIRE(stat(db.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 07777) == 0600);
  CHECK(QueryInt(db, "PRAGMA user_version") == kSchemaVersion);
  CHECK(QueryInt(db, "PRAGMA application_id") == kApplicationId);
  // A write creates the WAL file with the database's mode.
  REQUIRE(st->Begin().ok());
  ScopeRow sc;
  sc.name = "default";
  REQUIRE(st->PutScope(sc).ok());
  REQUIRE(st->Commit().ok());
  REQUIRE(stat((db + "-wal").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 07777) == 0600);
}

TEST_CASE("the writer runs WAL with synchronous=FULL", "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  std::string v;
  REQUIRE(st->Pragma("journal_mode", &v).ok());
  CHECK(v == "wal");
  REQUIRE(st->Pragma("synchronous", &v).ok());
  CHECK(v == "2");  // FULL
  CHECK_FALSE(st->Pragma("x; DROP TABLE scopes", &v).ok());
}

TEST_CASE("a committed record survives closing and reopening", "[store]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  {
    auto st = OpenRw(db);
    REQUIRE(st->Begin().ok());
    REQUIRE(st->UpsertClient(Client("A", 7)).ok());
    REQUIRE(st->Commit().ok());
  }
  auto st = OpenRw(db);
  std::optional<ClientRow> c;
  REQUIRE(st->GetClient("default", "A", &c).ok());
  REQUIRE(c);
  CHECK(c->instance == 7);
}

TEST_CASE("scope rows round-trip, NULLs included", "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  ScopeRow in;
  in.name = "ns-1";
  in.boot_time = 1000;
  in.old_boot_time = 900;
  in.max_instance = 1001;
  in.kernel_boot_time = 998;
  in.grace_started = 1001;
  REQUIRE(st->Begin().ok());
  REQUIRE(st->PutScope(in).ok());
  REQUIRE(st->Commit().ok());
  std::optional<ScopeRow> out;
  REQUIRE(st->GetScope("ns-1", &out).ok());
  REQUIRE(out);
  CHECK(out->boot_time == 1000);
  CHECK_FALSE(out->new_boot_time);
  CHECK(out->old_boot_time == 900);
  CHECK(out->max_instance == 1001);
  CHECK(out->kernel_boot_time == 998);
  CHECK_FALSE(out->grace_ended);
  REQUIRE(st->GetScope("other", &out).ok());
  CHECK_FALSE(out);
}

TEST_CASE("upsert refreshes a record but keeps first_seen", "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  std::string id("\x00\xff binary\n", 10);
  std::string hash(32, '\x5a');
  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Client(id, 10, 100)).ok());
  ClientRow again = Client(id, 20, 200);
  again.princhash = hash;
  again.minor = 1;
  REQUIRE(st->UpsertClient(again).ok());
  REQUIRE(st->Commit().ok());
  std::optional<ClientRow> c;
  REQUIRE(st->GetClient("default", id, &c).ok());
  REQUIRE(c);
  CHECK(c->id == id);
  CHECK(c->instance == 20);
  CHECK(c->princhash == hash);
  CHECK(c->minor == 1);
  CHECK(c->first_seen == 100);
  CHECK(c->last_seen == 200);
}

TEST_CASE("insert-if-absent adds a record but never changes one",
          "[store][import]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Client("old", 20, 100)).ok());
  bool inserted = true;
  ClientRow other = Client("old", 7, 300);
  other.princhash = std::string(32, '\x11');
  REQUIRE(st->InsertClientIfAbsent(other, &inserted).ok());
  CHECK_FALSE(inserted);
  REQUIRE(st->InsertClientIfAbsent(Client("new", 7, 300), &inserted).ok());
  CHECK(inserted);
  REQUIRE(st->Commit().ok());
  std::optional<ClientRow> c;
  REQUIRE(st->GetClient("default", "old", &c).ok());
  REQUIRE(c);
  CHECK(c->instance == 20);
  CHECK(c->princhash.empty());
  CHECK(c->first_seen == 100);
  REQUIRE(st->GetClient("default", "new", &c).ok());
  REQUIRE(c);
  CHECK(c->instance == 7);
  CHECK(c->first_seen == 300);
}

TEST_CASE("ForEachClientOlderThan lists exactly what a purge removes",
          "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Client("a", 5)).ok());
  REQUIRE(st->UpsertClient(Client("b", 10)).ok());
  REQUIRE(st->UpsertClient(Client("c", 9)).ok());
  ClientRow other = Client("d", 1);
  other.scope = "other";
  REQUIRE(st->UpsertClient(other).ok());
  std::set<std::string> listed;
  REQUIRE(st->ForEachClientOlderThan("default", 10, [&](const ClientRow& c) {
                listed.insert(c.id);
                return true;
              }).ok());
  CHECK(listed == std::set<std::string>{"a", "c"});
  int64_t deleted = 0;
  REQUIRE(st->PurgeOlderThan("default", 10, &deleted).ok());
  CHECK(deleted == 2);
  REQUIRE(st->Commit().ok());
}

TEST_CASE("delete and purge touch only their scope", "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  REQUIRE(st->Begin().ok());
  for (int i = 0; i < 10; ++i)
    REQUIRE(st->UpsertClient(Client("c" + std::to_string(i), 100 + i)).ok());
  ClientRow other = Client("c0", 1);
  other.scope = "other";
  REQUIRE(st->UpsertClient(other).ok());
  int64_t n = -1;
  REQUIRE(st->PurgeOlderThan("default", 105, &n).ok());
  CHECK(n == 5);
  bool existed = false;
  REQUIRE(st->DeleteClient("default", "c9", &existed).ok());
  CHECK(existed);
  REQUIRE(st->DeleteClient("default", "c9", &existed).ok());
  CHECK_FALSE(existed);
  REQUIRE(st->Commit().ok());
  REQUIRE(st->CountClients("default", &n).ok());
  CHECK(n == 4);
  REQUIRE(st->CountClients("other", &n).ok());
  CHECK(n == 1);
  std::vector<std::string> ids;
  REQUIRE(st->ForEachClient("default", [&](const ClientRow& c) {
               ids.push_back(c.id);
               return true;
             }).ok());
  CHECK(ids == std::vector<std::string>{"c5", "c6", "c7", "c8"});
  ids.clear();
  REQUIRE(st->ForEachClient("default", [&](const ClientRow& c) {
               ids.push_back(c.id);
               return false;  // stop after the first
             }).ok());
  CHECK(ids.size() == 1);
}

TEST_CASE("ForEachClientAfter seeks past a key", "[store]") {
  TempDir t;
  auto st = OpenRw(t.path + "/s.sqlite");
  REQUIRE(st->Begin().ok());
  for (const char* id : {"a", "b", "bb", "c"})
    REQUIRE(st->UpsertClient(Client(id, 1)).ok());
  REQUIRE(st->Commit().ok());
  auto after = [&](const std::string& key) {
    std::vector<std::string> ids;
    REQUIRE(st->ForEachClientAfter("default", key, [&](const ClientRow& c) {
                 ids.push_back(c.id);
                 return true;
               }).ok());
    return ids;
  };
  CHECK(after("") == std::vector<std::string>{"a", "b", "bb", "c"});
  CHECK(after("b") == std::vector<std::string>{"bb", "c"});
  CHECK(after("bz") == std::vector<std::string>{"c"});
  CHECK(after("c").empty());
}

TEST_CASE("an uncommitted transaction is invisible and rolls back",
          "[store]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  auto st = OpenRw(db);
  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Client("A", 1)).ok());
  CHECK(QueryInt(db, "SELECT count(*) FROM v4clients") == 0);
  st->Rollback();
  CHECK_FALSE(st->in_transaction());
  int64_t n = -1;
  REQUIRE(st->CountClients("default", &n).ok());
  CHECK(n == 0);
}

TEST_CASE("damaged and foreign files are refused with the right kind",
          "[store]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  std::unique_ptr<Store> st;

  // Only a file that says it is ours is ever corrupt (and set aside by the
  // daemon); whatever does not say so is not ours, however damaged.
  SECTION("garbage bytes are not ours") {
    std::ofstream(db) << std::string(8192, 'x');
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("is not an nfsd-helper database"));
    s = Store::Open(db, Store::Mode::kReadOnly, &st);
    CHECK(s.code() == Status::Code::kInvalid);
  }
  SECTION("another program's database with a damaged schema is not ours") {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "CREATE TABLE grace (current INTEGER)", 0, 0,
                         0) == SQLITE_OK);
    sqlite3_close(h);
    int fd = open(db.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::string junk(1000, '\xee');
    REQUIRE(pwrite(fd, junk.data(), junk.size(), 100) == 1000);
    close(fd);
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("is not an nfsd-helper database"));
  }
  SECTION("ours with a damaged schema page is corrupt") {
    OpenRw(db);  // closed: its WAL is in the file
    int fd = open(db.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::string junk(1000, '\xee');
    REQUIRE(pwrite(fd, junk.data(), junk.size(), 100) == 1000);
    close(fd);
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kCorrupt);
  }
  SECTION("a damaged b-tree page fails quick_check") {
    {
      auto w = OpenRw(db);
      REQUIRE(w->Begin().ok());
      for (int i = 0; i < 2000; ++i)
        REQUIRE(w->UpsertClient(Client(std::string(200, 'a') +
                                           std::to_string(i), 5)).ok());
      REQUIRE(w->Commit().ok());
    }
    // Checkpoint the WAL into the file, then scribble over a middle page.
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
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    INFO(s.ToString());
    CHECK(s.code() == Status::Code::kCorrupt);
  }
  SECTION("another program's database is not ours, and not corrupt") {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h,
                         "CREATE TABLE grace (current INTEGER, recovery "
                         "INTEGER)",
                         0, 0, 0) == SQLITE_OK);
    sqlite3_close(h);
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("not an nfsd-helper database"));
  }
  SECTION("a newer schema is refused") {
    OpenRw(db);
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA user_version=99", 0, 0, 0) == SQLITE_OK);
    sqlite3_close(h);
    Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("schema version 99"));
  }
  SECTION("read-only mode never creates a file") {
    Status s = Store::Open(db, Store::Mode::kReadOnly, &st);
    CHECK(s.code() == Status::Code::kNotFound);
    CHECK(access(db.c_str(), F_OK) != 0);
  }
}

TEST_CASE("a read transaction sees one snapshot while the writer goes on",
          "[store]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  auto w = OpenRw(db);
  REQUIRE(w->Begin().ok());
  REQUIRE(w->UpsertClient(Client("A", 1)).ok());
  REQUIRE(w->Commit().ok());
  std::unique_ptr<Store> r;
  REQUIRE(Store::Open(db, Store::Mode::kReadOnly, &r).ok());
  REQUIRE(r->BeginRead().ok());
  REQUIRE(w->Begin().ok());  // the reader does not block the writer
  REQUIRE(w->UpsertClient(Client("B", 1)).ok());
  REQUIRE(w->Commit().ok());
  int64_t n = 0;
  REQUIRE(r->CountClients("default", &n).ok());
  CHECK(n == 1);
  r->EndRead();
  REQUIRE(r->CountClients("default", &n).ok());
  CHECK(n == 2);
}

TEST_CASE("a file that cannot be opened is never taken for a corrupt one",
          "[store]") {
  // The daemon sets aside only what Open calls corrupt; a path it cannot
  // open at all must be reported as what it is.
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  OpenRw(db);
  std::unique_ptr<Store> st;
  Status s = Store::Open(db + "/x", Store::Mode::kReadOnly, &st);
  CHECK(s.code() == Status::Code::kIo);  // ENOTDIR
  CHECK_THAT(s.message(), Catch::Contains("Not a directory"));
  s = Store::Open(db + "/x", Store::Mode::kReadWrite, &st);
  CHECK_FALSE(s.ok());
  CHECK(s.code() != Status::Code::kCorrupt);
}

TEST_CASE("a group- or world-writable state directory is refused",
          "[store]") {
  TempDir t;
  std::string dir = t.path + "/state";
  REQUIRE(mkdir(dir.c_str(), 0777) == 0);
  REQUIRE(chmod(dir.c_str(), 0777) == 0);
  std::unique_ptr<Store> st;
  Status s = Store::Open(dir + "/s.sqlite", Store::Mode::kReadWrite, &st);
  CHECK(s.code() == Status::Code::kPermission);
}

TEST_CASE("an empty file is migrated to the current schema", "[store]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  std::ofstream(db).close();  // version 0: an empty file
  OpenRw(db);
  CHECK(QueryInt(db, "PRAGMA user_version") == kSchemaVersion);
  CHECK(QueryInt(db,
                 "SELECT count(*) FROM sqlite_schema WHERE name='v4clients'") ==
        1);
}

TEST_CASE("a schema 2 database is migrated to 3 with its records and an "
          "empty outbox",
          "[store][outbox]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  {
    // Schema 2 as the previous release wrote it.
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    const char* v2 =
        "CREATE TABLE scopes (name TEXT PRIMARY KEY NOT NULL, boot_time "
        "INTEGER, new_boot_time INTEGER, old_boot_time INTEGER, max_instance "
        "INTEGER NOT NULL DEFAULT 0, kernel_boot_time INTEGER, grace_started "
        "INTEGER, grace_ended INTEGER) STRICT;"
        "CREATE TABLE v4clients (scope TEXT NOT NULL, id BLOB NOT NULL, "
        "princhash BLOB, minor INTEGER NOT NULL, instance INTEGER NOT NULL, "
        "first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY "
        "(scope, id)) STRICT, WITHOUT ROWID;"
        "CREATE INDEX v4clients_by_instance ON v4clients (scope, instance);"
        "CREATE TABLE imports (scope TEXT PRIMARY KEY NOT NULL, imported_at "
        "INTEGER NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, "
        "schema_version INTEGER NOT NULL, current_epoch INTEGER, "
        "recovery_epoch INTEGER, clients INTEGER NOT NULL) STRICT;"
        "INSERT INTO v4clients VALUES ('default', x'61', NULL, 1, 7, 1, 1);"
        "PRAGMA user_version=2; PRAGMA application_id=1313231688;";
    REQUIRE(sqlite3_exec(h, v2, 0, 0, 0) == SQLITE_OK);
    sqlite3_close(h);
  }
  auto st = OpenRw(db);
  CHECK(QueryInt(db, "PRAGMA user_version") == 3);
  int64_t n = -1;
  REQUIRE(st->CountClients("default", &n).ok());
  CHECK(n == 1);
  REQUIRE(st->CountCallouts(&n).ok());
  CHECK(n == 0);
}

TEST_CASE("the outbox keeps events in order, with a purge's in one statement",
          "[store][outbox]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  auto st = OpenRw(db);
  REQUIRE(st->Begin().ok());
  REQUIRE(st->UpsertClient(Client("old-1", 10)).ok());
  REQUIRE(st->UpsertClient(Client("old-2", 10)).ok());
  REQUIRE(st->UpsertClient(Client("new", 20)).ok());
  REQUIRE(st->QueueCallout("default", true, std::string("\0x", 2), 5).ok());
  int64_t queued = 0;
  REQUIRE(st->QueuePurgeCallouts("default", 20, 6, &queued).ok());
  CHECK(queued == 2);
  REQUIRE(st->QueueCallout("default", false, "new", 7).ok());
  REQUIRE(st->Commit().ok());

  std::vector<CalloutRow> rows;
  std::optional<CalloutRow> next;
  int64_t after = 0;
  while (st->NextCallout(after, &next).ok() && next) {
    rows.push_back(*next);
    after = next->seq;
  }
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].added);
  CHECK(rows[0].id == std::string("\0x", 2));
  CHECK(rows[0].queued_at == 5);
  std::set<std::string> purged = {rows[1].id, rows[2].id};
  CHECK(purged == std::set<std::string>{"old-1", "old-2"});
  CHECK_FALSE(rows[1].added);
  CHECK(rows[3].id == "new");
  CHECK_FALSE(rows[3].added);
  for (size_t i = 1; i < rows.size(); ++i)
    CHECK(rows[i].seq > rows[i - 1].seq);

  // Deleted in order; a seq is never reused once the table is empty.
  REQUIRE(st->DeleteCalloutsThrough(rows[1].seq).ok());
  int64_t n = 0;
  REQUIRE(st->CountCallouts(&n).ok());
  CHECK(n == 2);
  REQUIRE(st->DeleteCalloutsThrough(rows[3].seq).ok());
  REQUIRE(st->Begin().ok());
  REQUIRE(st->QueueCallout("default", true, "again", 8).ok());
  REQUIRE(st->Commit().ok());
  REQUIRE(st->NextCallout(rows[3].seq, &next).ok());
  REQUIRE(next);
  CHECK(next->id == "again");
}

}  // namespace
}  // namespace nfsdh::store
