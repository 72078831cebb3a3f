#include "tests/sim/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

extern char** environ;

namespace nfsdsim {

std::string ExitStatus::ToString() const {
  if (exited) return "exit " + std::to_string(code);
  const char* abbrev = sigabbrev_np(signal);
  return std::string("killed by ") +
         (abbrev ? std::string("SIG") + abbrev : std::to_string(signal));
}

Process::~Process() {
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      TryReapLocked(/*block=*/true);
    }
  }
  if (capture_.joinable()) {
    // Normally the pipe reaches EOF when the child dies. A grandchild that
    // inherited stderr could keep it open for ever: give up after a moment.
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait_for(lk, std::chrono::seconds(2), [&] { return capture_done_; });
      stop_capture_ = true;
    }
    capture_.join();
  }
  if (log_fd_ >= 0) close(log_fd_);
}

bool Process::Start(const std::vector<std::string>& argv,
                    const ProcessOptions& options, std::string* error) {
  auto fail = [&](const std::string& msg) {
    if (error) *error = msg;
    return false;
  };
  if (pid_ > 0) return fail("already started");
  if (argv.empty()) return fail("empty argv");
  if (!options.stderr_path.empty()) {
    log_fd_ = open(options.stderr_path.c_str(),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) {
      return fail("cannot open " + options.stderr_path + ": " +
                  strerror(errno));
    }
  }
  on_line_ = options.on_stderr_line;

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    return fail(std::string("pipe2: ") + strerror(errno));
  }

  // Everything the child needs is prepared here, in the parent: posix_spawn
  // (clone + exec in glibc) runs no code of ours in the child, which is what
  // makes it safe in a process with threads.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string key(kv.substr(0, kv.find('=')));
    if (options.env.count(key) == 0) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  std::vector<char*> cargv;
  for (auto& s : argv_copy) cargv.push_back(s.data());
  cargv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  if (options.capture_stdout)
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  // Without this the child would inherit every descriptor the test opened
  // without O_CLOEXEC, e.g. a simulated nfsd file, and keep it open.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  // A clean signal state: the test may block or ignore signals (SIGPIPE,
  // SIGTERM in a runner) that the daemon must see with default actions.
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);

  pid_t pid = -1;
  const bool search = argv[0].find('/') == std::string::npos;
  int rc =
      search
          ? posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), envp.data())
          : posix_spawn(&pid, cargv[0], &fa, &attr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return fail("cannot run " + argv[0] + ": " + strerror(rc));
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    pid_ = pid;
  }
  int fd = pipefd[0];
  capture_ = std::thread([this, fd] { CaptureLoop(fd); });
  return true;
}

void Process::CaptureLoop(int fd) {
  char buf[4096];
  while (true) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_capture_) break;
    }
    // A timeout, so that the destructor can stop us while a grandchild
    // still holds the pipe open.
    pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    std::string_view chunk(buf, static_cast<size_t>(r));
    if (log_fd_ >= 0) (void)!write(log_fd_, chunk.data(), chunk.size());
    if (on_line_) {
      line_buf_.append(chunk);
      size_t nl;
      while ((nl = line_buf_.find('\n')) != std::string::npos) {
        on_line_(std::string_view(line_buf_).substr(0, nl));
        line_buf_.erase(0, nl + 1);
      }
    }
    std::lock_guard<std::mutex> lk(mu_);
    output_.append(chunk);
    cv_.notify_all();
  }
  if (on_line_ && !line_buf_.empty()) on_line_(line_buf_);
  close(fd);
  std::lock_guard<std::mutex> lk(mu_);
  capture_done_ = true;
  cv_.notify_all();
}

bool Process::TryReapLocked(bool block) {
  if (pid_ <= 0) return false;
  if (status_) return true;
  int ws = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &ws, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  ExitStatus s;
  if (WIFEXITED(ws)) {
    s.exited = true;
    s.code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    s.signal = WTERMSIG(ws);
  }
  status_ = s;
  return true;
}

bool Process::IsRunning() {
  std::lock_guard<std::mutex> lk(mu_);
  if (pid_ <= 0) return false;
  return !TryReapLocked(/*block=*/false);
}

bool Process::Signal(int sig) {
  std::lock_guard<std::mutex> lk(mu_);
  // Until waitpid() has reaped it the pid cannot be reused, so this never
  // hits another process.
  if (pid_ <= 0 || status_) return false;
  return kill(pid_, sig) == 0;
}

bool Process::Kill9() { return Signal(SIGKILL); }

bool Process::WaitForStderrEnd(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return capture_done_; });
}

std::optional<ExitStatus> Process::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (pid_ <= 0) return std::nullopt;
      if (TryReapLocked(/*block=*/false)) return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    // Polling keeps this independent of SIGCHLD, which a test binary must not
    // take over; 2 ms is far below any timeout the tests care about.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::optional<ExitStatus> Process::exit_status() const {
  std::lock_guard<std::mutex> lk(mu_);
  return status_;
}

std::string Process::Stderr() const {
  std::lock_guard<std::mutex> lk(mu_);
  return output_;
}

bool Process::WaitForStderr(std::string_view needle,
                            std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    return output_.find(needle) != std::string::npos || capture_done_;
  }) && output_.find(needle) != std::string::npos;
}

}  // namespace nfsdsim
