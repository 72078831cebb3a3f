// The simulated nfsd: see sim_kernel.h. The FUSE side uses the low-level
// libfuse API because it gives direct control over what the kernel's cache
// channels do and the high-level API hides: per-open-file state (fi->fh) for
// partial reads and for putting requests back on release, direct_io and
// nonseekable opens, and poll handles for POLLIN notification.
#define FUSE_USE_VERSION 312

#include "tests/sim/sim_kernel.h"

#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "nfsdfs-proto/qword.h"

namespace nfsdsim {
namespace {

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;  // 1
// Files are inodes 2..5 in the order of kAllChannels.
constexpr fuse_ino_t kFirstFileIno = 2;
// The files never change, so the kernel may cache names and attributes.
constexpr double kAttrTimeout = 3600.0;

int ChannelIndex(Channel c) {
  switch (c) {
    case Channel::kAllowClient:
      return 0;
    case Channel::kCreateClient:
      return 1;
    case Channel::kExpireClient:
      return 2;
    case Channel::kGraceDone:
      return 3;
  }
  return 0;
}

const char* FileName(Channel c) {
  // Spelled out here rather than taken from nfsdfs::ChannelFileName so that a
  // typo there shows up as a test failure instead of a consistent mistake.
  static const char* const kNames[] = {"allow_client", "create_client",
                                       "expire_client", "grace_done"};
  return kNames[ChannelIndex(c)];
}

std::optional<Channel> ChannelOfIno(fuse_ino_t ino) {
  if (ino < kFirstFileIno || ino >= kFirstFileIno + kAllChannels.size()) {
    return std::nullopt;
  }
  return kAllChannels[ino - kFirstFileIno];
}

// What a write's text looks like in a log: escaped and bounded.
std::string Shorten(std::string_view s) {
  constexpr size_t kMax = 300;
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  std::string out = nfsdfs::EscapeForLog(s.substr(0, kMax));
  if (s.size() > kMax) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

}  // namespace

const char* ReclaimResultName(ReclaimResult r) {
  switch (r) {
    case ReclaimResult::kAllowed:
      return "allowed";
    case ReclaimResult::kNoGrace:
      return "NFS4ERR_NO_GRACE";
    case ReclaimResult::kReclaimBad:
      return "NFS4ERR_RECLAIM_BAD";
  }
  return "?";
}

struct SimKernel::Request {
  enum class State { kQueued, kRead, kAnswered, kWithdrawn };
  uint64_t id = 0;
  Channel channel = Channel::kAllowClient;
  std::string line;
  std::optional<uint64_t> seq;
  // Position in the file's queue. Requests are queued in this order and put
  // back at their old position, which is "at the head, in original order"
  // (PROTOCOL.md §6) because everything queued before them was read first.
  uint64_t order = 0;
  State state = State::kQueued;
  uint64_t reader_fh = 0;  // while kRead
  Clock::time_point deadline;
  // The reply so far. For allow_client, `client` lines accumulate until the
  // `done` line; they are dropped if the request is put back.
  std::vector<std::string> reply_lines;
  std::vector<nfsdfs::AllowClientLine> clients;
  int status = 0;
  int64_t instance = 0;
};

struct SimKernel::Handle {
  Channel channel = Channel::kAllowClient;
  pid_t pid = 0;
  // The unread rest of a request whose first part a short read returned;
  // the next reads on this open file return it before any other request.
  std::string partial;
  std::set<uint64_t> read_ids;    // requests read here and unanswered
  fuse_pollhandle* ph = nullptr;  // wants a notification when POLLIN appears
};

struct SimKernel::ChannelState {
  std::map<uint64_t, uint64_t> queue;   // order -> request id, not yet read
  std::map<uint64_t, uint64_t> by_seq;  // seq -> id, queued or read
  uint64_t next_seq = 1;
  ChannelStats stats;  // counters; current values are computed
  std::string last_rejection;
};

// ---- FUSE callbacks ---------------------------------------------------------

struct FuseOps {
  static SimKernel* Sim(fuse_req_t req) {
    return static_cast<SimKernel*>(fuse_req_userdata(req));
  }

  static void FillAttr(fuse_ino_t ino, struct stat* st) {
    static const time_t kStartTime = time(nullptr);
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    // Root-owned like /proc/fs/nfsd; default_permissions makes the kernel
    // enforce the 0600.
    st->st_uid = geteuid();
    st->st_gid = getegid();
    st->st_atime = st->st_mtime = st->st_ctime = kStartTime;
    if (ino == kRootIno) {
      st->st_mode = S_IFDIR | 0755;
      st->st_nlink = 2;
    } else {
      st->st_mode = S_IFREG | 0600;
      st->st_nlink = 1;
      st->st_size = 0;
    }
  }

