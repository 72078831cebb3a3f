#include "daemon/callout/callout.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

extern char** environ;

namespace nfsdh::callout {

const char* KindName(Kind k) {
  return k == Kind::kAddClient ? "add-client" : "del-client";
}

Callout::Callout(struct event_base* base, std::string program,
                 int timeout_seconds, size_t max_queue)
    : base_(base),
      program_(std::move(program)),
      timeout_seconds_(timeout_seconds),
      max_queue_(max_queue) {}

Callout::~Callout() {
  if (child_ > 0) {
    kill(child_, SIGKILL);
    int status;
    while (waitpid(child_, &status, 0) < 0 && errno == EINTR) {
    }
    LOG_WARNING("ha-callout: %s %s killed at exit", KindName(running_.kind),
                running_.scope.c_str());
  }
  if (!queue_.empty())
    LOG_WARNING("ha-callout: %zu queued event(s) not run at exit",
                queue_.size());
  if (sigchld_) event_free(sigchld_);
  if (timer_) event_free(timer_);
}

Status Callout::Start() {
  sigchld_ = evsignal_new(base_, SIGCHLD, OnChild, this);
  timer_ = evtimer_new(base_, OnTimeout, this);
  if (!sigchld_ || !timer_ || evsignal_add(sigchld_, nullptr) != 0)
    return Status::Io("ha-callout: cannot watch SIGCHLD");
  return Status::Ok();
}

bool Callout::Enqueue(Event ev) {
  if (queue_.size() >= max_queue_) {
    ++dropped_;
    // Once per power of two, so a storm does not flood the log.
    if ((dropped_ & (dropped_ - 1)) == 0) {
      LOG_ERROR(
          "ha-callout: queue full (%zu events): %s %s %s not run "
          "(%llu dropped so far)",
          max_queue_, KindName(ev.kind), ev.scope.c_str(),
          nfsdfs::HexString(ev.client_id).c_str(),
          static_cast<unsigned long long>(dropped_));
    }
    return false;
  }
  queue_.push_back(std::move(ev));
  if (child_ <= 0) RunNext();
  return true;
}

void Callout::RunNext() {
  while (child_ <= 0 && !queue_.empty()) {
    running_ = std::move(queue_.front());
    queue_.pop_front();
    killed_ = false;
    const std::string hex = nfsdfs::HexString(running_.client_id);
    std::vector<char*> argv = {const_cast<char*>(program_.c_str()),
                               const_cast<char*>(KindName(running_.kind)),
                               const_cast<char*>(running_.scope.c_str()),
                               const_cast<char*>(hex.c_str()), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_init(&attr);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGCHLD);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc =
        posix_spawn(&pid, program_.c_str(), &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      child_ = -1;
      Finish(Outcome::End::kSpawnFailed, rc);
      continue;
    }
    child_ = pid;
    LOG_DEBUG("ha-callout: started %s %s %s %s (pid %d)", program_.c_str(),
              KindName(running_.kind), running_.scope.c_str(), hex.c_str(),
              static_cast<int>(pid));
    struct timeval tv = {timeout_seconds_, 0};
    evtimer_add(timer_, &tv);
  }
}

void Callout::Finish(Outcome::End end, int code) {
  const std::string what = program_ + " " + KindName(running_.kind) + " " +
                           running_.scope + " " +
                           nfsdfs::HexString(running_.client_id);
  switch (end) {
    case Outcome::End::kExited:
      if (code == 0)
        LOG_DEBUG("ha-callout: %s: done", what.c_str());
      else
        LOG_WARNING("ha-callout: %s failed: exit status %d", what.c_str(),
                    code);
      break;
    case Outcome::End::kSignaled:
      LOG_WARNING("ha-callout: %s failed: killed by signal %d (%s)",
                  what.c_str(), code, strsignal(code));
      break;
    case Outcome::End::kTimedOut:
      LOG_WARNING("ha-callout: %s killed: still running after %d s",
                  what.c_str(), timeout_seconds_);
      break;
    case Outcome::End::kSpawnFailed:
      LOG_WARNING("ha-callout: cannot run %s: %s", what.c_str(),
                  strerror(code));
      break;
  }
  if (on_outcome_) on_outcome_(Outcome{running_, end, code});
}

void Callout::OnChild(int, short, void* arg) {
  auto* c = static_cast<Callout*>(arg);
  if (c->child_ <= 0) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(c->child_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return;  // another child of the process, or not yet
  evtimer_del(c->timer_);
  c->child_ = -1;
  if (r < 0) {
    c->Finish(Outcome::End::kSpawnFailed, errno);
  } else if (c->killed_) {
    c->Finish(Outcome::End::kTimedOut, SIGKILL);
  } else if (WIFEXITED(status)) {
    c->Finish(Outcome::End::kExited, WEXITSTATUS(status));
  } else {
    c->Finish(Outcome::End::kSignaled, WTERMSIG(status));
  }
  c->RunNext();
}

void Callout::OnTimeout(int, short, void* arg) {
  auto* c = static_cast<Callout*>(arg);
  if (c->child_ <= 0) return;
  c->killed_ = true;
  kill(c->child_, SIGKILL);  // reaped by OnChild
}

}  // namespace nfsdh::callout
