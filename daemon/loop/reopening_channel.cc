#include "daemon/loop/reopening_channel.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/loop/channel_owners.h"
#include "daemon/util/fs.h"
#include "daemon/util/log.h"

namespace nfsdh::loop {
namespace {

std::string BaseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool EndsLine(std::string_view s) { return !s.empty() && s.back() == '\n'; }

// last_errno_ after an open whose descriptor the loop could not watch.
constexpr int kUnwatchable = -1;

}  // namespace

// ---- Framer -----------------------------------------------------------------

bool Framer::Piece(std::string_view piece, Message* out) {
  const bool filled = piece.size() >= buffer_;
  switch (kind_) {
    case Kind::kMessage:
      out->data.assign(piece.data(), piece.size());
      out->overlong = false;
      return true;
    case Kind::kRequest: {
      // PROTOCOL.md §1: a read shorter than the buffer, or one that ends in
      // a newline, ends a request. Reads are never joined: a request
      // without its newline is refused alone, and the rest of an over-long
      // one is never taken for a request.
      const bool ends = !filled || EndsLine(piece);
      if (discarding_) {
        discarding_ = !ends;
        return false;
      }
      discarding_ = !ends;
      out->data.assign(piece.data(), piece.size());
      out->overlong = !ends;
      return true;
    }
    case Kind::kJoined:
      partial_.append(piece.data(), piece.size());
      // A cache channel's read returns one upcall, or as much of it as the
      // buffer holds (sunrpc's cache_read): only a read that filled the
      // buffer may go on in the next one.
      if (filled && !EndsLine(partial_)) {
        if (partial_.size() <= 2 * buffer_) return false;
        out->data = std::move(partial_);
        out->overlong = true;
        partial_.clear();
        return true;
      }
      out->data = std::move(partial_);
      out->overlong = false;
      partial_.clear();
      return true;
  }
  return false;
}

void Framer::ReadZero() {
  if (kind_ == Kind::kRequest) discarding_ = false;
}

void Framer::Reset() {
  discarding_ = false;
  partial_.clear();
}

// ---- DirWatch ---------------------------------------------------------------

// Appearance::kInotify: the file's directory watched with inotify, so that
// the file is opened the moment it appears and closed when it is removed.
// Where the directory itself is missing, its parent is watched and the
// channel's one-second timer looks again (Rewatch).
class ReopeningChannel::DirWatch {
 public:
  explicit DirWatch(ReopeningChannel* ch)
      : ch_(ch),
        dir_(DirName(ch->path())),
        dir_parent_(DirName(dir_)),
        name_(BaseName(ch->path())),
        dir_name_(BaseName(dir_)),
        watch_(ch->loop_, -1, FdWatch::Event::kRead, [this] { OnEvents(); }) {}
  ~DirWatch() {
    watch_.Reset(-1);
    if (fd_ >= 0) close(fd_);
  }

  Status Start() {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return Status::FromErrno("inotify_init1", errno);
    watch_.Reset(fd_);
    Status s = watch_.Start();
    if (!s.ok()) return s;
    Rewatch();
    return Status::Ok();
  }

  bool watching() const { return dir_wd_ >= 0; }

