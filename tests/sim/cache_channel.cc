// The simulated ID-mapping cache channels: see cache_channel.h. Low-level
// FUSE, as in sim_kernel.cc, for the same reasons: direct_io (one read is one
// upcall, one write one downcall), poll handles, and our own session loop.
#define FUSE_USE_VERSION 312

#include "tests/sim/cache_channel.h"

#include <fuse_lowlevel.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "nfsdfs-proto/qword.h"
#include "tests/sim/fuse_loop.h"

namespace nfsdsim {
namespace {

using Clock = std::chrono::steady_clock;

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
// Directories 2 and 3, their channel files 4 and 5.
constexpr fuse_ino_t kDirIno[2] = {2, 3};
constexpr fuse_ino_t kFileIno[2] = {4, 5};
constexpr const char* kDirName[2] = {"nfs4.idtoname", "nfs4.nametoid"};
constexpr size_t kNameSize = 128;  // IDMAP_NAMESZ
constexpr double kAttrTimeout = 3600;

int Index(IdmapCache c) { return static_cast<int>(c); }

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  return true;
}

// Parses a downcall as nfs4idmap.c does; "" on success, else why nfsd would
// answer EINVAL.
std::string ParseDowncall(IdmapCache c, std::string_view in, Downcall* d) {
  if (in.empty() || in.back() != '\n') return "no trailing newline";
  in.remove_suffix(1);
  std::string expiry;
  if (!nfsdfs::QwordGet(&in, &d->authname) || d->authname.empty() ||
      d->authname.size() >= kNameSize)
    return "bad authname";
  if (!nfsdfs::QwordGet(&in, &d->type) || d->type.empty()) return "no type";
  if (!nfsdfs::QwordGet(&in, &d->key) || d->key.empty()) return "no key";
  if (c == IdmapCache::kIdToName) {
    if (!AllDigits(d->key)) return "the id is not a number";
    d->key = std::to_string(std::stoull(d->key.substr(0, 19)));
  } else if (d->key.size() >= kNameSize) {
    return "name too long";
  }
  if (!nfsdfs::QwordGet(&in, &expiry) || !AllDigits(expiry) ||
      expiry.size() > 18)
    return "bad expiry";
  d->expiry = std::stoll(expiry);
  if (d->expiry <= 0) return "bad expiry";
  std::string value;
  if (!nfsdfs::QwordGet(&in, &value)) return "bad last field";
  if (c == IdmapCache::kIdToName) {
    if (value.size() >= kNameSize) return "name too long";
  } else if (!value.empty() && !AllDigits(value)) {
    return "the id is not a number";
  }
  if (!value.empty()) d->value = value;
  return "";
}

std::string KeyOf(const std::string& authname, const std::string& type,
                  const std::string& key) {
  return authname + '\0' + type + '\0' + key;
}

}  // namespace

struct CacheChannelSim::Impl {
  struct Request {
    IdmapCache cache;
    std::string line;
    std::string key;
    Clock::time_point queued;
    std::optional<Downcall> answer;
  };
  struct Handle {
    IdmapCache cache;
    pid_t pid;
    fuse_pollhandle* ph = nullptr;
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Request> requests;
  std::deque<uint64_t> unread[2];
  std::map<uint64_t, Handle> handles;
  uint64_t next_id = 1;
  uint64_t next_fh = 1;
  CacheChannelStats stats[2];
  std::string last_rejection[2];
  std::string dir;
  bool init_done = false;

  std::mutex mount_mu;  // serializes Mount/Unmount, guards loop; before mu
  FuseLoop loop;

