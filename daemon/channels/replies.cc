// The four files' answers, and the refusal of a request that was not
// handled, in each protocol's form.
#include <cerrno>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"

namespace nfsdh::channels {

void ReplyStatus(Reply& reply, int status) {
  std::string r = nfsdfs::EncodeStatusReply(reply.seq(), status);
  std::string on_failure =
      status == 0 ? nfsdfs::EncodeStatusReply(reply.seq(), -EIO) : r;
  reply.Send(status, std::move(r), std::move(on_failure));
}

void ReplyAllowDone(Reply& reply, int status, int64_t instance) {
  std::string r = nfsdfs::EncodeAllowDone(reply.seq(), status, instance);
  std::string on_failure =
      status == 0 ? nfsdfs::EncodeAllowDone(reply.seq(), -EIO, 0) : r;
  reply.Send(status, std::move(r), std::move(on_failure));
}

bool RefuseIfStale(tracker::Transaction& t, Protocol p, int64_t instance,
                   Reply& reply) {
  if (t.CheckInstance(instance) != recovery::Verdict::kStale) return false;
  reply.CountStale();
  LOG_WARNING("%s %llu: instance %lld is not current (%s) in scope %s; "
              "refused with -ESTALE",
              ProtocolName(p), static_cast<unsigned long long>(reply.seq()),
              static_cast<long long>(instance),
              tracker::DescribeInstance(t.state().current()).c_str(),
              t.scope().c_str());
  ReplyStatus(reply, -ESTALE);
  return true;
}

std::string EncodeRefusal(Protocol p, std::string_view request,
                          uint64_t seq, int status) {
  switch (p) {
    case Protocol::kAllowClient:
      return nfsdfs::EncodeAllowDone(seq, status, 0);
    case Protocol::kCreateClient:
    case Protocol::kExpireClient:
    case Protocol::kGraceDone:
      return nfsdfs::EncodeStatusReply(seq, status);
    case Protocol::kCld:
      return EncodeCldRefusal(request, seq, status);
  }
  return nfsdfs::EncodeStatusReply(seq, status);
}

}  // namespace nfsdh::channels
