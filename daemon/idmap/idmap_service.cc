#include "daemon/idmap/idmap_service.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "daemon/loop/channel_owners.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::idmap {
namespace {

// An upcall is at most one page; a read of this size gets a whole one.
constexpr size_t kReadBuffer = 8192;

const char* CacheName(Direction d) {
  return d == Direction::kIdToName ? "nfs4.idtoname" : "nfs4.nametoid";
}

}  // namespace

ServiceOptions ServiceOptionsFrom(const Options& o) {
  ServiceOptions s;
  s.rpc_dir = o.idmap_rpc_dir;
  s.conf = o.idmap_conf;
  s.conf_given = o.given.idmap_conf;
  int64_t seconds;
  if (ParseSeconds(o.idmap_cache_timeout, &seconds)) s.cache_timeout = seconds;
  return s;
}

IdmapService::Pool::~Pool() {
  if (wake_fd >= 0) close(wake_fd);
}

IdmapService::IdmapService(ServiceOptions opts) : opts_(std::move(opts)) {
  const Direction dirs[2] = {Direction::kIdToName, Direction::kNameToId};
  for (int i = 0; i < 2; ++i) {
    channels_[i].direction = dirs[i];
    channels_[i].path = ChannelPath(dirs[i]);
  }
}

std::string IdmapService::ChannelPath(Direction d) const {
  return opts_.rpc_dir + "/" + CacheName(d) + "/channel";
}

IdmapService::~IdmapService() {
  for (Channel& c : channels_) c.file.reset();
  wake_.reset();
  deadline_.reset();
  if (pool_) {
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->stop = true;
    pool_->todo.clear();
    pool_->cv.notify_all();
  }
  // The workers hold the pool (and the mapper) until they return.
}

Status IdmapService::Init() {
  std::vector<std::string> warnings;
  Status s = LoadIdmapdSettings(opts_.conf, opts_.conf_given, &settings_,
                                &warnings);
  for (const std::string& w : warnings) LOG_WARNING("idmap: %s", w.c_str());
  if (!s.ok()) return Status::Invalid("idmap: " + s.ToString());
  timeout_ = opts_.cache_timeout ? *opts_.cache_timeout
                                 : settings_.cache_expiration;
  for (const Channel& c : channels_) {
    int unreadable = 0;
    std::vector<loop::Opener> others =
        loop::FindOtherOpeners(c.path, &unreadable);
    if (!others.empty()) {
      return Status::Invalid(
          "idmap: " + c.path + " is already served by " +
          loop::DescribeOpeners(others) +
          "; nfsd-helper and rpc.idmapd must not both answer it (stop "
          "nfs-idmapd.service, or run nfsd-helper without --idmap)");
    }
    if (unreadable > 0) {
      LOG_WARNING("idmap: could not look at the open files of %d process(es) "
                  "to make sure none serves %s",
                  unreadable, c.path.c_str());
    }
  }
  std::unique_ptr<Mapper> mapper;
  s = Mapper::Create(settings_, &mapper);
  if (!s.ok()) return Status::Invalid("idmap: " + s.message());
  pool_ = std::make_shared<Pool>();
  pool_->mapper = std::move(mapper);
  std::string methods;
  for (const std::string& m : settings_.methods)
    methods += (methods.empty() ? "" : ",") + m;
  LOG_INFO("idmap: %s: domain %s, method %s, answers valid %lld s, nobody "
           "%s/%s%s",
           opts_.conf.c_str(), pool_->mapper->domain().c_str(),
           methods.c_str(), static_cast<long long>(timeout_),
           settings_.nobody_user.c_str(), settings_.nobody_group.c_str(),
           pool_->mapper->concurrent() ? "" : " (one lookup at a time)");
  return Status::Ok();
}

void IdmapService::Start(loop::Loop& loop) {
  pool_->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (pool_->wake_fd < 0) {
    LOG_ERROR("idmap: eventfd: %s; ID mapping is not served",
              strerror(errno));
    return;
  }
  wake_ = std::make_unique<loop::FdWatch>(
      loop, pool_->wake_fd, loop::FdWatch::Event::kRead, [this] { OnWake(); });
  Status s = wake_->Start();
  if (!s.ok()) FATAL("idmap: %s", s.message().c_str());  // an eventfd
  deadline_ = std::make_unique<loop::Timer>(loop, [this] { WriteFinished(); });
  for (Channel& c : channels_) {
    loop::ReopeningChannel::Options o;
    o.path = c.path;
    o.framing = loop::Framer::Kind::kJoined;
    o.read_buffer = kReadBuffer;
    o.log_prefix = "idmap: ";
    o.missing_hint = " (is nfsd loaded?)";
    c.file = std::make_unique<loop::ReopeningChannel>(
        loop, std::move(o), [this, &c] { ReadChannel(c); },
        [this, &c] { OnChange(c); });
    c.file->Start();  // kPoll: cannot fail
  }
}

