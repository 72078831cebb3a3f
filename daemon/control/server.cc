#include "daemon/control/server.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "control-proto/ctl_proto.h"
// rpc_control(), after <rpc/rpc.h>, on which it depends.
#include <rpc/rpc_com.h>

#include "daemon/control/procedure.h"
#include "daemon/util/fs.h"
#include "daemon/util/log.h"

namespace nfsdh::control {
namespace {

// libtirpc calls the dispatch function without a user argument.
Server* g_server = nullptr;

// The send buffer asked for on each connection (the kernel may give less,
// up to net.core.wmem_max, and doubles it for its bookkeeping).
constexpr int kSendBuffer = 256 * 1024;
// What a reply of kMaxReply bytes may cost in the send buffer, with the
// kernel's per-buffer overhead.
constexpr size_t kReplyRoom = Server::kMaxReply + 16 * 1024;
// libtirpc's output buffer: a reply is written in pieces of this size.
constexpr u_int kSendSize = 64 * 1024;

int64_t MonotonicSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

bool FillAddress(const std::string& path, struct sockaddr_un* sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa->sun_path) return false;
  memcpy(sa->sun_path, path.c_str(), path.size() + 1);
  return true;
}

// The connection sockets libtirpc has registered (all but `listener`).
std::set<int> RegisteredFds(int listener) {
  std::set<int> fds;
  for (int i = 0; i < svc_max_pollfd; ++i) {
    int fd = svc_pollfd[i].fd;
    if (fd >= 0 && fd != listener) fds.insert(fd);
  }
  return fds;
}

}  // namespace

Server::Server(loop::Loop& loop, Host* host, std::string path)
    : loop_(loop),
      path_(std::move(path)),
      ctx_(std::make_unique<Context>()),
      resume_listen_(loop, [this] { UpdateListener(); }) {
  ctx_->host = host;
  ctx_->socket_path = path_;
  ctx_->idle_seconds = kIdleTimeoutSeconds;
  // Test hook, as NFSD_HELPER_TEST_CRASH: a shorter idle timeout, so that a
  // test sees connections and import sessions dropped without waiting a
  // minute.
  if (const char* v = getenv("NFSD_HELPER_TEST_CTL_IDLE")) {
    char* end = nullptr;
    long seconds = strtol(v, &end, 10);  // NOLINT(runtime/int): strtol's type
    if (end != v && *end == '\0' && seconds >= 1 &&
        seconds <= kIdleTimeoutSeconds) {
      ctx_->idle_seconds = static_cast<int>(seconds);
      LOG_WARNING("test hook: control idle timeout %d s", ctx_->idle_seconds);
    } else {
      LOG_WARNING("NFSD_HELPER_TEST_CTL_IDLE=%s not understood; ignored", v);
    }
  }
}

Server::~Server() {
  std::vector<int> fds;
  for (const auto& [fd, c] : conns_) fds.push_back(fd);
  for (int fd : fds) Close(fd, nullptr);
  listen_watch_.reset();
  sweep_.reset();
  // Not svc_unreg(): it would ask rpcbind, which was never told.
  if (listener_) {
    SVC_DESTROY(listener_);  // closes listen_fd_
  } else if (listen_fd_ >= 0) {
    close(listen_fd_);
  }
  struct stat st;
  if (sock_ino_ != 0 && lstat(path_.c_str(), &st) == 0 &&
      st.st_dev == sock_dev_ && st.st_ino == sock_ino_)
    unlink(path_.c_str());
  if (g_server == this) g_server = nullptr;
}

