// The simulated cld pipe: see cld_pipe.h. Like SimKernel it uses the
// low-level libfuse API, for per-open-file state (a partly read upcall
// belongs to one open file, as filp->private_data does in rpc_pipefs),
// direct_io, nonseekable opens and poll handles.
#define FUSE_USE_VERSION 312

#include "tests/sim/sim_cld_pipe.h"

#include <fuse_lowlevel.h>
#include <linux/nfsd/cld.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <optional>
#include <utility>

namespace nfsdsim {
namespace {

namespace cld = nfsdfs::cld;

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;  // 1
constexpr fuse_ino_t kNfsdDirIno = 2;
constexpr char kNfsdDir[] = "nfsd";
constexpr char kPipeName[] = "cld";
// The directories never change; the pipe comes and goes, so its name and
// attributes are never cached.
constexpr double kDirTimeout = 3600.0;

// Offsets in struct cld_msg / cld_msg_v2 (both packed, host byte order).
constexpr size_t kStatusOff = offsetof(struct cld_msg_hdr, cm_status);
constexpr size_t kXidOff = offsetof(struct cld_msg_hdr, cm_xid);
constexpr size_t kUnionOff = offsetof(struct cld_msg_v2, cm_u);
constexpr size_t kPrincLenOff =
    kUnionOff + offsetof(struct cld_clntinfo, cc_princhash);
static_assert(kUnionOff == 8 && kPrincLenOff == 1034, "cld_msg_v2 layout");

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 60)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

}  // namespace

const char* CldOpsName(CldOps ops) {
  switch (ops) {
    case CldOps::kNone:
      return "none";
    case CldOps::kV0:
      return "cld v0 (old nfsdcld)";
    case CldOps::kV1:
      return "cld v1";
    case CldOps::kV2:
      return "cld v2";
  }
  return "?";
}

struct CldPipe::Upcall {
  enum class State { kQueued, kReading, kInUpcall, kDone };
  uint32_t xid = 0;
  uint8_t cmd = 0;
  std::string bytes;
  State state = State::kQueued;
  bool answered = false;  // a final downcall arrived
  int err = 0;            // the pipe failed it (-EAGAIN, -EPIPE, -ETIMEDOUT)
  int16_t status = 0;     // the downcall's cm_status
  uint8_t version = 0;    // the downcall's cm_version
  std::map<std::string, std::string> inprogress;
  std::shared_ptr<Pipe> pipe;  // where it is queued or being read
};

struct CldPipe::Pipe {
  uint64_t ino = 0;
  bool alive = true;
  int nreaders = 0;
  int nwriters = 0;
  std::deque<std::shared_ptr<Upcall>> queue;
  // rpc_pipe's queue_timeout: armed when an upcall is queued on an empty
  // queue while nobody reads; when it fires with still nobody reading, every
  // queued upcall fails with -ETIMEDOUT.
  std::optional<std::chrono::steady_clock::time_point> no_reader_deadline;
};

struct CldPipe::Handle {
  std::shared_ptr<Pipe> pipe;
  bool reader = false;
  bool writer = false;
  pid_t pid = 0;
  std::shared_ptr<Upcall> partial;  // filp->private_data
  size_t copied = 0;
  fuse_pollhandle* ph = nullptr;
};

// ---- FUSE callbacks ---------------------------------------------------------

struct CldFuseOps {
  static CldPipe* P(fuse_req_t req) {
    return static_cast<CldPipe*>(fuse_req_userdata(req));
  }

  static void FillAttr(fuse_ino_t ino, struct stat* st) {
    static const time_t kStartTime = time(nullptr);
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = geteuid();
    st->st_gid = getegid();
    st->st_atime = st->st_mtime = st->st_ctime = kStartTime;
    if (ino == kRootIno || ino == kNfsdDirIno) {
      st->st_mode = S_IFDIR | 0755;
      st->st_nlink = 2;
    } else {
      // rpc_pipefs makes its pipes S_IFIFO with its own file operations; a
      // FUSE file of that type would be a kernel FIFO, never reaching us, so
      // the pipe is a regular file here. No tracker looks at the type.
      st->st_mode = S_IFREG | 0600;
      st->st_nlink = 1;
    }
  }

  static void ReplyEntry(fuse_req_t req, fuse_ino_t ino) {
    fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = ino;
    const bool dir = ino == kRootIno || ino == kNfsdDirIno;
    e.attr_timeout = dir ? kDirTimeout : 0.0;
    e.entry_timeout = dir ? kDirTimeout : 0.0;
    FillAttr(ino, &e.attr);
    fuse_reply_entry(req, &e);
  }

