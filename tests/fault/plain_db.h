// PlainDb: the database as the next boot would find it, read through the
// plain "unix" VFS whatever the process's default VFS is, with WAL recovery
// and PRAGMA integrity_check. The fault tests compare it with what was
// acknowledged.
#ifndef TESTS_FAULT_PLAIN_DB_H_
#define TESTS_FAULT_PLAIN_DB_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "daemon/store/store.h"

namespace nfsdh::faulttest {

// One v4clients row, without its key.
struct Rec {
  std::string princhash;  // "" for NULL
  int minor = 0;
  int64_t instance = 0;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  bool operator==(const Rec& o) const {
    return std::tie(princhash, minor, instance, first_seen, last_seen) ==
           std::tie(o.princhash, o.minor, o.instance, o.first_seen,
                    o.last_seen);
  }
};

// One scopes row, without its name.
using ScopeTuple =
    std::tuple<std::optional<int64_t>, std::optional<int64_t>,
               std::optional<int64_t>, int64_t, std::optional<int64_t>,
               std::optional<int64_t>, std::optional<int64_t>>;
ScopeTuple TupleOf(const store::ScopeRow& r);

// Everything the database holds for one scope.
struct DbState {
  std::map<std::string, Rec> clients;  // by id
  std::optional<ScopeTuple> scope;
  bool operator==(const DbState& o) const {
    return clients == o.clients && scope == o.scope;
  }
  bool operator!=(const DbState& o) const { return !(*this == o); }
};

struct PlainView {
  bool exists = false;    // the file exists
  std::string integrity;  // PRAGMA integrity_check, rows joined by "; "
  int64_t user_version = 0;
  DbState state;      // empty if the schema was never committed
  std::string error;  // set if the file could not be read at all
  bool ok() const { return error.empty() && (!exists || integrity == "ok"); }
};

// Reads `path` for `scope`. A read-only connection leaves the files as they
// are (it may rebuild the -shm index); a read-write one can also roll back
// a hot journal, and checkpoints and removes the WAL when it closes, as a
// clean restart would.
PlainView ReadPlain(const std::string& path, const std::string& scope,
                    bool read_write);

// The same state, read through an open Store (the writer's own view).
Status ReadStore(store::Store* st, const std::string& scope, DbState* out);

// Copies `from` and its -wal (not its -shm) to `to`: the files as a SIGKILL
// right now would leave them for the next boot (the page cache survives a
// process's death). Removes stale `to` companions first.
bool CopyCrashImage(const std::string& from, const std::string& to);

// A fresh private directory under /dev/shm (or /tmp), removed on
// destruction. The fault VFS models durability itself, so tmpfs is as
// honest as a disk here, and much faster.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace nfsdh::faulttest

#endif  // TESTS_FAULT_PLAIN_DB_H_
