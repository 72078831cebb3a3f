// The four files' answers, and the refusal of a request that was not
// handled, in each protocol's form.
#include <cerrno>

#include "daemon/channels/handlers.h"

namespace nfsdh::channels {

void ReplyStatus(channels::Reply& reply, int status) {
  std::string r = nfsdfs::EncodeStatusReply(reply.seq(), status);
  std::string on_failure =
      status == 0 ? nfsdfs::EncodeStatusReply(reply.seq(), -EIO) : r;
  reply.Send(status, std::move(r), std::move(on_failure));
}

void ReplyAllowDone(channels::Reply& reply, int status, int64_t instance) {
  std::string r = nfsdfs::EncodeAllowDone(reply.seq(), status, instance);
  std::string on_failure =
      status == 0 ? nfsdfs::EncodeAllowDone(reply.seq(), -EIO, 0) : r;
  reply.Send(status, std::move(r), std::move(on_failure));
}

std::string EncodeRefusal(channels::Protocol p, std::string_view request,
                          uint64_t seq, int status) {
  switch (p) {
    case channels::Protocol::kAllowClient:
      return nfsdfs::EncodeAllowDone(seq, status, 0);
    case channels::Protocol::kCreateClient:
    case channels::Protocol::kExpireClient:
    case channels::Protocol::kGraceDone:
      return nfsdfs::EncodeStatusReply(seq, status);
    case channels::Protocol::kCld:
      return EncodeCldRefusal(request, seq, status);
  }
  return nfsdfs::EncodeStatusReply(seq, status);
}

}  // namespace nfsdh::channels