  static void Init(void* userdata, fuse_conn_info* /*conn*/) {
    static_cast<CldPipe*>(userdata)->OnInit();
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent == kRootIno && strcmp(name, kNfsdDir) == 0) {
      ReplyEntry(req, kNfsdDirIno);
      return;
    }
    if (parent == kNfsdDirIno && strcmp(name, kPipeName) == 0) {
      uint64_t ino = P(req)->CurrentPipeIno();
      if (ino != 0) {
        ReplyEntry(req, ino);
        return;
      }
    }
    fuse_reply_err(req, ENOENT);
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    // A removed pipe keeps its attributes while files are open on it.
    if (ino != kRootIno && ino != kNfsdDirIno && !P(req)->PipeInoKnown(ino)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    struct stat st;
    FillAttr(ino, &st);
    fuse_reply_attr(req, &st, ino < 3 ? kDirTimeout : 0.0);
  }

  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* /*attr*/,
                      int to_set, fuse_file_info* fi) {
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
      fuse_reply_err(req, EPERM);
      return;
    }
    GetAttr(req, ino, fi);
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* /*fi*/) {
    if (ino != kRootIno && ino != kNfsdDirIno) {
      fuse_reply_err(req, ENOTDIR);
      return;
    }
    std::vector<std::pair<std::string, fuse_ino_t>> entries = {
        {".", ino}, {"..", kRootIno}};
    if (ino == kRootIno) {
      entries.emplace_back(kNfsdDir, kNfsdDirIno);
    } else if (uint64_t p = P(req)->CurrentPipeIno(); p != 0) {
      entries.emplace_back(kPipeName, p);
    }
    // Entry i has the cookie i + 1; a short buffer gets fewer entries.
    std::string buf;
    for (size_t i = static_cast<size_t>(std::max<off_t>(off, 0));
         i < entries.size(); ++i) {
      struct stat st;
      FillAttr(entries[i].second, &st);
      const char* name = entries[i].first.c_str();
      size_t len = fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
      if (buf.size() + len > size) break;
      size_t old = buf.size();
      buf.resize(old + len);
      fuse_add_direntry(req, buf.data() + old, len, name, &st,
                        static_cast<off_t>(i + 1));
    }
    fuse_reply_buf(req, buf.data(), buf.size());
  }

  static void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name,
                    mode_t mode, dev_t /*rdev*/) {
    if (parent != kNfsdDirIno || strcmp(name, kPipeName) != 0 ||
        !S_ISREG(mode)) {
      fuse_reply_err(req, EPERM);
      return;
    }
    uint64_t ino = 0;
    int err = P(req)->OnMknod(&ino);
    if (err != 0) {
      fuse_reply_err(req, -err);
    } else {
      ReplyEntry(req, ino);
    }
  }

  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != kNfsdDirIno || strcmp(name, kPipeName) != 0) {
      fuse_reply_err(req, EPERM);
      return;
    }
    fuse_reply_err(req, -P(req)->OnUnlink());
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (ino == kRootIno || ino == kNfsdDirIno) {
      fuse_reply_err(req, EISDIR);
      return;
    }
    // As for the four nfsdfs files (sim_kernel.cc): every read()/write()
    // reaches us unchanged, no file position, no FLUSH on close().
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fi->keep_cache = 0;
    fi->noflush = 1;
    uint64_t fh = 0;
    int err = P(req)->OnOpen(ino, fi->flags, fuse_req_ctx(req)->pid, &fh);
    if (err != 0) {
      fuse_reply_err(req, -err);
      return;
    }
    fi->fh = fh;
    if (fuse_reply_open(req, fi) != 0) P(req)->OnRelease(fh);
  }

  static void Read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size,
                   off_t /*off*/, fuse_file_info* fi) {
    std::string data;
    int err = P(req)->OnRead(fi->fh, size, &data);
    if (err != 0) {
      fuse_reply_err(req, -err);
    } else {
      fuse_reply_buf(req, data.data(), data.size());
    }
  }

  static void Write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf,
                    size_t size, off_t /*off*/, fuse_file_info* fi) {
    int err = P(req)->OnWrite(fi->fh, std::string_view(buf, size));
    if (err != 0) {
      fuse_reply_err(req, -err);
    } else {
      fuse_reply_write(req, size);
    }
  }

  static void Poll(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi,
                   fuse_pollhandle* ph) {
    fuse_reply_poll(req, P(req)->OnPoll(fi->fh, ph));
  }

  static void Release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
    P(req)->OnRelease(fi->fh);
    fuse_reply_err(req, 0);
  }

  static fuse_lowlevel_ops Make() {
    fuse_lowlevel_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.init = Init;
    ops.lookup = Lookup;
    ops.getattr = GetAttr;
    ops.setattr = SetAttr;
    ops.readdir = ReadDir;
    ops.mknod = Mknod;
    ops.unlink = Unlink;
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.poll = Poll;
    ops.release = Release;
    return ops;
  }
};

