#include "tests/soak/soak.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "daemon/store/store.h"
#include "nfsdfs-proto/message.h"
#include "tests/sim/process.h"
#include "tests/sim/sim_kernel.h"

namespace nfsdh::soak {
namespace {

using nfsdfs::Channel;
using nfsdfs::Minor;
using nfsdsim::ReclaimResult;
using Clock = std::chrono::steady_clock;

// The rules of PROTOCOL.md §4, from the kernel's point of view: server
// instances are numbered 1, 2, ... in the order they started; a client's
// record carries the instance of its last acknowledged create.
class RfcModel {
 public:
  void Start() {
    ++current_;
    // Only the last instance that completed its grace period matters: a
    // client that did not establish state in it or later may not reclaim.
    Drop(completed_);
    in_grace_ = true;
  }
  void Create(const std::string& id, const std::string& hash) {
    records_[id] = {hash, current_};
  }
  void Expire(const std::string& id) { records_.erase(id); }
  void GraceDone() {
    completed_ = current_;
    in_grace_ = false;
    Drop(completed_);
  }
  bool in_grace() const { return in_grace_; }
  // Client id -> principal hash ("" for none).
  std::map<std::string, std::string> Records() const {
    std::map<std::string, std::string> out;
    for (const auto& [id, r] : records_) out[id] = r.first;
    return out;
  }

 private:
  void Drop(uint64_t older_than) {
    for (auto it = records_.begin(); it != records_.end();)
      it = it->second.second < older_than ? records_.erase(it) : std::next(it);
  }
  uint64_t current_ = 0;
  uint64_t completed_ = 0;
  bool in_grace_ = false;
  std::map<std::string, std::pair<std::string, uint64_t>> records_;
};

std::string ClientId(int i) { return "soak-client-" + std::to_string(i); }

// Two clients in three have a principal.
std::string ClientHash(int i) {
  if (i % 3 == 0) return "";
  std::string h(32, '\0');
  for (size_t b = 0; b < h.size(); ++b)
    h[b] = static_cast<char>((i * 131 + static_cast<int>(b) * 7) & 0xff);
  return h;
}

class Soak {
 public:
  explicit Soak(const Options& o) : o_(o), drng_(o.seed), krng_(o.seed ^ 0x5a5a) {}
  Figures Run();

 private:
  // ---- helper lifecycle (killer thread, then the driver at the end) ----
  bool StartHelper();
  bool WaitServing();
  void KillHelper();
  void KillerLoop();

  // ---- the workload (driver thread) ----
  void DriverStep();
  void DoStart();
  void DoStorm(Channel c, const std::vector<int>& clients);
  void DoGraceDone();
  void CheckDatabase();
  void CheckAllow(const std::map<std::string, std::string>& allow);
  bool Answered(const nfsdsim::AwaitResult& r, const std::string& what);
  bool AnsweredStatus(const nfsdsim::StatusResult& r, const std::string& what);
  void Problem(const std::string& what);
  void Log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  Options o_;
  std::mt19937_64 drng_;  // driver
  std::mt19937_64 krng_;  // killer
  std::string dir_, mount_, db_, sock_;
  std::unique_ptr<nfsdsim::SimKernel> k_;
  std::unique_ptr<nfsdsim::Process> helper_;
  RfcModel model_;
  std::set<std::string> reclaimed_;  // in the current instance
  std::map<std::string, std::string> allow_;
  int64_t boot_ = 1000;
  uint64_t ops_ = 0;