Status Server::RemoveStale() {
  struct stat st;
  if (lstat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("stat " + path_, errno);
  }
  if (!S_ISSOCK(st.st_mode))
    return Status::Invalid(path_ +
                           " exists and is not a socket; not "
                           "replacing it");
  struct sockaddr_un sa;
  FillAddress(path_, &sa);
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe < 0) return Status::FromErrno("socket", errno);
  int rc = connect(probe, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
  int err = errno;
  close(probe);
  // EAGAIN: a listener whose backlog is full, so alive.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
    return Status::Invalid("another nfsd-helper answers on " + path_ +
                           " (give each nfsd-helper its own --ctl-socket)");
  }
  if (err != ECONNREFUSED) return Status::FromErrno("connect " + path_, err);
  if (unlink(path_.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("remove the stale socket " + path_, errno);
  LOG_INFO("control: removed the stale socket %s (nobody answered on it)",
           path_.c_str());
  return Status::Ok();
}

Status Server::Start() {
  if (g_server != nullptr)
    return Status::Invalid("a control server is already running");
  struct sockaddr_un sa;
  if (!FillAddress(path_, &sa) || path_[0] != '/')
    return Status::Invalid("control socket path '" + path_ +
                           "': use an absolute path of at most " +
                           std::to_string(sizeof sa.sun_path - 1) + " bytes");
  Status s = EnsurePrivateDir(DirName(path_));
  if (s.ok()) s = RemoveStale();
  if (!s.ok()) return s;

  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return Status::FromErrno("socket", errno);
  if (bind(listen_fd_, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0)
    return Status::FromErrno("bind " + path_, errno);
  struct stat st;
  if (chmod(path_.c_str(), 0600) != 0 || lstat(path_.c_str(), &st) != 0) {
    int err = errno;
    unlink(path_.c_str());
    return Status::FromErrno("chmod 0600 " + path_, err);
  }
  sock_dev_ = st.st_dev;
  sock_ino_ = st.st_ino;
  if (listen(listen_fd_, static_cast<int>(kMaxConnections)) != 0)
    return Status::FromErrno("listen " + path_, errno);

  int maxrec = static_cast<int>(kMaxRequest);
  if (!rpc_control(RPC_SVC_CONNMAXREC_SET, &maxrec))
    return Status::Io("libtirpc refuses non-blocking record mode");
  listener_ = svc_vc_create(listen_fd_, kSendSize, kMaxRequest);
  if (listener_ == nullptr) return Status::Io("libtirpc cannot serve " + path_);
  if (!svc_reg(listener_, NFSDH_CTL_PROG, NFSDH_CTL_V1, Dispatch, nullptr))
    return Status::Io("libtirpc cannot register the control program");
  g_server = this;

  listen_watch_ = std::make_unique<loop::FdWatch>(
      loop_, listen_fd_, loop::FdWatch::Event::kRead, [this] { OnListen(); });
  sweep_ = std::make_unique<loop::PeriodicTimer>(
      loop_, std::chrono::seconds(std::max(1, ctx_->idle_seconds / 4)),
      [this] { OnSweep(); });
  UpdateListener();
  if (!listen_watch_->active())
    return Status::Io("cannot watch the control socket " + path_);
  LOG_INFO("control: serving helper-ctl on %s", path_.c_str());
  return Status::Ok();
}

void Server::UpdateListener() {
  if (!listen_watch_) return;
  bool want = conns_.size() < kMaxConnections && !resume_listen_.armed();
  if (!want) {
    listen_watch_->Stop();
    return;
  }
  if (listen_watch_->active()) return;
  // A listening socket can always be polled.
  Status s = listen_watch_->Start();
  if (!s.ok()) LOG_ERROR("control: %s", s.message().c_str());
}

void Server::OnListen() {
  // libtirpc retries accept() for ever on EMFILE; make sure it cannot fail.
  int spare = fcntl(listen_fd_, F_DUPFD_CLOEXEC, 0);
  if (spare < 0) {
    if (!fd_shortage_logged_) {
      LOG_WARNING(
          "control: no file descriptor left to accept a helper-ctl "
          "connection (%s); trying again every second",
          strerror(errno));
      fd_shortage_logged_ = true;
    }
    resume_listen_.Start(std::chrono::seconds(1));
    UpdateListener();
    return;
  }
  close(spare);
  fd_shortage_logged_ = false;
  svc_getreq_common(listen_fd_);  // accepts one connection
  Sync();
}

void Server::AddConn(int fd) {
  Conn& c = conns_[fd];
  c.last_active = MonotonicSeconds();
  fcntl(fd, F_SETFD, FD_CLOEXEC);  // libtirpc's accept() does not set it
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof kSendBuffer);
  c.read_watch = std::make_unique<loop::FdWatch>(
      loop_, fd, loop::FdWatch::Event::kRead, [this, fd] { OnReadable(fd); });
  c.write_watch = std::make_unique<loop::FdWatch>(
      loop_, fd, loop::FdWatch::Event::kWrite, [this, fd] { OnWritable(fd); });
  Status s = c.read_watch->Start();
  if (!s.ok()) LOG_ERROR("control: connection %d: %s", fd, s.message().c_str());
  LOG_DEBUG("control: connection %d accepted (%zu open)", fd, conns_.size());
}

void Server::FreeEvents(Conn& c) {
  c.read_watch.reset();
  c.write_watch.reset();
}

void Server::Sync() {
  std::set<int> live = RegisteredFds(listen_fd_);
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    LOG_DEBUG("control: connection %d closed", it->first);
    FreeEvents(it->second);
    it = conns_.erase(it);
  }
  std::vector<int> too_small;
  for (int fd : live) {
    if (conns_.count(fd)) continue;
    AddConn(fd);
    // Writable (EV_WRITE) means at most a quarter of the buffer in use; the
    // rest must hold a reply, or the connection could never be answered.
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
    if (static_cast<size_t>(sndbuf) / 4 * 3 < kReplyRoom)
      too_small.push_back(fd);
  }
  for (int fd : too_small)
    Close(fd,
          "its socket send buffer cannot hold a reply (raise "
          "net.core.wmem_max)");
  UpdateListener();
}

