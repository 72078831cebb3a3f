// etcd::LeaseKeeper: keeps this node's etcd lease alive from a thread of its
// own, and says when it must be taken as lost.
//
// Rationale. The lease is what lets a node serve its scopes (ETCD.md,
// Fencing): while it lives nobody else may take them, and once it is gone
// every write of this node fails at etcd. It must therefore be renewed on
// time whatever the event loop is doing (a long batch, a helper-ctl dump),
// so it is renewed here, every third of its time to live, with a Client of
// its own (a Client serves one thread).
//
// Lost. etcd deletes a lease TTL seconds after its last renewal, and a
// renewal this node saw succeed was made at etcd before that; so once TTL
// seconds of this process's monotonic clock have passed since the start of
// the last renewal that succeeded, the lease is certainly gone (etcd may
// have kept it longer, across a leader election, which only makes that
// conclusion early, never late). Lost() then says so, as it does when etcd
// answers that the lease has expired. Safety never depends on it: etcd
// itself refuses the writes of an expired lease. It lets the daemon stop
// acknowledging and stop waiting on etcd at once, and say why.
//
// Thread affinity: Keep(), Stop() and Get() may be called from any thread.
#ifndef DAEMON_ETCD_LEASE_KEEPER_H_
#define DAEMON_ETCD_LEASE_KEEPER_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/etcd/client.h"

namespace nfsdh::etcd {

class LeaseKeeper {
 public:
  struct State {
    int64_t lease = 0;   // the lease kept alive; 0: none
    bool lost = false;   // it has expired, or must be taken as expired
    std::string why;     // why it is lost, or the last renewal's failure
    int64_t renewed_ms = 0;  // monotonic ms of the last renewal that worked
    uint64_t renewals = 0;   // that worked
    uint64_t failures = 0;
  };

  // `client` is this keeper's own; the lease is `ttl_seconds` long.
  LeaseKeeper(std::unique_ptr<Client> client, int64_t ttl_seconds);
  ~LeaseKeeper();  // Stop()
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Keeps `lease` alive from now on, granted (or last renewed) at monotonic
  // millisecond `granted_ms`; replaces the lease kept so far. Starts the
  // thread the first time.
  void Keep(int64_t lease, int64_t granted_ms);
  // Ends the thread (a renewal in flight finishes first, within the
  // client's request timeout).
  void Stop();
  State Get() const;

  // The current monotonic clock, in ms.
  static int64_t NowMs();

 private:
  void Main();

  std::unique_ptr<Client> client_;
  const int64_t ttl_ms_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  State state_;
  bool stop_ = false;
  bool changed_ = false;  // Keep() gave another lease
  std::thread thread_;
};

}  // namespace nfsdh::etcd

#endif  // DAEMON_ETCD_LEASE_KEEPER_H_
