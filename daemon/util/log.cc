#include "daemon/util/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <syslog.h>

namespace nfsdh {
namespace {

bool g_debug = false;
bool g_syslog = false;
const char* g_program = "nfsd-helper";

const char* LevelWord(LogLevel l) {
  switch (l) {
    case LogLevel::kCritical:
      return "critical";
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kNotice:
      return "notice";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

}  // namespace

void SetLogDebug(bool on) { g_debug = on; }
bool LogDebugEnabled() { return g_debug; }
void SetLogProgram(const char* name) { g_program = name; }
void SetLogSyslog(bool on) {
  if (on && !g_syslog) openlog(g_program, LOG_PID, LOG_DAEMON);
  g_syslog = on;
}

void Log(LogLevel level, const char* fmt, ...) {
  char body[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  if (g_syslog) {
    syslog(static_cast<int>(level), "%s", body);
    return;
  }
  // One fputs per line so that concurrent writers never interleave a line.
  std::string line;
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    line = "<" + std::to_string(static_cast<int>(level)) + ">" + body + "\n";
  } else {
    line = std::string(g_program) + ": " + LevelWord(level) + ": " + body +
           "\n";
  }
  fputs(line.c_str(), stderr);
  fflush(stderr);
}

void Fatal(const char* file, int line, const char* fmt, ...) {
  char body[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  Log(LogLevel::kCritical, "%s:%d: %s; aborting", file, line, body);
  abort();
}

}  // namespace nfsdh