// ---- Construction and mounting ----------------------------------------------

CldPipe::CldPipe(CldPipeOptions options) : options_(std::move(options)) {
  if (options_.kernel_version < 1) options_.kernel_version = 1;
  if (options_.kernel_version > 2) options_.kernel_version = 2;
}

CldPipe::~CldPipe() { Unmount(); }

bool CldPipe::Mount(const std::string& dir, std::string* error) {
  auto fail = [&](const std::string& msg) {
    if (error) *error = msg;
    return false;
  };
  std::lock_guard<std::mutex> mlk(mount_mu_);
  if (fuse_.mounted()) return fail("already mounted on " + mount_dir());
  static const fuse_lowlevel_ops kOps = CldFuseOps::Make();
  std::string opts = "default_permissions,fsname=rpc_pipefs-sim,subtype=cld";
  if (geteuid() == 0) opts += ",allow_other";
  auto before_loop = [&] {
    std::lock_guard<std::mutex> lk(mu_);
    mount_dir_ = dir;
    init_done_ = false;
  };
  if (!fuse_.Mount(dir, kOps, sizeof(kOps), this, "cld-sim", opts, before_loop,
                   error)) {
    return false;
  }
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return init_done_; })) {
    mount_dir_.clear();
    lk.unlock();
    fuse_.Unmount();
    return fail("FUSE_INIT did not arrive within 10 s");
  }
  return true;
}

void CldPipe::OnInit() {
  std::lock_guard<std::mutex> lk(mu_);
  init_done_ = true;
  cv_.notify_all();
}

void CldPipe::Unmount() {
  if (PipeExists()) RemovePipe();
  std::lock_guard<std::mutex> mlk(mount_mu_);
  fuse_.Unmount([this] {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [fh, h] : handles_) {
      if (h->ph) fuse_pollhandle_destroy(h->ph);
    }
    handles_.clear();
    for (auto& [xid, u] : inflight_) {
      if (u->state != Upcall::State::kDone) FailLocked(*u, -EPIPE);
    }
    pipe_.reset();
    mount_dir_.clear();
    cv_.notify_all();
  });
}

std::string CldPipe::mount_dir() const {
  std::lock_guard<std::mutex> lk(mu_);
  return mount_dir_;
}

std::string CldPipe::PipePath() const {
  return mount_dir() + "/" + kNfsdDir + "/" + kPipeName;
}

bool CldPipe::PipeExists() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pipe_ != nullptr;
}

// ---- Logging
// ------------------------------------------------------------------

void CldPipe::LogLocked(std::string line) {
  if (options_.log) log_queue_.push_back(std::move(line));
}

void CldPipe::FlushLog(std::unique_lock<std::mutex>& lk) {
  if (log_queue_.empty()) return;
  std::vector<std::string> batch;
  batch.swap(log_queue_);
  lk.unlock();
  for (const auto& l : batch) options_.log(l);
  lk.lock();
}

void CldPipe::Log(std::string line) {
  if (options_.log) options_.log(line);
}

// ---- Pipe creation and removal
// --------------------------------------------------

bool CldPipe::CreatePipe() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    allow_mknod_ = true;
  }
  // Through the VFS, so that inotify watchers of nfsd/ see IN_CREATE.
  int rc = mknod(PipePath().c_str(), S_IFREG | 0600, 0);
  int e = errno;
  {
    std::lock_guard<std::mutex> lk(mu_);
    allow_mknod_ = false;
  }
  if (rc != 0) {
    Log(std::string("cannot create the pipe: ") + strerror(e));
    return false;
  }
  Log("pipe nfsd/cld created");
  return true;
}

void CldPipe::RemovePipe() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    allow_unlink_ = true;
  }
  int rc = unlink(PipePath().c_str());
  int e = errno;
  std::unique_lock<std::mutex> lk(mu_);
  allow_unlink_ = false;
  if (rc != 0 && pipe_) {
    // The mount is gone or broken: remove it without the VFS.
    LogLocked(std::string("unlink of the pipe failed: ") + strerror(e));
    lk.unlock();
    OnUnlink();
    lk.lock();
  }
  FlushLog(lk);
}

int CldPipe::OnMknod(uint64_t* ino) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!allow_mknod_) return -EPERM;  // only nfsd makes pipes
  if (pipe_) return -EEXIST;
  pipe_ = std::make_shared<Pipe>();
  pipe_->ino = next_ino_++;
  pipes_by_ino_[pipe_->ino] = pipe_;
  stats_.pipes_created++;
  *ino = pipe_->ino;
  cv_.notify_all();
  return 0;
}

