// The fault VFS itself: it must fail exactly the call it was told to, and
// its power-loss overlay must show readers what was written while keeping
// the real file at what was synced. The [fault] tests that rely on it are
// only as good as these properties.
#include "tests/fault/fault_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "tests/fault/plain_db.h"

namespace nfsdh::faultvfs {
namespace {

// The content of a real file, read without SQLite.
std::string RealContent(const std::string& path) {
  std::string s;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, n);
  close(fd);
  return s;
}

// One file opened directly through the shim's xOpen.
class VfsFile {
 public:
  VfsFile(const std::string& path, int type) {
    vfs_ = sqlite3_vfs_find(kVfsName);
    REQUIRE(vfs_ != nullptr);
    mem_.reset(new char[vfs_->szOsFile]);
    file_ = reinterpret_cast<sqlite3_file*>(mem_.get());
    int out = 0;
    REQUIRE(vfs_->xOpen(vfs_, path.c_str(), file_,
                        type | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        &out) == SQLITE_OK);
  }
  ~VfsFile() { file_->pMethods->xClose(file_); }
  int Write(const std::string& data, int64_t off) {
    return file_->pMethods->xWrite(file_, data.data(),
                                   static_cast<int>(data.size()), off);
  }
  int Read(std::string* out, int n, int64_t off) {
    out->assign(n, 'x');
    return file_->pMethods->xRead(file_, out->data(), n, off);
  }
  int Sync() { return file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL); }
  int Truncate(int64_t size) { return file_->pMethods->xTruncate(file_, size); }
  int64_t Size() {
    sqlite3_int64 sz = -1;
    REQUIRE(file_->pMethods->xFileSize(file_, &sz) == SQLITE_OK);
    return sz;
  }

 private:
  sqlite3_vfs* vfs_ = nullptr;
  std::unique_ptr<char[]> mem_;
  sqlite3_file* file_ = nullptr;
};

TEST_CASE("fault specs parse and print", "[fault][vfs]") {
  FaultSpec s;
  std::string err;
  REQUIRE(ParseSpec("write:3:eio:persistent", &s, &err));
  CHECK(s.op == Op::kWrite);
  CHECK(s.k == 3);
  CHECK(s.err == Err::kEio);
  CHECK(s.persistent);
  REQUIRE(ParseSpec("fsync:1:enospc", &s, &err));
  CHECK(s.op == Op::kSync);
  CHECK_FALSE(s.persistent);
  CHECK(Describe(s) == "sync:1:enospc:oneshot");
  for (const char* bad :
       {"", "write", "write:0:eio", "write:-1:eio", "write:x:eio", "read:1:eio",
        "write:1:eperm", "write:1:eio:sometimes", "write:1:eio:oneshot:x"}) {
    INFO(bad);
    CHECK_FALSE(ParseSpec(bad, &s, &err));
  }
  CHECK(SqliteCode(Op::kWrite, Err::kEio) == SQLITE_IOERR_WRITE);
  CHECK(SqliteCode(Op::kSync, Err::kEio) == SQLITE_IOERR_FSYNC);
  CHECK(SqliteCode(Op::kTruncate, Err::kEio) == SQLITE_IOERR_TRUNCATE);
  CHECK(SqliteCode(Op::kTruncate, Err::kEnospc) == SQLITE_FULL);
}

TEST_CASE("a fault fails exactly the k-th call, or every call from it on",
          "[fault][vfs]") {
  ScopedDefault vfs;
  faulttest::TempDir dir;
  VfsFile f(dir.path() + "/f", SQLITE_OPEN_MAIN_DB);
  for (bool persistent : {false, true}) {
    INFO("persistent " << persistent);
    Arm({Op::kWrite, 3, Err::kEio, persistent});
    for (int i = 1; i <= 5; ++i) {
      int expect =
          i == 3 || (persistent && i > 3) ? SQLITE_IOERR_WRITE : SQLITE_OK;
      CHECK(f.Write("abc", i * 3) == expect);
    }
    CHECK(Hits() == (persistent ? 3u : 1u));
    CHECK(Calls(Op::kWrite) == 5);
    // Other kinds of call are counted, never failed.
    CHECK(f.Sync() == SQLITE_OK);
    CHECK(f.Truncate(100) == SQLITE_OK);
  }
  Arm({Op::kSync, 2, Err::kEnospc, false});
  CHECK(f.Sync() == SQLITE_OK);
  CHECK(f.Sync() == SQLITE_FULL);
  CHECK(f.Sync() == SQLITE_OK);
  Arm({Op::kTruncate, 1, Err::kEio, false});
  CHECK(f.Truncate(50) == SQLITE_IOERR_TRUNCATE);
  CHECK(f.Size() == 100);  // the failed truncate did nothing
  CHECK(f.Truncate(50) == SQLITE_OK);
  Disarm();
  CHECK(f.Write("z", 0) == SQLITE_OK);
  CHECK(Hits() == 1);
}

