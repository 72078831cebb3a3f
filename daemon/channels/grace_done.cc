// grace_done: the running instance ended its grace period (PROTOCOL.md
// §3.4). The boot-time rotation and the purge of clients that did not
// reclaim are one transaction, so no crash can leave boot_time missing.
#include <cerrno>
#include <string>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"

namespace nfsdh::channels {

void HandleGraceDone(tracker::Transaction& t,
                     const nfsdfs::GraceDoneRequest& req, Reply& reply) {
  recovery::ScopeState st = t.state();
  recovery::GraceDonePlan plan = recovery::PlanGraceDone(st, req.instance);
  if (plan.verdict == recovery::Verdict::kStale) {
    reply.CountStale();
    LOG_WARNING("grace_done %llu: instance %lld is not in grace (%s, %s) in "
                "scope %s; refused with -ESTALE",
                static_cast<unsigned long long>(req.seq),
                static_cast<long long>(req.instance),
                tracker::DescribeInstance(st.current()).c_str(),
                st.in_grace() ? "in grace" : "not in grace",
                t.scope().c_str());
    ReplyStatus(reply, -ESTALE);
    return;
  }
  if (plan.verdict == recovery::Verdict::kAlreadyDone) {
    LOG_INFO("grace_done %llu: instance %lld already ended its grace period",
             static_cast<unsigned long long>(req.seq),
             static_cast<long long>(req.instance));
    ReplyStatus(reply, 0);
    return;
  }
  bool ended =
      t.EndGrace(req.instance, "grace_done " + std::to_string(req.seq));
  ReplyStatus(reply, ended ? 0 : -EIO);
}

}  // namespace nfsdh::channels
