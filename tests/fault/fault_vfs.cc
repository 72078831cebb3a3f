#include "tests/fault/fault_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace nfsdh::faultvfs {
namespace {

// What a file looks like to its readers, for a file whose recent writes have
// not reached the disk yet. While `dirty`, the logical content is: the real
// file's bytes below `cut` (if set), then zeros, with `extents` on top, up to
// `size`. xSync makes the real file equal to it and clears it.
struct Overlay {
  bool dirty = false;
  int64_t size = 0;
  std::optional<int64_t> cut;  // a truncate to here is not yet on disk
  std::map<int64_t, std::string> extents;  // disjoint, keyed by offset
  uint64_t bytes = 0;                      // sum of extent sizes
};

struct State {
  std::mutex mu;
  sqlite3_vfs* real = nullptr;  // the "unix" VFS
  sqlite3_vfs vfs;
  bool installed = false;
  bool armed = false;
  FaultSpec spec;
  uint64_t calls[kNumOps] = {};
  uint64_t hits = 0;
  bool power_loss = false;
  bool lying_sync = false;
  bool verbose = false;
  int report_fd = -1;
  // Overlays by file name. They outlive the sqlite3_file that created them,
  // as the page cache outlives a close(): a reopened file sees its unsynced
  // data, and only xDelete (or the death of the process) forgets it.
  std::map<std::string, std::shared_ptr<Overlay>> overlays;
};

// Never destroyed: SQLite may still close files from atexit handlers and
// static destructors of the program it is loaded into.
State& S() {
  static State* s = new State;
  return *s;
}

// One open file of the shim. SQLite allocates vfs.szOsFile bytes for it; the
// real VFS's file lives right after this struct in the same allocation.
struct File {
  sqlite3_file base;  // first: SQLite sees a File* as a sqlite3_file*
  sqlite3_file* real = nullptr;
  std::shared_ptr<Overlay> ov;  // set in power-loss mode for durable files
  std::string name;
};

constexpr size_t kRealOffset = (sizeof(File) + 15) & ~size_t{15};

File* AsFile(sqlite3_file* p) { return reinterpret_cast<File*>(p); }
const sqlite3_io_methods* RealMethods(File* f) { return f->real->pMethods; }

const char* BaseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return path.c_str() + (slash == std::string::npos ? 0 : slash + 1);
}

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a report is best effort; the fault still fires
    off += n;
  }
}

// Counts a call of `op` and decides whether it fails. On a fault, *rc is the
// code to return and the call must do nothing else.
bool Inject(Op op, const File* f, int* rc) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  uint64_t n = ++s.calls[static_cast<int>(op)];
  if (!s.armed || s.spec.op != op) return false;
  if (n != s.spec.k && !(s.spec.persistent && n > s.spec.k)) return false;
  ++s.hits;
  *rc = SqliteCode(op, s.spec.err);
  if (s.verbose || s.report_fd >= 0) {
    char line[512];
    std::snprintf(line, sizeof line,
                  "nfsdh-faultvfs: injected %s (%s) into x%s call #%llu on "
                  "%s\n",
                  sqlite3_errstr(*rc), ErrName(s.spec.err), OpName(op),
                  static_cast<unsigned long long>(n),
                  f->name.empty() ? "(temp)" : BaseName(f->name));
    if (s.verbose) std::fputs(line, stderr);
    if (s.report_fd >= 0) WriteAll(s.report_fd, line);
  }
  return true;
}

// --- the overlay (callers hold S().mu) ---

int RealSize(File* f, int64_t* size) {
  sqlite3_int64 sz = 0;
  int rc = RealMethods(f)->xFileSize(f->real, &sz);
  *size = sz;
  return rc;
}

// The first change since the last sync: the logical size starts as the
// real one.
int BeginDirty(File* f) {
  Overlay& ov = *f->ov;
  if (ov.dirty) return SQLITE_OK;
  int64_t size = 0;
  int rc = RealSize(f, &size);
  if (rc != SQLITE_OK) return rc;
  ov.dirty = true;
  ov.size = size;
  return SQLITE_OK;
}

// Drops every overlay byte at or past `at`.
void CutExtents(Overlay& ov, int64_t at) {
  auto it = ov.extents.lower_bound(at);
  if (it != ov.extents.begin()) {
    auto prev = std::prev(it);
    int64_t end = prev->first + static_cast<int64_t>(prev->second.size());
    if (end > at) {
      ov.bytes -= end - at;
      prev->second.resize(at - prev->first);
    }
  }
  while (it != ov.extents.end()) {
    ov.bytes -= it->second.size();
    it = ov.extents.erase(it);
  }
}

