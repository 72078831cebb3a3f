#include "daemon/channels/reply.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/util/log.h"

namespace nfsdh::channels {

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kAllowClient:
      return "allow_client";
    case Protocol::kCreateClient:
      return "create_client";
    case Protocol::kExpireClient:
      return "expire_client";
    case Protocol::kGraceDone:
      return "grace_done";
    case Protocol::kCld:
      return "cld";
  }
  return "?";
}

bool WriteDowncall(int fd, std::string_view data) {
  for (;;) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n == static_cast<ssize_t>(data.size())) return true;
    if (n < 0 && errno == EINTR) continue;
    LOG_WARNING("write of %zu-byte downcall failed: %s", data.size(),
                n < 0 ? strerror(errno) : "short write");
    return false;
  }
}

void Reply::Send(int status, std::string reply, std::string on_failure) {
  queue_->push_back(
      {to_, seq_, status, std::move(reply), std::move(on_failure), true});
}

}  // namespace nfsdh::channels
