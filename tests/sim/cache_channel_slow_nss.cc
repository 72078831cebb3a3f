// An LD_PRELOAD library that makes one name's NSS lookups slow, for the test
// that a slow ID-mapping lookup does not hold up client tracking
// (tests/scenario/idmap_test.cc). libnfsidmap's nsswitch method resolves a
// name with getpwnam_r/getgrnam_r; for the name in NFSDH_SLOW_NSS_NAME those
// first sleep NFSDH_SLOW_NSS_MS milliseconds, as a lookup that goes to an
// unreachable LDAP server would, then do the real lookup.
#include <dlfcn.h>
#include <grp.h>
#include <pwd.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace {

void MaybeSleep(const char* name) {
  const char* slow = getenv("NFSDH_SLOW_NSS_NAME");
  const char* ms = getenv("NFSDH_SLOW_NSS_MS");
  if (!slow || !ms || !name || strcmp(slow, name) != 0) return;
  long v = strtol(ms, nullptr, 10);
  struct timespec ts = {v / 1000, (v % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

extern "C" int getpwnam_r(const char* name, struct passwd* pwd, char* buf,
                          size_t buflen, struct passwd** result) {
  using Fn = int (*)(const char*, struct passwd*, char*, size_t,
                     struct passwd**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getpwnam_r"));
  MaybeSleep(name);
  if (!real) {
    *result = nullptr;
    return ENOSYS;
  }
  return real(name, pwd, buf, buflen, result);
}

extern "C" int getgrnam_r(const char* name, struct group* grp, char* buf,
                          size_t buflen, struct group** result) {
  using Fn =
      int (*)(const char*, struct group*, char*, size_t, struct group**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getgrnam_r"));
  MaybeSleep(name);
  if (!real) {
    *result = nullptr;
    return ENOSYS;
  }
  return real(name, grp, buf, buflen, result);
}