  static void Init(void* userdata, fuse_conn_info* /*conn*/) {
    static_cast<SimKernel*>(userdata)->OnInit();
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != kRootIno) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    for (size_t i = 0; i < kAllChannels.size(); ++i) {
      if (strcmp(name, FileName(kAllChannels[i])) == 0) {
        fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.ino = kFirstFileIno + i;
        e.attr_timeout = kAttrTimeout;
        e.entry_timeout = kAttrTimeout;
        FillAttr(e.ino, &e.attr);
        fuse_reply_entry(req, &e);
        return;
      }
    }
    fuse_reply_err(req, ENOENT);
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    if (ino != kRootIno && !ChannelOfIno(ino)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    struct stat st;
    FillAttr(ino, &st);
    fuse_reply_attr(req, &st, kAttrTimeout);
  }

  // Only reached for O_TRUNC opens (shell redirections) and chmod/touch; the
  // files have no contents to truncate and their attributes are fixed.
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
    if (ino != kRootIno) {
      fuse_reply_err(req, ENOTDIR);
      return;
    }
    std::string buf;
    std::vector<size_t> ends;  // where each entry ends: its `off` cookie
    auto add = [&](const char* name, fuse_ino_t e_ino) {
      struct stat st;
      FillAttr(e_ino, &st);
      size_t len = fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
      size_t old = buf.size();
      buf.resize(old + len);
      fuse_add_direntry(req, buf.data() + old, len, name, &st,
                        static_cast<off_t>(old + len));
      ends.push_back(old + len);
    };
    add(".", kRootIno);
    add("..", kRootIno);
    for (size_t i = 0; i < kAllChannels.size(); ++i) {
      add(FileName(kAllChannels[i]), kFirstFileIno + i);
    }
    if (off < 0 || static_cast<size_t>(off) >= buf.size()) {
      fuse_reply_buf(req, nullptr, 0);
      return;
    }
    // Entries are cut at entry boundaries because each entry's offset is the
    // end of that entry; a short buffer just gets fewer entries.
    size_t start = static_cast<size_t>(off);
    size_t end = start;
    for (size_t e : ends) {
      if (e <= start) continue;
      if (e - start > size) break;
      end = e;
    }
    fuse_reply_buf(req, buf.data() + start, end - start);
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    std::optional<Channel> c = ChannelOfIno(ino);
    if (!c) {
      fuse_reply_err(req, ino == kRootIno ? EISDIR : ENOENT);
      return;
    }
    // direct_io: every read()/write() reaches us unchanged, no page cache
    // (one read = one request, one write = one downcall). nonseekable: like
    // the kernel's channel files, which have no file position.
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fi->keep_cache = 0;
    // No FLUSH on close(), like nfsd's files. It also matters here: a process
    // that dies with one of these files open closes it in do_exit(), where a
    // FLUSH would wait uninterruptibly for a reply, and if that process is the
    // test itself, its FUSE thread is already gone: it would hang for ever.
    fi->noflush = 1;
    uint64_t fh = 0;
    Sim(req)->OnOpen(*c, fuse_req_ctx(req)->pid, &fh);
    fi->fh = fh;
    if (fuse_reply_open(req, fi) != 0) {
      // The opener was killed before it got the file: the kernel sends no
      // RELEASE for it, so forget it here.
      Sim(req)->OnRelease(fh);
    }
  }

  static void Read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size,
                   off_t /*off*/, fuse_file_info* fi) {
    std::string data = Sim(req)->OnRead(fi->fh, size);
    fuse_reply_buf(req, data.data(), data.size());
  }

  static void Write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf,
                    size_t size, off_t /*off*/, fuse_file_info* fi) {
    int err = Sim(req)->OnWrite(fi->fh, std::string_view(buf, size));
    if (err != 0) {
      fuse_reply_err(req, -err);
    } else {
      fuse_reply_write(req, size);
    }
  }

  static void Poll(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi,
                   fuse_pollhandle* ph) {
    fuse_reply_poll(req, Sim(req)->OnPoll(fi->fh, ph));
  }

  static void Release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
    Sim(req)->OnRelease(fi->fh);
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
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.poll = Poll;
    ops.release = Release;
    return ops;
  }
};

// ---- Construction -----------------------------------------------------------

