#include "daemon/batch/runner.h"

#include <ctime>
#include <type_traits>
#include <utility>
#include <variant>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::batch {

using channels::Endpoint;
using channels::Protocol;
using channels::ProtocolName;
using channels::QueuedReply;
using channels::Reply;
using channels::WriteDowncall;

namespace {

int64_t MonotonicNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint64_t SeqOf(const nfsdfs::cld::Message& m) { return m.xid; }
template <typename T>
uint64_t SeqOf(const T& req) {
  return req.seq;
}

// Logs a request that does not parse and, if its sequence number is
// readable, queues its -EINVAL refusal (counted as malformed only).
void Malformed(const Upcall& up, const nfsdfs::ParseError& err,
               std::vector<QueuedReply>* queue) {
  Endpoint& ep = *up.from;
  ++ep.counters.malformed;
  const char* name = ProtocolName(ep.protocol);
  // The four files speak text: an excerpt helps; a cld message is binary.
  std::string excerpt;
  if (ep.protocol != Protocol::kCld) {
    std::string_view shown = std::string_view(up.bytes).substr(0, 160);
    excerpt = ": \"" + nfsdfs::EscapeForLog(shown) +
              (shown.size() < up.bytes.size() ? "...\"" : "\"");
  }
  if (!err.seq) {
    LOG_ERROR("%s: malformed request without a readable sequence number "
              "cannot be answered: %s%s",
              name, err.reason.c_str(), excerpt.c_str());
    return;
  }
  LOG_WARNING("%s: malformed request %llu refused with -EINVAL: %s%s", name,
              static_cast<unsigned long long>(*err.seq), err.reason.c_str(),
              excerpt.c_str());
  std::string r = channels::EncodeRefusal(ep.protocol, up.bytes, *err.seq,
                                          -EINVAL);
  queue->push_back({&ep, *err.seq, -EINVAL, r, r, false});
}

template <typename T, typename Handler>
void Dispatch(tracker::Transaction& t, const Upcall& up,
              nfsdfs::Parsed<T> parsed, Handler handle,
              std::vector<QueuedReply>* queue) {
  if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    Malformed(up, *err, queue);
    return;
  }
  const T& req = std::get<T>(parsed);
  Reply reply(up.from, SeqOf(req), queue);
  handle(t, req, reply);
}

}  // namespace

void Runner::Handle(tracker::Transaction& t, const Upcall& up) {
  Endpoint& ep = *up.from;
  ++ep.counters.requests;
  if (up.overlong) {
    nfsdfs::ParseError err;
    err.seq = nfsdfs::PeekSeq(up.bytes);
    err.reason = "longer than the " + std::to_string(up.bytes.size()) +
                 "-byte read buffer; the rest of it is discarded";
    Malformed(up, err, &queue_);
    return;
  }
  if (ep.protocol != Protocol::kCld) {
    LOG_DEBUG("%s: %s", ProtocolName(ep.protocol),
              nfsdfs::EscapeForLog(up.bytes).c_str());
  }
  switch (ep.protocol) {
    case Protocol::kAllowClient:
      Dispatch(t, up, nfsdfs::ParseStartRequest(up.bytes),
               channels::HandleStart, &queue_);
      return;
    case Protocol::kCreateClient:
      Dispatch(t, up, nfsdfs::ParseCreateRequest(up.bytes),
               channels::HandleCreate, &queue_);
      return;
    case Protocol::kExpireClient:
      Dispatch(t, up, nfsdfs::ParseExpireRequest(up.bytes),
               channels::HandleExpire, &queue_);
      return;
    case Protocol::kGraceDone:
      Dispatch(t, up, nfsdfs::ParseGraceDoneRequest(up.bytes),
               channels::HandleGraceDone, &queue_);
      return;
    case Protocol::kCld:
      Dispatch(t, up, channels::ParseCldUpcall(up.bytes), channels::HandleCld,
               &queue_);
      return;
  }
}

Runner::Result Runner::Run(const std::vector<Upcall>& upcalls, int64_t now) {
  Result r;
  r.requests = upcalls.size();
  queue_.clear();
  const int64_t begun_ns = MonotonicNanos();
  tracker::Transaction t(tracker_, now);
  for (const Upcall& up : upcalls) Handle(t, up);
  if (before_commit_) before_commit_();
  Status s = t.Commit();
  r.committed = s.ok();
  if (r.committed && after_commit_) after_commit_();
  if (r.committed) {
    // BEGIN to COMMIT returning: the handlers' statements and the fsync.
    int64_t ns = MonotonicNanos() - begun_ns;
    stats_.Committed(upcalls.size(),
                     static_cast<uint64_t>(ns > 0 ? ns : 0) / 1000);
  } else {
    ++stats_.rolled_back;
    r.failure = s;
    LOG_ERROR("storage failure, %zu request(s) answered -EIO: %s",
              upcalls.size(), s.ToString().c_str());
  }
  LOG_DEBUG("batch of %zu request(s) %s", upcalls.size(),
            r.committed ? "committed in one transaction" : "rolled back");
  Finish(r.committed);
  return r;
}

void Runner::Finish(bool committed) {
  for (const QueuedReply& q : queue_) {
    bool failed_over = q.status == 0 && !committed;
    const std::string& data = failed_over ? q.on_failure : q.reply;
    // A reply that promised nothing is its own failure form.
    int status = failed_over && q.on_failure != q.reply ? -EIO : q.status;
    if (q.counted) {
      if (status == 0)
        ++q.to->counters.ok;
      else if (status == -EIO)
        ++q.to->counters.failed;
    }
    if (q.to->protocol == Protocol::kCld) {
      LOG_DEBUG("reply to %llu: status %d, %zu bytes",
                static_cast<unsigned long long>(q.seq), status, data.size());
    } else {
      LOG_DEBUG("reply: %s", nfsdfs::EscapeForLog(data).c_str());
    }
    if (!WriteDowncall(q.to->fd, data)) {
      LOG_WARNING("reply to request %llu was not delivered (the kernel no "
                  "longer waits for it)",
                  static_cast<unsigned long long>(q.seq));
    }
  }
  queue_.clear();
}

}  // namespace nfsdh::batch