TEST_CASE("power loss: readers see every write, the disk only synced ones",
          "[fault][vfs]") {
  ScopedDefault vfs;
  faulttest::TempDir dir;
  const std::string path = dir.path() + "/db";
  SetPowerLoss(true);
  VfsFile f(path, SQLITE_OPEN_MAIN_DB);
  std::string got;

  REQUIRE(f.Write("hello", 0) == SQLITE_OK);
  REQUIRE(f.Write("world", 8192) == SQLITE_OK);
  CHECK(RealContent(path).empty());  // nothing synced yet
  CHECK(f.Size() == 8197);
  REQUIRE(f.Read(&got, 5, 8192) == SQLITE_OK);
  CHECK(got == "world");
  REQUIRE(f.Read(&got, 4, 4) == SQLITE_OK);
  CHECK(got == std::string("o\0\0\0", 4));  // the hole reads as zeros
  CHECK(f.Read(&got, 10, 8192) == SQLITE_IOERR_SHORT_READ);
  CHECK(got == std::string("world\0\0\0\0\0", 10));
  CHECK(UnsyncedBytes() == 10);

  REQUIRE(f.Sync() == SQLITE_OK);
  std::string disk = RealContent(path);
  REQUIRE(disk.size() == 8197);
  CHECK(disk.substr(0, 5) == "hello");
  CHECK(disk.substr(8192) == "world");
  CHECK(UnsyncedBytes() == 0);

  // Overlapping writes and a truncate that is not yet durable.
  REQUIRE(f.Write("HELLO", 0) == SQLITE_OK);
  REQUIRE(f.Write("xx", 3) == SQLITE_OK);
  REQUIRE(f.Truncate(6) == SQLITE_OK);
  CHECK(f.Size() == 6);
  REQUIRE(f.Read(&got, 6, 0) == SQLITE_OK);
  CHECK(got == std::string("HELxx\0", 6));
  CHECK(RealContent(path).size() == 8197);  // the disk still has the old
  // A write past the cut: the bytes between read as zeros, not as the
  // real file's old ones.
  REQUIRE(f.Write("!", 8194) == SQLITE_OK);
  REQUIRE(f.Read(&got, 3, 8192) == SQLITE_OK);
  CHECK(got == std::string("\0\0!", 3));
  REQUIRE(f.Sync() == SQLITE_OK);
  disk = RealContent(path);
  CHECK(disk == std::string("HELxx\0", 6) + std::string(8188, '\0') + "!");

  // A reopened file sees unsynced data (the page cache outlives close()).
  REQUIRE(f.Write("again", 0) == SQLITE_OK);
  {
    VfsFile g(path, SQLITE_OPEN_MAIN_DB);
    REQUIRE(g.Read(&got, 5, 0) == SQLITE_OK);
    CHECK(got == "again");
  }

  // A lying disk reports success and persists nothing.
  SetLyingSync(true);
  REQUIRE(f.Sync() == SQLITE_OK);
  CHECK(RealContent(path).substr(0, 5) == "HELxx");
  REQUIRE(f.Read(&got, 5, 0) == SQLITE_OK);
  CHECK(got == "again");
  SetLyingSync(false);
  REQUIRE(f.Sync() == SQLITE_OK);
  CHECK(RealContent(path).substr(0, 5) == "again");
}

TEST_CASE("temporary files bypass the overlay", "[fault][vfs]") {
  ScopedDefault vfs;
  faulttest::TempDir dir;
  SetPowerLoss(true);
  const std::string path = dir.path() + "/tmp";
  VfsFile f(path, SQLITE_OPEN_TEMP_JOURNAL);
  REQUIRE(f.Write("abc", 0) == SQLITE_OK);
  CHECK(RealContent(path) == "abc");
}

}  // namespace
}  // namespace nfsdh::faultvfs