// Puts [off, off + n) into the overlay, merging with the extents it overlaps
// or touches so that they stay disjoint.
void PutExtent(Overlay& ov, int64_t off, const char* data, int64_t n) {
  int64_t start = off, end = off + n;
  auto first = ov.extents.upper_bound(off);
  if (first != ov.extents.begin()) {
    auto prev = std::prev(first);
    if (prev->first + static_cast<int64_t>(prev->second.size()) >= off)
      first = prev;
  }
  auto last = first;
  while (last != ov.extents.end() && last->first <= end) {
    start = std::min(start, last->first);
    end =
        std::max(end, last->first + static_cast<int64_t>(last->second.size()));
    ++last;
  }
  std::string merged(end - start, '\0');
  for (auto it = first; it != last; ++it) {
    merged.replace(it->first - start, it->second.size(), it->second);
    ov.bytes -= it->second.size();
  }
  merged.replace(off - start, n, data, n);
  ov.extents.erase(first, last);
  ov.bytes += merged.size();
  ov.extents.emplace(start, std::move(merged));
}

void Forget(Overlay& ov) {
  ov.dirty = false;
  ov.size = 0;
  ov.cut.reset();
  ov.extents.clear();
  ov.bytes = 0;
}

// Makes the real file equal to the logical one, then forgets the overlay.
int Flush(File* f) {
  Overlay& ov = *f->ov;
  if (!ov.dirty) return SQLITE_OK;
  const sqlite3_io_methods* m = RealMethods(f);
  int rc = SQLITE_OK;
  if (ov.cut) rc = m->xTruncate(f->real, *ov.cut);
  for (const auto& [off, data] : ov.extents) {
    if (rc != SQLITE_OK) break;
    rc = m->xWrite(f->real, data.data(), static_cast<int>(data.size()), off);
  }
  int64_t real_size = 0;
  if (rc == SQLITE_OK) rc = RealSize(f, &real_size);
  // A truncate that grew the file past every write.
  if (rc == SQLITE_OK && real_size < ov.size)
    rc = m->xTruncate(f->real, ov.size);
  // On failure the overlay stays: flushing it again is idempotent.
  if (rc == SQLITE_OK) Forget(ov);
  return rc;
}

// --- sqlite3_io_methods ---

int FileClose(sqlite3_file* p) {
  File* f = AsFile(p);
  int rc = RealMethods(f)->xClose(f->real);
  f->~File();
  return rc;
}