void IdmapService::StartWorkers() {
  if (!wake_) return;  // Start() failed: nothing would hear them
  size_t n = pool_->mapper->concurrent() ? opts_.workers : 1;
  if (n == 0) n = 1;
  for (size_t i = 0; i < n; ++i) {
    std::thread(WorkerLoop, pool_).detach();
  }
}

void IdmapService::OnChange(Channel& c) {
  c.stats.open = c.file->is_open();
  if (c.stats.open) LOG_NOTICE("idmap: serving %s", c.path.c_str());
}

void IdmapService::ReadChannel(Channel& c) {
  loop::Message m;
  for (;;) {
    if (c.inflight.size() >= opts_.max_queue) {
      if (!c.paused) {
        c.file->Pause();
        c.paused = true;
        LOG_WARNING("idmap: %zu lookups of %s pending; not reading more "
                    "until some are answered",
                    c.inflight.size(), DirectionName(c.direction));
      }
      return;
    }
    if (c.file->Read(&m) != loop::ReopeningChannel::ReadResult::kMessage)
      return;
    // A cache channel's read returns one upcall, or as much of it as the
    // buffer holds (sunrpc's cache_read): only a read that filled the
    // buffer went on in the next one (loop::Framer::Kind::kJoined). A
    // shorter read without its newline is a whole upcall the kernel never
    // sends, and is dropped alone, never joined to the upcall that follows.
    if (m.overlong) {
      LOG_ERROR("idmap: %s: dropped %zu bytes that never ended in a "
                "newline",
                c.path.c_str(), m.data.size());
      ++c.stats.errors;
      continue;
    }
    const std::string& line = m.data;
    ++c.stats.requests;
    if (line.back() != '\n') {
      LOG_ERROR("idmap: %s: dropped an upcall without its newline: \"%s\"",
                DirectionName(c.direction),
                nfsdfs::EscapeForLog(line).c_str());
      ++c.stats.errors;
      continue;
    }
    auto job = std::make_shared<Job>();
    std::string error;
    if (!ParseUpcall(c.direction, line, &job->upcall, &error)) {
      // Without its key fields an upcall cannot be answered; the kernel
      // never sends one like this.
      LOG_ERROR("idmap: %s: malformed upcall \"%s\": %s",
                DirectionName(c.direction),
                nfsdfs::EscapeForLog(line).c_str(), error.c_str());
      ++c.stats.errors;
      continue;
    }
    LOG_DEBUG("idmap: %s: %s", DirectionName(c.direction),
              nfsdfs::EscapeForLog(line).c_str());
    job->deadline = std::chrono::steady_clock::now() + opts_.lookup_timeout;
    c.inflight.push_back(job);
    if (c.inflight.size() == 1) ArmDeadline();
    std::lock_guard<std::mutex> lock(pool_->mu);
    pool_->todo.push_back(std::move(job));
    pool_->cv.notify_one();
  }
}

void IdmapService::ArmDeadline() {
  if (!deadline_) return;
  std::optional<std::chrono::steady_clock::time_point> first;
  for (const Channel& c : channels_) {
    // Deadlines grow in upcall order: the front's is the channel's first.
    if (!c.inflight.empty() && (!first || c.inflight.front()->deadline < *first))
      first = c.inflight.front()->deadline;
  }
  if (!first) {
    deadline_->Stop();
    return;
  }
  // Rounded up to the next millisecond: the timer never fires before the
  // deadline, which would leave it to wait for the next wake-up.
  auto wait = std::chrono::ceil<loop::Duration>(
      *first - std::chrono::steady_clock::now());
  deadline_->Start(wait);
}

void IdmapService::WorkerLoop(std::shared_ptr<Pool> pool) {
  std::unique_lock<std::mutex> lock(pool->mu);
  for (;;) {
    pool->cv.wait(lock, [&] { return pool->stop || !pool->todo.empty(); });
    if (pool->stop) return;
    std::shared_ptr<Job> job = std::move(pool->todo.front());
    pool->todo.pop_front();
    if (job->abandoned) continue;  // timed out while waiting for a worker
    lock.unlock();
    Mapping m = pool->mapper->Map(job->upcall);
    lock.lock();
    // An abandoned job's result was set by the loop, which no longer waits.
    if (!job->abandoned) job->result = std::move(m);
    job->done = true;
    if (pool->stop) return;
    uint64_t one = 1;
    if (write(pool->wake_fd, &one, sizeof one) != sizeof one) {
      // The counter is already non-zero: the loop wakes anyway.
    }
  }
}