SimKernel::SimKernel(SimOptions options) : options_(std::move(options)) {
  for (auto& c : channels_) c = std::make_unique<ChannelState>();
  reaper_ = std::thread([this] { ReaperLoop(); });
  if (options_.log) logger_ = std::thread([this] { LoggerLoop(); });
}

SimKernel::~SimKernel() {
  Unmount();
  {
    std::lock_guard<std::mutex> lk(mu_);
    shutting_down_ = true;
  }
  reaper_cv_.notify_all();
  reaper_.join();
  if (logger_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      logger_stop_ = true;
    }
    log_cv_.notify_all();
    logger_.join();
  }
}

SimKernel::ChannelState& SimKernel::Chan(Channel c) {
  return *channels_[ChannelIndex(c)];
}
const SimKernel::ChannelState& SimKernel::Chan(Channel c) const {
  return *channels_[ChannelIndex(c)];
}

void SimKernel::LogLocked(const std::string& line) {
  // Handed to the logger thread: the callback runs without mu_, so it may
  // take its own locks or even call back into the SimKernel.
  if (!options_.log) return;
  log_queue_.push_back(line);
  log_cv_.notify_one();
}

void SimKernel::LoggerLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    log_cv_.wait(lk, [&] { return !log_queue_.empty() || logger_stop_; });
    if (log_queue_.empty()) break;  // stopping, and everything was delivered
    std::vector<std::string> batch;
    batch.swap(log_queue_);
    lk.unlock();
    for (const std::string& line : batch) options_.log(line);
    lk.lock();
  }
}

// ---- Mounting ---------------------------------------------------------------

bool SimKernel::Mount(const std::string& dir, std::string* error) {
  auto fail = [&](const std::string& msg) {
    if (error) *error = msg;
    return false;
  };
  std::lock_guard<std::mutex> mlk(mount_mu_);
  if (fuse_.mounted()) return fail("already mounted on " + mount_dir());

  static const fuse_lowlevel_ops kOps = FuseOps::Make();
  // default_permissions: the kernel enforces mode 0600 / owner root, as for
  // the real nfsd files. allow_other (root only) lets a helper running as
  // root open the files whoever the mounting process is.
  std::string opts = "default_permissions,fsname=nfsd-sim,subtype=nfsd-sim";
  if (geteuid() == 0) opts += ",allow_other";
  auto before_loop = [&] {
    std::lock_guard<std::mutex> lk(mu_);
    mount_dir_ = dir;
    init_done_ = false;
  };
  if (!fuse_.Mount(dir, kOps, sizeof(kOps), this, "nfsd-sim", opts, before_loop,
                   error)) {
    return false;
  }

  // The kernel sends FUSE_INIT at mount time; wait for it so that a helper
  // started right after Mount() finds a working file system.
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return init_done_; })) {
    lk.unlock();
    // Unmount() takes mount_mu_, which we hold: do its work inline.
    fuse_.Unmount();
    std::lock_guard<std::mutex> lk2(mu_);
    mount_dir_.clear();
    return fail("FUSE_INIT did not arrive within 10 s");
  }
  return true;
}

void SimKernel::OnInit() {
  std::lock_guard<std::mutex> lk(mu_);
  init_done_ = true;
  cv_.notify_all();
}

void SimKernel::Unmount() {
  std::lock_guard<std::mutex> mlk(mount_mu_);
  // After the loop stopped: nobody can release these files any more, since
  // closing /dev/fuse aborts the connection and the kernel sends nothing
  // after that. Then FuseLoop closes /dev/fuse (the helper's open files fail
  // with ENOTCONN) and detaches the mount (lazily, so that it cannot block
  // on those files).
  fuse_.Unmount([this] {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [fh, h] : handles_) {
      if (h->ph) fuse_pollhandle_destroy(h->ph);
    }
    handles_.clear();
    std::vector<uint64_t> live;
    for (const auto& d : deadlines_) live.push_back(d.second);
    for (uint64_t id : live) WithdrawLocked(*requests_[id], "unmounted");
    LogLocked("unmount " + mount_dir_);
    mount_dir_.clear();
    cv_.notify_all();
  });
}

bool SimKernel::mounted() const {
  std::lock_guard<std::mutex> lk(mu_);
  return !mount_dir_.empty();
}

std::string SimKernel::mount_dir() const {
  std::lock_guard<std::mutex> lk(mu_);
  return mount_dir_;
}

std::string SimKernel::Path(Channel c) const {
  return mount_dir() + "/" + FileName(c);
}

// ---- The file operations ----------------------------------------------------