  void Rewatch() {
    const std::string& prefix = ch_->opts_.log_prefix;
    if (dir_wd_ >= 0) inotify_rm_watch(fd_, dir_wd_);  // may be gone
    dir_wd_ =
        inotify_add_watch(fd_, dir_.c_str(),
                          IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                              IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    if (dir_wd_ >= 0) {
      if (parent_wd_ >= 0) {
        inotify_rm_watch(fd_, parent_wd_);
        parent_wd_ = -1;
      }
      if (logged_dir_missing_)
        LOG_INFO("%s%s appeared", prefix.c_str(), dir_.c_str());
      logged_dir_missing_ = false;
      return;
    }
    int err = errno;
    // The directory is missing: watch its parent for it, and look again
    // every second, since a file system mounted there raises no event.
    if (parent_wd_ < 0) {
      parent_wd_ = inotify_add_watch(fd_, dir_parent_.c_str(),
                                     IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
    }
    if (!logged_dir_missing_) {
      LOG_WARNING("%scannot watch %s: %s; looking for it every second%s",
                  prefix.c_str(), dir_.c_str(), strerror(err),
                  ch_->opts_.missing_dir_hint.c_str());
      logged_dir_missing_ = true;
    }
    ch_->retry_.StartIfIdle(kRetry);
  }

 private:
  void OnEvents() {
    alignas(struct inotify_event) char buf[4096];
    bool rewatch = false, reopen = false;
    for (;;) {
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (char* q = buf; q < buf + n;) {
        auto* e = reinterpret_cast<struct inotify_event*>(q);
        q += sizeof(struct inotify_event) + e->len;
        std::string name = e->len
                               ? std::string(e->name, strnlen(e->name, e->len))
                               : std::string();
        if (e->mask & IN_Q_OVERFLOW) {
          rewatch = reopen = true;
        } else if (e->wd == dir_wd_) {
          if (e->mask &
              (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
            if (e->mask & IN_IGNORED) dir_wd_ = -1;
            rewatch = true;
          } else if (name == name_) {
            // In order: a removal and a new file may come in one read.
            if (e->mask & (IN_DELETE | IN_MOVED_FROM)) ch_->OnRemoved();
            if (e->mask & (IN_CREATE | IN_MOVED_TO)) ch_->OnAppeared();
          }
        } else if (e->wd == parent_wd_) {
          if (e->mask & IN_IGNORED) {
            parent_wd_ = -1;
          } else if (name == dir_name_) {
            rewatch = reopen = true;
          }
        }
      }
    }
    if (rewatch) Rewatch();
    if (reopen && !ch_->is_open()) ch_->TryOpen();
  }

  ReopeningChannel* ch_;
  std::string dir_, dir_parent_, name_, dir_name_;
  int fd_ = -1;
  FdWatch watch_;
  int dir_wd_ = -1;     // watch on the file's directory
  int parent_wd_ = -1;  // watch on its parent while the directory is missing
  bool logged_dir_missing_ = false;
};

// ---- ReopeningChannel -------------------------------------------------------

ReopeningChannel::ReopeningChannel(Loop& loop, Options opts,
                                   std::function<void()> on_readable,
                                   std::function<void()> on_change)
    : loop_(loop),
      opts_(std::move(opts)),
      on_readable_(std::move(on_readable)),
      on_change_(std::move(on_change)),
      framer_(opts_.framing, opts_.read_buffer),
      buf_(opts_.read_buffer),
      watch_(loop, -1, FdWatch::Event::kRead, [this] { OnWatch(); }),
      retry_(loop, [this] { OnRetry(); }) {
  if (opts_.read_buffer == 0) FATAL("a channel needs a read buffer");
}

ReopeningChannel::~ReopeningChannel() {
  dir_watch_.reset();
  watch_.Reset(-1);
  if (fd_ >= 0) close(fd_);
}

Status ReopeningChannel::Start() {
  if (opts_.appearance == Appearance::kInotify) {
    dir_watch_ = std::make_unique<DirWatch>(this);
    Status s = dir_watch_->Start();
    if (!s.ok()) {
      dir_watch_.reset();
      return s;
    }
  }
  TryOpen();
  return Status::Ok();
}

bool ReopeningChannel::ready() const {
  return fd_ >= 0 || (dir_watch_ && dir_watch_->watching());
}

void ReopeningChannel::LogOpenFailure(int err) {
  const char* prefix = opts_.log_prefix.c_str();
  const char* path = opts_.path.c_str();
  if (err == EMFILE || err == ENFILE) {
    // Not the file's fault: the real reason, at every retry.
    LOG_ERROR(
        "%scannot open %s: %s (no file descriptor left); retrying "
        "every second",
        prefix, path, strerror(err));
    last_errno_ = err;
    return;
  }
  if (err == last_errno_) return;
  last_errno_ = err;
  if (opts_.appearance == Appearance::kInotify) {
    if (err == ENOENT) {
      LOG_INFO("%swaiting for %s to appear%s", prefix, path,
               opts_.missing_hint.c_str());
    } else {
      LOG_WARNING("%scannot open %s: %s; retrying every second", prefix, path,
                  strerror(err));
    }
    return;
  }
  LOG_WARNING("%scannot open %s: %s; retrying every second%s", prefix, path,
              strerror(err), opts_.missing_hint.c_str());
}

void ReopeningChannel::TryOpen() {
  int fd = open(opts_.path.c_str(), opts_.access | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    LogOpenFailure(err);
    // A missing file in a watched directory is announced by inotify;
    // anything else is looked at again in a second.
    if (!(err == ENOENT && dir_watch_ && dir_watch_->watching()))
      retry_.StartIfIdle(kRetry);
    return;
  }
  if (fd_ >= 0) {
    // inotify announced a file while one is open.
    struct stat a, b;
    if (fstat(fd_, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      close(fd);  // the file already open
      return;
    }
    Close("a new one replaced it", 0, false);
  }
  fd_ = fd;
  empty_wakeups_ = 0;
  read_nothing_ = got_data_ = false;
  framer_.Reset();
  watch_.Reset(fd_);
  if (!paused_) {
    Status s = watch_.Start();
    if (!s.ok()) {
      // Not a file the loop can wait on (a regular file, say): logged
      // once, as a failed open is.
      if (last_errno_ != kUnwatchable) {
        LOG_ERROR("%s%s: %s; retrying every second", opts_.log_prefix.c_str(),
                  opts_.path.c_str(), s.message().c_str());
        last_errno_ = kUnwatchable;
      }
      watch_.Reset(-1);
      close(fd_);
      fd_ = -1;
      retry_.StartIfIdle(kRetry);
      return;
    }
  }
  last_errno_ = 0;
  retry_.Stop();
  if (opts_.log_open_close)
    LOG_NOTICE("%sopened %s", opts_.log_prefix.c_str(), opts_.path.c_str());
  // Each upcall goes to whichever reader reads it first.
  std::vector<Opener> others = FindOtherOpeners(opts_.path);
  if (!others.empty()) {
    LOG_ERROR(
        "%s%s is also served by %s: each upcall goes to whichever "
        "reads it first",
        opts_.log_prefix.c_str(), opts_.path.c_str(),
        DescribeOpeners(others).c_str());
  }
  if (on_change_) on_change_();
}

void ReopeningChannel::Close(const std::string& why, int error, bool retry) {
  if (fd_ < 0) return;
  watch_.Reset(-1);
  close(fd_);
  fd_ = -1;
  framer_.Reset();
  empty_wakeups_ = 0;
  read_nothing_ = got_data_ = false;
  const char* prefix = opts_.log_prefix.c_str();
  const char* path = opts_.path.c_str();
  if (opts_.log_open_close) {
    LOG_NOTICE("%sclosed %s (%s)", prefix, path, why.c_str());
  } else if (error > 0) {
    LOG_ERROR("%sread %s: %s; reopening", prefix, path, why.c_str());
  } else if (error < 0) {
    LOG_ERROR("%s%s: %s; reopening", prefix, path, why.c_str());
  } else {
    LOG_INFO("%sclosed %s (%s)", prefix, path, why.c_str());
  }
  if (retry) retry_.StartIfIdle(kRetry);
  if (on_change_) on_change_();
}

ReopeningChannel::ReadResult ReopeningChannel::Read(Message* out) {
  while (fd_ >= 0) {
    ssize_t n = read(fd_, buf_.data(), buf_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {  // nothing pending, not even the rest of a request
      framer_.ReadZero();
      read_nothing_ = true;
      return ReadResult::kNone;
    }
    if (n < 0 && errno == EAGAIN) {
      read_nothing_ = true;
      return ReadResult::kNone;
    }
    if (n < 0) {
      int err = errno;  // EPIPE: the kernel removed the pipe
      Close(strerror(err), err, true);
      return ReadResult::kClosed;
    }
    got_data_ = true;
    if (framer_.Piece(std::string_view(buf_.data(), static_cast<size_t>(n)),
                      out))
      return ReadResult::kMessage;
  }
  return ReadResult::kClosed;
}

void ReopeningChannel::Pause() {
  paused_ = true;
  watch_.Stop();
}

void ReopeningChannel::Resume() {
  if (!paused_) return;
  paused_ = false;
  if (fd_ < 0) return;
  Status s = watch_.Start();
  if (!s.ok()) Close(s.message(), -1, true);
}

void ReopeningChannel::OnWatch() {
  // Only what this wake-up's reads found counts as "nothing", but data
  // read since the previous wake-up (from another file's, say) counts.
  read_nothing_ = false;
  on_readable_();
  if (fd_ < 0) return;  // closed meanwhile
  // Readable, yet nothing to read: a hang-up, or another reader took it.
  // Not if nothing was tried (the owner had no room), nor if the file was
  // drained since its previous wake-up.
  const bool empty = read_nothing_ && !got_data_;
  const bool data = got_data_;
  read_nothing_ = got_data_ = false;
  if (data) empty_wakeups_ = 0;
  if (!empty) return;
  struct pollfd p = {fd_, POLLIN, 0};
  if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLNVAL))) {
    Close("hang-up", -1, true);
  } else if (++empty_wakeups_ >= kMaxEmptyWakeups) {
    Close("readable, but nothing to read", -1, true);
  }
}

void ReopeningChannel::OnRetry() {
  if (dir_watch_ && !dir_watch_->watching()) dir_watch_->Rewatch();
  if (fd_ < 0) TryOpen();
}

void ReopeningChannel::OnAppeared() { TryOpen(); }

void ReopeningChannel::OnRemoved() { Close("removed", 0, false); }

}  // namespace nfsdh::loop
