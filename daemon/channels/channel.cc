#include "daemon/channels/channel.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh {

recovery::ScopeState ToScopeState(const store::ScopeRow& row) {
  recovery::ScopeState s;
  s.boot_time = row.boot_time;
  s.new_boot_time = row.new_boot_time;
  s.old_boot_time = row.old_boot_time;
  s.max_instance = row.max_instance;
  return s;
}

void SetScopeState(const recovery::ScopeState& s, store::ScopeRow* row) {
  row->boot_time = s.boot_time;
  row->new_boot_time = s.new_boot_time;
  row->old_boot_time = s.old_boot_time;
  row->max_instance = s.max_instance;
}

std::string DescribeInstance(const std::optional<int64_t>& inst) {
  return inst ? "instance " + std::to_string(*inst) : "no instance";
}

Batch::Batch(store::Store* store, store::ScopeRow* row, ScopeStats* stats,
             int64_t now)
    : store_(store), row_(row), stats_(stats), now_(now) {}

bool EndGrace(Batch& b, int64_t instance, const std::string& who) {
  recovery::GraceDonePlan plan =
      recovery::PlanGraceDone(ToScopeState(b.row()), instance);
  int64_t purged = 0;
  Status s = b.PurgeOlderThan(plan.purge_older_than, &purged);
  store::ScopeRow next = b.row();
  SetScopeState(plan.next, &next);
  next.grace_ended = b.now();
  if (s.ok()) s = b.store().PutScope(next);
  if (!s.ok()) {
    LOG_ERROR("scope %s: cannot end the grace period of instance %lld (%s): "
              "%s",
              b.scope().c_str(), static_cast<long long>(instance), who.c_str(),
              s.ToString().c_str());
    b.Fail(s);
    return false;
  }
  b.row() = next;
  b.stats().clients -= purged;
  LOG_NOTICE("scope %s: instance %lld ended its grace period (%s); %lld "
             "client(s) that did not reclaim were removed",
             b.scope().c_str(), static_cast<long long>(instance), who.c_str(),
             static_cast<long long>(purged));
  return true;
}

void Batch::Fail(const Status& s) {
  if (failure_.ok()) failure_ = s;
}

void Batch::ReplyStatus(int fd, uint64_t seq, int status, ChannelCounters* c) {
  pending_.push_back({fd, seq, false, status, 0, c});
}

void Batch::ReplyAllowDone(int fd, uint64_t seq, int status, int64_t instance,
                           ChannelCounters* c) {
  pending_.push_back({fd, seq, true, status, instance, c});
}

void Batch::ReplyMessage(int fd, uint64_t seq, int status, std::string reply,
                         std::string on_failure, ChannelCounters* c) {
  Pending p{fd, seq, false, status, 0, c};
  p.binary = true;
  p.reply = std::move(reply);
  p.on_failure = std::move(on_failure);
  pending_.push_back(std::move(p));
}

void Batch::Malformed(int fd, nfsdfs::Channel ch, std::string_view line,
                      const nfsdfs::ParseError& err, ChannelCounters* c) {
  if (c) ++c->malformed;
  std::string_view shown = line.substr(0, 160);
  std::string esc = nfsdfs::EscapeForLog(shown);
  if (shown.size() < line.size()) esc += "...";
  if (err.seq) {
    LOG_WARNING("%s: malformed request %llu refused with -EINVAL: %s: \"%s\"",
                nfsdfs::ChannelFileName(ch),
                static_cast<unsigned long long>(*err.seq), err.reason.c_str(),
                esc.c_str());
    if (ch == nfsdfs::Channel::kAllowClient)
      pending_.push_back({fd, *err.seq, true, -EINVAL, 0, nullptr});
    else
      pending_.push_back({fd, *err.seq, false, -EINVAL, 0, nullptr});
  } else {
    LOG_ERROR("%s: malformed request without a readable sequence number "
              "cannot be answered: %s: \"%s\"",
              nfsdfs::ChannelFileName(ch), err.reason.c_str(), esc.c_str());
  }
}

bool Batch::RefuseIfStale(nfsdfs::Channel ch, int fd, uint64_t seq,
                          int64_t instance, ChannelCounters* c) {
  recovery::ScopeState st = ToScopeState(*row_);
  if (recovery::CheckInstance(st, instance) != recovery::Verdict::kStale)
    return false;
  ++c->stale;
  LOG_WARNING("%s %llu: instance %lld is not current (%s) in scope %s; "
              "refused with -ESTALE",
              nfsdfs::ChannelFileName(ch), static_cast<unsigned long long>(seq),
              static_cast<long long>(instance),
              DescribeInstance(st.current()).c_str(), row_->name.c_str());
  ReplyStatus(fd, seq, -ESTALE, c);
  return true;
}

bool Batch::WriteNow(int fd, const std::string& data) {
  for (;;) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n == static_cast<ssize_t>(data.size())) return true;
    if (n < 0 && errno == EINTR) continue;
    LOG_WARNING("write of %zu-byte downcall failed: %s", data.size(),
                n < 0 ? strerror(errno) : "short write");
    return false;
  }
}

void Batch::Finish(bool committed) {
  for (const Pending& p : pending_) {
    int status = p.status;
    int64_t instance = p.instance;
    bool failed_over = status == 0 && !committed;
    if (failed_over) {
      status = -EIO;
      instance = 0;
    }
    if (p.binary) {
      // The failure form of a reply that promised nothing is the reply.
      if (failed_over && p.on_failure == p.reply) status = p.status;
      if (p.counters) {
        if (status == 0)
          ++p.counters->ok;
        else if (status == -EIO)
          ++p.counters->failed;
      }
      LOG_DEBUG("reply to %llu: status %d, %zu bytes",
                static_cast<unsigned long long>(p.seq), status,
                p.reply.size());
      if (!WriteNow(p.fd, failed_over ? p.on_failure : p.reply)) {
        LOG_WARNING("reply to upcall %llu was not delivered (the kernel no "
                    "longer waits for it)",
                    static_cast<unsigned long long>(p.seq));
      }
      continue;
    }
    if (p.counters) {
      if (status == 0)
        ++p.counters->ok;
      else if (status == -EIO)
        ++p.counters->failed;
    }
    std::string line = p.allow_done
                           ? nfsdfs::EncodeAllowDone(p.seq, status, instance)
                           : nfsdfs::EncodeStatusReply(p.seq, status);
    LOG_DEBUG("reply: %s", nfsdfs::EscapeForLog(line).c_str());
    if (!WriteNow(p.fd, line)) {
      LOG_WARNING("reply to request %llu was not delivered (the kernel no "
                  "longer waits for it)",
                  static_cast<unsigned long long>(p.seq));
    }
  }
  pending_.clear();
}

void Batch::NoteChange(bool added, const std::string& client_id) {
  if (!track_changes_ || failed()) return;
  Status s = store_->QueueCallout(scope(), added, client_id, now_);
  if (s.ok())
    ++callouts_queued_;
  else
    Fail(s);
}

Status Batch::PurgeOlderThan(int64_t older_than, int64_t* purged) {
  *purged = 0;
  int64_t queued = 0;
  Status s;
  if (track_changes_)
    s = store_->QueuePurgeCallouts(scope(), older_than, now_, &queued);
  if (s.ok()) s = store_->PurgeOlderThan(scope(), older_than, purged);
  if (s.ok()) callouts_queued_ += queued;
  return s;
}

}  // namespace nfsdh