  void NotifyLocked(IdmapCache c) {
    for (auto& [fh, h] : handles) {
      if (h.cache == c && h.ph) {
        fuse_lowlevel_notify_poll(h.ph);
        fuse_pollhandle_destroy(h.ph);
        h.ph = nullptr;
      }
    }
  }
};

struct CacheChannelOps {
  static CacheChannelSim::Impl* I(fuse_req_t req) {
    return static_cast<CacheChannelSim::Impl*>(fuse_req_userdata(req));
  }
  static void Attr(fuse_ino_t ino, struct stat* st) {
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_uid = geteuid();
    st->st_gid = getegid();
    if (ino == kRootIno || ino == kDirIno[0] || ino == kDirIno[1]) {
      st->st_mode = S_IFDIR | 0555;
      st->st_nlink = 2;
    } else {
      st->st_mode = S_IFREG | 0600;
      st->st_nlink = 1;
    }
  }
  static bool Known(fuse_ino_t ino) { return ino >= 1 && ino <= 5; }
  static void Init(void* userdata, fuse_conn_info*) {
    auto* im = static_cast<CacheChannelSim::Impl*>(userdata);
    std::lock_guard<std::mutex> lk(im->mu);
    im->init_done = true;
    im->cv.notify_all();
  }
  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_ino_t found = 0;
    for (int i = 0; i < 2; ++i) {
      if (parent == kRootIno && strcmp(name, kDirName[i]) == 0)
        found = kDirIno[i];
      if (parent == kDirIno[i] && strcmp(name, "channel") == 0)
        found = kFileIno[i];
    }
    if (!found) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = found;
    e.attr_timeout = e.entry_timeout = kAttrTimeout;
    Attr(found, &e.attr);
    fuse_reply_entry(req, &e);
  }
  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    if (!Known(ino)) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    struct stat st;
    Attr(ino, &st);
    fuse_reply_attr(req, &st, kAttrTimeout);
  }
  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    int which = ino == kFileIno[0] ? 0 : ino == kFileIno[1] ? 1 : -1;
    if (which < 0) {
      fuse_reply_err(req, Known(ino) ? EISDIR : ENOENT);
      return;
    }
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fi->noflush = 1;
    auto* im = I(req);
    uint64_t fh;
    {
      std::lock_guard<std::mutex> lk(im->mu);
      fh = im->next_fh++;
      im->handles[fh] = {static_cast<IdmapCache>(which), fuse_req_ctx(req)->pid,
                         nullptr};
      ++im->stats[which].open_handles;
      im->cv.notify_all();
    }
    fi->fh = fh;
    if (fuse_reply_open(req, fi) != 0) Forget(im, fh);
  }
  static void Forget(CacheChannelSim::Impl* im, uint64_t fh) {
    std::lock_guard<std::mutex> lk(im->mu);
    auto it = im->handles.find(fh);
    if (it == im->handles.end()) return;
    if (it->second.ph) fuse_pollhandle_destroy(it->second.ph);
    --im->stats[Index(it->second.cache)].open_handles;
    im->handles.erase(it);
    im->cv.notify_all();
  }
  static void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Forget(I(req), fi->fh);
    fuse_reply_err(req, 0);
  }
  static void Read(fuse_req_t req, fuse_ino_t, size_t size, off_t,
                   fuse_file_info* fi) {
    auto* im = I(req);
    std::string data;
    {
      std::lock_guard<std::mutex> lk(im->mu);
      auto h = im->handles.find(fi->fh);
      if (h != im->handles.end()) {
        int c = Index(h->second.cache);
        if (!im->unread[c].empty()) {
          auto& r = im->requests[im->unread[c].front()];
          // Whole upcalls only here: the helper reads with a buffer larger
          // than any upcall, and a smaller read gets EINVAL-free truncation
          // in the kernel that nothing here relies on.
          if (r.line.size() <= size) {
            data = r.line;
            im->unread[c].pop_front();
            ++im->stats[c].read;
            --im->stats[c].pending;
          }
        }
      }
    }
    fuse_reply_buf(req, data.data(), data.size());
  }
  static void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size,
                    off_t, fuse_file_info* fi) {
    auto* im = I(req);
    int err = 0;
    {
      std::lock_guard<std::mutex> lk(im->mu);
      auto h = im->handles.find(fi->fh);
      if (h == im->handles.end()) {
        err = EBADF;
      } else {
        int c = Index(h->second.cache);
        Downcall d;
        d.line.assign(buf, size);
        d.at = Clock::now();
        std::string why = size > 8191
                              ? "too long"
                              : ParseDowncall(h->second.cache, d.line, &d);
        if (!why.empty()) {
          ++im->stats[c].rejected;
          im->last_rejection[c] = why + ": " + nfsdfs::EscapeForLog(d.line);
          err = EINVAL;
        } else {
          ++im->stats[c].accepted;
          std::string key = KeyOf(d.authname, d.type, d.key);
          for (auto& [id, r] : im->requests) {
            if (Index(r.cache) == c && !r.answer && r.key == key) {
              r.answer = d;
              ++im->stats[c].answered;
              // An answered upcall that was never read leaves the queue.
              auto& q = im->unread[c];
              for (auto qi = q.begin(); qi != q.end(); ++qi) {
                if (*qi == id) {
                  q.erase(qi);
                  --im->stats[c].pending;
                  break;
                }
              }
            }
          }
          im->cv.notify_all();
        }
      }
    }
    if (err)
      fuse_reply_err(req, err);
    else
      fuse_reply_write(req, size);
  }
  static void Poll(fuse_req_t req, fuse_ino_t, fuse_file_info* fi,
                   fuse_pollhandle* ph) {
    auto* im = I(req);
    unsigned events = POLLOUT | POLLWRNORM;
    {
      std::lock_guard<std::mutex> lk(im->mu);
      auto h = im->handles.find(fi->fh);
      if (h != im->handles.end()) {
        if (!im->unread[Index(h->second.cache)].empty())
          events |= POLLIN | POLLRDNORM;
        if (ph) {
          if (h->second.ph) fuse_pollhandle_destroy(h->second.ph);
          h->second.ph = ph;
          ph = nullptr;
        }
      }
    }
    if (ph) fuse_pollhandle_destroy(ph);
    fuse_reply_poll(req, events);
  }
  static fuse_lowlevel_ops Make() {
    fuse_lowlevel_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.init = Init;
    ops.lookup = Lookup;
    ops.getattr = GetAttr;
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.poll = Poll;
    ops.release = Release;
    return ops;
  }
};

