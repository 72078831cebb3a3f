// expire_client: delete a client's record (PROTOCOL.md §3.3). Deleting a
// record that does not exist succeeds, so a replayed request is harmless.
#include <cerrno>

#include "daemon/channels/channel.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh {
namespace {

void HandleExpire(Batch& b, int fd, std::string_view line,
                  ChannelCounters* counters) {
  ++counters->requests;
  auto parsed = nfsdfs::ParseExpireRequest(line);
  if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    b.Malformed(fd, nfsdfs::Channel::kExpireClient, line, *err, counters);
    return;
  }
  const auto& req = std::get<nfsdfs::ExpireRequest>(parsed);
  if (b.RefuseIfStale(nfsdfs::Channel::kExpireClient, fd, req.seq, req.instance,
                      counters))
    return;
  bool existed = false;
  if (!b.failed()) {
    Status s = b.store().DeleteClient(b.scope(), req.client_id, &existed);
    if (!s.ok())
      b.Fail(s);
    else if (existed) {
      --b.stats().clients;
      b.NoteChange(false, req.client_id);
    }
  }
  LOG_DEBUG("expire_client %llu: client %s %s",
            static_cast<unsigned long long>(req.seq),
            nfsdfs::EscapeForLog(req.client_id).c_str(),
            existed ? "removed" : "was not recorded");
  b.ReplyStatus(fd, req.seq, 0, counters);  // -EIO if the batch fails
}

}  // namespace

const ChannelEntry kExpireClientChannel = {nfsdfs::Channel::kExpireClient,
                                           HandleExpire};

}  // namespace nfsdh