void SimKernel::OnOpen(Channel c, pid_t pid, uint64_t* fh) {
  std::lock_guard<std::mutex> lk(mu_);
  *fh = next_fh_++;
  auto h = std::make_unique<Handle>();
  h->channel = c;
  h->pid = pid;
  handles_[*fh] = std::move(h);
  Chan(c).stats.opens++;
  LogLocked(std::string("open ") + FileName(c) + " by pid " +
            std::to_string(pid));
  cv_.notify_all();
}

std::string SimKernel::OnRead(uint64_t fh, size_t size) {
  std::lock_guard<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return "";
  Handle& h = *hit->second;
  if (!h.partial.empty()) {
    // The rest of a request is delivered even if it was answered or
    // withdrawn meanwhile: the reader started on it and must see a whole line.
    size_t n = std::min(size, h.partial.size());
    std::string out = h.partial.substr(0, n);
    h.partial.erase(0, n);
    return out;
  }
  ChannelState& ch = Chan(h.channel);
  if (ch.queue.empty()) return "";  // nothing pending: 0, never block
  uint64_t id = ch.queue.begin()->second;
  ch.queue.erase(ch.queue.begin());
  Request& r = *requests_[id];
  r.state = Request::State::kRead;
  r.reader_fh = fh;
  h.read_ids.insert(id);
  ch.stats.read++;
  size_t n = std::min(size, r.line.size());
  h.partial = r.line.substr(n);
  transcript_.push_back({h.channel, true, true, r.line, ""});
  LogLocked(std::string("read ") + FileName(h.channel) + ": " +
            Shorten(r.line));
  cv_.notify_all();
  return r.line.substr(0, n);
}

int SimKernel::OnWrite(uint64_t fh, std::string_view data) {
  std::lock_guard<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return -EBADF;
  const Channel c = hit->second->channel;
  ChannelState& ch = Chan(c);

  auto reject = [&](const std::string& why) {
    ch.stats.rejected_writes++;
    ch.last_rejection = why;
    transcript_.push_back({c, false, false, std::string(data), why});
    LogLocked(std::string("EINVAL ") + FileName(c) + ": " + why + ": " +
              Shorten(data));
    cv_.notify_all();
    return -EINVAL;
  };
  if (data.empty()) return reject("empty write");
  if (data.size() > nfsdfs::kMaxDowncallLen) {
    return reject("write of " + std::to_string(data.size()) +
                  " bytes is longer than " +
                  std::to_string(nfsdfs::kMaxDowncallLen));
  }
  if (data.back() != '\n') return reject("write does not end in a newline");

  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    lines.push_back(data.substr(pos, nl + 1 - pos));
    pos = nl + 1;
  }

  // Everything is checked before anything is applied, so that a rejected
  // write changes nothing.
  auto outstanding = [&](uint64_t seq, std::string* why) -> Request* {
    auto it = ch.by_seq.find(seq);
    if (it == ch.by_seq.end()) {
      *why = "seq " + std::to_string(seq) + " matches no outstanding request";
      return nullptr;
    }
    Request* r = requests_[it->second].get();
    if (r->state != Request::State::kRead) {
      *why = "seq " + std::to_string(seq) + " has not been read";
      return nullptr;
    }
    return r;
  };
  std::string why;
  if (c == Channel::kAllowClient) {
    struct Plan {
      Request* r = nullptr;
      std::vector<nfsdfs::AllowClientLine> clients;
      std::vector<std::string> lines;
      std::optional<nfsdfs::AllowDoneLine> done;
    };
    std::vector<Plan> plans;  // in order of first appearance
    for (size_t i = 0; i < lines.size(); ++i) {
      auto parsed = nfsdfs::ParseAllowReply(lines[i]);
      if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
        return reject("line " + std::to_string(i + 1) + ": " + err->reason);
      }
      auto& reply = std::get<
          std::variant<nfsdfs::AllowClientLine, nfsdfs::AllowDoneLine>>(parsed);
      uint64_t seq = std::visit([](const auto& l) { return l.seq; }, reply);
      Request* r = outstanding(seq, &why);
      if (r == nullptr) return reject(why);
      auto p = std::find_if(plans.begin(), plans.end(),
                            [&](const Plan& x) { return x.r == r; });
      if (p == plans.end()) {
        plans.push_back(Plan{r, {}, {}, std::nullopt});
        p = plans.end() - 1;
      }
      if (p->done) {
        return reject("line " + std::to_string(i + 1) + ": seq " +
                      std::to_string(seq) + " after its done line");
      }
      p->lines.emplace_back(lines[i]);
      if (auto* cl = std::get_if<nfsdfs::AllowClientLine>(&reply)) {
        p->clients.push_back(*cl);
      } else {
        const auto& done = std::get<nfsdfs::AllowDoneLine>(reply);
        // PROTOCOL.md §3.1: an instance exactly when the status is 0.
        if ((done.status == 0) != (done.instance != 0)) {
          return reject("line " + std::to_string(i + 1) + ": status " +
                        std::to_string(done.status) + " with instance " +
                        std::to_string(done.instance));
        }
        p->done = done;
      }
    }
    for (Plan& p : plans) {
      Request& r = *p.r;
      r.reply_lines.insert(r.reply_lines.end(), p.lines.begin(), p.lines.end());
      r.clients.insert(r.clients.end(), p.clients.begin(), p.clients.end());
      if (p.done) {
        r.status = p.done->status;
        r.instance = p.done->instance;
        FinishLocked(r);
      }
    }
  } else {
    std::vector<std::pair<Request*, nfsdfs::StatusReply>> plan;
    for (size_t i = 0; i < lines.size(); ++i) {
      auto parsed = nfsdfs::ParseStatusReply(lines[i]);
      if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
        return reject("line " + std::to_string(i + 1) + ": " + err->reason);
      }
      const auto& reply = std::get<nfsdfs::StatusReply>(parsed);
      Request* r = outstanding(reply.seq, &why);
      if (r == nullptr) return reject(why);
      for (const auto& [other, unused] : plan) {
        if (other == r) {
          return reject("seq " + std::to_string(reply.seq) +
                        " answered twice in one write");
        }
      }
      plan.emplace_back(r, reply);
    }
    for (size_t i = 0; i < plan.size(); ++i) {
      Request& r = *plan[i].first;
      r.reply_lines.emplace_back(lines[i]);
      r.status = plan[i].second.status;
      FinishLocked(r);
    }
  }
  ch.stats.accepted_writes++;
  transcript_.push_back({c, false, true, std::string(data), ""});
  LogLocked(std::string("write ") + FileName(c) + ": " + Shorten(data));
  cv_.notify_all();
  return 0;
}

