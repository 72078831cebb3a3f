// ScopeLock: one helper per database and scope.
//
// Rationale. Two helpers serving one scope would each overwrite the other's
// scope row and issue instances from the same records, and one of them in
// another network namespace would let the clients of one namespace reclaim
// in the other. So a helper holds, for its whole life, an exclusive lock on
// the file PATH.SCOPE.lock next to the database PATH (daemon/store/FORMAT.md)
// and refuses to start while another holds it.
//
// The lock is an open file description lock (fcntl F_OFD_SETLK) on a file of
// its own, not a row in the database: the kernel drops it when the last
// descriptor of the file is closed, so a helper killed by SIGKILL never keeps
// the next one out; it never blocks a reader of the database (helper-ctl),
// which does not look at the file; and each scope has its own file, so the
// helpers of the other scopes of a database (one per network namespace or HA
// service) are not affected. Unlike a POSIX record lock it is not dropped by
// the close of another descriptor of the file, and it conflicts within one
// process too.
//
// The holder writes its pid into the file for the message of a helper that
// is refused. The file is never removed: a helper that removed it could let
// two others lock two different files of the same name.
//
// The file is created 0600 with O_NOFOLLOW (and O_CLOEXEC: a program the
// helper runs must not keep the lock alive) in the database's directory,
// which the daemon has checked (CheckStateFiles, EnsurePrivateDir); an
// existing one must be a regular file owned by the daemon's effective uid.
//
// Thread affinity: none; a ScopeLock is only held.
#ifndef DAEMON_STORE_SCOPE_LOCK_H_
#define DAEMON_STORE_SCOPE_LOCK_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "daemon/util/status.h"

namespace nfsdh::store {

class ScopeLock {
 public:
  // The lock file of `scope` in the database `db`: "DB.SCOPE.lock" (a scope
  // name is 1 to 64 characters of [A-Za-z0-9._-], see ValidScopeName).
  static std::string PathFor(const std::string& db, const std::string& scope);

  // Takes the lock of (`db`, `scope`) without waiting and writes the
  // caller's pid into the file. Returns kInvalid naming the database, the
  // scope, the lock file and, where the file says it, the holder's pid if
  // another holds it; kInvalid if the file is a symbolic link, not a regular
  // file, or owned by another user than `euid`; an errno-coded status if it
  // cannot be created or locked.
  // REQUIRES: the database's directory exists.
  static Status Acquire(const std::string& db, const std::string& scope,
                        uid_t euid, std::unique_ptr<ScopeLock>* out);

  // Closes the file, which releases the lock.
  ~ScopeLock();
  ScopeLock(const ScopeLock&) = delete;
  ScopeLock& operator=(const ScopeLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  ScopeLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

// DatabaseLock: the helpers of one database, whatever their scope.
//
// Rationale. A helper that finds its database damaged sets the file aside
// and starts an empty one (Daemon::OpenStore). With another scope's helper
// running on the same file, that would pull the database out from under it:
// it would go on writing into the file set aside, and its acknowledged
// records would be missing from the new one. So every helper holds a shared
// lock on DB.lock for its whole life, and only a helper that can make it
// exclusive (no other helper uses the database) may set the file aside; the
// others refuse to start, fail closed, and say which helpers to stop.
// helper-ctl export-nfsdcld --retire, which moves the database aside too,
// takes it exclusive for the same reason.
//
// Same kind of lock and file as ScopeLock (an OFD lock on a 0600 regular
// file of the daemon's uid beside the database, never removed). A scope
// name is never empty, so DB.lock is no scope's lock file.
class DatabaseLock {
 public:
  static std::string PathFor(const std::string& db);

  // Takes the shared lock, waiting for a holder of the exclusive one (which
  // holds it only while it moves a damaged database aside). Errors as
  // ScopeLock::Acquire's.
  static Status AcquireShared(const std::string& db, uid_t euid,
                              std::unique_ptr<DatabaseLock>* out);
  // Makes the lock exclusive without waiting: kInvalid, naming the lock
  // file, while another helper holds it shared.
  Status TryExclusive();
  // Makes it shared again.
  void Share();

  ~DatabaseLock();
  DatabaseLock(const DatabaseLock&) = delete;
  DatabaseLock& operator=(const DatabaseLock&) = delete;

 private:
  DatabaseLock(int fd, std::string db, std::string path)
      : fd_(fd), db_(std::move(db)), path_(std::move(path)) {}
  int fd_;
  std::string db_, path_;
};

}  // namespace nfsdh::store

#endif  // DAEMON_STORE_SCOPE_LOCK_H_
