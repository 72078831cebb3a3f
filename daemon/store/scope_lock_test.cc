// ScopeLock: one holder per (database, scope), in process; the lock is an
// open file description lock, so a second Acquire in the same process
// conflicts too.
#include "daemon/store/scope_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

namespace nfsdh::store {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-lock-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

TEST_CASE("a scope is locked by one holder at a time, and other scopes are free",
          "[store][lock]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  std::unique_ptr<ScopeLock> a, again, other;
  REQUIRE(ScopeLock::Acquire(db, "default", geteuid(), &a).ok());
  CHECK(a->path() == db + ".default.lock");
  std::string pid;
  std::ifstream(a->path()) >> pid;
  CHECK(pid == std::to_string(getpid()));
  struct stat st;
  REQUIRE(stat(a->path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  Status s = ScopeLock::Acquire(db, "default", geteuid(), &again);
  INFO(s.ToString());
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find("scope default") != std::string::npos);
  CHECK(s.message().find("(pid " + std::to_string(getpid()) + ")") !=
        std::string::npos);
  CHECK(again == nullptr);
  CHECK(ScopeLock::Acquire(db, "other", geteuid(), &other).ok());

  a.reset();  // released with its descriptor
  CHECK(ScopeLock::Acquire(db, "default", geteuid(), &again).ok());
}

TEST_CASE("the database lock: shared by every helper, exclusive only alone",
          "[store][lock]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  std::unique_ptr<DatabaseLock> a, b;
  REQUIRE(DatabaseLock::AcquireShared(db, geteuid(), &a).ok());
  REQUIRE(DatabaseLock::AcquireShared(db, geteuid(), &b).ok());
  struct stat st;
  REQUIRE(stat(DatabaseLock::PathFor(db).c_str(), &st) == 0);
  CHECK(DatabaseLock::PathFor(db) == db + ".lock");
  CHECK((st.st_mode & 07777) == 0600);
  // Two holders: neither may take it alone.
  Status s = a->TryExclusive();
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find(db + ".lock") != std::string::npos);
  CHECK(b->TryExclusive().code() == Status::Code::kInvalid);
  // Alone, it may; shared again, another may join.
  b.reset();
  CHECK(a->TryExclusive().ok());
  a->Share();
  REQUIRE(DatabaseLock::AcquireShared(db, geteuid(), &b).ok());
  CHECK(a->TryExclusive().code() == Status::Code::kInvalid);
  // A link is refused, as for the scope locks.
  std::unique_ptr<DatabaseLock> l;
  REQUIRE(symlink("/nonexistent", (t.path + "/x.sqlite.lock").c_str()) == 0);
  CHECK(DatabaseLock::AcquireShared(t.path + "/x.sqlite", geteuid(), &l)
            .code() == Status::Code::kInvalid);
}

TEST_CASE("a lock file that is a link, or another user's, is refused",
          "[store][lock]") {
  TempDir t;
  std::string db = t.path + "/s.sqlite";
  std::unique_ptr<ScopeLock> l;
  REQUIRE(symlink("/nonexistent", (db + ".x.lock").c_str()) == 0);
  Status s = ScopeLock::Acquire(db, "x", geteuid(), &l);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find("symbolic link") != std::string::npos);
  { std::ofstream(db + ".y.lock") << ""; }
  s = ScopeLock::Acquire(db, "y", geteuid() + 4242, &l);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message().find("owned by uid") != std::string::npos);
  CHECK(l == nullptr);
}

}  // namespace
}  // namespace nfsdh::store
