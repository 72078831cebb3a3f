// expire_client: delete a client's record (PROTOCOL.md §3.3). Deleting a
// record that does not exist succeeds, so a replayed request is harmless.
#include <cerrno>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::channels {

void HandleExpire(tracker::Transaction& t, const nfsdfs::ExpireRequest& req,
                  channels::Reply& reply) {
  if (t.CheckInstance(req.instance) == recovery::Verdict::kStale) {
    reply.CountStale();
    LOG_WARNING("expire_client %llu: instance %lld is not current (%s) in "
                "scope %s; refused with -ESTALE",
                static_cast<unsigned long long>(req.seq),
                static_cast<long long>(req.instance),
                tracker::DescribeInstance(t.state().current()).c_str(),
                t.scope().c_str());
    ReplyStatus(reply, -ESTALE);
    return;
  }
  bool existed = false;
  t.Remove(req.client_id, &existed);
  LOG_DEBUG("expire_client %llu: client %s %s",
            static_cast<unsigned long long>(req.seq),
            nfsdfs::EscapeForLog(req.client_id).c_str(),
            existed ? "removed" : "was not recorded");
  ReplyStatus(reply, 0);  // -EIO if the batch fails
}

}  // namespace nfsdh::channels
