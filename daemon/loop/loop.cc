#include "daemon/loop/loop.h"

#include <event2/event.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <string>

#include "daemon/util/log.h"

namespace nfsdh::loop {
namespace {

struct timeval ToTimeval(Duration d) {
  if (d.count() < 0) d = Duration(0);
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// Every event is made here: a failure is a broken invariant (loop.h).
struct event* NewEvent(struct event_base* base, int fd, short what,
                       event_callback_fn fn, void* arg, const char* kind) {
  struct event* ev = event_new(base, fd, what, fn, arg);
  if (ev == nullptr) FATAL("libevent cannot allocate a %s event", kind);
  return ev;
}

void AddEvent(struct event* ev, const struct timeval* tv, const char* kind) {
  if (event_add(ev, tv) != 0) FATAL("libevent cannot arm a %s event", kind);
}

// libevent's own warnings (an epoll_ctl that failed, say) go to our log,
// with its priorities, instead of raw to stderr.
void LogFromLibevent(int severity, const char* msg) {
  switch (severity) {
    case EVENT_LOG_DEBUG:
      LOG_DEBUG("libevent: %s", msg);
      break;
    case EVENT_LOG_MSG:
      LOG_INFO("libevent: %s", msg);
      break;
    case EVENT_LOG_WARN:
      LOG_WARNING("libevent: %s", msg);
      break;
    default:
      LOG_ERROR("libevent: %s", msg);
      break;
  }
}

}  // namespace

Loop::Loop() {
  event_set_log_callback(LogFromLibevent);
  base_ = event_base_new();
  if (base_ == nullptr) FATAL("libevent cannot create an event base");
}

Loop::~Loop() { event_base_free(base_); }

void Loop::Run() {
  if (event_base_dispatch(base_) < 0) FATAL("the event loop failed");
}

void Loop::RunFor(Duration d) {
  struct timeval tv = ToTimeval(d);
  if (event_base_loopexit(base_, &tv) != 0)
    FATAL("libevent cannot arm the loop's exit");
  Run();
}

void Loop::Break() { event_base_loopbreak(base_); }

// ---- Timer ------------------------------------------------------------------

Timer::Timer(Loop& loop, std::function<void()> fn)
    : ev_(NewEvent(loop.base(), -1, 0, Fire, this, "timer")),
      fn_(std::move(fn)) {}

Timer::~Timer() { event_free(ev_); }

void Timer::Start(Duration after) {
  struct timeval tv = ToTimeval(after);
  AddEvent(ev_, &tv, "timer");
}

void Timer::StartIfIdle(Duration after) {
  if (!armed()) Start(after);
}

void Timer::Stop() { event_del(ev_); }

bool Timer::armed() const { return event_pending(ev_, EV_TIMEOUT, nullptr); }

void Timer::Fire(int, short, void* arg) {
  std::function<void()> fn = static_cast<Timer*>(arg)->fn_;
  fn();
}

// ---- PeriodicTimer ----------------------------------------------------------

PeriodicTimer::PeriodicTimer(Loop& loop, Duration interval,
                             std::function<void()> fn)
    : ev_(NewEvent(loop.base(), -1, EV_PERSIST, Fire, this, "periodic timer")),
      fn_(std::move(fn)) {
  struct timeval tv = ToTimeval(interval);
  AddEvent(ev_, &tv, "periodic timer");
}

PeriodicTimer::~PeriodicTimer() { event_free(ev_); }

void PeriodicTimer::Fire(int, short, void* arg) {
  std::function<void()> fn = static_cast<PeriodicTimer*>(arg)->fn_;
  fn();
}

// ---- SignalWatch ------------------------------------------------------------

SignalWatch::SignalWatch(Loop& loop, int sig, std::function<void()> fn)
    : ev_(NewEvent(loop.base(), sig, EV_SIGNAL | EV_PERSIST, Fire, this,
                   "signal")),
      fn_(std::move(fn)) {
  AddEvent(ev_, nullptr, "signal");
}

SignalWatch::~SignalWatch() { event_free(ev_); }

void SignalWatch::Fire(int, short, void* arg) {
  std::function<void()> fn = static_cast<SignalWatch*>(arg)->fn_;
  fn();
}

// ---- FdWatch ----------------------------------------------------------------

FdWatch::FdWatch(Loop& loop, int fd, Event what, std::function<void()> fn)
    : loop_(loop), what_(what), fd_(-1), fn_(std::move(fn)) {
  Reset(fd);
}

FdWatch::~FdWatch() {
  if (ev_) event_free(ev_);
}

Status FdWatch::Start() {
  if (active_) return Status::Ok();
  if (ev_ == nullptr) FATAL("FdWatch::Start without a descriptor");
  if (event_add(ev_, nullptr) != 0) {
    int err = errno;
    return Status::FromErrno(
        "cannot watch descriptor " + std::to_string(fd_) + " for " +
            (what_ == Event::kRead ? "reading" : "writing"),
        err != 0 ? err : EINVAL);
  }
  active_ = true;
  return Status::Ok();
}

void FdWatch::Stop() {
  if (!active_) return;
  event_del(ev_);
  active_ = false;
}

void FdWatch::Reset(int fd) {
  Stop();
  if (ev_) {
    event_free(ev_);
    ev_ = nullptr;
  }
  fd_ = fd;
  if (fd_ < 0) return;
  short what = (what_ == Event::kRead ? EV_READ : EV_WRITE) | EV_PERSIST;
  ev_ = NewEvent(loop_.base(), fd_, what, Fire, this, "descriptor");
}

void FdWatch::Fire(int, short, void* arg) {
  std::function<void()> fn = static_cast<FdWatch*>(arg)->fn_;
  fn();
}

// ---- ChildWatch -------------------------------------------------------------

ChildWatch::ChildWatch(Loop& loop, pid_t pid, std::function<void(int, int)> fn)
    : pid_(pid), fn_(std::move(fn)) {
  sigchld_ = std::make_unique<SignalWatch>(loop, SIGCHLD, [this] { Check(); });
  // SIGCHLD of a child that exited before the watch existed went to
  // nobody: look once, from the loop (never from the constructor).
  first_look_ = std::make_unique<Timer>(loop, [this] { Check(); });
  first_look_->Start(Duration(0));
}

ChildWatch::~ChildWatch() = default;

void ChildWatch::Check() {
  if (reaped_) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return;  // still running (the signal was another child's)
  int err = r < 0 ? errno : 0;
  reaped_ = true;
  first_look_->Stop();
  std::function<void(int, int)> fn = fn_;
  fn(err == 0 ? status : 0, err);  // may destroy this ChildWatch
}

}  // namespace nfsdh::loop
