// grace_done: the running instance ended its grace period (PROTOCOL.md
// §3.4). The boot-time rotation and the purge of clients that did not
// reclaim are one transaction, so no crash can leave boot_time missing.
#include <cerrno>
#include <string>
#include <vector>

#include "daemon/channels/channel.h"
#include "daemon/util/log.h"

namespace nfsdh {
namespace {

void HandleGraceDone(Batch& b, int fd, std::string_view line,
                     ChannelCounters* counters) {
  ++counters->requests;
  auto parsed = nfsdfs::ParseGraceDoneRequest(line);
  if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    b.Malformed(fd, nfsdfs::Channel::kGraceDone, line, *err, counters);
    return;
  }
  const auto& req = std::get<nfsdfs::GraceDoneRequest>(parsed);
  recovery::ScopeState st = ToScopeState(b.row());
  recovery::GraceDonePlan plan = recovery::PlanGraceDone(st, req.instance);
  if (plan.verdict == recovery::Verdict::kStale) {
    ++counters->stale;
    LOG_WARNING("grace_done %llu: instance %lld is not in grace (%s, %s) in "
                "scope %s; refused with -ESTALE",
                static_cast<unsigned long long>(req.seq),
                static_cast<long long>(req.instance),
                DescribeInstance(st.current()).c_str(),
                st.in_grace() ? "in grace" : "not in grace",
                b.scope().c_str());
    b.ReplyStatus(fd, req.seq, -ESTALE, counters);
    return;
  }
  if (plan.verdict == recovery::Verdict::kAlreadyDone) {
    LOG_INFO("grace_done %llu: instance %lld already ended its grace period",
             static_cast<unsigned long long>(req.seq),
             static_cast<long long>(req.instance));
    b.ReplyStatus(fd, req.seq, 0, counters);
    return;
  }
  if (b.failed()) {
    b.ReplyStatus(fd, req.seq, -EIO, counters);
    return;
  }
  if (!EndGrace(b, req.instance,
                "grace_done " + std::to_string(req.seq))) {
    b.ReplyStatus(fd, req.seq, -EIO, counters);
    return;
  }
  b.ReplyStatus(fd, req.seq, 0, counters);
}

}  // namespace

const ChannelEntry kGraceDoneChannel = {nfsdfs::Channel::kGraceDone,
                                        HandleGraceDone};

}  // namespace nfsdh
