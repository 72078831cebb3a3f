// libnfsdh_clockstep.so: steps the wall clock of a program that knows
// nothing of it, for the fault campaign (campaign.h).
//
// nfsd-helper reads the wall clock only through time() (instance ids are
// max(now, largest ever + 1), PROTOCOL.md §4) and has no clock knob of its
// own; LD_PRELOADed, this library adds to time(), gettimeofday() and
// clock_gettime(CLOCK_REALTIME*) an offset in seconds read, at every call,
// from the file named by NFSDH_CLOCK_STEP_FILE (one signed decimal number;
// a missing or unreadable file means 0). The campaign rewrites the file to
// step the clock of a running helper forwards or backwards. Monotonic clocks
// are left alone, as a real clock step leaves them.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>

namespace {

long Offset() {
  static const char* path = std::getenv("NFSDH_CLOCK_STEP_FILE");
  if (!path) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return std::strtol(buf, nullptr, 10);
}

using ClockGettime = int (*)(clockid_t, struct timespec*);

ClockGettime RealClockGettime() {
  static ClockGettime real =
      reinterpret_cast<ClockGettime>(dlsym(RTLD_NEXT, "clock_gettime"));
  return real;
}

bool IsWallClock(clockid_t id) {
  return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int clock_gettime(clockid_t id,
                                                         struct timespec* ts) {
  int rc = RealClockGettime()(id, ts);
  if (rc == 0 && IsWallClock(id)) ts->tv_sec += Offset();
  return rc;
}

__attribute__((visibility("default"))) time_t time(time_t* out) {
  struct timespec ts;
  RealClockGettime()(CLOCK_REALTIME, &ts);
  time_t t = ts.tv_sec + Offset();
  if (out) *out = t;
  return t;
}

__attribute__((visibility("default"))) int gettimeofday(struct timeval* tv,
                                                        void*) {
  struct timespec ts;
  int rc = RealClockGettime()(CLOCK_REALTIME, &ts);
  if (rc == 0) {
    tv->tv_sec = ts.tv_sec + Offset();
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return rc;
}

}  // extern "C"