int FileRead(sqlite3_file* p, void* buf, int n, sqlite3_int64 off) {
  File* f = AsFile(p);
  if (!f->ov) return RealMethods(f)->xRead(f->real, buf, n, off);
  std::lock_guard<std::mutex> lk(S().mu);
  int rc = RealMethods(f)->xRead(f->real, buf, n, off);
  Overlay& ov = *f->ov;
  if (!ov.dirty) return rc;
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  char* out = static_cast<char*>(buf);
  int64_t end = off + n;
  if (ov.cut && end > *ov.cut) {
    int64_t from = std::max<int64_t>(off, *ov.cut);
    std::memset(out + (from - off), 0, end - from);
  }
  auto it = ov.extents.upper_bound(off);
  if (it != ov.extents.begin()) --it;
  for (; it != ov.extents.end() && it->first < end; ++it) {
    int64_t e_end = it->first + static_cast<int64_t>(it->second.size());
    int64_t lo = std::max<int64_t>(off, it->first);
    int64_t hi = std::min<int64_t>(end, e_end);
    if (lo < hi)
      std::memcpy(out + (lo - off), it->second.data() + (lo - it->first),
                  hi - lo);
  }
  if (end > ov.size) {
    int64_t from = std::max<int64_t>(off, ov.size);
    std::memset(out + (from - off), 0, end - from);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int FileWrite(sqlite3_file* p, const void* buf, int n, sqlite3_int64 off) {
  File* f = AsFile(p);
  int rc;
  if (Inject(Op::kWrite, f, &rc)) return rc;
  if (!f->ov) return RealMethods(f)->xWrite(f->real, buf, n, off);
  std::lock_guard<std::mutex> lk(S().mu);
  rc = BeginDirty(f);
  if (rc != SQLITE_OK) return rc;
  PutExtent(*f->ov, off, static_cast<const char*>(buf), n);
  f->ov->size = std::max<int64_t>(f->ov->size, off + n);
  return SQLITE_OK;
}

int FileTruncate(sqlite3_file* p, sqlite3_int64 size) {
  File* f = AsFile(p);
  int rc;
  if (Inject(Op::kTruncate, f, &rc)) return rc;
  if (!f->ov) return RealMethods(f)->xTruncate(f->real, size);
  std::lock_guard<std::mutex> lk(S().mu);
  rc = BeginDirty(f);
  if (rc != SQLITE_OK) return rc;
  Overlay& ov = *f->ov;
  CutExtents(ov, size);
  ov.cut = ov.cut ? std::min<int64_t>(*ov.cut, size) : size;
  ov.size = size;
  return SQLITE_OK;
}

int FileSync(sqlite3_file* p, int flags) {
  File* f = AsFile(p);
  int rc;
  if (Inject(Op::kSync, f, &rc)) return rc;
  if (f->ov) {
    std::lock_guard<std::mutex> lk(S().mu);
    // A lying disk: success, and nothing reaches the platter. The overlay
    // stays so the process itself reads what it wrote, as it would from a
    // real page cache; the data is lost at the SIGKILL.
    if (S().lying_sync) return SQLITE_OK;
    rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  return RealMethods(f)->xSync(f->real, flags);
}

int FileSize(sqlite3_file* p, sqlite3_int64* size) {
  File* f = AsFile(p);
  if (f->ov) {
    std::lock_guard<std::mutex> lk(S().mu);
    if (f->ov->dirty) {
      *size = f->ov->size;
      return SQLITE_OK;
    }
  }
  return RealMethods(f)->xFileSize(f->real, size);
}

int FileLock(sqlite3_file* p, int level) {
  File* f = AsFile(p);
  return RealMethods(f)->xLock(f->real, level);
}

int FileUnlock(sqlite3_file* p, int level) {
  File* f = AsFile(p);
  return RealMethods(f)->xUnlock(f->real, level);
}

int FileCheckReservedLock(sqlite3_file* p, int* out) {
  File* f = AsFile(p);
  return RealMethods(f)->xCheckReservedLock(f->real, out);
}

int FileControl(sqlite3_file* p, int op, void* arg) {
  File* f = AsFile(p);
  // A size hint makes the unix VFS grow the real file at once; with an
  // overlay only xSync may change the real file.
  if (f->ov && op == SQLITE_FCNTL_SIZE_HINT) return SQLITE_OK;
  return RealMethods(f)->xFileControl(f->real, op, arg);
}

int FileSectorSize(sqlite3_file* p) {
  File* f = AsFile(p);
  return RealMethods(f)->xSectorSize(f->real);
}

int FileDeviceCharacteristics(sqlite3_file* p) {
  File* f = AsFile(p);
  return RealMethods(f)->xDeviceCharacteristics(f->real);
}

// The -shm index is left to the real VFS: it is a shared-memory cache that
// SQLite rebuilds from the WAL after a crash, not durable state.
int FileShmMap(sqlite3_file* p, int page, int size, int extend,
               void volatile** out) {
  File* f = AsFile(p);
  return RealMethods(f)->xShmMap(f->real, page, size, extend, out);
}

int FileShmLock(sqlite3_file* p, int offset, int n, int flags) {
  File* f = AsFile(p);
  return RealMethods(f)->xShmLock(f->real, offset, n, flags);
}

void FileShmBarrier(sqlite3_file* p) {
  File* f = AsFile(p);
  RealMethods(f)->xShmBarrier(f->real);
}

int FileShmUnmap(sqlite3_file* p, int delete_flag) {
  File* f = AsFile(p);
  return RealMethods(f)->xShmUnmap(f->real, delete_flag);
}

// Version 2: no xFetch, so SQLite never reads the real file through a memory
// map that would bypass the overlay.
const sqlite3_io_methods kMethods = {
    2,
    FileClose,
    FileRead,
    FileWrite,
    FileTruncate,
    FileSync,
    FileSize,
    FileLock,
    FileUnlock,
    FileCheckReservedLock,
    FileControl,
    FileSectorSize,
    FileDeviceCharacteristics,
    FileShmMap,
    FileShmLock,
    FileShmBarrier,
    FileShmUnmap,
    nullptr,
    nullptr,
};

// --- sqlite3_vfs ---

sqlite3_vfs* Real() { return S().real; }

int VfsOpen(sqlite3_vfs*, const char* name, sqlite3_file* p, int flags,
            int* out_flags) {
  File* f = new (p) File();
  f->base.pMethods = nullptr;
  f->real =
      reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(p) + kRealOffset);
  f->real->pMethods = nullptr;
  if (name) f->name = name;
  int rc = Real()->xOpen(Real(), name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (f->real->pMethods) f->real->pMethods->xClose(f->real);
    f->~File();
    return rc;
  }
  const int durable = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL |
                      SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;
  if (name && (flags & durable)) {
    State& s = S();
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.overlays.find(f->name);
    // An existing overlay is used even with power loss now off: the file's
    // unsynced data must stay visible to every handle.
    if (it != s.overlays.end()) {
      f->ov = it->second;
    } else if (s.power_loss) {
      f->ov = std::make_shared<Overlay>();
      s.overlays.emplace(f->name, f->ov);
    }
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int VfsDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  int rc = Real()->xDelete(Real(), name, sync_dir);
  if (name) {
    State& s = S();
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.overlays.find(name);
    if (it != s.overlays.end()) {
      Forget(*it->second);
      s.overlays.erase(it);
    }
  }
  return rc;
}

int VfsAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return Real()->xAccess(Real(), name, flags, out);
}

int VfsFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return Real()->xFullPathname(Real(), name, n, out);
}

void* VfsDlOpen(sqlite3_vfs*, const char* name) {
  return Real()->xDlOpen(Real(), name);
}

void VfsDlError(sqlite3_vfs*, int n, char* msg) {
  Real()->xDlError(Real(), n, msg);
}

void (*VfsDlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return Real()->xDlSym(Real(), h, sym);
}

void VfsDlClose(sqlite3_vfs*, void* h) { Real()->xDlClose(Real(), h); }

int VfsRandomness(sqlite3_vfs*, int n, char* out) {
  return Real()->xRandomness(Real(), n, out);
}

int VfsSleep(sqlite3_vfs*, int us) { return Real()->xSleep(Real(), us); }

int VfsCurrentTime(sqlite3_vfs*, double* t) {
  return Real()->xCurrentTime(Real(), t);
}

int VfsGetLastError(sqlite3_vfs*, int n, char* msg) {
  return Real()->xGetLastError(Real(), n, msg);
}

int VfsCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) {
  return Real()->xCurrentTimeInt64(Real(), t);
}