unsigned SimKernel::OnPoll(uint64_t fh, void* pollhandle) {
  auto* ph = static_cast<fuse_pollhandle*>(pollhandle);
  std::lock_guard<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) {
    if (ph) fuse_pollhandle_destroy(ph);
    return POLLERR;
  }
  Handle& h = *hit->second;
  unsigned revents = POLLOUT | POLLWRNORM;
  if (!h.partial.empty() || !Chan(h.channel).queue.empty()) {
    revents |= POLLIN | POLLRDNORM;
  }
  // The kernel wants to be told when readiness changes. Keep the newest
  // handle (all of one open file refer to the same kernel waitqueue).
  if (ph) {
    if (h.ph) fuse_pollhandle_destroy(h.ph);
    h.ph = ph;
  }
  return revents;
}

void SimKernel::NotifyPollLocked(Channel c) {
  // Writing the notification to /dev/fuse only wakes the kernel's poll
  // waiters; it never waits for our FUSE thread, so holding mu_ is safe, and
  // it keeps Unmount() from destroying the session underneath us.
  for (auto& [fh, h] : handles_) {
    if (h->channel != c || h->ph == nullptr) continue;
    fuse_lowlevel_notify_poll(h->ph);
    fuse_pollhandle_destroy(h->ph);
    h->ph = nullptr;
  }
}

void SimKernel::OnRelease(uint64_t fh) {
  std::lock_guard<std::mutex> lk(mu_);
  auto hit = handles_.find(fh);
  if (hit == handles_.end()) return;
  Handle& h = *hit->second;
  ChannelState& ch = Chan(h.channel);
  // PROTOCOL.md §6: what this open file read and nobody answered goes back
  // to the queue at its old position, to be read again by the next helper.
  size_t requeued = 0;
  for (uint64_t id : h.read_ids) {
    Request& r = *requests_[id];
    if (r.state != Request::State::kRead) continue;
    r.state = Request::State::kQueued;
    r.reader_fh = 0;
    r.reply_lines.clear();
    r.clients.clear();
    ch.queue[r.order] = id;
    ch.stats.requeued++;
    ++requeued;
    transcript_.push_back({h.channel, true, true, r.line, "requeued"});
  }
  if (h.ph) fuse_pollhandle_destroy(h.ph);
  LogLocked(std::string("release ") + FileName(h.channel) + " of pid " +
            std::to_string(h.pid) + ", " + std::to_string(requeued) +
            " request(s) put back");
  Channel c = h.channel;
  handles_.erase(hit);
  if (requeued > 0) NotifyPollLocked(c);
  cv_.notify_all();
}