int CldPipe::OnUnlink() {
  std::unique_lock<std::mutex> lk(mu_);
  if (!pipe_) return -ENOENT;
  if (!allow_unlink_) return -EPERM;
  // rpc_close_pipes: queued and partly read upcalls fail with -EPIPE; one
  // read in full stays in flight (nobody will answer it).
  Pipe& p = *pipe_;
  p.alive = false;
  p.nreaders = 0;
  p.nwriters = 0;
  p.no_reader_deadline.reset();
  std::vector<std::shared_ptr<Upcall>> victims(p.queue.begin(), p.queue.end());
  p.queue.clear();
  for (auto& [fh, h] : handles_) {
    if (h->pipe == pipe_ && h->partial) {
      victims.push_back(h->partial);
      h->partial.reset();
    }
  }
  for (auto& u : victims) {
    if (u->state != Upcall::State::kDone) {
      FailLocked(*u, -EPIPE);
      stats_.failed_epipe++;
    }
  }
  NotifyPollLocked();  // POLLERR|POLLHUP now
  pipe_.reset();
  LogLocked("pipe nfsd/cld removed, " + std::to_string(victims.size()) +
            " upcall(s) failed with EPIPE");
  cv_.notify_all();
  FlushLog(lk);
  return 0;
}

uint64_t CldPipe::CurrentPipeIno() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pipe_ ? pipe_->ino : 0;
}

bool CldPipe::PipeInoKnown(uint64_t ino) const {
  std::lock_guard<std::mutex> lk(mu_);
  return pipes_by_ino_.count(ino) != 0;
}

// ---- File operations
// --------------------------------------------------------------

int CldPipe::OnOpen(uint64_t ino, int flags, pid_t pid, uint64_t* fh) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = pipes_by_ino_.find(ino);
  if (it == pipes_by_ino_.end() || !it->second->alive) return -ENXIO;
  auto h = std::make_unique<Handle>();
  h->pipe = it->second;
  int acc = flags & O_ACCMODE;
  h->reader = acc != O_WRONLY;
  h->writer = acc != O_RDONLY;
  h->pid = pid;
  if (h->reader) h->pipe->nreaders++;
  if (h->writer) h->pipe->nwriters++;
  *fh = next_fh_++;
  handles_[*fh] = std::move(h);
  LogLocked("open nfsd/cld by pid " + std::to_string(pid));
  cv_.notify_all();
  FlushLog(lk);
  return 0;
}

int CldPipe::OnRead(uint64_t fh, size_t size, std::string* out) {
  std::unique_lock<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return -EBADF;
  Handle& h = *hit->second;
  if (!h.pipe->alive) return -EPIPE;
  if (!h.partial) {
    if (h.pipe->queue.empty()) return 0;  // nothing queued: 0 bytes
    h.partial = h.pipe->queue.front();
    h.pipe->queue.pop_front();
    h.copied = 0;
    h.partial->state = Upcall::State::kReading;
    stats_.reads++;
    LogLocked(std::string("read ") + cld::CommandName(h.partial->cmd) +
              " xid " + std::to_string(h.partial->xid));
  }
  Upcall& u = *h.partial;
  size_t n = std::min(size, u.bytes.size() - h.copied);
  out->assign(u.bytes, h.copied, n);
  h.copied += n;
  if (h.copied == u.bytes.size()) {
    // Read in full: the pipe forgets it; only its downcall completes it.
    if (u.state == Upcall::State::kReading) u.state = Upcall::State::kInUpcall;
    h.partial.reset();
  }
  cv_.notify_all();
  FlushLog(lk);
  return 0;
}

