// The hand-back to nfsdcld: which records are selected (the next start's
// rules, the pending steps, what nfsd says about its grace period), and the
// file written (nfsdcld's schema, read back with sqlite and with the
// import's own reader), and the refusals that write nothing.
#include "daemon/migrate/nfsdcld_export.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>

#include "daemon/migrate/nfsdcld_import.h"
#include "daemon/migrate/test_sources.h"
#include "daemon/store/pending_steps.h"
#include "daemon/store/store.h"

namespace nfsdh::migrate {
namespace {

using namespace testing;  // NOLINT: the fixtures of test_sources.h

const std::string kA = "Linux NFSv4.2 reclaimed-a";
const std::string kB = std::string("\x00\x01\xfe binary-b\n", 13);
const std::string kS = "Linux NFSv4.2 silent-s";
const std::string kOld = "Linux NFSv4.2 older-than-boot-time";
const std::string kHashA(32, '\xa1');

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/nfsdh-handback-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
    REQUIRE(mkdir((path + "/state").c_str(), 0700) == 0);
    REQUIRE(mkdir((path + "/nfsdfs").c_str(), 0700) == 0);
  }
  ~Dir() {
    if (std::system(("rm -rf '" + path + "'").c_str()) != 0) {
      // A leftover temporary directory is harmless.
    }
  }
  std::string Db() const { return path + "/state/state.sqlite"; }
  std::string Target() const { return path + "/nfsdcld/main.sqlite"; }
  std::string Nfsdfs() const { return path + "/nfsdfs"; }
  void Nfsd(const std::string& end_grace, const std::string& threads) const {
    std::ofstream(Nfsdfs() + "/v4_end_grace") << end_grace << "\n";
    std::ofstream(Nfsdfs() + "/threads") << threads << "\n";
  }
};

// A scope whose last grace period (instance 100) ended and whose instance
// 200 is in grace: A reclaimed in 200 (with a principal), B and S were
// allowed and have not reclaimed yet; kOld is stamped below boot_time (no
// start would keep it).
void MakeScopeInGrace(const std::string& db) {
  std::unique_ptr<store::Store> st;
  REQUIRE(store::Store::Open(db, store::Store::Mode::kReadWrite, &st).ok());
  REQUIRE(st->Begin().ok());
  store::ScopeRow row;
  row.name = "default";
  row.boot_time = 100;
  row.new_boot_time = 200;
  row.max_instance = 200;
  REQUIRE(st->PutScope(row).ok());
  auto put = [&](const std::string& id, int64_t instance,
                 const std::string& hash = "") {
    store::ClientRow c;
    c.scope = "default";
    c.id = id;
    c.princhash = hash;
    c.minor = 1;
    c.instance = instance;
    REQUIRE(st->UpsertClient(c).ok());
  };
  put(kA, 200, kHashA);
  put(kB, 100);
  put(kS, 100);
  put(kOld, 50);
  REQUIRE(st->Commit().ok());
}

std::map<std::string, std::string> Selected(const Handback& h) {
  std::map<std::string, std::string> out;
  for (const HandbackClient& c : h.clients) out[c.id] = c.princhash;
  return out;
}

Status Select(const Dir& d, const std::string& nfsdfs, Handback* h) {
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(d.Db(), store::Store::Mode::kReadOnly, &st);
  REQUIRE(s.ok());
  return SelectHandback(st.get(), d.Db(), "default", nfsdfs, h);
}

Handback MustSelect(const Dir& d, const std::string& nfsdfs) {
  Handback h;
  Status s = Select(d, nfsdfs, &h);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return h;
}