int VfsSetSystemCall(sqlite3_vfs*, const char* name, sqlite3_syscall_ptr fn) {
  return Real()->xSetSystemCall(Real(), name, fn);
}

sqlite3_syscall_ptr VfsGetSystemCall(sqlite3_vfs*, const char* name) {
  return Real()->xGetSystemCall(Real(), name);
}

const char* VfsNextSystemCall(sqlite3_vfs*, const char* name) {
  return Real()->xNextSystemCall(Real(), name);
}

}  // namespace

const char* OpName(Op op) {
  switch (op) {
    case Op::kWrite:
      return "Write";
    case Op::kSync:
      return "Sync";
    case Op::kTruncate:
      return "Truncate";
  }
  return "?";
}

const char* ErrName(Err err) { return err == Err::kEio ? "EIO" : "ENOSPC"; }

int SqliteCode(Op op, Err err) {
  if (err == Err::kEnospc) return SQLITE_FULL;
  switch (op) {
    case Op::kWrite:
      return SQLITE_IOERR_WRITE;
    case Op::kSync:
      return SQLITE_IOERR_FSYNC;
    case Op::kTruncate:
      return SQLITE_IOERR_TRUNCATE;
  }
  return SQLITE_IOERR;
}

bool ParseSpec(const std::string& text, FaultSpec* out, std::string* error) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t colon = text.find(':', start);
    f.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  auto fail = [&](const std::string& why) {
    if (error) *error = "bad fault spec '" + text + "': " + why;
    return false;
  };
  if (f.size() < 3 || f.size() > 4)
    return fail("want op:k:err[:oneshot|persistent]");
  FaultSpec s;
  if (f[0] == "write") {
    s.op = Op::kWrite;
  } else if (f[0] == "sync" || f[0] == "fsync") {
    s.op = Op::kSync;
  } else if (f[0] == "truncate") {
    s.op = Op::kTruncate;
  } else {
    return fail("op must be write, sync or truncate");
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long k = std::strtoull(f[1].c_str(), &end, 10);
  if (f[1].empty() || *end != '\0' || errno != 0 || k == 0 || f[1][0] == '-')
    return fail("k must be a number >= 1");
  s.k = k;
  if (f[2] == "eio") {
    s.err = Err::kEio;
  } else if (f[2] == "enospc") {
    s.err = Err::kEnospc;
  } else {
    return fail("err must be eio or enospc");
  }
  if (f.size() == 4) {
    if (f[3] == "persistent") {
      s.persistent = true;
    } else if (f[3] != "oneshot") {
      return fail("mode must be oneshot or persistent");
    }
  }
  *out = s;
  return true;
}

