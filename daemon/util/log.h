// Logging to stderr. Under systemd (JOURNAL_STREAM set) every line starts
// with a syslog priority prefix such as "<3>", which journald turns into the
// entry's priority; on a terminal the level is spelled out instead.
// Text that came from the kernel or a file must go through
// nfsdfs::EscapeForLog before it is logged.
//
// Three tiers for what goes wrong (as tmux has them):
//  - what a requester caused, or what the environment can cause (a missing
//    file, no file descriptor left, a full disk, a malformed upcall), is
//    returned as a Status or answered with an errno, and the daemon carries
//    on: the caller decides whether it is fatal to the start;
//  - what the daemon survives but an administrator must know is logged
//    (LOG_ERROR, LOG_WARNING);
//  - a broken invariant, something only a bug or an exhausted heap can
//    cause (libevent refusing to allocate an event or to arm a timer, a
//    REQUIRES: line violated), is FATAL(): it logs at LOG_CRIT with the
//    file and line and aborts. Carrying on would leave the daemon up but
//    silently not doing its job (a retry timer that never fires leaves a
//    channel closed for ever); an abort leaves a core dump and lets the
//    service manager restart it (Restart=on-failure). Never use it for
//    anything a file, the kernel or a client can cause.
#ifndef DAEMON_UTIL_LOG_H_
#define DAEMON_UTIL_LOG_H_

namespace nfsdh {

enum class LogLevel {
  kCritical = 2,
  kError = 3,
  kWarning = 4,
  kNotice = 5,
  kInfo = 6,
  kDebug = 7
};

void SetLogDebug(bool on);
bool LogDebugEnabled();
// Program name shown on terminal output ("nfsd-helper: error: ...").
void SetLogProgram(const char* name);
// Sends every later line to syslog(3) (facility daemon) instead of stderr,
// for a daemon that detached from its terminal.
void SetLogSyslog(bool on);

void Log(LogLevel level, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Logs "FILE:LINE: message" at LOG_CRIT and aborts. Use FATAL().
[[noreturn]] void Fatal(const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FATAL(...) ::nfsdh::Fatal(__FILE__, __LINE__, __VA_ARGS__)
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
