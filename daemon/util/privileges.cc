#include "daemon/util/privileges.h"

#include <cap-ng.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "daemon/util/fs.h"

namespace nfsdh {
namespace {

std::string Octal(mode_t m) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The capability names capng_print_caps_text gives for `which`.
std::string CapText(capng_type_t which) {
  char* text = capng_print_caps_text(CAPNG_PRINT_BUFFER, which);
  std::string s = text ? text : "";
  free(text);
  return s;
}

// The number of threads of this process (/proc/self/status), 0 if unknown.
long ThreadCount() {
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) return 0;
  char line[256];
  long n = 0;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "Threads: %ld", &n) == 1) break;
  }
  fclose(f);
  return n;
}

}  // namespace

Status CheckStateFiles(const std::string& db, uid_t euid) {
  struct stat st;
  std::string dir = DirName(db);
  if (stat(dir.c_str(), &st) == 0) {
    if (st.st_uid != euid && st.st_uid != 0)
      return Status::Permission(
          "state directory " + dir + " is owned by uid " +
          std::to_string(st.st_uid) + "; refusing to keep client records "
          "where another user can replace them (chown it to uid " +
          std::to_string(euid) + ")");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
      return Status::Permission("state directory " + dir + " has mode " +
                                Octal(st.st_mode) +
                                " (writable by group or others); refusing "
                                "to keep client records there (chmod 0700 "
                                "it)");
  } else if (errno != ENOENT) {
    return Status::FromErrno("stat " + dir, errno);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string f = db + suffix;
    if (lstat(f.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("stat " + f, errno);
    }
    if (st.st_uid != euid)
      return Status::Permission(
          "database file " + f + " is owned by uid " +
          std::to_string(st.st_uid) + ", not by uid " + std::to_string(euid) +
          " that nfsd-helper runs as; refusing to trust records another "
          "user could have written (check it, then chown it)");
  }
  return Status::Ok();
}

Status DropAllCapabilities(std::string* dropped) {
  dropped->clear();
  long threads = ThreadCount();
  if (threads > 1)
    return Status::Invalid(
        "capabilities not dropped: the process has " +
        std::to_string(threads) +
        " threads and a drop changes only the calling thread's; the others "
        "would keep theirs");
  capng_clear(CAPNG_SELECT_BOTH);
  if (capng_get_caps_process() != 0)
    return Status::FromErrno("cannot read the process's capabilities", errno);
  bool caps = capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE;
  bool bounds = capng_have_capabilities(CAPNG_SELECT_BOUNDS) != CAPNG_NONE;
  if (!caps && !bounds) return Status::Ok();
  std::string held = CapText(CAPNG_PERMITTED);
  // Shrinking the bounding set needs CAP_SETPCAP. Without it the set is
  // left as it is; a program exec'd as uid 0 would then get the bounding
  // set back, so the log says so.
  bool can_bound =
      bounds && capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
  capng_clear(can_bound ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS);
  if (capng_apply(can_bound ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS) != 0)
    return Status::Permission("cannot drop the capabilities " +
                              (held.empty() ? std::string("held") : held));
  *dropped = caps && !held.empty() ? held : "(none in the permitted set)";
  if (bounds)
    *dropped += can_bound ? "; bounding set cleared"
                          : "; the bounding set is kept (no CAP_SETPCAP): "
                            "a program run as uid 0 could regain those";
  return Status::Ok();
}

}  // namespace nfsdh
