#include "daemon/store/scope_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nfsdh::store {
namespace {

// The pid the holder wrote into the lock file, or "" if it says none.
std::string HolderPid(int fd) {
  char buf[24];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string pid;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i)
    pid += buf[i];
  return pid.empty() || pid.size() > 10 ? "" : pid;
}

// Opens (creating it 0600) the lock file `path`, which must be a regular
// file owned by `euid`.
Status OpenLockFile(const std::string& path, uid_t euid, int* out) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == ELOOP)
      return Status::Invalid("lock file " + path +
                             " is a symbolic link; refusing to follow it "
                             "(remove it)");
    return Status::FromErrno("open the lock file " + path, errno);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Status::FromErrno("stat " + path, err);
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != euid) {
    close(fd);
    return Status::Invalid("lock file " + path +
                           (S_ISREG(st.st_mode)
                                ? " is owned by uid " +
                                      std::to_string(st.st_uid) +
                                      ", not by uid " + std::to_string(euid)
                                : std::string(" is not a regular file")) +
                           "; refusing to use it (remove it)");
  }
  *out = fd;
  return Status::Ok();
}

// An OFD lock of `type` on the whole file; errno on failure.
int OfdLock(int fd, short type, bool wait) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file
  int rc;
  do {
    rc = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
  } while (rc != 0 && wait && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

}  // namespace

std::string ScopeLock::PathFor(const std::string& db,
                               const std::string& scope) {
  return db + "." + scope + ".lock";
}

ScopeLock::~ScopeLock() { close(fd_); }

Status ScopeLock::Acquire(const std::string& db, const std::string& scope,
                          uid_t euid, std::unique_ptr<ScopeLock>* out) {
  const std::string path = PathFor(db, scope);
  int fd = -1;
  Status opened = OpenLockFile(path, euid, &fd);
  if (!opened.ok()) return opened;
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    int err = errno;
    if (err != EAGAIN && err != EACCES) {
      close(fd);
      return Status::FromErrno("lock " + path, err);
    }
    std::string pid = HolderPid(fd);
    close(fd);
    return Status::Invalid(
        "database " + db + ", scope " + scope +
        " is served by another nfsd-helper" +
        (pid.empty() ? std::string() : " (pid " + pid + ")") +
        ", which holds the lock file " + path +
        "; only one helper may serve a scope (give each network namespace "
        "or HA service its own --scope)");
  }
  std::string me = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    // The pid is only for a refused helper's message; the lock stands.
  }
  out->reset(new ScopeLock(fd, path));
  return Status::Ok();
}

std::string DatabaseLock::PathFor(const std::string& db) {
  return db + ".lock";
}

DatabaseLock::~DatabaseLock() { close(fd_); }

Status DatabaseLock::AcquireShared(const std::string& db, uid_t euid,
                                   std::unique_ptr<DatabaseLock>* out) {
  const std::string path = PathFor(db);
  int fd = -1;
  Status opened = OpenLockFile(path, euid, &fd);
  if (!opened.ok()) return opened;
  int err = OfdLock(fd, F_RDLCK, true);
  if (err != 0) {
    close(fd);
    return Status::FromErrno("lock " + path, err);
  }
  out->reset(new DatabaseLock(fd, db, path));
  return Status::Ok();
}

Status DatabaseLock::TryExclusive() {
  int err = OfdLock(fd_, F_WRLCK, false);
  if (err == 0) return Status::Ok();
  if (err != EAGAIN && err != EACCES)
    return Status::FromErrno("lock " + path_, err);
  return Status::Invalid(
      "another nfsd-helper (serving another scope) or helper-ctl uses the "
      "database " + db_ + " (it holds " + path_ + ")");
}

void DatabaseLock::Share() { OfdLock(fd_, F_RDLCK, false); }

}  // namespace nfsdh::store