int CldPipe::OnWrite(uint64_t fh, std::string_view data) {
  std::unique_lock<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return -EBADF;
  if (!hit->second->pipe->alive) return -EPIPE;
  auto reject = [&](int err, const std::string& why) {
    stats_.rejected_writes++;
    LogLocked("downcall rejected (" + std::string(strerror(-err)) +
              "): " + why);
    cv_.notify_all();
    FlushLog(lk);
    return err;
  };
  // cld_pipe_downcall.
  const size_t msglen = MsgLenLocked();
  if (data.size() != msglen) {
    return reject(-EINVAL, "downcall of " + std::to_string(data.size()) +
                               " bytes, expected " + std::to_string(msglen));
  }
  uint32_t xid;
  int16_t status;
  memcpy(&xid, data.data() + kXidOff, sizeof xid);
  memcpy(&status, data.data() + kStatusOff, sizeof status);
  auto it = inflight_.find(xid);
  if (it == inflight_.end()) {
    return reject(-EINVAL, "no upcall with xid " + std::to_string(xid));
  }
  std::shared_ptr<Upcall> u = it->second;
  if (status == -EINPROGRESS) {
    // __cld_pipe_inprogress_downcall: one client of the reclaim set.
    if (static_cast<uint8_t>(data[1]) !=
        static_cast<uint8_t>(cld::Command::kGraceStart)) {
      return reject(-EFAULT, "-EINPROGRESS downcall of command " +
                                 std::to_string(static_cast<uint8_t>(data[1])));
    }
    uint16_t namelen;
    memcpy(&namelen, data.data() + kUnionOff, sizeof namelen);
    if (namelen == 0) return reject(-EINVAL, "empty client name");
    // 6.1 copies namelen bytes whatever they are; later kernels refuse
    // more than the array holds (CVE-2024-47692), and so do we.
    if (namelen > NFS4_OPAQUE_LIMIT) {
      return reject(-EINVAL, "client name length " + std::to_string(namelen));
    }
    std::string name(data.substr(kUnionOff + 2, namelen));
    std::string hash;
    if (msg_version_ >= 2) {
      uint8_t plen = static_cast<uint8_t>(data[kPrincLenOff]);
      if (plen > SHA256_DIGEST_SIZE) {
        return reject(-EINVAL, "principal hash length " + std::to_string(plen));
      }
      hash = std::string(data.substr(kPrincLenOff + 1, plen));
    }
    u->inprogress[name] = hash;
    stats_.inprogress++;
    LogLocked("reclaim record \"" + Printable(name) + "\"" +
              (hash.empty() ? "" : " with principal hash"));
    FlushLog(lk);
    return 0;
  }
  inflight_.erase(it);
  if (u->state == Upcall::State::kQueued && u->pipe) {
    auto& q = u->pipe->queue;
    q.erase(std::remove(q.begin(), q.end(), u), q.end());
  }
  u->answered = true;
  u->status = status;
  u->version = static_cast<uint8_t>(data[kUnionOff]);
  u->state = Upcall::State::kDone;
  stats_.downcalls++;
  LogLocked(std::string("downcall ") + cld::CommandName(u->cmd) + " xid " +
            std::to_string(xid) + " status " + std::to_string(status));
  cv_.notify_all();
  FlushLog(lk);
  return 0;
}

unsigned CldPipe::OnPoll(uint64_t fh, void* pollhandle) {
  auto* ph = static_cast<fuse_pollhandle*>(pollhandle);
  std::lock_guard<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) {
    if (ph) fuse_pollhandle_destroy(ph);
    return POLLERR;
  }
  Handle& h = *hit->second;
  unsigned mask = POLLOUT | POLLWRNORM;
  if (!h.pipe->alive) {
    mask |= POLLERR | POLLHUP;
  } else if (h.partial || !h.pipe->queue.empty()) {
    mask |= POLLIN | POLLRDNORM;
  }
  if (ph) {
    if (h.ph) fuse_pollhandle_destroy(h.ph);
    h.ph = ph;
  }
  return mask;
}

void CldPipe::NotifyPollLocked() {
  for (auto& [fh, h] : handles_) {
    if (h->ph == nullptr) continue;
    fuse_lowlevel_notify_poll(h->ph);
    fuse_pollhandle_destroy(h->ph);
    h->ph = nullptr;
  }
}

void CldPipe::OnRelease(uint64_t fh) {
  std::unique_lock<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return;
  Handle& h = *hit->second;
  Pipe& p = *h.pipe;
  int again = 0;
  if (p.alive) {
    // rpc_pipe_release: a partly read upcall fails with -EAGAIN (the kernel
    // sends it again); when the last reader goes, so do the queued ones,
    // which are sent again at once and wait for the next reader.
    if (h.partial && h.partial->state != Upcall::State::kDone) {
      FailLocked(*h.partial, -EAGAIN);
      ++again;
    }
    if (h.writer) p.nwriters--;
    if (h.reader && --p.nreaders == 0) {
      std::deque<std::shared_ptr<Upcall>> q;
      q.swap(p.queue);
      for (auto& u : q) {
        FailLocked(*u, -EAGAIN);
        ++again;
      }
    }
  }
  stats_.resent += again;
  LogLocked("release nfsd/cld of pid " + std::to_string(h.pid) + ", " +
            std::to_string(again) + " upcall(s) to send again");
  if (h.ph) fuse_pollhandle_destroy(h.ph);
  handles_.erase(hit);
  cv_.notify_all();
  FlushLog(lk);
}

// ---- Upcalls
// --------------------------------------------------------------------

size_t CldPipe::MsgLenLocked() const {
  return msg_version_ >= 2 ? sizeof(struct cld_msg_v2) : sizeof(struct cld_msg);
}

void CldPipe::FailLocked(Upcall& u, int err) {
  if (u.state == Upcall::State::kDone) return;
  if (u.state == Upcall::State::kQueued && u.pipe) {
    auto& q = u.pipe->queue;
    q.erase(std::remove_if(q.begin(), q.end(),
                           [&](const auto& x) { return x.get() == &u; }),
            q.end());
  }
  u.err = err;
  u.state = Upcall::State::kDone;
  cv_.notify_all();
}

