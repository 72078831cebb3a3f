// allow_client: a server instance starts (PROTOCOL.md §3.1).
//
// The allow list is streamed first, several lines per write, from the
// batch's transaction: the records the start keeps. Only once every line is
// written are the purge, the new instance and the scope row written in that
// transaction; "done 0" follows only after COMMIT. A list that was not
// wholly written is answered -EIO and nothing of the start is applied: the
// kernel, left without an instance, sends start again (PROTOCOL.md §7), and
// nothing the failed start did (a purge the HA callout would announce, an
// instance nobody holds) is kept.
#include <cerrno>

#include "daemon/channels/channel.h"
#include "daemon/util/log.h"

namespace nfsdh {
namespace {

void HandleStart(Batch& b, int fd, std::string_view line,
                 ChannelCounters* counters) {
  ++counters->requests;
  auto parsed = nfsdfs::ParseStartRequest(line);
  if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    b.Malformed(fd, nfsdfs::Channel::kAllowClient, line, *err, counters);
    return;
  }
  const auto& req = std::get<nfsdfs::StartRequest>(parsed);
  if (req.version != nfsdfs::kProtocolVersion) {
    LOG_ERROR("allow_client: the kernel speaks protocol version %llu; this "
              "nfsd-helper speaks version %u",
              static_cast<unsigned long long>(req.version),
              nfsdfs::kProtocolVersion);
    b.ReplyAllowDone(fd, req.seq, -EPROTONOSUPPORT, 0, counters);
    return;
  }
  if (b.failed()) {
    b.ReplyAllowDone(fd, req.seq, -EIO, 0, counters);
    return;
  }

  recovery::StartPlan plan =
      recovery::PlanStart(ToScopeState(b.row()), b.now());
  int64_t allowed = 0;
  bool delivered = true;
  std::string chunk;
  Status s = b.store().ForEachClient(b.scope(), [&](const store::ClientRow& c) {
    if (plan.purge_older_than && c.instance < *plan.purge_older_than)
      return true;  // purged below
    std::string l = nfsdfs::EncodeAllowClient(req.seq, c.id, c.princhash);
    if (chunk.size() + l.size() > nfsdfs::kMaxDowncallLen) {
      if (!b.WriteNow(fd, chunk)) {
        delivered = false;
        return false;
      }
      chunk.clear();
    }
    chunk += l;
    ++allowed;
    return true;
  });
  if (s.ok() && delivered && !chunk.empty()) delivered = b.WriteNow(fd, chunk);
  if (s.ok() && !delivered) {
    LOG_ERROR("scope %s: the allow list for start %llu was not wholly "
              "written to allow_client; answered -EIO and nothing of the "
              "start is kept: no client may reclaim until a start succeeds "
              "(the kernel sends start again)",
              b.scope().c_str(), static_cast<unsigned long long>(req.seq));
    b.ReplyAllowDone(fd, req.seq, -EIO, 0, counters);
    return;
  }

  int64_t purged = 0;
  if (s.ok() && plan.purge_older_than)
    s = b.PurgeOlderThan(*plan.purge_older_than, &purged);
  store::ScopeRow next = b.row();
  SetScopeState(plan.next, &next);
  next.kernel_boot_time = req.kernel_boot_time;
  next.grace_started = b.now();
  if (s.ok()) s = b.store().PutScope(next);
  if (!s.ok()) {
    LOG_ERROR("scope %s: cannot start a server instance, no client may "
              "reclaim: %s",
              b.scope().c_str(), s.ToString().c_str());
    b.Fail(s);
    b.ReplyAllowDone(fd, req.seq, -EIO, 0, counters);
    return;
  }
  b.row() = next;
  ScopeStats& st = b.stats();
  st.clients -= purged;
  st.start_seen = true;
  st.start_instance = plan.instance;
  st.start_time = b.now();
  st.allowed = allowed;
  st.reclaimed = 0;
  LOG_NOTICE("scope %s: server instance %lld starts its grace period "
             "(kernel boot time %lld)%s; %lld client(s) may reclaim, %lld "
             "stale record(s) removed",
             b.scope().c_str(), static_cast<long long>(plan.instance),
             static_cast<long long>(req.kernel_boot_time),
             plan.restart_in_grace
                 ? "; the previous instance never ended its grace period"
                 : "",
             static_cast<long long>(allowed), static_cast<long long>(purged));
  b.ReplyAllowDone(fd, req.seq, 0, plan.instance, counters);
}

}  // namespace

const ChannelEntry kAllowClientChannel = {nfsdfs::Channel::kAllowClient,
                                          HandleStart};

}  // namespace nfsdh
