// Server: the control protocol (control-proto/nfsdh_ctl.x) served to
// helper-ctl on an AF_LOCAL stream socket, from the daemon's event loop
// (loop/loop.h).
//
// Rationale. libtirpc does the record marking and the XDR, but its svc_run()
// would own the process; instead every socket libtirpc owns (the listener and
// each connection it accepts) gets a loop::FdWatch, a readable one is handed
// to svc_getreq_common(), and after each such call the server re-reads
// svc_pollfd[] to learn which connections libtirpc opened or closed. Nothing a
// client does may hold up the upcall channels:
//  - Connections are in libtirpc's non-blocking record mode
//    (RPC_SVC_CONNMAXREC_SET): a partial record is kept and completed by
//    later reads, never waited for; a record longer than kMaxRequest closes
//    the connection.
//  - A reply is written only into a socket with room for it. On a full socket
//    buffer libtirpc would retry the write for up to two seconds, so a
//    connection is read (and so answered) only while its send buffer has
//    room for the largest reply (kMaxReply, which every procedure respects);
//    otherwise it waits until it is writable. One read makes at most one
//    reply.
//  - At most kMaxConnections connections: beyond that the listener is not
//    polled, and new connections wait in the listen backlog. A connection
//    with no request for kIdleTimeoutSeconds is closed.
//  - accept() is tried only while a file descriptor is free (libtirpc
//    would sleep and retry for ever on EMFILE).
// Every call is authenticated by the peer credentials of the connection
// (SO_PEERCRED): a uid other than 0 gets AUTH_ERROR/AUTH_TOOWEAK, and is
// logged once per connection.
//
// Loop affinity: the event loop's thread only. At most one Server may exist
// in a process, because libtirpc keeps its transports in globals.
#ifndef DAEMON_CONTROL_SERVER_H_
#define DAEMON_CONTROL_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "daemon/control/host.h"
#include "daemon/loop/loop.h"
#include "daemon/util/status.h"

struct svc_req;
struct __rpc_svcxprt;  // libtirpc's SVCXPRT; this header needs no libtirpc

namespace nfsdh::control {

struct Context;

class Server {
 public:
  static constexpr size_t kMaxConnections = 16;
  static constexpr size_t kMaxRequest = 8 * 1024;
  static constexpr size_t kMaxReply = 64 * 1024;
  static constexpr int kIdleTimeoutSeconds = 60;

  // `loop` and `host` must outlive the Server.
  Server(loop::Loop& loop, Host* host, std::string path);
  // Closes every connection and the listener, and removes the socket file
  // if it is still the one this Server created.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the socket's directory (0700) if needed and the socket (0600),
  // and starts serving. A socket file left by a daemon that is gone is
  // replaced; one on which a daemon still answers is an error, and so is
  // any other kind of file at `path`.
  Status Start();

  const std::string& path() const { return path_; }
  size_t connections() const { return conns_.size(); }

 private:
  struct Conn {
    std::unique_ptr<loop::FdWatch> read_watch;
    std::unique_ptr<loop::FdWatch> write_watch;  // while paused
    int64_t last_active = 0;  // monotonic seconds
    bool paused = false;      // waiting for room in the send buffer
    bool closing = false;
    bool refusal_logged = false;
  };

  Status RemoveStale();
  // Brings conns_ in line with the sockets libtirpc has registered.
  void Sync();
  void AddConn(int fd);
  void FreeEvents(Conn& c);
  // Makes libtirpc close connection `fd` (shutdown, then one more read).
  void Close(int fd, const char* why);
  bool HasRoomForReply(int fd) const;
  // Polls the listener only while a connection may be accepted.
  void UpdateListener();
  bool Allowed(int fd, Conn* c);

  void OnListen();
  void OnReadable(int fd);
  void OnWritable(int fd);
  void OnSweep();
  // libtirpc's dispatch callout for NFSDH_CTL_PROG version 1.
  static void Dispatch(struct svc_req* rq, struct __rpc_svcxprt* xprt);

  loop::Loop& loop_;
  std::string path_;
  std::unique_ptr<Context> ctx_;
  int listen_fd_ = -1;
  struct __rpc_svcxprt* listener_ = nullptr;
  std::unique_ptr<loop::FdWatch> listen_watch_;
  bool fd_shortage_logged_ = false;
  // After a file-descriptor shortage: the listener rests until it fires.
  loop::Timer resume_listen_;
  std::unique_ptr<loop::PeriodicTimer> sweep_;
  dev_t sock_dev_ = 0;
  ino_t sock_ino_ = 0;
  std::map<int, Conn> conns_;
};

}  // namespace nfsdh::control

#endif  // DAEMON_CONTROL_SERVER_H_