CldCallResult CldPipe::DoUpcall(nfsdfs::cld::Message m,
                                std::map<std::string, std::string>* inprog) {
  std::unique_lock<std::mutex> lk(mu_);
  CldCallResult res;
  res.sent = true;
  if (!pipe_) {
    res.status = -EPIPE;
    return res;
  }
  // alloc_cld_upcall: a free xid.
  while (inflight_.count(next_xid_)) ++next_xid_;
  auto u = std::make_shared<Upcall>();
  u->xid = next_xid_++;
  u->cmd = m.cmd;
  m.xid = u->xid;
  m.vers = static_cast<uint8_t>(msg_version_);
  u->bytes = cld::Encode(m);
  inflight_[u->xid] = u;
  LogLocked(std::string("upcall ") + cld::CommandName(m.cmd) + " xid " +
            std::to_string(u->xid) +
            (m.name.empty() ? "" : " \"" + Printable(m.name) + "\""));
  for (;;) {
    // rpc_queue_upcall (the pipe waits for an opener: RPC_PIPE_WAIT_FOR_OPEN).
    if (!pipe_) {
      u->err = -EPIPE;
      break;
    }
    std::shared_ptr<Pipe> p = pipe_;
    if (p->nreaders == 0 && p->queue.empty()) {
      p->no_reader_deadline = Clock::now() + options_.no_reader_timeout;
    }
    u->state = Upcall::State::kQueued;
    u->err = 0;
    u->pipe = p;
    p->queue.push_back(u);
    stats_.upcalls++;
    NotifyPollLocked();
    cv_.notify_all();
    FlushLog(lk);
    // wait_for_completion, bounded here.
    const auto deadline = Clock::now() + options_.upcall_timeout;
    while (u->state != Upcall::State::kDone) {
      auto wake = deadline;
      if (p->no_reader_deadline) wake = std::min(wake, *p->no_reader_deadline);
      cv_.wait_until(lk, wake);
      const auto now = Clock::now();
      if (p->no_reader_deadline && now >= *p->no_reader_deadline) {
        // rpc_timeout_upcall_queue.
        p->no_reader_deadline.reset();
        if (p->nreaders == 0) {
          std::deque<std::shared_ptr<Upcall>> q;
          q.swap(p->queue);
          for (auto& x : q) {
            FailLocked(*x, -ETIMEDOUT);
            stats_.failed_etimedout++;
          }
          LogLocked("nobody opened the pipe: " + std::to_string(q.size()) +
                    " upcall(s) failed with ETIMEDOUT");
        }
      }
      if (u->state != Upcall::State::kDone && now >= deadline) {
        FailLocked(*u, 0);
        res.timed_out = true;
        stats_.driver_timeouts++;
        LogLocked(std::string("no downcall for ") + cld::CommandName(m.cmd) +
                  " xid " + std::to_string(u->xid) + " within " +
                  std::to_string(options_.upcall_timeout.count()) + " ms");
      }
    }
    if (!res.timed_out && !u->answered && u->err == -EAGAIN) continue;
    break;
  }
  inflight_.erase(u->xid);
  if (inprog) *inprog = u->inprogress;
  if (res.timed_out) {
    res.status = kTimedOutStatus;
  } else if (u->answered) {
    res.status = u->status;
    res.version = u->version;
  } else {
    res.status = u->err;
  }
  FlushLog(lk);
  return res;
}

CldCallResult CldPipe::RawUpcall(nfsdfs::cld::Message m,
                                 std::map<std::string, std::string>* inprog) {
  return DoUpcall(std::move(m), inprog);
}

// ---- The driver
// -----------------------------------------------------------------

bool CldPipe::WaitForReaderOrWriter(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    return pipe_ && (pipe_->nreaders > 0 || pipe_->nwriters > 0);
  });
}

bool CldPipe::WaitForOpen(std::chrono::milliseconds timeout) {
  return WaitForReaderOrWriter(timeout);
}

bool CldPipe::WaitForClosed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    return !pipe_ || (pipe_->nreaders == 0 && pipe_->nwriters == 0);
  });
}