  // Guards f_, last_helper_log_, and helper_ against the driver (only the
  // killer thread changes helper_).
  std::mutex mu_;
  Figures f_;
  std::string last_helper_log_;
  std::atomic<bool> abort_{false};
  std::atomic<bool> kills_done_{false};
};

void Soak::Problem(const std::string& what) {
  std::lock_guard<std::mutex> l(mu_);
  if (f_.first_problem.empty()) {
    f_.first_problem = what;
    std::string tail = last_helper_log_.size() > 2000
                           ? last_helper_log_.substr(last_helper_log_.size() - 2000)
                           : last_helper_log_;
    if (helper_) {
      std::string cur = helper_->Stderr();
      if (cur.size() > 2000) cur = cur.substr(cur.size() - 2000);
      tail += cur;
    }
    f_.first_problem += "\n-- helper log (end) --\n" + tail;
  }
  Log("PROBLEM: " + what);
}

bool Soak::StartHelper() {
  if (helper_) {
    std::lock_guard<std::mutex> l(mu_);
    last_helper_log_ = helper_->Stderr();
  }
  {
    // The driver reads the helper's log when it reports a problem.
    std::lock_guard<std::mutex> l(mu_);
    helper_ = std::make_unique<nfsdsim::Process>();
  }
  std::string err;
  if (!helper_->Start({o_.helper, "--foreground", "--nfsdfs", mount_, "--db",
                       db_, "--ctl-socket", sock_},
                      {}, &err)) {
    Problem("cannot start " + o_.helper + ": " + err);
    return false;
  }
  return true;
}

bool Soak::WaitServing() {
  for (auto c : nfsdsim::kAllChannels) {
    bool open = k_->WaitForStats(
        c, [](const nfsdsim::ChannelStats& s) { return s.open_handles > 0; },
        o_.hang_timeout);
    if (!open) {
      {
        std::lock_guard<std::mutex> l(mu_);
        ++f_.helper_failures;
      }
      Problem(std::string("the helper did not open ") +
              nfsdfs::ChannelFileName(c) + " (" +
              (helper_->IsRunning() ? "still running"
                                    : helper_->exit_status()->ToString()) +
              ")");
      return false;
    }
  }
  return true;
}

void Soak::KillHelper() {
  auto t = k_->TotalStats();
  bool in_flight = t.pending + t.outstanding > 0;
  if (!helper_->IsRunning()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++f_.helper_failures;
    }
    Problem("the helper died by itself: " +
            helper_->exit_status()->ToString());
  }
  helper_->Kill9();
  if (!helper_->Wait(o_.hang_timeout)) Problem("a killed helper is not reaped");
  if (!k_->WaitForAllClosed(o_.hang_timeout))
    Problem("a killed helper's files stay open");
  std::lock_guard<std::mutex> l(mu_);
  ++f_.kills;
  if (in_flight) ++f_.kills_in_flight;
  if (o_.verbose)
    Log("kill " + std::to_string(f_.kills) +
        (in_flight ? " (requests in flight)" : ""));
  else if (f_.kills % 100 == 0)
    Log("kills " + std::to_string(f_.kills) + ", requests " +
        std::to_string(k_->TotalStats().queued));
}

void Soak::KillerLoop() {
  for (int i = 0; i < o_.kills && !abort_; ++i) {
    if (krng_() % 4 == 0) {
      // In its start-up: opening and recovering the database, or reading
      // the requests a previous helper left unanswered.
      std::this_thread::sleep_for(
          std::chrono::microseconds(krng_() % 3000));
    } else {
      if (!WaitServing()) {
        abort_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(
          3000 + krng_() % (static_cast<uint64_t>(o_.max_delay_ms) * 1000)));
    }
    KillHelper();
    if (!StartHelper()) {
      abort_ = true;
      break;
    }
  }
  if (!abort_ && !WaitServing()) abort_ = true;
  kills_done_ = true;
}

bool Soak::Answered(const nfsdsim::AwaitResult& r, const std::string& what) {
  if (!r.answered) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++f_.hung;
    }
    Problem(what + ": no reply within " +
            std::to_string(o_.hang_timeout.count()) + " ms");
    abort_ = true;  // the model cannot know whether it was applied
    return false;
  }
  if (r.status != 0) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++f_.bad_replies;
    }
    Problem(what + ": status " + std::to_string(r.status));
    abort_ = true;
    return false;
  }
  std::lock_guard<std::mutex> l(mu_);
  ++f_.acked;
  return true;
}

bool Soak::AnsweredStatus(const nfsdsim::StatusResult& r,
                          const std::string& what) {
  nfsdsim::AwaitResult a;
  a.answered = !r.timed_out;
  a.status = r.status;
  return Answered(a, what);
}

