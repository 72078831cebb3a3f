// FaultVfs: a shim SQLite VFS over the default "unix" VFS that makes storage
// fail on purpose, the way SQLite tests itself (its test_vfs.c / "crash" VFS).
//
// Rationale. nfsd-helper promises that a client record it acknowledged is
// never lost, whatever fails. The only way to test that promise is to make
// the storage fail exactly where it can fail: at every write, every fsync and
// every truncate, with the errors a real disk gives (EIO, ENOSPC), once or
// from then on; and to lose, at a SIGKILL, exactly what a power cut loses.
// Every call reaches the real "unix" VFS unless a fault says otherwise, so
// locking, the -shm index and file names behave as in production.
//
// Two controls:
//  - Faults: Arm({op, k, err, persistent}) makes the k-th call of `op`
//    (counted from arming, over every file of the process) fail with
//    SQLITE_IOERR_WRITE/FSYNC/TRUNCATE (EIO) or SQLITE_FULL (ENOSPC); a
//    persistent fault also fails every later call of `op`. A failed call
//    does nothing at all.
//  - Power loss: writes and truncates of the main database, its journal and
//    its WAL are held in an in-memory overlay per file (reads see them) and
//    reach the real file only at xSync. A process killed by SIGKILL then
//    leaves on disk exactly what it had synced. See tests/fault/README.md for
//    what this model does not cover.
//
// Built twice: the static library nfsdh_faultvfs for in-process tests, and
// libnfsdh_faultvfs.so, which registers itself as the default VFS when
// LD_PRELOADed into the real daemon and reads its controls from the
// environment (fault_vfs_preload.cc).
//
// Thread-safety: every function may be called from any thread; the state is
// process-wide and guarded by one mutex.
#ifndef TESTS_FAULT_FAULT_VFS_H_
#define TESTS_FAULT_FAULT_VFS_H_

#include <cstdint>
#include <string>

namespace nfsdh::faultvfs {

// The name the shim is registered under.
inline constexpr char kVfsName[] = "nfsdh-fault";

enum class Op { kWrite = 0, kSync = 1, kTruncate = 2 };
inline constexpr int kNumOps = 3;
enum class Err { kEio, kEnospc };

struct FaultSpec {
  Op op = Op::kWrite;
  uint64_t k = 1;  // 1-based: the k-th call after Arm() fails
  Err err = Err::kEio;
  bool persistent = false;  // also fail every later call of `op`
};

// "write:3:eio:oneshot" -> spec. Fields: op (write|sync|fsync|truncate),
// k (>= 1), err (eio|enospc), mode (oneshot|persistent; optional, oneshot).
bool ParseSpec(const std::string& text, FaultSpec* out, std::string* error);
std::string Describe(const FaultSpec& spec);  // the same text form
const char* OpName(Op op);
const char* ErrName(Err err);
// The SQLite code the shim returns for a fault of this kind.
int SqliteCode(Op op, Err err);

// Registers the shim over the "unix" VFS (once; later calls only change the
// default). With make_default, every connection opened without an explicit
// VFS goes through it. Returns an SQLite result code.
int Install(bool make_default);
// Makes the plain "unix" VFS the default again (the shim stays registered).
void RestoreUnixDefault();

// Arms one fault and resets the call counters and the hit count.
void Arm(const FaultSpec& spec);
// Disarms; the counters keep counting.
void Disarm();
// Faults injected since the last Arm().
uint64_t Hits();
// Calls of `op` since the last Arm() (or since start).
uint64_t Calls(Op op);

// Power-loss mode applies to files opened while it is on. Turning it off
// does not flush anything: unsynced data stays in its overlay until xSync.
void SetPowerLoss(bool on);
bool PowerLoss();
// Bytes currently held in overlays (written but not synced).
uint64_t UnsyncedBytes();

// A disk that lies: xSync reports success but drops the unsynced overlay
// instead of writing it. Only for negative controls: it proves the
// power-loss checks can fail.
void SetLyingSync(bool on);

// Writes one line per injected fault to stderr ("nfsdh-faultvfs: ...").
void SetVerbose(bool on);
// Also appends each of those lines to `path` (created 0600; "" stops). A
// test that runs the VFS in another process reads this file rather than the
// process's stderr, which may still be in a pipe when the test looks.
// Returns false if the file cannot be opened.
bool SetReportFile(const std::string& path);
// Appends one line to the report file, if there is one.
void Report(const std::string& line);

// RAII for in-process tests: installs the shim as the default VFS and
// restores "unix" as the default (disarmed, power loss off) when destroyed,
// so that other tests in the same binary see the plain VFS.
class ScopedDefault {
 public:
  ScopedDefault();
  ~ScopedDefault();
  ScopedDefault(const ScopedDefault&) = delete;
  ScopedDefault& operator=(const ScopedDefault&) = delete;
};

}  // namespace nfsdh::faultvfs

#endif  // TESTS_FAULT_FAULT_VFS_H_