CldStartResult CldPipe::StartNfsd(int64_t boot_time) {
  bool running;
  {
    std::lock_guard<std::mutex> lk(mu_);
    running = pipe_ != nullptr || in_grace_ || ops_ != CldOps::kNone;
  }
  if (running) StopNfsd();
  {
    std::lock_guard<std::mutex> lk(mu_);
    // nfs4_state_start_net: grace starts, then client tracking.
    in_grace_ = true;
    grace_ended_ = false;
    boot_time_ = boot_time;
    clients_.clear();
    reclaim_.clear();
    reclaim_completes_ = 0;
    ops_ = CldOps::kV1;  // nfsd4_cld_tracking_ops until GetVersion says more
    msg_version_ = 1;
  }
  CldStartResult r;
  auto none = [&](const std::string& why) {
    std::lock_guard<std::mutex> lk(mu_);
    ops_ = CldOps::kNone;
    LogLocked("nfsd: Unable to initialize client recovery tracking: " + why);
  };
  if (!CreatePipe()) {
    none("cannot create the pipe");
    return r;
  }
  if (!WaitForReaderOrWriter(options_.open_wait)) {
    RemovePipe();
    r.grace_start.status = -ETIMEDOUT;
    none("nobody opened the pipe (-110)");
    Log("nfsd: starting grace period without client tracking");
    return r;
  }
  nfsdfs::cld::Message gv;
  gv.cmd = static_cast<uint8_t>(cld::Command::kGetVersion);
  r.get_version = DoUpcall(gv, nullptr);
  if (r.get_version.timed_out) return r;
  if (r.get_version.status == 0) {
    int v = std::clamp<int>(r.get_version.version, 1, options_.kernel_version);
    std::lock_guard<std::mutex> lk(mu_);
    msg_version_ = v;
    ops_ = v == 2 ? CldOps::kV2 : CldOps::kV1;
  }
  nfsdfs::cld::Message gs;
  gs.cmd = static_cast<uint8_t>(cld::Command::kGraceStart);
  std::map<std::string, std::string> set;
  r.grace_start = DoUpcall(gs, &set);
  if (r.grace_start.timed_out) return r;
  if (r.grace_start.status != 0) {
    // nfsd4_cld_tracking_init failed: the set is dropped and the pipe
    // removed; unless it was -ETIMEDOUT, the old nfsdcld operations are
    // tried, which only make the pipe.
    RemovePipe();
    if (r.grace_start.status == -ETIMEDOUT) {
      none("GraceStart timed out");
      return r;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ops_ = CldOps::kV0;
      msg_version_ = 1;
    }
    if (!CreatePipe()) {
      none("cannot create the pipe");
      return r;
    }
    r.ops = CldOps::kV0;
    Log("nfsd: Using old nfsdcld client tracking operations");
    return r;
  }
  bool skip;
  {
    std::lock_guard<std::mutex> lk(mu_);
    reclaim_ = set;
    r.ops = ops_;
    r.reclaim = set;
    skip = options_.early_grace_end && set.empty();
  }
  Log(std::string("nfsd: Using nfsdcld client tracking operations (") +
      CldOpsName(r.ops) + "), " + std::to_string(set.size()) +
      " client(s) may reclaim");
  if (skip) {
    // nfs4_state_start_net: "no clients to reclaim, skipping NFSv4 grace".
    r.grace_skipped = true;
    r.grace_done = GraceDone();
  }
  return r;
}

void CldPipe::StopNfsd() {
  if (PipeExists()) RemovePipe();
  std::unique_lock<std::mutex> lk(mu_);
  in_grace_ = false;
  grace_ended_ = true;
  ops_ = CldOps::kNone;
  msg_version_ = 1;
  clients_.clear();
  reclaim_.clear();
  reclaim_completes_ = 0;
  LogLocked("nfsd stopped");
  FlushLog(lk);
}

void CldPipe::SetKernelVersion(int version) {
  std::lock_guard<std::mutex> lk(mu_);
  options_.kernel_version = std::clamp(version, 1, 2);
}

CldStartResult CldPipe::RestartNfsd(int64_t boot_time) {
  StopNfsd();
  return StartNfsd(boot_time);
}

CldCallResult CldPipe::CreateLocked(std::unique_lock<std::mutex>& lk,
                                    const std::string& client,
                                    std::string_view princhash) {
  CldCallResult r;
  if (ops_ == CldOps::kNone) return r;
  if (clients_[client].stable) return r;  // already on stable storage
  nfsdfs::cld::Message m;
  m.cmd = static_cast<uint8_t>(cld::Command::kCreate);
  m.name = client;
  if (msg_version_ >= 2) m.princhash = std::string(princhash);
  lk.unlock();
  r = DoUpcall(m, nullptr);
  lk.lock();
  // The kernel marks the client stable whenever a downcall came back.
  if (!r.timed_out && r.status != -EPIPE && r.status != -ETIMEDOUT &&
      r.status != -EAGAIN) {
    clients_[client].stable = true;
  }
  return r;
}

CldCallResult CldPipe::Create(std::string_view client,
                              std::string_view princhash) {
  std::unique_lock<std::mutex> lk(mu_);
  return CreateLocked(lk, std::string(client), princhash);
}

