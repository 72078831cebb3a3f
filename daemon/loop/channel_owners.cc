#include "daemon/loop/channel_owners.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace nfsdh::loop {
namespace {

std::string BaseName(const std::string& p) {
  size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string ParentName(const std::string& p) {
  size_t slash = p.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "";
  return BaseName(p.substr(0, slash));
}

bool IsPid(const char* s, pid_t* pid) {
  if (*s == '\0') return false;
  char* end = nullptr;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || v <= 0) return false;
  *pid = static_cast<pid_t>(v);
  return true;
}

}  // namespace

std::vector<Opener> FindOtherOpeners(const std::string& path, int* unreadable,
                                     const std::string& proc) {
  std::vector<Opener> out;
  if (unreadable) *unreadable = 0;
  struct stat want;
  if (stat(path.c_str(), &want) != 0) return out;
  // Link targets must end in ".../<parent>/<base>" to be looked at.
  const std::string tail = "/" + ParentName(path) + "/" + BaseName(path);
  const pid_t self = getpid();
  DIR* d = opendir(proc.c_str());
  if (!d) return out;
  while (struct dirent* e = readdir(d)) {
    pid_t pid;
    if (!IsPid(e->d_name, &pid) || pid == self) continue;
    std::string fddir = proc + "/" + e->d_name + "/fd";
    DIR* fds = opendir(fddir.c_str());
    if (!fds) {
      if (errno == EACCES || errno == EPERM) {
        if (unreadable) ++*unreadable;
      }
      continue;  // gone, or a kernel thread
    }
    bool found = false;
    while (struct dirent* f = readdir(fds)) {
      if (f->d_name[0] == '.') continue;
      std::string link = fddir + "/" + f->d_name;
      char target[4096];
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      if (t.size() < tail.size() ||
          t.compare(t.size() - tail.size(), tail.size(), tail) != 0)
        continue;
      struct stat st;
      if (stat(link.c_str(), &st) == 0 && st.st_dev == want.st_dev &&
          st.st_ino == want.st_ino) {
        found = true;
        break;
      }
    }
    closedir(fds);
    if (!found) continue;
    Opener o;
    o.pid = pid;
    std::ifstream comm(proc + "/" + e->d_name + "/comm");
    std::getline(comm, o.comm);
    out.push_back(std::move(o));
  }
  closedir(d);
  return out;
}

std::string DescribeOpeners(const std::vector<Opener>& openers) {
  std::string s;
  for (const Opener& o : openers) {
    if (!s.empty()) s += ", ";
    s += "pid " + std::to_string(o.pid) + " (" + o.comm + ")";
  }
  return s;
}

}  // namespace nfsdh::loop