// ---- Requests ---------------------------------------------------------------

Ticket SimKernel::SubmitLocked(Channel c, std::string line,
                               std::optional<uint64_t> seq) {
  ChannelState& ch = Chan(c);
  Ticket t;
  t.channel = c;
  t.seq = seq;
  if (seq && ch.by_seq.count(*seq)) {
    t.error = "seq " + std::to_string(*seq) + " is already outstanding";
    return t;
  }
  auto r = std::make_unique<Request>();
  r->id = next_request_id_++;
  r->channel = c;
  r->line = std::move(line);
  r->seq = seq;
  r->order = next_order_++;
  r->deadline = Clock::now() + options_.request_timeout;
  t.id = r->id;
  ch.queue[r->order] = r->id;
  if (seq) {
    ch.by_seq[*seq] = r->id;
    if (*seq >= ch.next_seq && *seq != UINT64_MAX) ch.next_seq = *seq + 1;
  }
  deadlines_.emplace(r->deadline, r->id);
  ch.stats.queued++;
  LogLocked(std::string("queue ") + FileName(c) + ": " + Shorten(r->line));
  requests_[r->id] = std::move(r);
  NotifyPollLocked(c);
  reaper_cv_.notify_all();
  cv_.notify_all();
  return t;
}

Ticket SimKernel::Submit(Channel c, std::string line) {
  std::lock_guard<std::mutex> lk(mu_);
  std::optional<uint64_t> seq = nfsdfs::PeekSeq(line);
  return SubmitLocked(c, std::move(line), seq);
}

Ticket SimKernel::SubmitWithSeq(
    Channel c, const std::function<std::string(uint64_t)>& make_line) {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lk(mu_);
    seq = Chan(c).next_seq++;  // reserved: nobody else gets it
  }
  // Built without the lock, so that make_line may ask the SimKernel for,
  // e.g., CurrentInstance().
  std::string line = make_line(seq);
  // Matched by what the line says, so a deliberately broken line behaves as
  // it would in the kernel.
  std::optional<uint64_t> peeked = nfsdfs::PeekSeq(line);
  std::lock_guard<std::mutex> lk(mu_);
  return SubmitLocked(c, std::move(line), peeked);
}

uint64_t SimKernel::PeekNextSeq(Channel c) const {
  std::lock_guard<std::mutex> lk(mu_);
  return Chan(c).next_seq;
}

void SimKernel::FinishLocked(Request& r) {
  ChannelState& ch = Chan(r.channel);
  if (r.reader_fh != 0) {
    auto hit = handles_.find(r.reader_fh);
    if (hit != handles_.end()) hit->second->read_ids.erase(r.id);
  }
  r.reader_fh = 0;
  r.state = Request::State::kAnswered;
  if (r.seq) ch.by_seq.erase(*r.seq);
  deadlines_.erase({r.deadline, r.id});
  ch.stats.answered++;
}

void SimKernel::WithdrawLocked(Request& r, const char* why) {
  if (r.state != Request::State::kQueued && r.state != Request::State::kRead) {
    return;
  }
  ChannelState& ch = Chan(r.channel);
  if (r.state == Request::State::kQueued) {
    ch.queue.erase(r.order);
  } else if (r.reader_fh != 0) {
    auto hit = handles_.find(r.reader_fh);
    if (hit != handles_.end()) hit->second->read_ids.erase(r.id);
  }
  r.reader_fh = 0;
  r.state = Request::State::kWithdrawn;
  if (r.seq) ch.by_seq.erase(*r.seq);
  deadlines_.erase({r.deadline, r.id});
  ch.stats.withdrawn++;
  LogLocked(std::string("withdraw (") + why + ") " + FileName(r.channel) +
            ": " + Shorten(r.line));
  cv_.notify_all();
}

void SimKernel::ReaperLoop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!shutting_down_) {
    if (deadlines_.empty()) {
      reaper_cv_.wait(lk);
      continue;
    }
    auto [when, id] = *deadlines_.begin();
    if (Clock::now() < when) {
      reaper_cv_.wait_until(lk, when);
      continue;
    }
    WithdrawLocked(*requests_[id], "timeout");
  }
}

AwaitResult SimKernel::ResultLocked(const Request& r) const {
  AwaitResult a;
  a.answered = r.state == Request::State::kAnswered;
  a.withdrawn = r.state == Request::State::kWithdrawn;
  a.timed_out = !a.answered;
  a.lines = r.reply_lines;
  a.clients = r.clients;
  a.status = r.status;
  a.instance = r.instance;
  return a;
}

