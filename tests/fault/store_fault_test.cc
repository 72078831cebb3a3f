// Store under storage faults, in process, SQLite's way: for every kind of
// fault (write, fsync, truncate) x (EIO, ENOSPC) x (once, from then on),
// fail the K-th call for K = 1, 2, ... until the operation succeeds without
// meeting a fault. After each failure the Store must have said so, stay
// usable, and the file must pass integrity_check and hold the change wholly
// or not at all — both in the image a SIGKILL would leave right then and
// after a clean reopen. A change the Store reported committed must be there.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "tests/fault/fault_vfs.h"
#include "tests/fault/plain_db.h"

namespace nfsdh::faulttest {
namespace {

using faultvfs::Err;
using faultvfs::FaultSpec;
using faultvfs::Op;
using store::ClientRow;
using store::ScopeRow;
using store::Store;

const char kScope[] = "default";
// No K loop may run longer than this: the operations here make a few dozen
// calls at most, so reaching it means the loop never terminates.
constexpr uint64_t kMaxK = 400;

// Ids of varied length so the transaction touches several B-tree pages.
std::string IdOf(const std::string& tag, int n) {
  return tag + "-" + std::to_string(n) + "-" +
         std::string(static_cast<size_t>((n * 41) % 300), 'a' + n % 26);
}

ClientRow Client(const std::string& id, int64_t instance, int64_t ts) {
  ClientRow r;
  r.scope = kScope;
  r.id = id;
  r.princhash = std::string(32, static_cast<char>(ts & 0x7f));
  r.minor = static_cast<int>(ts % 2);
  r.instance = instance;
  r.first_seen = r.last_seen = ts;
  return r;
}

// The database before: a scope in the grace period of instance 200 (the
// previous one, 100, completed its grace), forty clients of both.
void Populate(Store* st) {
  REQUIRE(st->Begin().ok());
  ScopeRow row;
  row.name = kScope;
  row.old_boot_time = 50;
  row.boot_time = 100;
  row.new_boot_time = 200;
  row.max_instance = 200;
  row.kernel_boot_time = 7;
  row.grace_started = 1000;
  REQUIRE(st->PutScope(row).ok());
  for (int i = 0; i < 40; ++i)
    REQUIRE(
        st->UpsertClient(Client(IdOf("old", i), i % 2 ? 100 : 200, 1000 + i))
            .ok());
  REQUIRE(st->Commit().ok());
}

// One transaction of the shape a batch (daemon/batch/runner.h) makes: a dozen creates, a refresh,
// expires (one of a record that does not exist), and a grace end (purge and
// scope row). Returns the name of the first step that failed, or nullptr.
const char* RunTxn(Store* st, Status* status) {
  Status& s = *status;
  s = st->Begin();
  if (!s.ok()) return "Begin";
  for (int i = 0; i < 12; ++i) {
    s = st->UpsertClient(Client(IdOf("new", i), 200, 2000));
    if (!s.ok()) break;
  }
  if (s.ok()) s = st->UpsertClient(Client(IdOf("old", 3), 200, 2001));
  if (!s.ok()) {
    st->Rollback();
    return "UpsertClient";
  }
  s = st->DeleteClient(kScope, IdOf("old", 6), nullptr);
  if (s.ok()) s = st->DeleteClient(kScope, "never-recorded", nullptr);
  if (!s.ok()) {
    st->Rollback();
    return "DeleteClient";
  }
  s = st->PurgeOlderThan(kScope, 200, nullptr);
  if (!s.ok()) {
    st->Rollback();
    return "PurgeOlderThan";
  }
  ScopeRow row;
  row.name = kScope;
  row.old_boot_time = 100;
  row.boot_time = 200;
  row.max_instance = 200;
  row.kernel_boot_time = 7;
  row.grace_started = 1000;
  row.grace_ended = 2002;
  s = st->PutScope(row);
  if (!s.ok()) {
    st->Rollback();
    return "PutScope";
  }
  s = st->Commit();  // rolls back itself on failure
  if (!s.ok()) return "Commit";
  return nullptr;
}

const std::string kProbe = "probe";

// The store still works: a small transaction commits and is read back.
void RequireUsable(Store* st, DbState* after_probe) {
  REQUIRE_FALSE(st->in_transaction());
  Status s = st->Begin();
  if (s.ok()) s = st->UpsertClient(Client(kProbe, 300, 3000));
  if (s.ok()) s = st->Commit();
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(ReadStore(st, kScope, after_probe).ok());
  REQUIRE(after_probe->clients.count(kProbe) == 1);
}

std::vector<FaultSpec> AllKinds() {
  std::vector<FaultSpec> v;
  for (Op op : {Op::kWrite, Op::kSync, Op::kTruncate})
    for (Err err : {Err::kEio, Err::kEnospc})
      for (bool persistent : {false, true})
        v.push_back({op, 1, err, persistent});
  return v;
}

std::string KindName(const FaultSpec& s) {
  return std::string(faultvfs::OpName(s.op)) + "/" + faultvfs::ErrName(s.err) +
         "/" + (s.persistent ? "persistent" : "one-shot");
}

// The states the database may be in: before the transaction and after it,
// both made once without faults.
struct Fixture {
  TempDir dir;
  std::string baseline;
  DbState before, after;
  int runs = 0;

