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

// Replaces `path` (mode 0600, never through a symbolic link) with `content`
// durably: written to a temporary file beside it, fsync()ed, renamed over
// `path`, and the directory fsync()ed.
Status WriteFileDurably(const std::string& path, const std::string& content);

// Removes `path` durably (the directory fsync()ed); a missing file is fine.
Status RemoveDurably(const std::string& path);

// Reads `path` (at most `max` bytes) into *out. A missing file is
// Status::NotFound.
Status ReadSmallFile(const std::string& path, size_t max, std::string* out);

// The directory part of `path` ("." if it has none).
std::string DirName(const std::string& path);

// UTC time `t` as "2026-11-22T00:17:33Z".
std::string IsoTime(long long t);

}  // namespace nfsdh

#endif  // DAEMON_UTIL_FS_H_
