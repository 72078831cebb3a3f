// A check of the tracker over any store::Backend beside the recovery
// engine's Model (test support, Catch2): every verb must change the records,
// the scope row, the counts and the HA callout's outbox exactly as the model
// and each other say, and a transaction that does not commit must leave all
// of them as they were. Used on SQLite (tracker_test.cc) and on etcd
// (daemon/etcd/etcd_store_test.cc).
#ifndef DAEMON_TRACKER_MODEL_CHECK_H_
#define DAEMON_TRACKER_MODEL_CHECK_H_

#include <cstdint>
#include <map>
#include <string>

#include "daemon/store/backend.h"
#include "daemon/tracker/tracker.h"

namespace nfsdh::tracker::testing {

// An allow list that keeps what it was offered; kUndelivered from the
// record number `undeliverable_after` on (-1: never).
class Collect : public AllowList {
 public:
  explicit Collect(int undeliverable_after = -1)
      : fail_after_(undeliverable_after) {}
  Offer Add(const store::ClientRow& r) override {
    if (fail_after_ >= 0 && static_cast<int>(got.size()) >= fail_after_)
      return Offer::kUndelivered;
    got[r.id] = r.princhash;
    return Offer::kAllowed;
  }
  std::map<std::string, std::string> got;

 private:
  int fail_after_;
};

// Plays `steps` random verbs (start, create of the current or a stale
// instance, expire, grace done, import, purge; one transaction in five made
// to fail) of seed `seed` on `scope` of `backend`, which must hold nothing
// of the scope yet, checking after each.
void CheckAgainstModel(store::Backend* backend, const std::string& scope,
                       uint32_t seed, int steps);

}  // namespace nfsdh::tracker::testing

#endif  // DAEMON_TRACKER_MODEL_CHECK_H_
