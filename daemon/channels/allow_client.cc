// allow_client: a server instance starts (PROTOCOL.md §3.1).
//
// The allow list is streamed first, several lines per write, from the
// batch's transaction: the records the start keeps. Only once every line is
// written does the tracker apply the start (the purge, the new instance, the
// scope row) in that transaction; "done 0" follows only after COMMIT. A list
// that was not wholly written is answered -EIO and nothing of the start is
// applied: the kernel, left without an instance, sends start again
// (PROTOCOL.md §7), and nothing the failed start did (a purge the HA callout
// would announce, an instance nobody holds) is kept.
#include <cerrno>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"

namespace nfsdh::channels {
namespace {

// The allow list as lines of "<seq> allow ...", at most kMaxDowncallLen
// bytes per write.
class LineAllowList : public tracker::AllowList {
 public:
  explicit LineAllowList(Reply& reply) : reply_(reply) {}
  Offer Add(const store::ClientRow& c) override {
    std::string l = nfsdfs::EncodeAllowClient(reply_.seq(), c.id, c.princhash);
    if (chunk_.size() + l.size() > nfsdfs::kMaxDowncallLen) {
      if (!reply_.WriteNow(chunk_)) return Offer::kUndelivered;
      chunk_.clear();
    }
    chunk_ += l;
    return Offer::kAllowed;
  }
  bool Close() override { return chunk_.empty() || reply_.WriteNow(chunk_); }

 private:
  Reply& reply_;
  std::string chunk_;
};

}  // namespace

void HandleStart(tracker::Transaction& t, const nfsdfs::StartRequest& req,
                 Reply& reply) {
  if (req.version != nfsdfs::kProtocolVersion) {
    LOG_ERROR("allow_client: the kernel speaks protocol version %llu; this "
              "nfsd-helper speaks version %u",
              static_cast<unsigned long long>(req.version),
              nfsdfs::kProtocolVersion);
    ReplyAllowDone(reply, -EPROTONOSUPPORT, 0);
    return;
  }
  LineAllowList list(reply);
  tracker::Transaction::Started st;
  switch (t.Start({req.kernel_boot_time, false}, &list, &st)) {
    case tracker::Transaction::StartResult::kStarted:
      break;
    case tracker::Transaction::StartResult::kUndelivered:
      LOG_ERROR("scope %s: the allow list for start %llu was not wholly "
                "written to allow_client; answered -EIO and nothing of the "
                "start is kept: no client may reclaim until a start succeeds "
                "(the kernel sends start again)",
                t.scope().c_str(), static_cast<unsigned long long>(req.seq));
      ReplyAllowDone(reply, -EIO, 0);
      return;
    case tracker::Transaction::StartResult::kFailed:
      ReplyAllowDone(reply, -EIO, 0);
      return;
  }
  LOG_NOTICE("scope %s: server instance %lld starts its grace period "
             "(kernel boot time %lld)%s; %lld client(s) may reclaim, %lld "
             "stale record(s) removed",
             t.scope().c_str(), static_cast<long long>(st.instance),
             static_cast<long long>(req.kernel_boot_time),
             st.restart_in_grace
                 ? "; the previous instance never ended its grace period"
                 : "",
             static_cast<long long>(st.allowed),
             static_cast<long long>(st.purged));
  ReplyAllowDone(reply, 0, st.instance);
}

}  // namespace nfsdh::channels
