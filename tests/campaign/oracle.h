// Oracle: which clients a server start must allow to reclaim, and which it
// must not, from the RFC's rules alone.
//
// Rationale. RFC 7530 §9.6.3 and RFC 8881 §8.4.3 let a client reclaim after a
// server restart only if no conflicting state can have been granted since it
// last held state. Conflicting state can be granted once a grace period is
// over (the server then serves everybody) and once a client's lease expired
// and its record was removed (PROTOCOL.md §3.3). So, after a start:
//  (a) a client MUST NOT be allowed if it has no acknowledged create since
//      it was last expired: it never told the server, durably, that it holds
//      state (scenarios 2, 3, 4, 8 of research/recovery.md);
//  (b) nor if a grace period completed during which it did not create
//      (reclaim and RECLAIM_COMPLETE, or OPEN_CONFIRM) (scenarios 5, 7, 10,
//      16). A grace period completes when the kernel ends it: in the
//      four-file protocol only after grace_done was answered 0 (§7: the
//      kernel keeps grace open otherwise); with the stock kernel's cld pipe
//      whatever the GraceDone upcall was answered (the cld rule, scenario
//      16);
//  and a client MUST be allowed if it had an acknowledged create in the last
//  instance that completed its grace period or later, with no acknowledged
//  expire since and nothing uncertain since (scenarios 1, 6, 12, 17).
// Uncertain means a request the helper answered -EIO, or that got no answer
// (withdrawn, timed out): its change may or may not have reached the disk
// (PROTOCOL.md §5), so the oracle follows both worlds. Per client it keeps
//  - must: the oldest instance a record of the client can be stamped with in
//    every world, if one exists in every world;
//  - may: the newest instance a record of it can be stamped with in some
//    world, if one exists in some world.
// A grace period that certainly completed in instance i removes every world
// whose record is older than i; one that may have completed in the helper's
// database (a grace_done answered -EIO or lost, four files) removes the
// certainty of such records but not their possibility. Everything that is
// neither MUST nor MUST NOT is MAY: the helper may allow or deny it.
//
// This is deliberately not daemon/recovery/: it knows no boot_time,
// new_boot_time or purge, only what nfsd was told and when grace ended.
// Instances are numbered 1, 2, ... in the order the kernel started them.
#ifndef TESTS_CAMPAIGN_ORACLE_H_
#define TESTS_CAMPAIGN_ORACLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace nfsdh::campaign {

enum class Verdict { kMustAllow, kMustNotAllow, kMay };
const char* VerdictName(Verdict v);

class Oracle {
 public:
  // The kernel started a new server instance (whatever the helper answered).
  void Start() { ++current_; }
  // create_client / cld Create of `id` in the running instance: answered 0
  // (acked) or not (-EIO, no answer).
  void Create(const std::string& id, bool acked);
  // expire_client / cld Remove.
  void Expire(const std::string& id, bool acked);
  // The grace period of the running instance completed (`certain`: the
  // kernel ended it), or may have completed in the helper's database only.
  void GraceCompleted(bool certain);

  Verdict Classify(const std::string& id) const;
  // Why, for a violation report: "acked create in instance 3, ...".
  std::string Explain(const std::string& id) const;
  uint64_t current() const { return current_; }

 private:
  struct Client {
    std::optional<uint64_t> must;  // oldest stamp, held in every world
    std::optional<uint64_t> may;   // newest stamp, held in some world
    std::string why;               // the events that shaped it, in order
  };
  uint64_t current_ = 0;
  std::map<std::string, Client> clients_;
};

}  // namespace nfsdh::campaign

#endif  // TESTS_CAMPAIGN_ORACLE_H_
