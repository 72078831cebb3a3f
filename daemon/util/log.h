// Logging to stderr. Under systemd (JOURNAL_STREAM set) every line starts
// with a syslog priority prefix such as "<3>", which journald turns into the
// entry's priority; on a terminal the level is spelled out instead.
// Text that came from the kernel or a file must go through
// nfsdfs::EscapeForLog before it is logged.
#ifndef DAEMON_UTIL_LOG_H_
#define DAEMON_UTIL_LOG_H_

namespace nfsdh {

enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6,
                      kDebug = 7 };

void SetLogDebug(bool on);
bool LogDebugEnabled();
// Program name shown on terminal output ("nfsd-helper: error: ...").
void SetLogProgram(const char* name);
// Sends every later line to syslog(3) (facility daemon) instead of stderr,
// for a daemon that detached from its terminal.
void SetLogSyslog(bool on);

void Log(LogLevel level, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define LOG_ERROR(...) ::nfsdh::Log(::nfsdh::LogLevel::kError, __VA_ARGS__)
#define LOG_WARNING(...) ::nfsdh::Log(::nfsdh::LogLevel::kWarning, __VA_ARGS__)
#define LOG_NOTICE(...) ::nfsdh::Log(::nfsdh::LogLevel::kNotice, __VA_ARGS__)
#define LOG_INFO(...) ::nfsdh::Log(::nfsdh::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...)                                            \
  do {                                                            \
    if (::nfsdh::LogDebugEnabled())                               \
      ::nfsdh::Log(::nfsdh::LogLevel::kDebug, __VA_ARGS__);       \
  } while (0)

}  // namespace nfsdh

#endif  // DAEMON_UTIL_LOG_H_