void Soak::CheckAllow(const std::map<std::string, std::string>& allow) {
  auto want = model_.Records();
  uint64_t lost = 0, unsafe = 0;
  for (const auto& [id, hash] : want) {
    auto it = allow.find(id);
    if (it == allow.end()) {
      ++lost;
      Problem("lost ack: " + id + " is not in the allow list");
    } else if (it->second != hash) {
      ++unsafe;
      Problem("unsafe allow: " + id + " allowed with another principal");
    }
  }
  for (const auto& [id, hash] : allow) {
    if (!want.count(id)) {
      ++unsafe;
      Problem("unsafe allow: " + id + " may not reclaim");
    }
  }
  // The kernel's decisions, from the allow list it was given.
  uint64_t checked = 0;
  for (int i = 0; i < o_.clients; ++i) {
    std::string id = ClientId(i), hash = ClientHash(i);
    bool may = want.count(id) && (want[id].empty() || want[id] == hash);
    bool got = k_->Reclaim(id, hash) == ReclaimResult::kAllowed;
    ++checked;
    if (got && !may) {
      ++unsafe;
      Problem("unsafe allow: the kernel let " + id + " reclaim");
    } else if (!got && may) {
      ++lost;
      Problem("lost ack: the kernel refused " + id + "'s reclaim");
    }
    if (!hash.empty()) {
      ++checked;
      if (k_->Reclaim(id, ClientHash(i + 1000)) == ReclaimResult::kAllowed) {
        ++unsafe;
        Problem("unsafe allow: " + id + " reclaimed with a wrong principal");
      }
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  f_.lost_acks += lost;
  f_.unsafe_allows += unsafe;
  f_.reclaims_checked += checked;
}

void Soak::DoStart() {
  bool in_grace = model_.in_grace();
  auto r = k_->StartInstance(++boot_);
  nfsdsim::AwaitResult a;
  a.answered = !r.timed_out;
  a.status = r.status;
  if (!Answered(a, "start")) return;
  model_.Start();
  reclaimed_.clear();
  allow_ = r.allow;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++f_.starts;
    if (in_grace) ++f_.restarts_in_grace;
  }
  CheckAllow(r.allow);
}

void Soak::DoStorm(Channel c, const std::vector<int>& clients) {
  int64_t inst = k_->CurrentInstance();
  std::vector<nfsdsim::Ticket> tickets;
  for (int i : clients) {
    tickets.push_back(k_->SubmitWithSeq(c, [&](uint64_t seq) {
      if (c == Channel::kCreateClient) {
        nfsdfs::CreateRequest q;
        q.seq = seq;
        q.instance = inst;
        q.client_id = ClientId(i);
        q.princhash = ClientHash(i);
        q.minor = i % 2 ? Minor::kV41 : Minor::kV40;
        return nfsdfs::EncodeRequest(q);
      }
      nfsdfs::ExpireRequest q;
      q.seq = seq;
      q.instance = inst;
      q.client_id = ClientId(i);
      return nfsdfs::EncodeRequest(q);
    }));
  }
  for (size_t n = 0; n < tickets.size(); ++n) {
    if (!tickets[n].ok()) {
      Problem("the simulator refused a request: " + tickets[n].error);
      abort_ = true;
      return;
    }
    auto r = k_->Await(tickets[n]);
    const char* what = c == Channel::kCreateClient ? "create " : "expire ";
    if (!Answered(r, what + ClientId(clients[n]))) continue;
    if (c == Channel::kCreateClient)
      model_.Create(ClientId(clients[n]), ClientHash(clients[n]));
    else
      model_.Expire(ClientId(clients[n]));
  }
}

void Soak::DoGraceDone() {
  if (!AnsweredStatus(k_->EndGrace(), "grace_done")) return;
  model_.GraceDone();
  std::lock_guard<std::mutex> l(mu_);
  ++f_.grace_ends;
}

void Soak::CheckDatabase() {
  // The reader may meet the restarted helper recovering the WAL: retry.
  std::map<std::string, std::string> got;
  Status s;
  for (int attempt = 0; attempt < 100; ++attempt) {
    got.clear();
    std::unique_ptr<store::Store> st;
    s = store::Store::Open(db_, store::Store::Mode::kReadOnlyChecked, &st);
    if (s.ok())
      s = st->ForEachClient("default", [&](const store::ClientRow& c) {
        got[c.id] = c.princhash;
        return true;
      });
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!s.ok()) {
    Problem("cannot read the database: " + s.ToString());
    return;
  }
  auto want = model_.Records();
  uint64_t lost = 0, phantom = 0;
  for (const auto& [id, hash] : want) {
    auto it = got.find(id);
    if (it == got.end() || it->second != hash) {
      ++lost;
      Problem("lost ack: " + id + " is not in the database as acknowledged");
    }
  }
  for (const auto& [id, hash] : got) {
    if (!want.count(id)) {
      ++phantom;
      Problem("unsafe allow: the database holds " + id +
              ", which the model forbids to reclaim");
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  ++f_.db_checks;
  f_.lost_acks += lost;
  f_.unsafe_allows += phantom;
}

void Soak::DriverStep() {
  ++ops_;
  auto pick = [&](int lo, int hi) {
    return lo + static_cast<int>(drng_() % static_cast<uint64_t>(hi - lo + 1));
  };
  int r = pick(0, 99);
  if (k_->CurrentInstance() == 0 || r < 6) {
    DoStart();
  } else if (r < 16 && model_.in_grace()) {
    DoGraceDone();
  } else if (r < 40 && model_.in_grace()) {
    // Reclaims: RECLAIM_COMPLETE of allowed clients that have not yet.
    std::vector<int> v;
    for (int i = 0; i < o_.clients && v.size() < 4; ++i) {
      int c = pick(0, o_.clients - 1);
      std::string id = ClientId(c);
      if (allow_.count(id) && !reclaimed_.count(id) &&
          std::find(v.begin(), v.end(), c) == v.end()) {
        if (k_->Reclaim(id, ClientHash(c)) != ReclaimResult::kAllowed) {
          {
            std::lock_guard<std::mutex> l(mu_);
            ++f_.lost_acks;
          }
          Problem("lost ack: the kernel refused " + id + "'s reclaim");
          continue;
        }
        v.push_back(c);
        reclaimed_.insert(id);
      }
    }
    if (!v.empty()) DoStorm(Channel::kCreateClient, v);
  } else if (r < 78) {
    std::vector<int> v;
    int n = pick(1, 8);
    while (static_cast<int>(v.size()) < n) {
      int c = pick(0, o_.clients - 1);
      if (std::find(v.begin(), v.end(), c) == v.end()) v.push_back(c);
    }
    DoStorm(Channel::kCreateClient, v);
  } else {
    // Expire mostly recorded clients, now and then one that is not.
    std::vector<int> v;
    auto rec = model_.Records();
    int n = pick(1, 4);
    for (int tries = 0; static_cast<int>(v.size()) < n && tries < 50;
         ++tries) {
      int c = pick(0, o_.clients - 1);
      if ((rec.count(ClientId(c)) || pick(0, 9) == 0) &&
          std::find(v.begin(), v.end(), c) == v.end())
        v.push_back(c);
    }
    if (!v.empty()) DoStorm(Channel::kExpireClient, v);
  }
  if (ops_ % 3 == 0 && !abort_) CheckDatabase();
}

Figures Soak::Run() {
  auto t0 = Clock::now();
  char tmpl[] = "/tmp/nfsdh-soak-XXXXXX";
  if (!mkdtemp(tmpl)) {
    Problem("mkdtemp failed");
    return f_;
  }
  dir_ = tmpl;
  mount_ = dir_ + "/nfsd";
  db_ = dir_ + "/state/state.sqlite";
  sock_ = dir_ + "/ctl.sock";
  mkdir(mount_.c_str(), 0700);
  nfsdsim::SimOptions so;
  so.request_timeout = o_.hang_timeout;
  k_ = std::make_unique<nfsdsim::SimKernel>(so);
  std::string err;
  if (!k_->Mount(mount_, &err)) {
    Problem("cannot mount the simulated nfsd: " + err);
  } else if (StartHelper() && WaitServing()) {
    std::thread killer([this] { KillerLoop(); });
    while (!kills_done_ && !abort_) DriverStep();
    killer.join();
    if (!abort_) {
      // One more server start: its allow list must be exactly the model's.
      DoStart();
      CheckDatabase();
    }
    if (helper_ && helper_->IsRunning()) {
      helper_->Signal(SIGTERM);
      auto st = helper_->Wait(o_.hang_timeout);
      if (!st || !st->success())
        Problem("the helper did not stop cleanly on SIGTERM: " +
                (st ? st->ToString() : std::string("still running")));
    }
  }
  helper_.reset();
  auto t = k_->TotalStats();
  f_.requests = t.queued;
  f_.requeued = t.requeued;
  k_->Unmount();
  k_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  f_.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return f_;
}

}  // namespace

std::string Figures::ToString() const {
  char buf[1024];
  snprintf(buf, sizeof buf,
           "kills %llu (%llu with requests in flight), requests %llu "
           "(%llu requeued by a kill), acknowledged %llu, starts %llu "
           "(%llu during grace), grace ends %llu, reclaim decisions checked "
           "%llu, database checks %llu, lost acks %llu, unsafe allows %llu, "
           "hung requests %llu, bad replies %llu, helper failures %llu, "
           "%.1f s",
           static_cast<unsigned long long>(kills),
           static_cast<unsigned long long>(kills_in_flight),
           static_cast<unsigned long long>(requests),
           static_cast<unsigned long long>(requeued),
           static_cast<unsigned long long>(acked),
           static_cast<unsigned long long>(starts),
           static_cast<unsigned long long>(restarts_in_grace),
           static_cast<unsigned long long>(grace_ends),
           static_cast<unsigned long long>(reclaims_checked),
           static_cast<unsigned long long>(db_checks),
           static_cast<unsigned long long>(lost_acks),
           static_cast<unsigned long long>(unsafe_allows),
           static_cast<unsigned long long>(hung),
           static_cast<unsigned long long>(bad_replies),
           static_cast<unsigned long long>(helper_failures), seconds);
  std::string s = buf;
  if (!first_problem.empty()) s += "\nfirst problem: " + first_problem;
  return s;
}

Figures Run(const Options& options) { return Soak(options).Run(); }

}  // namespace nfsdh::soak