  Fixture() {
    baseline = dir.path() + "/baseline.sqlite";
    {
      std::unique_ptr<Store> st;
      REQUIRE(Store::Open(baseline, Store::Mode::kReadWrite, &st).ok());
      Populate(st.get());
    }  // closed cleanly: the baseline is one file, no WAL
    PlainView v = ReadPlain(baseline, kScope, false);
    REQUIRE(v.ok());
    before = v.state;
    std::string db = NewCopy();
    {
      std::unique_ptr<Store> st;
      REQUIRE(Store::Open(db, Store::Mode::kReadWrite, &st).ok());
      Status s;
      REQUIRE(RunTxn(st.get(), &s) == nullptr);
    }
    v = ReadPlain(db, kScope, false);
    REQUIRE(v.ok());
    after = v.state;
    REQUIRE(before != after);
  }

  // A fresh copy of the baseline under a new name (no -shm shared with an
  // earlier run).
  std::string NewCopy() {
    std::string db = dir.path() + "/run-" + std::to_string(++runs) + ".sqlite";
    REQUIRE(CopyCrashImage(baseline, db));
    return db;
  }

  // What a SIGKILL right now would leave, read by the next boot.
  DbState CrashImage(const std::string& db) {
    std::string crash = dir.path() + "/crash.sqlite";
    REQUIRE(CopyCrashImage(db, crash));
    PlainView v = ReadPlain(crash, kScope, true);
    INFO(v.error << " " << v.integrity);
    REQUIRE(v.ok());
    return v.state;
  }
};

TEST_CASE(
    "a daemon-shaped transaction under every storage fault at every "
    "call is reported, atomic, and leaves the store usable",
    "[fault][store]") {
  faultvfs::ScopedDefault vfs;
  Fixture fx;
  uint64_t total_k = 0, total_failed = 0, total_crash_after = 0;
  for (FaultSpec spec : AllKinds()) {
    uint64_t failed = 0, crash_after = 0, statement_failures = 0;
    uint64_t k = 1;
    for (;; ++k) {
      REQUIRE(k <= kMaxK);
      spec.k = k;
      INFO(faultvfs::Describe(spec));
      std::string db = fx.NewCopy();
      std::unique_ptr<Store> st;
      REQUIRE(Store::Open(db, Store::Mode::kReadWrite, &st).ok());

      faultvfs::Arm(spec);
      Status s;
      const char* failed_at = RunTxn(st.get(), &s);
      uint64_t hits = faultvfs::Hits();
      faultvfs::Disarm();
      bool committed = failed_at == nullptr;
      INFO("failed at " << (failed_at ? failed_at : "-") << ": " << s.ToString()
                        << "; " << hits << " fault(s) hit");
      // A failure is only ever reported because of a fault.
      REQUIRE((committed || hits > 0));
      if (!committed) {
        ++failed;
        if (std::string(failed_at) != "Commit") ++statement_failures;
        CHECK(s.code() == Status::Code::kIo);
      }

      // The image a SIGKILL would leave now: whole or absent, never torn;
      // and there if it was reported committed.
      DbState crash = fx.CrashImage(db);
      REQUIRE((crash == fx.before || crash == fx.after));
      if (committed) REQUIRE(crash == fx.after);
      if (!committed && crash == fx.after) ++crash_after;

      // The writer's own view after the rollback is exactly the old state:
      // the daemon keeps its scope row in memory and relies on this.
      DbState mine;
      REQUIRE(ReadStore(st.get(), kScope, &mine).ok());
      REQUIRE(mine == (committed ? fx.after : fx.before));

      DbState with_probe;
      RequireUsable(st.get(), &with_probe);
      DbState without_probe = with_probe;
      without_probe.clients.erase(kProbe);
      REQUIRE(without_probe == mine);
      st.reset();

      // Reopened without the fault: what the writer saw is what is there.
      PlainView v = ReadPlain(db, kScope, true);
      INFO(v.error << " " << v.integrity);
      REQUIRE(v.ok());
      REQUIRE(v.state == with_probe);

      if (committed && hits == 0) break;
    }
    std::printf(
        "[fault][store] %-26s K = 1..%llu: %llu failed (%llu in a "
        "statement before COMMIT), %llu of those durable anyway in "
        "the crash image\n",
        KindName(spec).c_str(), static_cast<unsigned long long>(k),
        static_cast<unsigned long long>(failed),
        static_cast<unsigned long long>(statement_failures),
        static_cast<unsigned long long>(crash_after));
    total_k += k;
    total_failed += failed;
    total_crash_after += crash_after;
  }
  std::printf(
      "[fault][store] transaction: %llu K values exercised, %llu "
      "failures, all atomic; %llu failed commits were durable in the "
      "crash image\n",
      static_cast<unsigned long long>(total_k),
      static_cast<unsigned long long>(total_failed),
      static_cast<unsigned long long>(total_crash_after));
  // Writes and fsyncs are where a commit can fail; the loop must have met
  // them, or it tested nothing.
  CHECK(total_failed > 0);
}

TEST_CASE("a fault during a WAL checkpoint never loses a committed change",
          "[fault][store]") {
  faultvfs::ScopedDefault vfs;
  Fixture fx;
  uint64_t total_k = 0;
  for (FaultSpec spec : AllKinds()) {
    uint64_t k = 1, failed = 0;
    for (;; ++k) {
      REQUIRE(k <= kMaxK);
      spec.k = k;
      INFO(faultvfs::Describe(spec));
      std::string db = fx.NewCopy();
      std::unique_ptr<Store> st;
      REQUIRE(Store::Open(db, Store::Mode::kReadWrite, &st).ok());
      Status s;
      REQUIRE(RunTxn(st.get(), &s) == nullptr);

      // A second connection (through the shim, the default VFS) copies the
      // WAL into the database and truncates the WAL: every write, fsync and
      // truncate of a checkpoint.
      sqlite3* c = nullptr;
      REQUIRE(sqlite3_open_v2(db.c_str(), &c, SQLITE_OPEN_READWRITE, nullptr) ==
              SQLITE_OK);
      // A connection learns that the file is in WAL mode only when it
      // first reads it; until then a checkpoint does nothing.
      REQUIRE(sqlite3_exec(c, "SELECT count(*) FROM sqlite_schema", nullptr,
                           nullptr, nullptr) == SQLITE_OK);
      faultvfs::Arm(spec);
      int log_frames = -1, done_frames = -1;
      int rc = sqlite3_wal_checkpoint_v2(c, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                         &log_frames, &done_frames);
      uint64_t hits = faultvfs::Hits();
      faultvfs::Disarm();
      sqlite3_close_v2(c);
      if (rc != SQLITE_OK) ++failed;
      // A checkpoint that succeeded really ran (it did not find "no WAL").
      if (rc == SQLITE_OK) REQUIRE(log_frames >= 0);
      INFO("checkpoint: " << sqlite3_errstr(rc) << "; " << hits
                          << " fault(s) hit");

      REQUIRE(fx.CrashImage(db) == fx.after);
      DbState mine;
      REQUIRE(ReadStore(st.get(), kScope, &mine).ok());
      REQUIRE(mine == fx.after);
      DbState with_probe;
      RequireUsable(st.get(), &with_probe);
      st.reset();
      PlainView v = ReadPlain(db, kScope, true);
      INFO(v.error << " " << v.integrity);
      REQUIRE(v.ok());
      REQUIRE(v.state == with_probe);

      if (rc == SQLITE_OK && hits == 0) break;
    }
    std::printf("[fault][store] checkpoint %-26s K = 1..%llu: %llu failed\n",
                KindName(spec).c_str(), static_cast<unsigned long long>(k),
                static_cast<unsigned long long>(failed));
    total_k += k;
  }
  std::printf("[fault][store] checkpoint: %llu K values exercised\n",
              static_cast<unsigned long long>(total_k));
}

TEST_CASE(
    "creating a database under every storage fault leaves a file the "
    "next start opens",
    "[fault][store]") {
  faultvfs::ScopedDefault vfs;
  TempDir dir;
  uint64_t total_k = 0;
  int run = 0;
  for (FaultSpec spec : AllKinds()) {
    uint64_t k = 1, failed = 0;
    for (;; ++k) {
      REQUIRE(k <= kMaxK);
      spec.k = k;
      INFO(faultvfs::Describe(spec));
      std::string db =
          dir.path() + "/new-" + std::to_string(++run) + "/state.sqlite";
      std::unique_ptr<Store> st;
      faultvfs::Arm(spec);
      Status s = Store::Open(db, Store::Mode::kReadWrite, &st);
      uint64_t hits = faultvfs::Hits();
      faultvfs::Disarm();
      INFO(s.ToString() << "; " << hits << " fault(s) hit");
      const bool opened = s.ok();
      REQUIRE((opened || hits > 0));
      if (!opened) ++failed;

      std::string crash = dir.path() + "/crash.sqlite";
      REQUIRE(CopyCrashImage(db, crash));
      PlainView cv = ReadPlain(crash, kScope, true);
      INFO(cv.error << " " << cv.integrity);
      REQUIRE(cv.ok());
      REQUIRE(cv.state == DbState());
      if (opened) REQUIRE(cv.user_version == store::kSchemaVersion);

      // A failed creation is finished by the next start, in this process
      // (the same Store object is gone; a new one is opened) ...
      st.reset();
      s = Store::Open(db, Store::Mode::kReadWrite, &st);
      INFO(s.ToString());
      REQUIRE(s.ok());
      DbState with_probe;
      RequireUsable(st.get(), &with_probe);
      st.reset();
      // ... and by the next boot, from the crash image.
      s = Store::Open(crash, Store::Mode::kReadWrite, &st);
      INFO(s.ToString());
      REQUIRE(s.ok());
      st.reset();
      PlainView v = ReadPlain(db, kScope, true);
      REQUIRE(v.ok());
      REQUIRE(v.user_version == store::kSchemaVersion);
      REQUIRE(v.state == with_probe);

      if (opened && hits == 0) break;
    }
    std::printf("[fault][store] create %-26s K = 1..%llu: %llu failed\n",
                KindName(spec).c_str(), static_cast<unsigned long long>(k),
                static_cast<unsigned long long>(failed));
    total_k += k;
  }
  std::printf("[fault][store] create: %llu K values exercised\n",
              static_cast<unsigned long long>(total_k));
}

}  // namespace
}  // namespace nfsdh::faulttest
