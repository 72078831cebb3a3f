// Loop: the daemon's one event loop, and the only code that calls libevent.
//
// Rationale. Modelled on tmux's proc.c: libevent hidden behind one small
// module. Everything the daemon waits for (a readable upcall file, a timer,
// a signal, a child's exit) is a small RAII object holding a
// std::function: constructing one registers it with the Loop, destroying
// it removes it. So no caller frees a `struct event` by hand, or forgets
// to, and no libevent type appears outside loop.cc.
//
// Failures, in the tiers of daemon/util/log.h:
//  - Allocating an event, or arming a timer or a signal, fails only when
//    the heap is exhausted or on a programming error. A daemon that carried
//    on without the timer would silently stop retrying (a channel never
//    reopened), so each is checked and a failure is FATAL.
//  - Watching a descriptor can fail for a reason the environment controls
//    (epoll refuses a regular file with EPERM): FdWatch::Start returns a
//    Status, and the caller decides.
//
// Callbacks. Every callback runs on the loop, never in a signal handler
// (libevent turns a signal into an event). An object may be stopped,
// re-armed or destroyed from inside its own callback, or by another
// callback of the same wake-up: the callback runs from a copy of its
// std::function, and a stopped or destroyed object's callback does not run
// afterwards.
//
// Loop affinity: single-threaded. The Loop and every object made with it
// are used only on the thread that runs Run(); another thread wakes the
// loop through a descriptor the loop watches (an eventfd, say).
// REQUIRES: every object made with a Loop is destroyed before the Loop.
#ifndef DAEMON_LOOP_LOOP_H_
#define DAEMON_LOOP_LOOP_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>

#include "daemon/util/status.h"

struct event_base;
struct event;

namespace nfsdh::loop {

using Duration = std::chrono::milliseconds;

class Loop {
 public:
  // FATAL if libevent cannot make an event base.
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs callbacks until Break(), or until nothing is left to wait for.
  void Run();
  // Runs callbacks for about `d` (what is due meanwhile), then returns. For
  // tests, and for code that must wait for the loop a bounded time.
  void RunFor(Duration d);
  // Run() returns once the callback that calls this returns; pending
  // callbacks of the same wake-up do not run.
  void Break();

  // The libevent base, for the one caller not converted yet
  // (Daemon::RunBatch's event_base_loopbreak); new code calls Break().
  struct event_base* base() {
    return base_;
  }

 private:
  struct event_base* base_;
};

// A one-shot timer: fires once, `after` from the last Start(). Not armed
// when made.
class Timer {
 public:
  Timer(Loop& loop, std::function<void()> fn);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Arms it `after` from now, replacing an earlier Start().
  void Start(Duration after);
  // Arms it `after` from now unless it is armed already.
  void StartIfIdle(Duration after);
  void Stop();
  bool armed() const;

 private:
  static void Fire(int fd, short what, void* arg);
  struct event* ev_;
  std::function<void()> fn_;
};

// A timer that fires every `interval` from the moment it is made until it
// is destroyed.
class PeriodicTimer {
 public:
  PeriodicTimer(Loop& loop, Duration interval, std::function<void()> fn);
  ~PeriodicTimer();
  PeriodicTimer(const PeriodicTimer&) = delete;
  PeriodicTimer& operator=(const PeriodicTimer&) = delete;

 private:
  static void Fire(int fd, short what, void* arg);
  struct event* ev_;
  std::function<void()> fn_;
};

// Runs `fn` on the loop each time signal `sig` arrives, from the moment it
// is made until it is destroyed. Several may watch one signal. Only one
// Loop of a process may watch signals at a time (libevent's rule).
class SignalWatch {
 public:
  SignalWatch(Loop& loop, int sig, std::function<void()> fn);
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

 private:
  static void Fire(int fd, short what, void* arg);
  struct event* ev_;
  std::function<void()> fn_;
};

// Watches a descriptor it does not own, level-triggered: `fn` runs at every
// wake-up while the descriptor is readable (kRead) or writable (kWrite)
// and the watch is started.
class FdWatch {
 public:
  enum class Event { kRead, kWrite };

  // Not watching until Start(). A negative `fd`: nothing to watch until
  // Reset() gives one.
  FdWatch(Loop& loop, int fd, Event what, std::function<void()> fn);
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // Starts watching; a no-op if watching already. Fails if the kernel
  // cannot poll the descriptor (epoll_ctl: EPERM for a regular file).
  // REQUIRES: fd() >= 0.
  Status Start();
  void Stop();
  bool active() const { return active_; }
  // Stops, and watches `fd` from now on (once started again).
  void Reset(int fd);
  int fd() const { return fd_; }

 private:
  static void Fire(int fd, short what, void* arg);
  Loop& loop_;
  Event what_;
  int fd_;
  struct event* ev_ = nullptr;  // for fd_; made by Reset()
  bool active_ = false;
  std::function<void()> fn_;
};

// Reaps one child process: runs `fn(status, 0)` once, on the loop, with the
// status waitpid() gave, after the child `pid` exited; or `fn(0, errno)` if
// waitpid() failed (ECHILD: it was reaped by someone else). Watches SIGCHLD,
// and also looks once right after it is made, so that a child that exited
// before the watch existed is not missed. It reaps that pid alone, never
// another child of the process. Destroying it neither kills nor reaps the
// child.
class ChildWatch {
 public:
  ChildWatch(Loop& loop, pid_t pid,
             std::function<void(int status, int error)> fn);
  ~ChildWatch();
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

 private:
  void Check();
  pid_t pid_;
  bool reaped_ = false;
  std::function<void(int, int)> fn_;
  std::unique_ptr<SignalWatch> sigchld_;
  std::unique_ptr<Timer> first_look_;
};

}  // namespace nfsdh::loop

#endif  // DAEMON_LOOP_LOOP_H_
