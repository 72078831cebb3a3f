// create_client: record that a client may now believe it holds state
// (PROTOCOL.md §3.2). The reply is queued; it is sent after COMMIT.
#include <cerrno>
#include <optional>

#include "daemon/channels/channel.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh {
namespace {

void HandleCreate(Batch& b, int fd, std::string_view line,
                  ChannelCounters* counters) {
  ++counters->requests;
  auto parsed = nfsdfs::ParseCreateRequest(line);
  if (auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    b.Malformed(fd, nfsdfs::Channel::kCreateClient, line, *err, counters);
    return;
  }
  const auto& req = std::get<nfsdfs::CreateRequest>(parsed);
  if (b.RefuseIfStale(nfsdfs::Channel::kCreateClient, fd, req.seq, req.instance,
                      counters))
    return;
  if (!b.failed()) {
    // Read first, for status: a new record, or a reclaim (a record stamped
    // with an older instance, so on the allow list; see ScopeStats).
    std::optional<store::ClientRow> before;
    Status s = b.store().GetClient(b.scope(), req.client_id, &before);
    if (s.ok()) {
      store::ClientRow row;
      row.scope = b.scope();
      row.id = req.client_id;
      row.princhash = req.princhash;
      row.minor = req.minor == nfsdfs::Minor::kV41 ? 1 : 0;
      row.instance = req.instance;
      row.first_seen = row.last_seen = b.now();
      s = b.store().UpsertClient(row);
    }
    if (!s.ok()) {
      b.Fail(s);
    } else if (!before) {
      ++b.stats().clients;
      b.NoteChange(true, req.client_id);
    } else if (before->instance < req.instance && b.stats().start_seen &&
               b.stats().start_instance == req.instance) {
      ++b.stats().reclaimed;
    }
  }
  LOG_DEBUG("create_client %llu: %s client %s in instance %lld",
            static_cast<unsigned long long>(req.seq),
            nfsdfs::MinorName(req.minor),
            nfsdfs::EscapeForLog(req.client_id).c_str(),
            static_cast<long long>(req.instance));
  b.ReplyStatus(fd, req.seq, 0, counters);  // -EIO if the batch fails
}

}  // namespace

const ChannelEntry kCreateClientChannel = {nfsdfs::Channel::kCreateClient,
                                           HandleCreate};

}  // namespace nfsdh
