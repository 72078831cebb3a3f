// File-system helpers for the state directory.
#ifndef DAEMON_UTIL_FS_H_
#define DAEMON_UTIL_FS_H_

#include <string>

#include "daemon/util/status.h"

namespace nfsdh {

// Creates `dir` (mode 0700) if it is missing, and its missing parents (0755),
// and makes each new entry durable before returning.
// An existing `dir` must be a directory that is not writable by group or
// others.
Status EnsurePrivateDir(const std::string& dir);

// fsync()s the directory `dir`, making the entries created, renamed or
// removed in it durable.
Status SyncDir(const std::string& dir);

// The directory part of `path` ("." if it has none).
std::string DirName(const std::string& path);

// UTC time `t` as "2026-11-22T00:17:33Z".
std::string IsoTime(long long t);

}  // namespace nfsdh

#endif  // DAEMON_UTIL_FS_H_
