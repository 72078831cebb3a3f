// FuseLoop: one mounted low-level FUSE session and the thread that serves it,
// shared by the simulators (SimKernel, CldPipe, CacheChannelSim).
//
// The loop is our own rather than fuse_session_loop(): one thread polls the
// session fd and an eventfd, so that Unmount() can stop it even while files
// stay open (then no FUSE request would arrive to wake a read blocked on
// /dev/fuse). It is single-threaded: the file system's callbacks run one at
// a time, on the loop thread.
//
// Thread affinity: Mount(), Unmount() and mounted() are not synchronized;
// the owner serializes them (each simulator holds its own mount mutex around
// them). session() may be used from any thread between a successful Mount()
// and the matching Unmount().
//
// Teardown order in Unmount(): wake the loop and join its thread (no
// callback runs after that), then run the owner's `after_stop` (typically
// under the owner's own mutex: drop poll handles and open-file state that
// nobody can release any more), then fuse_session_unmount() and
// fuse_session_destroy(), which close /dev/fuse (open files then fail with
// ENOTCONN) and detach the mount lazily, and last close the eventfd.
// Lock ordering: the owner's mount mutex, then its state mutex; Unmount()
// takes no lock itself, and `after_stop` runs with no lock of FuseLoop held.
#ifndef TESTS_SIM_FUSE_LOOP_H_
#define TESTS_SIM_FUSE_LOOP_H_

#include <cstddef>
#include <functional>
#include <string>
#include <thread>

struct fuse_lowlevel_ops;
struct fuse_session;

namespace nfsdsim {

class FuseLoop {
 public:
  FuseLoop() = default;
  FuseLoop(const FuseLoop&) = delete;
  FuseLoop& operator=(const FuseLoop&) = delete;
  // REQUIRES: !mounted() (the owner unmounts before it is destroyed).
  ~FuseLoop() = default;

  // Creates a session with `ops`/`userdata` (argv[0] `prog`, "-o" `opts`),
  // mounts it on `dir` and starts the loop thread. `before_loop` runs on the
  // caller's thread after the mount succeeded and before any request is
  // read: the place to set up state the callbacks (FUSE_INIT first) use.
  // On failure nothing stays mounted and `*error` (if set) says why.
  // REQUIRES: !mounted().
  bool Mount(const std::string& dir, const fuse_lowlevel_ops& ops,
             size_t ops_size, void* userdata, const std::string& prog,
             const std::string& opts, const std::function<void()>& before_loop,
             std::string* error);

  // Stops the loop, runs `after_stop` (if set), then unmounts and frees the
  // session (see the teardown order above). No-op if not mounted.
  void Unmount(const std::function<void()>& after_stop = nullptr);

  bool mounted() const { return se_ != nullptr; }
  // REQUIRES: mounted().
  fuse_session* session() const { return se_; }

 private:
  fuse_session* se_ = nullptr;
  int wake_fd_ = -1;  // eventfd: tells the loop thread to stop
  std::thread thread_;
};

}  // namespace nfsdsim

#endif  // TESTS_SIM_FUSE_LOOP_H_
