// Reply: how a channel handler answers one request without seeing where the
// answer goes (the batch runner, daemon/batch/runner.h, keeps the queue and
// the daemon the file descriptors).
//
// Rationale. A reply that promises durability may only leave once the batch's
// transaction committed, and must turn into its failure form if it did not:
// so the final reply is queued with both forms, and the runner picks one
// after COMMIT. Only an allow list is written at once (the kernel ignores it
// unless the final "done 0" follows, PROTOCOL.md §3.1 and §4).
#ifndef DAEMON_CHANNELS_REPLY_H_
#define DAEMON_CHANNELS_REPLY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/stats.h"

namespace nfsdh::channels {

// What an endpoint speaks: one of the four upcall files of the nfsd
// filesystem (PROTOCOL.md §3), or the stock kernel's cld pipe (§4).
enum class Protocol {
  kAllowClient,
  kCreateClient,
  kExpireClient,
  kGraceDone,
  kCld,
};
// "allow_client", ..., "cld": for logs.
const char* ProtocolName(Protocol p);

// One upcall file or pipe as the runner sees it. The owner (the daemon's
// channel) opens it and keeps `fd` current; the runner writes the replies
// there and counts them.
struct Endpoint {
  explicit Endpoint(Protocol p = Protocol::kAllowClient) : protocol(p) {}
  Protocol protocol;
  int fd = -1;
  ChannelCounters counters;
};

// Writes `data` to `fd` in one write() (a downcall is one write); false,
// logged, if it failed or was short.
bool WriteDowncall(int fd, std::string_view data);

// A final reply waiting for the end of its batch.
struct QueuedReply {
  Endpoint* to = nullptr;
  uint64_t seq = 0;
  int status = 0;
  std::string reply;       // sent if the batch commits, or status != 0
  std::string on_failure;  // sent instead if status == 0 and it did not
  bool counted = true;     // in the endpoint's ok and failed counters
};

class Reply {
 public:
  Reply(Endpoint* to, uint64_t seq, std::vector<QueuedReply>* queue)
      : to_(to), seq_(seq), queue_(queue) {}

  uint64_t seq() const { return seq_; }
  // Queues the final reply. A status of 0 promises durability: if the
  // batch does not commit, `on_failure` (the same answer saying -EIO) is
  // sent instead. A reply that promises nothing passes itself as
  // `on_failure`.
  void Send(int status, std::string reply, std::string on_failure);
  // Writes part of the answer now (an allow list), before the commit.
  bool WriteNow(std::string_view data) { return WriteDowncall(to_->fd, data); }
  // The request was refused because its instance is not current.
  void CountStale() { ++to_->counters.stale; }

 private:
  Endpoint* to_;
  uint64_t seq_;
  std::vector<QueuedReply>* queue_;
};

}  // namespace nfsdh::channels

#endif  // DAEMON_CHANNELS_REPLY_H_
