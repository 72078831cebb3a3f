#include "daemon/util/netns.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nfsdh {
namespace {

bool ReadLink(const std::string& path, std::string* target, std::string* why) {
  char buf[256];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n < 0 || n == static_cast<ssize_t>(sizeof buf)) {
    *why = "readlink " + path + ": " +
           (n < 0 ? std::strerror(errno) : "too long");
    return false;
  }
  target->assign(buf, n);
  return true;
}

}  // namespace

NetnsVerdict CompareWithInitialNetns(const std::string& proc,
                                     std::string* detail) {
  std::string self, init;
  if (!ReadLink(proc + "/self/ns/net", &self, detail) ||
      !ReadLink(proc + "/1/ns/net", &init, detail))
    return NetnsVerdict::kCannotTell;
  *detail = self + ", pid 1 in " + init;
  return self == init ? NetnsVerdict::kInitial : NetnsVerdict::kOther;
}

}  // namespace nfsdh