AwaitResult SimKernel::Await(const Ticket& t,
                             std::optional<std::chrono::milliseconds> timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  auto it = requests_.find(t.id);
  if (it == requests_.end()) {
    AwaitResult a;
    a.timed_out = true;
    a.withdrawn = true;  // never queued: as good as withdrawn
    return a;
  }
  const Request& r = *it->second;
  auto done = [&] {
    return r.state == Request::State::kAnswered ||
           r.state == Request::State::kWithdrawn;
  };
  if (timeout) {
    cv_.wait_for(lk, *timeout, done);
  } else {
    cv_.wait(lk, done);
  }
  return ResultLocked(r);
}

// ---- The driver -------------------------------------------------------------

StartResult SimKernel::StartInstance(int64_t kernel_boot_time) {
  Ticket t;
  uint64_t generation;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (instance_ != 0 || in_grace_) {
      lk.unlock();
      Stop();  // nfsd restarted without a clean stop
      lk.lock();
    }
    in_grace_ = true;
    allow_.clear();
    generation = generation_;
    uint64_t seq = Chan(Channel::kAllowClient).next_seq++;
    nfsdfs::StartRequest req;
    req.seq = seq;
    req.version = nfsdfs::kProtocolVersion;
    req.kernel_boot_time = kernel_boot_time;
    t = SubmitLocked(Channel::kAllowClient, nfsdfs::EncodeRequest(req), seq);
  }
  StartResult res;
  res.seq = t.seq.value_or(0);
  AwaitResult a = Await(t);
  if (!a.answered) {
    res.timed_out = true;
    return res;
  }
  res.status = a.status;
  res.instance = a.instance;
  if (a.status == 0) {
    for (const auto& c : a.clients) res.allow[c.client_id] = c.princhash;
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (generation_ == generation && a.status == 0) {
    instance_ = a.instance;
    allow_ = res.allow;
  }
  return res;
}

StatusResult SimKernel::AwaitStatus(const Ticket& t) {
  StatusResult res;
  res.seq = t.seq.value_or(0);
  AwaitResult a = Await(t);
  if (!a.answered) {
    res.timed_out = true;
  } else {
    res.status = a.status;
  }
  return res;
}

StatusResult SimKernel::EstablishState(std::string_view client_id,
                                       std::string_view princhash,
                                       Minor minor) {
  Ticket t;
  uint64_t generation;
  int64_t instance;
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation = generation_;
    instance = instance_;
    nfsdfs::CreateRequest req;
    req.seq = Chan(Channel::kCreateClient).next_seq++;
    req.instance = instance;
    req.client_id = std::string(client_id);
    req.princhash = std::string(princhash);
    req.minor = minor;
    t = SubmitLocked(Channel::kCreateClient, nfsdfs::EncodeRequest(req),
                     req.seq);
  }
  StatusResult res = AwaitStatus(t);
  if (res.timed_out) return res;
  std::lock_guard<std::mutex> lk(mu_);
  if (res.status == 0 && generation_ == generation && instance_ == instance) {
    recorded_[std::string(client_id)] = minor;
  }
  return res;
}

StatusResult SimKernel::ReclaimComplete(std::string_view client_id,
                                        std::string_view princhash) {
  return EstablishState(client_id, princhash, Minor::kV41);
}

ReclaimResult SimKernel::Reclaim(std::string_view client_id,
                                 std::string_view princhash) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (!in_grace_) return ReclaimResult::kNoGrace;
  auto it = allow_.find(std::string(client_id));
  // nfs4_check_open_reclaim: no record of the client is RECLAIM_BAD.
  if (it == allow_.end()) return ReclaimResult::kReclaimBad;
  if (!it->second.empty() && it->second != princhash) {
    return ReclaimResult::kReclaimBad;
  }
  return ReclaimResult::kAllowed;
}

StatusResult SimKernel::Expire(std::string_view client_id) {
  Ticket t;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation = generation_;
    nfsdfs::ExpireRequest req;
    req.seq = Chan(Channel::kExpireClient).next_seq++;
    req.instance = instance_;
    req.client_id = std::string(client_id);
    t = SubmitLocked(Channel::kExpireClient, nfsdfs::EncodeRequest(req),
                     req.seq);
  }
  StatusResult res = AwaitStatus(t);
  if (res.timed_out) return res;
  std::lock_guard<std::mutex> lk(mu_);
  if (res.status == 0 && generation_ == generation) {
    recorded_.erase(std::string(client_id));
  }
  return res;
}

