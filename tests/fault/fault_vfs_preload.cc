// libnfsdh_faultvfs.so: the fault VFS for programs that know nothing of it.
//
// LD_PRELOAD=libnfsdh_faultvfs.so nfsd-helper ... makes the shim the default
// VFS before main() runs, so the real daemon, linked with the shared
// libsqlite3, is tested without a line of test code in it. Controls, read
// once at load:
//   NFSDH_FAULT=op:k:err[:oneshot|persistent]   e.g. write:3:eio:persistent
//       fail the k-th xWrite/xSync/xTruncate counted from process start
//   NFSDH_FAULT_POWERLOSS=1   hold unsynced writes in memory (lost at SIGKILL)
//   NFSDH_FAULT_LYING_SYNC=1  xSync persists nothing (negative controls only)
//   NFSDH_FAULT_QUIET=1       do not log injected faults to stderr
//   NFSDH_FAULT_REPORT=PATH   also append those lines to PATH
// A spec that does not parse aborts the process: a test that meant to inject
// a fault must not silently run without one.
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/fault/fault_vfs.h"

namespace {

bool EnvOn(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "1") == 0;
}

__attribute__((constructor)) void InstallFromEnvironment() {
  using namespace nfsdh::faultvfs;
  SetVerbose(!EnvOn("NFSDH_FAULT_QUIET"));
  SetPowerLoss(EnvOn("NFSDH_FAULT_POWERLOSS"));
  SetLyingSync(EnvOn("NFSDH_FAULT_LYING_SYNC"));
  int rc = Install(true);
  if (rc != SQLITE_OK) {
    std::fprintf(stderr, "nfsdh-faultvfs: cannot register the VFS: %s\n",
                 sqlite3_errstr(rc));
    std::abort();
  }
  std::string armed = "none";
  if (const char* text = std::getenv("NFSDH_FAULT"); text && *text) {
    FaultSpec spec;
    std::string err;
    if (!ParseSpec(text, &spec, &err)) {
      std::fprintf(stderr, "nfsdh-faultvfs: %s\n", err.c_str());
      std::abort();
    }
    Arm(spec);
    armed = Describe(spec);
  }
  if (const char* path = std::getenv("NFSDH_FAULT_REPORT"); path && *path) {
    if (!SetReportFile(path)) {
      std::fprintf(stderr, "nfsdh-faultvfs: cannot open %s\n", path);
      std::abort();
    }
  }
  std::string line = std::string("nfsdh-faultvfs: default VFS is ") + kVfsName +
                     "; fault " + armed + "; power loss " +
                     (EnvOn("NFSDH_FAULT_POWERLOSS") ? "on" : "off") +
                     (EnvOn("NFSDH_FAULT_LYING_SYNC") ? "; lying sync" : "");
  if (!EnvOn("NFSDH_FAULT_QUIET")) std::fprintf(stderr, "%s\n", line.c_str());
  Report(line);
}

}  // namespace