CacheChannelSim::CacheChannelSim() : impl_(std::make_unique<Impl>()) {}

CacheChannelSim::~CacheChannelSim() { Unmount(); }

bool CacheChannelSim::Mount(const std::string& dir, std::string* error) {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  Impl& im = *impl_;
  std::lock_guard<std::mutex> mlk(im.mount_mu);
  if (im.loop.mounted()) return fail("already mounted");
  static const fuse_lowlevel_ops kOps = CacheChannelOps::Make();
  std::string opts = "default_permissions,fsname=idmap-sim,subtype=idmap-sim";
  if (geteuid() == 0) opts += ",allow_other";
  auto before_loop = [&] {
    std::lock_guard<std::mutex> lk(im.mu);
    im.dir = dir;
    im.init_done = false;
  };
  if (!im.loop.Mount(dir, kOps, sizeof kOps, &im, "idmap-sim", opts,
                     before_loop, error)) {
    return false;
  }
  std::unique_lock<std::mutex> lk(im.mu);
  if (!im.cv.wait_for(lk, std::chrono::seconds(10),
                      [&] { return im.init_done; })) {
    lk.unlock();
    return fail("FUSE_INIT did not arrive within 10 s");
  }
  return true;
}

void CacheChannelSim::Unmount() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> mlk(im.mount_mu);
  if (!im.loop.mounted()) return;
  // Unlike SimKernel and CldPipe, the open-file table is kept; only its poll
  // handles go with the session.
  im.loop.Unmount([&im] {
    std::lock_guard<std::mutex> lk(im.mu);
    for (auto& [fh, h] : im.handles) {
      if (h.ph) fuse_pollhandle_destroy(h.ph);
      h.ph = nullptr;
    }
  });
  std::lock_guard<std::mutex> lk(im.mu);
  im.dir.clear();
  im.cv.notify_all();
}

std::string CacheChannelSim::dir() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->dir;
}

std::string CacheChannelSim::Path(IdmapCache c) const {
  return dir() + "/" + kDirName[Index(c)] + "/channel";
}

IdmapTicket CacheChannelSim::Upcall(IdmapCache c, const std::string& authname,
                                    const std::string& type,
                                    const std::string& key) {
  std::string line;
  nfsdfs::QwordAdd(&line, authname);
  nfsdfs::QwordAdd(&line, type);
  nfsdfs::QwordAdd(&line, key);
  line.back() = '\n';
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.mu);
  IdmapTicket t;
  t.id = im.next_id++;
  t.cache = c;
  t.queued = Clock::now();
  Impl::Request r;
  r.cache = c;
  r.line = line;
  r.key = KeyOf(authname, type, key);
  r.queued = t.queued;
  im.requests[t.id] = std::move(r);
  im.unread[Index(c)].push_back(t.id);
  ++im.stats[Index(c)].upcalls;
  ++im.stats[Index(c)].pending;
  im.NotifyLocked(c);
  return t;
}

void CacheChannelSim::RawUpcall(IdmapCache c, const std::string& line) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.mu);
  Impl::Request r;
  r.cache = c;
  r.line = line;
  r.key = "\n raw upcall";  // no downcall's key
  r.queued = Clock::now();
  uint64_t id = im.next_id++;
  im.requests[id] = std::move(r);
  im.unread[Index(c)].push_back(id);
  ++im.stats[Index(c)].upcalls;
  ++im.stats[Index(c)].pending;
  im.NotifyLocked(c);
}

std::optional<Downcall> CacheChannelSim::Await(
    const IdmapTicket& t, std::chrono::milliseconds timeout) {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> lk(im.mu);
  auto it = im.requests.find(t.id);
  if (it == im.requests.end()) return std::nullopt;
  im.cv.wait_for(lk, timeout, [&] { return it->second.answer.has_value(); });
  return it->second.answer;
}

bool CacheChannelSim::WaitForOpen(std::chrono::milliseconds timeout) {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> lk(im.mu);
  return im.cv.wait_for(lk, timeout, [&] {
    return im.stats[0].open_handles > 0 && im.stats[1].open_handles > 0;
  });
}

CacheChannelStats CacheChannelSim::Stats(IdmapCache c) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats[Index(c)];
}

std::set<pid_t> CacheChannelSim::OpenPids(IdmapCache c) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  std::set<pid_t> out;
  for (const auto& [fh, h] : impl_->handles)
    if (h.cache == c) out.insert(h.pid);
  return out;
}

std::string CacheChannelSim::LastRejection(IdmapCache c) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->last_rejection[Index(c)];
}

}  // namespace nfsdsim