CldCallResult CldPipe::ReclaimComplete(std::string_view client,
                                       std::string_view princhash) {
  std::unique_lock<std::mutex> lk(mu_);
  const std::string id(client);
  if (clients_[id].reclaim_complete) return {};  // NFS4ERR_COMPLETE_ALREADY
  clients_[id].reclaim_complete = true;
  CldCallResult r = CreateLocked(lk, id, princhash);
  // inc_reclaim_complete.
  bool end = false;
  if (options_.early_grace_end && !grace_ended_ &&
      (ops_ == CldOps::kV1 || ops_ == CldOps::kV2) && reclaim_.count(id)) {
    end = ++reclaim_completes_ == static_cast<int>(reclaim_.size());
  }
  lk.unlock();
  if (end) {
    Log("nfsd: all clients done reclaiming, ending NFSv4 grace period");
    GraceDone();
  }
  return r;
}

CldCallResult CldPipe::Expire(std::string_view client) {
  std::unique_lock<std::mutex> lk(mu_);
  const std::string id(client);
  CldCallResult r;
  auto it = clients_.find(id);
  if (it != clients_.end() && it->second.stable && ops_ != CldOps::kNone) {
    nfsdfs::cld::Message m;
    m.cmd = static_cast<uint8_t>(cld::Command::kRemove);
    m.name = id;
    lk.unlock();
    r = DoUpcall(m, nullptr);
    lk.lock();
  }
  clients_.erase(id);  // the nfs4_client is destroyed
  return r;
}

ReclaimResult CldPipe::Reclaim(std::string_view client,
                               std::string_view princhash) {
  std::unique_lock<std::mutex> lk(mu_);
  const std::string id(client);
  if (!in_grace_) return ReclaimResult::kNoGrace;
  ClientState& c = clients_[id];
  // nfs4_check_open_reclaim.
  if (c.reclaim_complete) return ReclaimResult::kNoGrace;
  switch (ops_) {
    case CldOps::kNone:
      return ReclaimResult::kReclaimBad;  // record check: -EOPNOTSUPP
    case CldOps::kV1:
    case CldOps::kV2: {
      if (c.stable) return ReclaimResult::kAllowed;
      auto it = reclaim_.find(id);
      if (it == reclaim_.end()) return ReclaimResult::kReclaimBad;
      // nfsd4_cld_check_v2: a stored hash must match the client's principal.
      if (ops_ == CldOps::kV2 && !it->second.empty() &&
          it->second != princhash) {
        return ReclaimResult::kReclaimBad;
      }
      return ReclaimResult::kAllowed;
    }
    case CldOps::kV0: {
      if (c.stable) return ReclaimResult::kAllowed;
      lk.unlock();
      CldCallResult r = Check(id);
      lk.lock();
      if (r.timed_out || r.status == -EPIPE || r.status == -ETIMEDOUT) {
        return ReclaimResult::kReclaimBad;
      }
      clients_[id].stable = true;
      return r.status == 0 ? ReclaimResult::kAllowed
                           : ReclaimResult::kReclaimBad;
    }
  }
  return ReclaimResult::kReclaimBad;
}

CldCallResult CldPipe::Check(std::string_view client) {
  nfsdfs::cld::Message m;
  m.cmd = static_cast<uint8_t>(cld::Command::kCheck);
  m.name = std::string(client);
  return DoUpcall(m, nullptr);
}

CldCallResult CldPipe::GraceDone() {
  CldOps ops;
  nfsdfs::cld::Message m;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (grace_ended_) return {};
    grace_ended_ = true;
    ops = ops_;
    m.cmd = static_cast<uint8_t>(cld::Command::kGraceDone);
    if (ops == CldOps::kV0) m.gracetime = boot_time_;
  }
  CldCallResult r;
  if (ops != CldOps::kNone) r = DoUpcall(m, nullptr);
  std::lock_guard<std::mutex> lk(mu_);
  // nfs4_release_reclaim, then locks_end_grace whatever the answer was.
  if (ops == CldOps::kV1 || ops == CldOps::kV2) reclaim_.clear();
  in_grace_ = false;
  return r;
}

// ---- Observability
// --------------------------------------------------------------

CldOps CldPipe::Ops() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ops_;
}

bool CldPipe::InGrace() const {
  std::lock_guard<std::mutex> lk(mu_);
  return in_grace_;
}

std::map<std::string, std::string> CldPipe::ReclaimSet() const {
  std::lock_guard<std::mutex> lk(mu_);
  return reclaim_;
}

CldPipeStats CldPipe::Stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  CldPipeStats s = stats_;
  s.readers = pipe_ ? pipe_->nreaders : 0;
  s.writers = pipe_ ? pipe_->nwriters : 0;
  return s;
}

}  // namespace nfsdsim