void IdmapService::WriteFinished() {
  const int64_t expiry = static_cast<int64_t>(time(nullptr)) + timeout_;
  const auto now = std::chrono::steady_clock::now();
  for (Channel& c : channels_) {
    std::vector<std::shared_ptr<Job>> ready;
    std::vector<std::shared_ptr<Job>> late;
    {
      std::lock_guard<std::mutex> lock(pool_->mu);
      while (!c.inflight.empty() && (c.inflight.front()->done ||
                                     c.inflight.front()->deadline <= now)) {
        std::shared_ptr<Job>& job = c.inflight.front();
        if (!job->done) {
          // Its worker (if one has it) finishes alone; the result is
          // dropped. Not started yet: no worker will.
          job->abandoned = true;
          late.push_back(job);
        }
        ready.push_back(std::move(job));
        c.inflight.pop_front();
      }
    }
    for (const auto& job : late) {
      job->result = pool_->mapper->Failed(job->upcall, -ETIMEDOUT);
      const Upcall& up = job->upcall;
      const bool by_id = up.direction == Direction::kIdToName;
      const std::string key =
          by_id ? std::to_string(up.id) : nfsdfs::EscapeForLog(up.name);
      const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
          opts_.lookup_timeout);
      LOG_WARNING(
          "idmap: %s %s %s: no answer from the name service within %lld s; "
          "answered as a failed lookup (%s), and the answers behind it go "
          "out",
          DirectionName(c.direction), IdTypeName(up.type), key.c_str(),
          static_cast<long long>(seconds.count()),
          by_id ? "the nobody name" : "a negative entry");
    }
    for (const auto& job : ready) {
      const Upcall& up = job->upcall;
      const Mapping& m = job->result;
      std::string reply = FormatDowncall(up, m.answer, expiry);
      std::string what =
          up.direction == Direction::kIdToName
              ? std::string(IdTypeName(up.type)) + " " +
                    std::to_string(up.id) + " -> " +
                    nfsdfs::EscapeForLog(m.answer.name)
              : std::string(IdTypeName(up.type)) + " " +
                    nfsdfs::EscapeForLog(up.name) + " -> " +
                    (m.answer.has_id ? std::to_string(m.answer.id)
                                     : std::string("none (negative entry)"));
      if (m.mapped) {
        ++c.stats.hits;
        LOG_DEBUG("idmap: %s", what.c_str());
      } else {
        ++c.stats.misses;
        LOG_INFO("idmap: %s (not mapped, error %d)", what.c_str(), m.error);
      }
      if (!IsOpen(c)) {
        ++c.stats.errors;
        LOG_WARNING("idmap: %s closed; answer dropped: %s", c.path.c_str(),
                    what.c_str());
        continue;
      }
      ssize_t n;
      do {
        n = write(c.file->fd(), reply.data(), reply.size());
      } while (n < 0 && errno == EINTR);
      if (n != static_cast<ssize_t>(reply.size())) {
        ++c.stats.errors;
        LOG_ERROR("idmap: write %s \"%s\": %s", c.path.c_str(),
                  nfsdfs::EscapeForLog(reply).c_str(),
                  n < 0 ? strerror(errno) : "short write");
      }
    }
    if (c.paused && c.inflight.size() < opts_.max_queue) {
      c.paused = false;
      c.file->Resume();
      if (IsOpen(c)) ReadChannel(c);
    }
  }
  ArmDeadline();
}

IdmapStats IdmapService::Stats() const {
  IdmapStats s;
  s.enabled = true;
  s.idtoname = channels_[0].stats;
  s.idtoname.queued = channels_[0].inflight.size();
  s.nametoid = channels_[1].stats;
  s.nametoid.queued = channels_[1].inflight.size();
  return s;
}

bool IdmapService::Serving() const {
  return IsOpen(channels_[0]) && IsOpen(channels_[1]);
}

void IdmapService::LogSummary() const {
  for (const Channel& c : channels_) {
    LOG_INFO("idmap: %s: %llu request(s), %llu mapped, %llu not mapped, "
             "%llu error(s)",
             DirectionName(c.direction),
             static_cast<unsigned long long>(c.stats.requests),
             static_cast<unsigned long long>(c.stats.hits),
             static_cast<unsigned long long>(c.stats.misses),
             static_cast<unsigned long long>(c.stats.errors));
  }
}

void IdmapService::OnWake() {
  uint64_t count;
  if (read(pool_->wake_fd, &count, sizeof count) < 0) {
    // EAGAIN: another wake-up already drained it.
  }
  WriteFinished();
}

}  // namespace nfsdh::idmap
