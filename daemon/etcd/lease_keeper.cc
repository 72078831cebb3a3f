#include "daemon/etcd/lease_keeper.h"

#include <time.h>

#include <algorithm>
#include <chrono>

namespace nfsdh::etcd {

LeaseKeeper::LeaseKeeper(std::unique_ptr<Client> client, int64_t ttl_seconds)
    : client_(std::move(client)), ttl_ms_(ttl_seconds * 1000) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

int64_t LeaseKeeper::NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void LeaseKeeper::Keep(int64_t lease, int64_t granted_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  state_.lease = lease;
  state_.lost = false;
  state_.why.clear();
  state_.renewed_ms = granted_ms;
  changed_ = true;
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { Main(); });
  wake_.notify_all();
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

LeaseKeeper::State LeaseKeeper::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  State s = state_;
  if (s.lease != 0 && !s.lost && NowMs() - s.renewed_ms >= ttl_ms_) {
    s.lost = true;
    s.why = "no renewal of the etcd lease succeeded for " +
            std::to_string(ttl_ms_ / 1000) + " s, its time to live" +
            (s.why.empty() ? std::string() : " (last failure: " + s.why + ")");
  }
  return s;
}

void LeaseKeeper::Main() {
  // Renew every third of the time to live; after a failure, every second
  // (a renewal that succeeds late still saves the lease).
  const auto period = std::chrono::milliseconds(std::max<int64_t>(
      ttl_ms_ / 3, 500));
  std::unique_lock<std::mutex> lock(mu_);
  bool failing = false;
  while (!stop_) {
    wake_.wait_for(lock, failing ? std::chrono::seconds(1) : period,
                   [this] { return stop_ || changed_; });
    if (stop_) break;
    changed_ = false;
    if (state_.lease == 0 || state_.lost) continue;
    const int64_t lease = state_.lease;
    const int64_t started = NowMs();
    lock.unlock();
    int64_t ttl = 0;
    Status s = client_->LeaseKeepAlive(lease, &ttl);
    lock.lock();
    if (state_.lease != lease) continue;  // replaced meanwhile
    if (s.ok() && ttl > 0) {
      state_.renewed_ms = started;
      state_.why.clear();
      ++state_.renewals;
      failing = false;
    } else if (s.ok()) {
      state_.lost = true;
      state_.why = "etcd says the lease has expired";
      ++state_.failures;
    } else {
      state_.why = s.ToString();
      ++state_.failures;
      failing = true;
    }
  }
}

}  // namespace nfsdh::etcd