void Server::Close(int fd, const char* why) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  if (why) LOG_WARNING("control: closing connection %d: %s", fd, why);
  Conn& c = it->second;
  c.closing = true;
  // Our events go before libtirpc closes the descriptor.
  FreeEvents(c);
  // After a shutdown, with the unread input discarded, libtirpc's next read
  // sees end of file: it destroys the transport and closes the socket. A
  // request still decoded meanwhile is not served (Dispatch sees closing).
  shutdown(fd, SHUT_RDWR);
  char buf[4096];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  for (int i = 0; i < 4 && RegisteredFds(listen_fd_).count(fd); ++i)
    svc_getreq_common(fd);
  conns_.erase(fd);
  if (RegisteredFds(listen_fd_).count(fd))
    LOG_ERROR("control: libtirpc did not release connection %d", fd);
  UpdateListener();
}

bool Server::HasRoomForReply(int fd) const {
  int sndbuf = 0, queued = 0;
  socklen_t len = sizeof sndbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0) return true;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0) return true;
  return sndbuf - queued >= static_cast<int>(kReplyRoom);
}

void Server::OnWritable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  // Room again: read the next request.
  c.paused = false;
  c.write_watch->Stop();
  Status s = c.read_watch->Start();
  if (!s.ok()) LOG_ERROR("control: connection %d: %s", fd, s.message().c_str());
}

void Server::OnReadable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (!HasRoomForReply(fd)) {
    // The client does not read its replies: stop reading its requests until
    // it does. It is closed when it has been idle too long.
    LOG_DEBUG("control: connection %d does not read its replies; paused", fd);
    c.paused = true;
    c.read_watch->Stop();
    Status s = c.write_watch->Start();
    if (!s.ok())
      LOG_ERROR("control: connection %d: %s", fd, s.message().c_str());
    return;
  }
  c.last_active = MonotonicSeconds();
  svc_getreq_common(fd);  // reads, and answers at most one request
  Sync();
}

void Server::OnSweep() {
  int64_t now = MonotonicSeconds();
  std::vector<int> idle;
  for (const auto& [fd, c] : conns_)
    if (now - c.last_active > ctx_->idle_seconds) idle.push_back(fd);
  const std::string why =
      "no complete request for " + std::to_string(ctx_->idle_seconds) + " s";
  for (int fd : idle) Close(fd, why.c_str());
  // An import whose helper-ctl went away would otherwise hold what it
  // staged (up to 256 MiB) until the next import.
  DropIdleImport(*ctx_, now);
}

bool Server::Allowed(int fd, Conn* c) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    LOG_WARNING(
        "control: refused a request: cannot read the caller's "
        "credentials: %s",
        strerror(errno));
    return false;
  }
  if (cred.uid == 0) return true;
  if (c == nullptr || !c->refusal_logged) {
    LOG_WARNING(
        "control: refused a request from uid %u (pid %d): only root "
        "may use %s",
        static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid),
        path_.c_str());
    if (c) c->refusal_logged = true;
  }
  return false;
}

void Server::Dispatch(struct svc_req* rq, SVCXPRT* xprt) {
  Server* s = g_server;
  if (s == nullptr) {
    svcerr_systemerr(xprt);
    return;
  }
  int fd = xprt->xp_fd;
  auto it = s->conns_.find(fd);
  Conn* c = it == s->conns_.end() ? nullptr : &it->second;
  if (c && c->closing) return;  // nobody is reading any more
  if (!s->Allowed(fd, c)) {
    svcerr_auth(xprt, AUTH_TOOWEAK);
    return;
  }
  if (rq->rq_proc == CTL_NULL) {
    svc_sendreply(xprt, ctl_proto::XdrProc(xdr_void), nullptr);
    return;
  }
  const Procedure* p = FindProcedure(rq->rq_proc);
  if (p == nullptr) {
    svcerr_noproc(xprt);
    return;
  }
  LOG_DEBUG("control: %s on connection %d", p->name, fd);
  p->serve(*s->ctx_, xprt);
}

}  // namespace nfsdh::control