StatusResult SimKernel::EndGrace() {
  Ticket t;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation = generation_;
    nfsdfs::GraceDoneRequest req;
    req.seq = Chan(Channel::kGraceDone).next_seq++;
    req.instance = instance_;
    t = SubmitLocked(Channel::kGraceDone, nfsdfs::EncodeRequest(req), req.seq);
  }
  StatusResult res = AwaitStatus(t);
  if (res.timed_out) return res;
  std::lock_guard<std::mutex> lk(mu_);
  // PROTOCOL.md §7: only a durable grace_done ends grace.
  if (res.status == 0 && generation_ == generation) in_grace_ = false;
  return res;
}

void SimKernel::Stop() {
  std::lock_guard<std::mutex> lk(mu_);
  ++generation_;
  instance_ = 0;
  in_grace_ = false;
  allow_.clear();
  recorded_.clear();
  std::vector<uint64_t> live;
  for (const auto& d : deadlines_) live.push_back(d.second);
  for (uint64_t id : live) WithdrawLocked(*requests_[id], "nfsd stopped");
  LogLocked("nfsd stopped");
  cv_.notify_all();
}

// ---- Observability ----------------------------------------------------------

ChannelStats SimKernel::StatsLocked(Channel c) const {
  const ChannelState& ch = Chan(c);
  ChannelStats s = ch.stats;
  s.pending = ch.queue.size();
  s.outstanding = 0;
  for (const auto& d : deadlines_) {
    const Request& r = *requests_.at(d.second);
    if (r.channel == c && r.state == Request::State::kRead) ++s.outstanding;
  }
  s.open_handles = 0;
  for (const auto& [fh, h] : handles_) {
    if (h->channel == c) ++s.open_handles;
  }
  return s;
}

ChannelStats SimKernel::Stats(Channel c) const {
  std::lock_guard<std::mutex> lk(mu_);
  return StatsLocked(c);
}

ChannelStats SimKernel::TotalStats() const {
  std::lock_guard<std::mutex> lk(mu_);
  ChannelStats t;
  for (Channel c : kAllChannels) {
    ChannelStats s = StatsLocked(c);
    t.queued += s.queued;
    t.read += s.read;
    t.answered += s.answered;
    t.requeued += s.requeued;
    t.withdrawn += s.withdrawn;
    t.accepted_writes += s.accepted_writes;
    t.rejected_writes += s.rejected_writes;
    t.opens += s.opens;
    t.pending += s.pending;
    t.outstanding += s.outstanding;
    t.open_handles += s.open_handles;
  }
  return t;
}

size_t SimKernel::OpenHandles(Channel c) const {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (const auto& [fh, h] : handles_) {
    if (h->channel == c) ++n;
  }
  return n;
}

std::set<pid_t> SimKernel::OpenPids(Channel c) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::set<pid_t> pids;
  for (const auto& [fh, h] : handles_) {
    if (h->channel == c) pids.insert(h->pid);
  }
  return pids;
}

bool SimKernel::WaitForOpen(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    for (Channel c : kAllChannels) {
      bool open = false;
      for (const auto& [fh, h] : handles_) open = open || h->channel == c;
      if (!open) return false;
    }
    return true;
  });
}

bool SimKernel::WaitForAllClosed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return handles_.empty(); });
}

bool SimKernel::WaitForStats(
    Channel c, const std::function<bool(const ChannelStats&)>& pred,
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return pred(StatsLocked(c)); });
}

int64_t SimKernel::CurrentInstance() const {
  std::lock_guard<std::mutex> lk(mu_);
  return instance_;
}

bool SimKernel::InGrace() const {
  std::lock_guard<std::mutex> lk(mu_);
  return in_grace_;
}

std::map<std::string, std::string> SimKernel::AllowSet() const {
  std::lock_guard<std::mutex> lk(mu_);
  return allow_;
}

std::map<std::string, Minor> SimKernel::RecordedClients() const {
  std::lock_guard<std::mutex> lk(mu_);
  return recorded_;
}

std::string SimKernel::LastRejection(Channel c) const {
  std::lock_guard<std::mutex> lk(mu_);
  return Chan(c).last_rejection;
}

std::vector<TranscriptEntry> SimKernel::Transcript() const {
  std::lock_guard<std::mutex> lk(mu_);
  return transcript_;
}

void SimKernel::SetRequestTimeout(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lk(mu_);
  options_.request_timeout = timeout;
}

}  // namespace nfsdsim
