// create_client: record that a client may now believe it holds state
// (PROTOCOL.md §3.2). The reply is queued; it is sent after COMMIT.
#include <cerrno>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::channels {

void HandleCreate(tracker::Transaction& t, const nfsdfs::CreateRequest& req,
                  Reply& reply) {
  if (RefuseIfStale(t, Protocol::kCreateClient, req.instance, reply)) return;
  t.Record(req.instance, req.client_id, req.princhash,
           req.minor == nfsdfs::Minor::kV41 ? 1 : 0);
  LOG_DEBUG("create_client %llu: %s client %s in instance %lld",
            static_cast<unsigned long long>(req.seq),
            nfsdfs::MinorName(req.minor),
            nfsdfs::EscapeForLog(req.client_id).c_str(),
            static_cast<long long>(req.instance));
  ReplyStatus(reply, 0);  // -EIO if the batch fails
}

}  // namespace nfsdh::channels