std::string Describe(const FaultSpec& spec) {
  std::string op = spec.op == Op::kWrite  ? "write"
                   : spec.op == Op::kSync ? "sync"
                                          : "truncate";
  return op + ":" + std::to_string(spec.k) + ":" +
         (spec.err == Err::kEio ? "eio" : "enospc") + ":" +
         (spec.persistent ? "persistent" : "oneshot");
}

int Install(bool make_default) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  if (!s.installed) {
    s.real = sqlite3_vfs_find("unix");
    if (!s.real) return SQLITE_ERROR;
    sqlite3_vfs v;
    std::memset(&v, 0, sizeof v);
    v.iVersion = std::min(s.real->iVersion, 3);
    v.szOsFile = static_cast<int>(kRealOffset) + s.real->szOsFile;
    v.mxPathname = s.real->mxPathname;
    v.zName = kVfsName;
    v.xOpen = VfsOpen;
    v.xDelete = VfsDelete;
    v.xAccess = VfsAccess;
    v.xFullPathname = VfsFullPathname;
    v.xDlOpen = VfsDlOpen;
    v.xDlError = VfsDlError;
    v.xDlSym = VfsDlSym;
    v.xDlClose = VfsDlClose;
    v.xRandomness = VfsRandomness;
    v.xSleep = VfsSleep;
    v.xCurrentTime = VfsCurrentTime;
    v.xGetLastError = VfsGetLastError;
    v.xCurrentTimeInt64 = VfsCurrentTimeInt64;
    v.xSetSystemCall = VfsSetSystemCall;
    v.xGetSystemCall = VfsGetSystemCall;
    v.xNextSystemCall = VfsNextSystemCall;
    s.vfs = v;
    s.installed = true;
  }
  // Registering again only moves it to the head of the list (the default).
  return sqlite3_vfs_register(&s.vfs, make_default ? 1 : 0);
}

void RestoreUnixDefault() {
  sqlite3_vfs* unix_vfs = sqlite3_vfs_find("unix");
  if (unix_vfs) sqlite3_vfs_register(unix_vfs, 1);
}

void Arm(const FaultSpec& spec) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  s.spec = spec;
  s.armed = true;
  s.hits = 0;
  for (auto& c : s.calls) c = 0;
}

void Disarm() {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  s.armed = false;
}

uint64_t Hits() {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.hits;
}

uint64_t Calls(Op op) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.calls[static_cast<int>(op)];
}

void SetPowerLoss(bool on) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  s.power_loss = on;
}

bool PowerLoss() {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.power_loss;
}

uint64_t UnsyncedBytes() {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  uint64_t n = 0;
  for (const auto& [name, ov] : s.overlays) n += ov->bytes;
  return n;
}

void SetLyingSync(bool on) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  s.lying_sync = on;
}

void SetVerbose(bool on) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  s.verbose = on;
}

bool SetReportFile(const std::string& path) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.report_fd >= 0) close(s.report_fd);
  s.report_fd = -1;
  if (path.empty()) return true;
  s.report_fd =
      open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  return s.report_fd >= 0;
}

void Report(const std::string& line) {
  State& s = S();
  std::lock_guard<std::mutex> lk(s.mu);
  if (s.report_fd >= 0) WriteAll(s.report_fd, line + "\n");
}

ScopedDefault::ScopedDefault() {
  if (Install(true) != SQLITE_OK) std::abort();  // a test setup bug
}

ScopedDefault::~ScopedDefault() {
  Disarm();
  SetPowerLoss(false);
  SetLyingSync(false);
  RestoreUnixDefault();
}

}  // namespace nfsdh::faultvfs
