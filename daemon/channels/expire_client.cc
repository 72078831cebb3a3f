// expire_client: delete a client's record (PROTOCOL.md §3.3). Deleting a
// record that does not exist succeeds, so a replayed request is harmless.
#include <cerrno>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::channels {

void HandleExpire(tracker::Transaction& t, const nfsdfs::ExpireRequest& req,
                  Reply& reply) {
  if (RefuseIfStale(t, Protocol::kExpireClient, req.instance, reply)) return;
  bool existed = false;
  t.Remove(req.client_id, &existed);
  LOG_DEBUG("expire_client %llu: client %s %s",
            static_cast<unsigned long long>(req.seq),
            nfsdfs::EscapeForLog(req.client_id).c_str(),
            existed ? "removed" : "was not recorded");
  ReplyStatus(reply, 0);  // -EIO if the batch fails
}

}  // namespace nfsdh::channels
