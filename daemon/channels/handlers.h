// Channel handlers: each applies one parsed request to a transaction of the
// tracker (daemon/tracker/tracker.h) and answers it through a channels::Reply.
//
// The batch runner (daemon/batch/runner.h) parses, counts and, when it is
// malformed, answers every request before a handler sees it; a handler
// decides only what the request means: which tracker verb, and which answer.
// No handler sees a file descriptor or touches the store's rows.
//
// One file each: allow_client.cc, create_client.cc, expire_client.cc,
// grace_done.cc (PROTOCOL.md §3), and cld_handler.cc for the stock kernel's cld pipe
// (§4).
#ifndef DAEMON_CHANNELS_HANDLERS_H_
#define DAEMON_CHANNELS_HANDLERS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/channels/reply.h"
#include "daemon/tracker/tracker.h"
#include "nfsdfs-proto/cld.h"
#include "nfsdfs-proto/message.h"

namespace nfsdh::channels {

void HandleStart(tracker::Transaction& t, const nfsdfs::StartRequest& req,
                 Reply& reply);
void HandleCreate(tracker::Transaction& t, const nfsdfs::CreateRequest& req,
                  Reply& reply);
void HandleExpire(tracker::Transaction& t, const nfsdfs::ExpireRequest& req,
                  Reply& reply);
void HandleGraceDone(tracker::Transaction& t,
                     const nfsdfs::GraceDoneRequest& req, Reply& reply);
void HandleCld(tracker::Transaction& t, const nfsdfs::cld::Message& req,
               Reply& reply);

// A cld upcall as the pipe delivered it, decoded; an upcall that names a
// client must name one.
nfsdfs::Parsed<nfsdfs::cld::Message> ParseCldUpcall(std::string_view msg);

// The answer `status` to a request of `p` that was not handled (malformed:
// -EINVAL), in the form its protocol answers with: "<seq> <status>", an
// allow_client "done", or a cld message at the size of `request`.
std::string EncodeRefusal(Protocol p, std::string_view request,
                          uint64_t seq, int status);
// Its cld form (cld_handler.cc).
std::string EncodeCldRefusal(std::string_view request, uint64_t seq,
                             int status);

// The four files' answers: "<seq> <status>" and "<seq> done <status>
// <instance>". A status of 0 promises durability (-EIO if the batch does
// not commit).
void ReplyStatus(Reply& reply, int status);
// For create_client and expire_client: if `instance` is not the scope's
// current one, logs it, answers -ESTALE and returns true.
bool RefuseIfStale(tracker::Transaction& t, Protocol p, int64_t instance,
                   Reply& reply);
void ReplyAllowDone(Reply& reply, int status, int64_t instance);

}  // namespace nfsdh::channels

#endif  // DAEMON_CHANNELS_HANDLERS_H_
