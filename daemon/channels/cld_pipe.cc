#include "daemon/channels/cld_pipe.h"

#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "daemon/util/fs.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/cld.h"

namespace nfsdh {
namespace {

std::string BaseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Wake-ups in a row that found the pipe readable but nothing to read before
// the pipe is taken for broken (and looked at again a second later).
constexpr int kMaxEmptyWakeups = 3;

}  // namespace

CldRead ReadCldMessages(int fd, std::vector<std::string>* out, size_t max,
                        int* error) {
  char buf[nfsdfs::cld::kMaxMessageSize + 1];
  if (error) *error = 0;
  while (out->size() < max) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out->emplace_back(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return CldRead::kDrained;  // an empty pipe reads 0 bytes
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return CldRead::kDrained;
    if (error) *error = errno;  // EPIPE: the kernel removed the pipe
    return CldRead::kClosed;
  }
  return CldRead::kDrained;
}

CldPipe::CldPipe(struct event_base* base, std::string path,
                 std::function<void()> on_readable,
                 std::function<void()> on_change)
    : base_(base),
      path_(std::move(path)),
      on_readable_(std::move(on_readable)),
      on_change_(std::move(on_change)) {
  dir_ = DirName(path_);
  name_ = BaseName(path_);
  dir_parent_ = DirName(dir_);
  dir_name_ = BaseName(dir_);
}

CldPipe::~CldPipe() {
  if (ev_) event_free(ev_);
  if (fd_ >= 0) close(fd_);
  if (inotify_ev_) event_free(inotify_ev_);
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (timer_) event_free(timer_);
}

Status CldPipe::Start() {
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Status::FromErrno("inotify_init1", errno);
  inotify_ev_ =
      event_new(base_, inotify_fd_, EV_READ | EV_PERSIST, OnInotify, this);
  timer_ = evtimer_new(base_, OnTimer, this);
  if (!inotify_ev_ || !timer_ || event_add(inotify_ev_, nullptr) != 0)
    return Status::Invalid("cannot add the cld pipe's events to the loop");
  Rewatch();
  TryOpen();
  return Status::Ok();
}

void CldPipe::ArmTimer() {
  struct timeval one = {1, 0};
  evtimer_add(timer_, &one);
}

void CldPipe::Rewatch() {
  if (dir_wd_ >= 0) inotify_rm_watch(inotify_fd_, dir_wd_);  // may be gone
  dir_wd_ =
      inotify_add_watch(inotify_fd_, dir_.c_str(),
                        IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                            IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  if (dir_wd_ >= 0) {
    if (parent_wd_ >= 0) {
      inotify_rm_watch(inotify_fd_, parent_wd_);
      parent_wd_ = -1;
    }
    if (logged_dir_missing_) LOG_INFO("cld: %s appeared", dir_.c_str());
    logged_dir_missing_ = false;
    return;
  }
  int err = errno;
  // The directory is missing: watch its parent for it, and look again every
  // second, since a file system mounted there (rpc_pipefs) raises no event.
  if (parent_wd_ < 0) {
    parent_wd_ = inotify_add_watch(inotify_fd_, dir_parent_.c_str(),
                                   IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
  }
  if (!logged_dir_missing_) {
    LOG_WARNING(
        "cld: cannot watch %s: %s; looking for it every second (is "
        "rpc_pipefs mounted?)",
        dir_.c_str(), strerror(err));
    logged_dir_missing_ = true;
  }
  ArmTimer();
}

void CldPipe::TryOpen() {
  int fd = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err != last_open_errno_) {
      if (err == ENOENT) {
        LOG_INFO(
            "cld: waiting for %s to appear (nfsd creates it when it "
            "starts)",
            path_.c_str());
      } else {
        LOG_WARNING("cld: cannot open %s: %s; trying again every second",
                    path_.c_str(), strerror(err));
      }
      last_open_errno_ = err;
    }
    // A missing pipe is announced by inotify; anything else is retried.
    if (err != ENOENT) ArmTimer();
    return;
  }
  if (fd_ >= 0) {
    struct stat a, b;
    if (fstat(fd_, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      close(fd);  // the pipe already open
      return;
    }
    Close("a new pipe replaced it");
  }
  fd_ = fd;
  last_open_errno_ = 0;
  empty_wakeups_ = 0;
  ev_ = event_new(base_, fd_, EV_READ | EV_PERSIST, OnReadable, this);
  event_add(ev_, nullptr);
  LOG_NOTICE("cld: opened %s", path_.c_str());
  if (on_change_) on_change_();
}

void CldPipe::Close(const char* why) {
  if (fd_ < 0) return;
  event_free(ev_);
  ev_ = nullptr;
  close(fd_);
  fd_ = -1;
  LOG_NOTICE("cld: closed %s (%s)", path_.c_str(), why);
  if (on_change_) on_change_();
}

void CldPipe::Drain(std::vector<std::string>* out, size_t max) {
  if (fd_ < 0) return;
  size_t before = out->size();
  int err = 0;
  if (ReadCldMessages(fd_, out, max, &err) == CldRead::kClosed) {
    Close(strerror(err));
    // A new pipe is announced by inotify; look once more in a second in
    // case this one broke without being removed.
    ArmTimer();
    return;
  }
  if (out->size() > before) {
    empty_wakeups_ = 0;
    return;
  }
  // Readable, yet nothing to read: a hang-up, or another reader took it.
  struct pollfd p = {fd_, POLLIN, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
    Close("hang-up");
    ArmTimer();
  } else if (++empty_wakeups_ >= kMaxEmptyWakeups) {
    Close("readable, but nothing to read");
    ArmTimer();
  }
}

void CldPipe::OnReadable(int, short, void* arg) {
  static_cast<CldPipe*>(arg)->on_readable_();
}

void CldPipe::OnTimer(int, short, void* arg) {
  auto* p = static_cast<CldPipe*>(arg);
  if (p->dir_wd_ < 0) p->Rewatch();
  if (p->fd_ < 0) p->TryOpen();
}

void CldPipe::OnInotify(int, short, void* arg) {
  auto* p = static_cast<CldPipe*>(arg);
  alignas(struct inotify_event) char buf[4096];
  bool rewatch = false, reopen = false;
  for (;;) {
    ssize_t n = read(p->inotify_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (char* q = buf; q < buf + n;) {
      auto* e = reinterpret_cast<struct inotify_event*>(q);
      q += sizeof(struct inotify_event) + e->len;
      std::string name = e->len ? std::string(e->name, strnlen(e->name, e->len))
                                : std::string();
      if (e->mask & IN_Q_OVERFLOW) {
        rewatch = reopen = true;
      } else if (e->wd == p->dir_wd_) {
        if (e->mask &
            (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
          if (e->mask & IN_IGNORED) p->dir_wd_ = -1;
          rewatch = true;
        } else if (name == p->name_) {
          // In order: a removal and a new pipe may come in one read.
          if (e->mask & (IN_DELETE | IN_MOVED_FROM)) p->Close("removed");
          if (e->mask & (IN_CREATE | IN_MOVED_TO)) p->TryOpen();
        }
      } else if (e->wd == p->parent_wd_) {
        if (e->mask & IN_IGNORED) {
          p->parent_wd_ = -1;
        } else if (name == p->dir_name_) {
          rewatch = reopen = true;
        }
      }
    }
  }
  if (rewatch) p->Rewatch();
  if (reopen && p->fd_ < 0) p->TryOpen();
}

}  // namespace nfsdh
