// Process: a child process for black-box tests (the daemon under test, or a
// small shell helper), with its stderr captured, that can be signalled or
// SIGKILLed at any moment and is never left behind.
#ifndef TESTS_SIM_PROCESS_H_
#define TESTS_SIM_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace nfsdsim {

struct ProcessOptions {
  // Also append everything the child writes to stderr to this file.
  std::string stderr_path;
  // Called on the capture thread for each complete stderr line (without its
  // '\n'), e.g. to forward the daemon's log with a prefix.
  std::function<void(std::string_view)> on_stderr_line;
  // Send the child's stdout to the same capture as its stderr. Otherwise
  // stdout is inherited.
  bool capture_stdout = true;
  // Environment variables to set (or override) in the child.
  std::map<std::string, std::string> env;
  // Put the child in its own process group, so that a terminal's Ctrl-C
  // reaches only the test, which then kills the child itself.
  bool new_process_group = false;
};

struct ExitStatus {
  bool exited = false;  // normal exit, `code` is valid
  int code = 0;
  int signal = 0;  // killed by this signal (when !exited)
  bool success() const { return exited && code == 0; }
  std::string ToString() const;  // "exit 0", "killed by SIGKILL"
};

class Process {
 public:
  Process() = default;
  // Kills (SIGKILL) and reaps a child that is still running.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (looked up in PATH if it has no '/') with argv. Stdin is
  // /dev/null; file descriptors other than 0-2 are not inherited, so the
  // child cannot keep the test's own files (e.g. a simulated nfsd file) open.
  // Returns false with a message if the program cannot be started. A Process
  // is started at most once.
  bool Start(const std::vector<std::string>& argv,
             const ProcessOptions& options = {}, std::string* error = nullptr);

  pid_t pid() const { return pid_; }
  // False once the child has exited (it is then reaped).
  bool IsRunning();
  // Sends `sig` if the child has not been reaped (never to a recycled pid).
  bool Signal(int sig);
  bool Kill9();
  // Waits for the child to exit, at most `timeout`; nullopt if it is still
  // running then.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // The exit status if the child has been reaped.
  std::optional<ExitStatus> exit_status() const;

  // Everything captured from stderr (and stdout if captured) so far.
  std::string Stderr() const;
  // Waits until the child's stderr reached end of file (the child and any
  // process that inherited it exited), so Stderr() holds everything.
  bool WaitForStderrEnd(std::chrono::milliseconds timeout);
  // Waits until the captured output contains `needle`.
  bool WaitForStderr(std::string_view needle,
                     std::chrono::milliseconds timeout);

 private:
  bool TryReapLocked(bool block);
  void CaptureLoop(int fd);

  mutable std::mutex mu_;
  std::condition_variable cv_;  // new output or capture ended
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::string output_;
  std::string line_buf_;  // capture thread only
  bool capture_done_ = false;
  bool stop_capture_ = false;
  int log_fd_ = -1;
  std::function<void(std::string_view)> on_line_;
  std::thread capture_;
};

}  // namespace nfsdsim

#endif  // TESTS_SIM_PROCESS_H_
