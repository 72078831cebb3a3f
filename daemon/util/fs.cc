#include "daemon/util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace nfsdh {

std::string DirName(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + dir, errno);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return Status::FromErrno("fsync " + dir, err);
  return Status::Ok();
}

Status WriteFileDurably(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Status::FromErrno("write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Status::FromErrno("fsync " + tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Status::FromErrno("rename " + tmp + " to " + path, err);
  }
  return SyncDir(DirName(path));
}

Status RemoveDurably(const std::string& path) {
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("remove " + path, errno);
  }
  return SyncDir(DirName(path));
}

Status ReadSmallFile(const std::string& path, size_t max, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno("open " + path, errno);
  }
  out->clear();
  char buf[512];
  while (out->size() < max) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno("read " + path, err);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (out->size() > max) out->resize(max);
  return Status::Ok();
}

Status EnsurePrivateDir(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno("stat " + dir, errno);
    std::string parent = DirName(dir);
    if (parent != dir && stat(parent.c_str(), &st) != 0) {
      if (errno != ENOENT) return Status::FromErrno("stat " + parent, errno);
      for (size_t i = 1; i <= parent.size(); ++i) {
        if (i == parent.size() || parent[i] == '/') {
          std::string part = parent.substr(0, i);
          if (mkdir(part.c_str(), 0755) == 0) {
            Status s = SyncDir(DirName(part));
            if (!s.ok()) return s;
          } else if (errno != EEXIST) {
            return Status::FromErrno("mkdir " + part, errno);
          }
        }
      }
    }
    if (mkdir(dir.c_str(), 0700) == 0) {
      Status s = SyncDir(parent);
      if (!s.ok()) return s;
    } else if (errno != EEXIST) {
      return Status::FromErrno("mkdir " + dir, errno);
    }
    if (stat(dir.c_str(), &st) != 0)
      return Status::FromErrno("stat " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) return Status::Invalid(dir + " is not a directory");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return Status::Permission(dir +
                              " is writable by group or others; refusing to "
                              "keep client records there (chmod 0700 it)");
  }
  return Status::Ok();
}

std::string IsoTime(long long t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[32];
  if (gmtime_r(&tt, &tm) == nullptr ||
      strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return "?";
  return buf;
}

}  // namespace nfsdh
