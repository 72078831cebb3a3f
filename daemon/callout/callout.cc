#include "daemon/callout/callout.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

extern char** environ;

namespace nfsdh::callout {

const char* KindName(Kind k) {
  return k == Kind::kAddClient ? "add-client" : "del-client";
}

Callout::Callout(loop::Loop& loop, store::Backend* store, std::string program,
                 int timeout_seconds)
    : loop_(loop),
      store_(store),
      program_(std::move(program)),
      timeout_seconds_(timeout_seconds),
      timer_(loop, [this] { OnTimeout(); }),
      retry_timer_(loop, [this] { OnRetry(); }) {}

Callout::~Callout() {
  child_watch_.reset();  // reaped here, not by the loop
  if (child_ > 0) {
    kill(child_, SIGKILL);
    int status;
    while (waitpid(child_, &status, 0) < 0 && errno == EINTR) {
    }
    LOG_WARNING("ha-callout: %s %s %s %s killed at exit; it runs again at "
                "the next start",
                program_.c_str(), running_.added ? "add-client" : "del-client",
                running_.scope.c_str(),
                nfsdfs::HexString(running_.id).c_str());
  }
  Flush();
  if (pending_ > 0)
    LOG_NOTICE("ha-callout: %lld event(s) left in the outbox; they run at "
               "the next start",
               static_cast<long long>(pending_));
}

Status Callout::Start() {
  Status s = store_->CountCallouts(&pending_);
  if (!s.ok()) {
    pending_ = 0;  // RunNext logs the outbox's failure and retries
  } else if (pending_ > 0) {
    LOG_NOTICE("ha-callout: %lld event(s) in the outbox from before; "
               "resuming",
               static_cast<long long>(pending_));
  }
  RunNext();
  return Status::Ok();
}

void Callout::Kick(int64_t queued) {
  pending_ += queued;
  drained_ = false;
  if (child_ <= 0 && !waiting_) RunNext();
}

void Callout::Retry() {
  waiting_ = true;
  retry_timer_.Start(std::chrono::seconds(retry_delay_));
  retry_delay_ = std::min(2 * retry_delay_, kMaxRetrySeconds);
}

void Callout::Flush() {
  if (done_through_ <= deleted_through_) return;
  Status s = store_->DeleteCalloutsThrough(done_through_);
  if (!s.ok()) {
    // Nothing runs twice in this process (the next entry is read after
    // done_through_); only a restart first would. The next flush retries.
    LOG_WARNING("ha-callout: cannot delete finished events from the outbox "
                "(they run again if nfsd-helper restarts first): %s",
                s.ToString().c_str());
    return;
  }
  deleted_through_ = done_through_;
}

void Callout::RunNext() {
  while (child_ <= 0 && !waiting_) {
    std::optional<store::CalloutRow> next;
    Status s = store_->NextCallout(done_through_, &next);
    if (!s.ok()) {
      LOG_ERROR("ha-callout: cannot read the outbox: %s; retrying in %d s",
                s.ToString().c_str(), retry_delay_);
      Retry();
      return;
    }
    if (!next) {
      drained_ = true;
      Flush();
      return;
    }
    if (next->seq != running_.seq) attempts_ = 0;
    running_ = std::move(*next);
    killed_ = false;
    const char* kind = running_.added ? "add-client" : "del-client";
    const std::string hex = nfsdfs::HexString(running_.id);
    std::vector<char*> argv = {const_cast<char*>(program_.c_str()),
                               const_cast<char*>(kind),
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
      Finish(Outcome::End::kSpawnFailed, rc);  // arms the retry
      continue;
    }
    child_ = pid;
    child_watch_ = std::make_unique<loop::ChildWatch>(
        loop_, pid, [this](int status, int error) { OnChild(status, error); });
    LOG_DEBUG("ha-callout: started %s %s %s %s (pid %d)", program_.c_str(),
              kind, running_.scope.c_str(), hex.c_str(),
              static_cast<int>(pid));
    timer_.Start(std::chrono::seconds(timeout_seconds_));
  }
}

void Callout::Finish(Outcome::End end, int code) {
  const Kind kind = running_.added ? Kind::kAddClient : Kind::kDelClient;
  const std::string what = program_ + " " + KindName(kind) + " " +
                           running_.scope + " " +
                           nfsdfs::HexString(running_.id);
  const bool ok = end == Outcome::End::kExited && code == 0;
  const std::string again =
      "; retrying in " + std::to_string(retry_delay_) + " s";
  switch (end) {
    case Outcome::End::kExited:
      if (ok && attempts_ == 0)
        LOG_DEBUG("ha-callout: %s: done", what.c_str());
      else if (ok)
        LOG_NOTICE("ha-callout: %s: done after %d failed attempt(s)",
                   what.c_str(), attempts_);
      else
        LOG_WARNING("ha-callout: %s failed: exit status %d%s", what.c_str(),
                    code, again.c_str());
      break;
    case Outcome::End::kSignaled:
      LOG_WARNING("ha-callout: %s failed: killed by signal %d (%s)%s",
                  what.c_str(), code, strsignal(code), again.c_str());
      break;
    case Outcome::End::kTimedOut:
      LOG_WARNING("ha-callout: %s killed: still running after %d s%s",
                  what.c_str(), timeout_seconds_, again.c_str());
      break;
    case Outcome::End::kSpawnFailed:
      LOG_WARNING("ha-callout: cannot run %s: %s%s", what.c_str(),
                  strerror(code), again.c_str());
      break;
  }
  if (on_outcome_)
    on_outcome_(Outcome{Event{kind, running_.scope, running_.id}, end, code});
  if (!ok) {
    ++attempts_;
    Flush();  // what is finished is deleted now: the wait may be long
    Retry();
    return;
  }
  done_through_ = running_.seq;
  retry_delay_ = kFirstRetrySeconds;
  attempts_ = 0;
  if (pending_ > 0) --pending_;
  if (done_through_ - deleted_through_ >= kFlushEvery) Flush();
}

void Callout::OnChild(int status, int error) {
  timer_.Stop();
  child_ = -1;
  // child_watch_ stays: this runs from its callback. The next child's
  // watch replaces it.
  if (error != 0) {
    Finish(Outcome::End::kSpawnFailed, error);
  } else if (killed_) {
    Finish(Outcome::End::kTimedOut, SIGKILL);
  } else if (WIFEXITED(status)) {
    Finish(Outcome::End::kExited, WEXITSTATUS(status));
  } else {
    Finish(Outcome::End::kSignaled, WTERMSIG(status));
  }
  RunNext();
}

void Callout::OnRetry() {
  waiting_ = false;
  RunNext();
}

void Callout::OnTimeout() {
  if (child_ <= 0) return;
  killed_ = true;
  kill(child_, SIGKILL);  // reaped by OnChild
}

}  // namespace nfsdh::callout
