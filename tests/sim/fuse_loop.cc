// FuseLoop: see fuse_loop.h.
#define FUSE_USE_VERSION 312

#include "tests/sim/fuse_loop.h"

#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace nfsdsim {

bool FuseLoop::Mount(const std::string& dir, const fuse_lowlevel_ops& ops,
                     size_t ops_size, void* userdata, const std::string& prog,
                     const std::string& opts,
                     const std::function<void()>& before_loop,
                     std::string* error) {
  auto fail = [&](const std::string& msg) {
    if (error) *error = msg;
    return false;
  };
  if (se_ != nullptr) return fail("already mounted");
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  if (fuse_opt_add_arg(&args, prog.c_str()) != 0 ||
      fuse_opt_add_arg(&args, "-o") != 0 ||
      fuse_opt_add_arg(&args, opts.c_str()) != 0) {
    fuse_opt_free_args(&args);
    return fail("out of memory");
  }
  fuse_session* se = fuse_session_new(&args, &ops, ops_size, userdata);
  fuse_opt_free_args(&args);
  if (se == nullptr) return fail("fuse_session_new failed");
  if (fuse_session_mount(se, dir.c_str()) != 0) {
    fuse_session_destroy(se);
    return fail("cannot mount FUSE on " + dir + " (see libfuse's message)");
  }
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    int e = errno;
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    return fail(std::string("eventfd: ") + strerror(e));
  }
  se_ = se;
  wake_fd_ = wake_fd;
  if (before_loop) before_loop();
  thread_ = std::thread([se, wake_fd] {
    fuse_buf buf;
    memset(&buf, 0, sizeof(buf));
    const int fd = fuse_session_fd(se);
    while (true) {
      pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[1].revents != 0) break;
      if (p[0].revents == 0) continue;
      int res = fuse_session_receive_buf(se, &buf);
      if (res == -EINTR || res == -EAGAIN) continue;
      if (res <= 0) break;  // -ENODEV: unmounted behind our back
      fuse_session_process_buf(se, &buf);
    }
    free(buf.mem);
  });
  return true;
}

void FuseLoop::Unmount(const std::function<void()>& after_stop) {
  if (se_ == nullptr) return;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  if (after_stop) after_stop();
  fuse_session_unmount(se_);
  fuse_session_destroy(se_);
  se_ = nullptr;
  close(wake_fd_);
  wake_fd_ = -1;
}

}  // namespace nfsdsim