std::string Query1(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  INFO(sql);
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (!out.empty()) out += "|";
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      if (i) out += ",";
      const unsigned char* t = sqlite3_column_text(st, i);
      out += t ? reinterpret_cast<const char*>(t) : "NULL";
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// id -> princhash of the table of nfsdcld's current epoch.
std::map<std::string, std::string> CurrentTable(const std::string& path,
                                                int64_t epoch) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  const std::string sql = "SELECT id, princhash, typeof(princhash) FROM \"" +
                          RecTable(epoch) + "\"";
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::map<std::string, std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string id(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                   sqlite3_column_bytes(st, 0));
    std::string type =
        reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
    std::string hash;
    if (type == "blob") {
      hash.assign(static_cast<const char*>(sqlite3_column_blob(st, 1)),
                  sqlite3_column_bytes(st, 1));
    } else {
      CHECK(type == "null");  // never an empty blob
    }
    out[id] = hash;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST_CASE(
    "hand-back: a scope in grace, nfsd stopped, gives what a restart "
    "in grace allows",
    "[export_nfsdcld]") {
  Dir d;
  MakeScopeInGrace(d.Db());
  SECTION("--nfsdfs none") {
    Handback h = MustSelect(d, kNone);
    CHECK(Selected(h) ==
          std::map<std::string, std::string>{{kA, kHashA}, {kB, ""}, {kS, ""}});
    CHECK(h.left_out == 1);  // kOld
    CHECK(h.plan.keep_from == 100);
    CHECK_FALSE(h.kernel_ended_grace);
  }
  SECTION("nfsd says N and runs no thread") {
    d.Nfsd("N", "0");
    Handback h = MustSelect(d, d.Nfsdfs());
    CHECK(Selected(h).size() == 3);
  }
}

TEST_CASE(
    "hand-back: a grace end nfsd made and the database missed keeps "
    "only the clients that reclaimed",
    "[export_nfsdcld]") {
  Dir d;
  MakeScopeInGrace(d.Db());
  SECTION("v4_end_grace says Y") {
    d.Nfsd("Y", "8");
    Handback h = MustSelect(d, d.Nfsdfs());
    CHECK(h.kernel_ended_grace);
    CHECK(h.pending == std::vector<recovery::PendingStep>{{false, 200}});
    CHECK(Selected(h) == std::map<std::string, std::string>{{kA, kHashA}});
  }
  SECTION("the pending-steps file says so") {
    std::ofstream(store::PendingStepsPath(d.Db(), "default")) << "end 200\n";
    d.Nfsd("N", "8");  // not asked: the end is known
    Handback h = MustSelect(d, d.Nfsdfs());
    CHECK_FALSE(h.kernel_ended_grace);
    CHECK(Selected(h) == std::map<std::string, std::string>{{kA, kHashA}});
  }
  SECTION("a start the database missed, and its end: nobody") {
    std::ofstream(store::PendingStepsPath(d.Db(), "default")) << "start\nend\n";
    Handback h = MustSelect(d, kNone);
    CHECK(h.clients.empty());
    CHECK(h.left_out == 4);
  }
  SECTION("a start the database missed that nfsd then ended") {
    std::ofstream(store::PendingStepsPath(d.Db(), "default")) << "start\n";
    d.Nfsd("Y", "0");
    Handback h = MustSelect(d, d.Nfsdfs());
    CHECK(h.kernel_ended_grace);
    CHECK(h.clients.empty());
  }
}

TEST_CASE("hand-back: refused when what nfsd did cannot be known",
          "[export_nfsdcld]") {
  Dir d;
  MakeScopeInGrace(d.Db());
  Handback h;
  Status s;
  SECTION("nfsd runs the grace period") {
    d.Nfsd("N", "8");
    s = Select(d, d.Nfsdfs(), &h);
    CHECK_THAT(s.message(), Catch::Contains("may be running the grace "
                                            "period of instance 200"));
  }
  SECTION("no threads file") {
    std::ofstream(d.Nfsdfs() + "/v4_end_grace") << "N\n";
    s = Select(d, d.Nfsdfs(), &h);
    CHECK_THAT(s.message(), Catch::Contains("cannot be read"));
  }
  SECTION("no v4_end_grace") {
    s = Select(d, d.Nfsdfs(), &h);
    CHECK_THAT(s.message(), Catch::Contains("--nfsdfs none"));
  }
  SECTION("a pending-steps file that does not parse") {
    std::ofstream(store::PendingStepsPath(d.Db(), "default")) << "end soon\n";
    s = Select(d, kNone, &h);
    CHECK_THAT(s.message(), Catch::Contains("not understood"));
  }
  CHECK(s.code() == Status::Code::kInvalid);
}

TEST_CASE("hand-back: out of grace, nfsd is not asked", "[export_nfsdcld]") {
  Dir d;
  MakeScopeInGrace(d.Db());
  std::ofstream(store::PendingStepsPath(d.Db(), "default")) << "end 200\n";
  // No v4_end_grace at all: it decides nothing once the end is known.
  Handback h = MustSelect(d, d.Nfsdfs());
  CHECK(h.clients.size() == 1);
  Status s = Select(d, d.path + "/no-such-dir", &h);
  CHECK(s.ok());
}

TEST_CASE("hand-back: the file written is nfsdcld's schema 4, not in grace",
          "[export_nfsdcld]") {
  Dir d;
  MakeScopeInGrace(d.Db());
  Handback h = MustSelect(d, kNone);
  NfsdcldWrite w;
  Status s = WriteNfsdcld(d.Target(), h.clients, false, &w);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(w.replaced.empty());
  CHECK(w.current_epoch == 1);
  struct stat st;
  REQUIRE(stat(d.Target().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  REQUIRE(stat((d.path + "/nfsdcld").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(Listing(d.path + "/nfsdcld") ==
        std::set<std::string>{".", "..", "main.sqlite"});
  // nfsdcld's own layout (sqlite_maindb_init_v4).
  CHECK(Query1(d.Target(),
               "SELECT name FROM sqlite_master WHERE type = 'table' "
               "ORDER BY name") == "grace|parameters|rec-0000000000000001");
  CHECK(Query1(d.Target(), "SELECT key, value FROM parameters ORDER BY key") ==
        "first_time,0|version,4");
  CHECK(Query1(d.Target(), "SELECT current, recovery FROM grace") == "1,0");
  CHECK(Query1(d.Target(), "PRAGMA journal_mode") == "delete");
  CHECK(CurrentTable(d.Target(), 1) ==
        std::map<std::string, std::string>{{kA, kHashA}, {kB, ""}, {kS, ""}});
  // What nfsd-helper's first-start import reads from it: the same clients.
  Source src;
  REQUIRE(ReadSource(d.Target(), kNone, &src).ok());
  CHECK(src.schema_version == 4);
  CHECK(src.current_epoch == 1);
  CHECK(src.recovery_epoch == 0);
  CHECK_FALSE(src.first_time);
  std::map<std::string, std::string> back;
  for (const SourceClient& c : src.clients) back[c.id] = c.princhash;
  CHECK(back == Selected(h));
  CHECK(src.skipped.empty());

  // Written again over it: an nfsdcld database is replaced, the epochs go on.
  s = WriteNfsdcld(d.Target(), {{kA, ""}}, false, &w);
  REQUIRE(s.ok());
  CHECK(w.current_epoch == 2);
  CHECK_THAT(w.replaced, Catch::StartsWith("an nfsdcld database"));
  CHECK(CurrentTable(d.Target(), 2) ==
        std::map<std::string, std::string>{{kA, ""}});
  CHECK(Query1(d.Target(),
               "SELECT count(*) FROM sqlite_master WHERE name "
               "LIKE 'rec-%'") == "1");
}

TEST_CASE("hand-back: no client is a valid empty database",
          "[export_nfsdcld]") {
  Dir d;
  NfsdcldWrite w;
  REQUIRE(WriteNfsdcld(d.Target(), {}, false, &w).ok());
  Source src;
  REQUIRE(ReadSource(d.Target(), kNone, &src).ok());
  CHECK(src.clients.empty());
}

TEST_CASE("hand-back: a target that is not nfsdcld's is kept unless --force",
          "[export_nfsdcld]") {
  Dir d;
  REQUIRE(mkdir((d.path + "/nfsdcld").c_str(), 0700) == 0);
  const std::vector<HandbackClient> clients = {{kA, kHashA}};
  NfsdcldWrite w;
  SECTION("a text file") {
    std::ofstream(d.Target()) << "not a database\n";
    const std::string sum = Sha256(d.Target());
    Status s = WriteNfsdcld(d.Target(), clients, false, &w);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("not an nfsdcld database"));
    CHECK(Sha256(d.Target()) == sum);
    s = WriteNfsdcld(d.Target(), clients, true, &w);
    REQUIRE(s.ok());
    CHECK(w.replaced_foreign);
    CHECK(CurrentTable(d.Target(), 1).size() == 1);
  }
  SECTION("nfsdcltrack's database") {
    MakeNfsdcltrack(d.Target());
    Status s = WriteNfsdcld(d.Target(), clients, false, &w);
    CHECK_THAT(s.message(), Catch::Contains("nfsdcltrack"));
  }
  SECTION("nfsd-helper's own database") {
    MakeScopeInGrace(d.Target());
    const std::string sum = Sha256(d.Target());
    Status s = WriteNfsdcld(d.Target(), clients, false, &w);
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK(Sha256(d.Target()) == sum);
  }
  SECTION("a directory, even with --force") {
    REQUIRE(mkdir(d.Target().c_str(), 0700) == 0);
    Status s = WriteNfsdcld(d.Target(), clients, true, &w);
    CHECK_THAT(s.message(), Catch::Contains("not a regular file"));
  }
  SECTION("a symbolic link, even with --force") {
    MakeNfsdcld(d.path + "/elsewhere.sqlite", 4, 3, 0);
    REQUIRE(symlink((d.path + "/elsewhere.sqlite").c_str(),
                    d.Target().c_str()) == 0);
    Status s = WriteNfsdcld(d.Target(), clients, true, &w);
    CHECK_THAT(s.message(), Catch::Contains("not a regular file"));
  }
  // Nothing left beside it.
  CHECK(access((d.Target() + ".new").c_str(), F_OK) != 0);
}

TEST_CASE(
    "hand-back: a journal of the old database is never applied to the "
    "new one",
    "[export_nfsdcld]") {
  Dir d;
  REQUIRE(mkdir((d.path + "/nfsdcld").c_str(), 0700) == 0);
  MakeNfsdcld(d.Target(), 4, 3, 0);
  AddRec(d.Target(), 3, kS);
  std::ofstream(d.Target() + "-journal") << std::string(4096, 'j');
  const std::string sum = Sha256(d.Target());
  NfsdcldWrite w;
  Status s = WriteNfsdcld(d.Target(), {{kA, ""}}, false, &w);
  CHECK_THAT(s.message(), Catch::Contains("journal of its own"));
  CHECK(Sha256(d.Target()) == sum);
  s = WriteNfsdcld(d.Target(), {{kA, ""}}, true, &w);
  REQUIRE(s.ok());
  CHECK(access((d.Target() + "-journal").c_str(), F_OK) != 0);
  Source src;
  REQUIRE(ReadSource(d.Target(), kNone, &src).ok());
  REQUIRE(src.clients.size() == 1);
  CHECK(src.clients[0].id == kA);
}

TEST_CASE("hand-back: refused while a process (nfsdcld) has the target open",
          "[export_nfsdcld]") {
  Dir d;
  REQUIRE(mkdir((d.path + "/nfsdcld").c_str(), 0700) == 0);
  MakeNfsdcld(d.Target(), 4, 3, 0);
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int fd = open(d.Target().c_str(), O_RDONLY);
    char c = fd >= 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  CHECK(c == 'y');
  std::vector<std::string> users = ProcessesWithFileOpen(d.Target());
  NfsdcldWrite w;
  Status s = WriteNfsdcld(d.Target(), {{kA, ""}}, true, &w);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  REQUIRE(users.size() == 1);
  CHECK_THAT(users[0], Catch::Contains("(pid " + std::to_string(child) + ")"));
  CHECK_THAT(s.message(), Catch::Contains("stop nfsdcld.service"));
  CHECK(ProcessesWithFileOpen(d.Target()).empty());
}

}  // namespace
}  // namespace nfsdh::migrate
