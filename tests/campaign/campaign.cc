#include "tests/campaign/campaign.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "nfsdfs-proto/message.h"
#include "tests/campaign/oracle.h"
#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/process.h"
#include "tests/sim/sim_kernel.h"

namespace nfsdh::campaign {
namespace {

using namespace std::chrono_literals;
using nfsdfs::Channel;
using nfsdfs::Minor;
using nfsdsim::ReclaimResult;
using Clock = std::chrono::steady_clock;

constexpr int kEio = -5;
constexpr int kEnospc = -28;
constexpr int kEacces = -13;
// How long a helper has to serve after it was (re)started.
constexpr auto kServeTimeout = 10000ms;
// Four files: a request's normal timeout, long enough for a helper restart;
// the timeout of a request that is to be lost.
constexpr auto kRequestTimeout = 8000ms;
constexpr auto kLostTimeout = 300ms;
// cld: how long the driver waits for a downcall to an upcall a killed helper
// had read (6.1 waits for ever), and for a reader of a queued upcall.
constexpr auto kCldUpcallTimeout = 1500ms;
constexpr auto kCldNoReader = 400ms;

std::string ClientId(int i) { return "campaign-client-" + std::to_string(i); }

// Two clients in three have a principal.
std::string ClientHash(int i) {
  if (i % 3 == 0) return "";
  std::string h(32, '\0');
  for (size_t b = 0; b < h.size(); ++b)
    h[b] = static_cast<char>((i * 89 + static_cast<int>(b) * 13) & 0xff);
  return h;
}

Minor ClientMinor(int i) { return i % 2 ? Minor::kV41 : Minor::kV40; }

const char* KindName(EventKind k) {
  switch (k) {
    case EventKind::kStart:
      return "start";
    case EventKind::kCreate:
      return "create";
    case EventKind::kExpire:
      return "expire";
    case EventKind::kStorm:
      return "storm";
    case EventKind::kGraceDone:
      return "grace_done";
    case EventKind::kKill:
      return "kill";
    case EventKind::kClockStep:
      return "clock";
    case EventKind::kLostUpcall:
      return "lost";
  }
  return "?";
}

std::string DescribeHelper(const HelperConfig& h) {
  std::string s;
  if (!h.fault.empty()) s += " fault=" + h.fault;
  if (!h.crash.empty()) s += " crash=" + h.crash;
  return s.empty() ? " clean" : s;
}

HelperConfig DrawHelper(std::mt19937_64& rng) {
  HelperConfig h;
  uint64_t r = rng() % 10;
  if (r < 5) {
    // The k-th write or fsync counted from the helper's start: its start-up
    // (opening the database, recovery) takes the first few.
    const char* op = rng() % 2 ? "write" : "sync";
    uint64_t k = 1 + rng() % 16;
    const char* err = rng() % 4 ? "eio" : "enospc";
    h.fault = std::string(op) + ":" + std::to_string(k) + ":" + err +
              (rng() % 5 == 0 ? ":persistent" : ":oneshot");
  } else if (r < 7) {
    h.crash = std::string(rng() % 2 ? "before-commit" : "after-commit") +
              ":" + std::to_string(1 + rng() % 4);
  }
  return h;
}

}  // namespace

const char* ModeName(Mode m) { return m == Mode::kCld ? "cld" : "4f"; }

std::string Event::ToString() const {
  std::string s = KindName(kind);
  switch (kind) {
    case EventKind::kCreate:
    case EventKind::kExpire:
      s += " c" + std::to_string(client);
      break;
    case EventKind::kStorm:
      for (int c : storm)
        s += c >= 0 ? " +c" + std::to_string(c) : " -c" + std::to_string(~c);
      if (kill)
        s += ", kill -9 at " + std::to_string(delay_us) + " us, restart" +
             DescribeHelper(helper);
      break;
    case EventKind::kKill:
      s += " -9, restart" + DescribeHelper(helper);
      break;
    case EventKind::kClockStep:
      s += (delta >= 0 ? " +" : " ") + std::to_string(delta) + " s";
      break;
    case EventKind::kLostUpcall:
      s += std::string(" ") + KindName(lost);
      if (lost != EventKind::kGraceDone) s += " c" + std::to_string(client);
      s += " (helper stopped after " + std::to_string(delay_us) + " us)";
      break;
    default:
      break;
  }
  return s;
}

void Figures::Add(const Figures& o) {
  events += o.events;
  skipped += o.skipped;
  starts += o.starts;
  decisions += o.decisions;
  must_allow += o.must_allow;
  must_not += o.must_not;
  requests += o.requests;
  uncertain += o.uncertain;
  faults += o.faults;
  kills += o.kills;
  lost_upcalls += o.lost_upcalls;
  clock_steps += o.clock_steps;
  fail_closed += o.fail_closed;
  violations += o.violations;
  problems.insert(problems.end(), o.problems.begin(), o.problems.end());
}

std::string Figures::ToString() const {
  std::ostringstream o;
  o << "events " << events << " (" << skipped << " skipped), starts " << starts
    << ", allow decisions checked " << decisions << " (" << must_allow
    << " must allow, " << must_not << " must not), requests " << requests
    << " (" << uncertain << " not answered 0), storage faults injected "
    << faults << ", kills " << kills << ", lost upcalls " << lost_upcalls
    << ", clock steps " << clock_steps << ", fail-closed denials "
    << fail_closed << ", violations " << violations;
  return o.str();
}

std::vector<Event> Generate(const Options& options) {
  std::mt19937_64 rng(options.seed * 0x9e3779b97f4a7c15ULL + 1);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  std::vector<Event> all;
  for (int i = 0; i < options.events; ++i) {
    Event e;
    int r = i == 0 ? 0 : pick(100);
    if (r < 12) {
      e.kind = EventKind::kStart;
    } else if (r < 40) {
      e.kind = EventKind::kCreate;
      e.client = pick(options.clients);
    } else if (r < 51) {
      e.kind = EventKind::kExpire;
      e.client = pick(options.clients);
    } else if (r < 60) {
      e.kind = EventKind::kStorm;
      int n = 2 + pick(4);
      std::vector<int> c;
      for (int k = 0; k < options.clients; ++k) c.push_back(k);
      std::shuffle(c.begin(), c.end(), rng);
      for (int k = 0; k < n && k < options.clients; ++k)
        e.storm.push_back(pick(4) ? c[k] : ~c[k]);
      e.kill = pick(2) == 0;
      e.delay_us = pick(20000);
      if (e.kill) e.helper = DrawHelper(rng);
    } else if (r < 73) {
      e.kind = EventKind::kGraceDone;
    } else if (r < 83) {
      e.kind = EventKind::kKill;
      e.helper = DrawHelper(rng);
    } else if (r < 88) {
      e.kind = EventKind::kClockStep;
      static const int64_t kSteps[] = {-31536000, -86400, -3600, -2,
                                       2,         3600,   31536000};
      e.delta = kSteps[pick(7)];
    } else {
      e.kind = EventKind::kLostUpcall;
      int w = pick(3);
      e.lost = w == 0   ? EventKind::kCreate
               : w == 1 ? EventKind::kExpire
                        : EventKind::kGraceDone;
      e.client = pick(options.clients);
      e.delay_us = pick(3000);
    }
    all.push_back(e);
  }
  if (options.keep.empty()) return all;
  std::vector<Event> kept;
  for (int i : options.keep)
    if (i >= 0 && i < static_cast<int>(all.size())) kept.push_back(all[i]);
  return kept;
}

namespace {

// One play of one history.
class Runner {
 public:
  Runner(const Options& o, const std::vector<Event>& h) : o_(o), h_(h) {}
  Figures Run();

 private:
  // ---- the helper ----
  bool StartHelper(const HelperConfig& cfg);  // REQUIRES: hmu_ held
  bool WaitServing();
  void KillHelper();  // REQUIRES: hmu_ held
  void Restart(const HelperConfig& cfg);
  void SupervisorLoop();

  // ---- events ----
  void PlayEvent(size_t i, const Event& e);
  void DoStart();
  void DoCreateExpire(int client, bool create);
  void DoStorm(const Event& e);
  void DoGraceDone();
  void DoLost(const Event& e);
  void CheckDecision(const std::string& id, bool allowed, bool fail_closed_ok,
                     const std::string& how);
  void CheckStatus(const std::string& what, int status, bool answered);
  void NoteGraceEndCld();
  void SetKernelGraceEnded(bool ended);

  uint64_t FaultsInjected() const;
  void Violation(const std::string& what);
  // A cld upcall that reached the helper and got its downcall (not one the
  // kernel failed: -ETIMEDOUT with no reader, -EPIPE when nfsd stopped).
  static bool CldAnswered(const nfsdsim::CldCallResult& r) {
    return !r.timed_out && r.status != -ETIMEDOUT && r.status != -EPIPE;
  }
  void Log(const std::string& s) {
    if (o_.verbose && o_.log) o_.log(s);
  }

  Options o_;
  const std::vector<Event>& h_;
  Figures f_;
  Oracle oracle_;
  std::string dir_, mount_, db_, sock_, nfsdfs_, clock_file_, fault_report_;
  std::unique_ptr<nfsdsim::SimKernel> k_;
  std::unique_ptr<nfsdsim::CldPipe> pipe_;
  int64_t clock_offset_ = 0;
  int64_t boot_ = 1000;
  bool have_instance_ = false;  // four files: the last start succeeded
  bool grace_open_ = false;     // the kernel's grace period is open
  std::string current_event_;

  // The helper; hmu_ serializes its (re)starts between the driver and the
  // supervisor, which restarts a helper that died by itself (a failpoint,
  // a storage failure at its start) as systemd would.
  std::mutex hmu_;
  std::unique_ptr<nfsdsim::Process> helper_;
  std::string helper_log_;  // earlier helpers' stderr, for reports
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> deaths_{0};
  std::mutex fmu_;  // f_.problems, f_.violations, f_.kills: two threads
  bool harness_failed_ = false;
};

bool Runner::StartHelper(const HelperConfig& cfg) {
  if (helper_) helper_log_ += helper_->Stderr();
  if (helper_log_.size() > 20000)
    helper_log_ = helper_log_.substr(helper_log_.size() - 20000);
  helper_ = std::make_unique<nfsdsim::Process>();
  nfsdsim::ProcessOptions po;
  po.env["LD_PRELOAD"] = o_.fault_so + ":" + o_.clock_so;
  po.env["NFSDH_FAULT_POWERLOSS"] = "1";
  po.env["NFSDH_FAULT_QUIET"] = "1";
  po.env["NFSDH_FAULT_REPORT"] = fault_report_;
  po.env["NFSDH_CLOCK_STEP_FILE"] = clock_file_;
  po.env["NFSDH_FAULT"] = cfg.fault;
  po.env["NFSD_HELPER_TEST_CRASH"] = cfg.crash;
  std::vector<std::string> argv = {o_.helper, "--foreground", "--debug",
                                   "--db",    db_,           "--ctl-socket",
                                   sock_};
  if (o_.mode == Mode::kFourFiles) {
    argv.insert(argv.end(), {"--nfsdfs", mount_});
  } else {
    argv.insert(argv.end(), {"--nfsdfs", nfsdfs_, "--cld-pipe",
                             mount_ + "/nfsd/cld"});
  }
  unlink(sock_.c_str());
  std::string err;
  if (!helper_->Start(argv, po, &err)) {
    Violation("harness: cannot start " + o_.helper + ": " + err);
    harness_failed_ = true;
    return false;
  }
  return true;
}

bool Runner::WaitServing() {
  auto deadline = Clock::now() + kServeTimeout;
  while (Clock::now() < deadline && !stop_) {
    {
      std::lock_guard<std::mutex> l(hmu_);
      if (helper_ && helper_->IsRunning()) {
        if (o_.mode == Mode::kFourFiles) {
          bool all = true;
          for (auto c : nfsdsim::kAllChannels)
            all = all && k_->OpenHandles(c) > 0;
          if (all) return true;
        } else if (access(sock_.c_str(), F_OK) == 0 &&
                   (!pipe_->PipeExists() || pipe_->Stats().readers > 0)) {
          return true;
        }
      }
    }
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

void Runner::KillHelper() {
  if (!helper_) return;
  helper_->Kill9();
  helper_->Wait(kServeTimeout);
  {
    std::lock_guard<std::mutex> l(fmu_);
    ++f_.kills;
  }
  if (o_.mode == Mode::kFourFiles) {
    k_->WaitForAllClosed(kServeTimeout);
  } else {
    pipe_->WaitForClosed(kServeTimeout);
  }
}

void Runner::Restart(const HelperConfig& cfg) {
  {
    std::lock_guard<std::mutex> l(hmu_);
    KillHelper();
    if (!StartHelper(cfg)) return;
  }
  if (!WaitServing()) {
    // A fault in its start-up may stop it; the supervisor restarts it clean.
    if (!WaitServing()) {
      Violation("harness: the helper does not serve after a restart");
      harness_failed_ = true;
    }
  }
}

void Runner::SupervisorLoop() {
  while (!stop_) {
    {
      std::lock_guard<std::mutex> l(hmu_);
      if (helper_ && !helper_->IsRunning()) {
        ++deaths_;
        Log("  the helper died (" + helper_->exit_status()->ToString() +
            "); restarted clean");
        if (o_.mode == Mode::kFourFiles)
          k_->WaitForAllClosed(kServeTimeout);
        else
          pipe_->WaitForClosed(kServeTimeout);
        StartHelper({});
      }
    }
    std::this_thread::sleep_for(3ms);
  }
}

uint64_t Runner::FaultsInjected() const {
  std::ifstream in(fault_report_);
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line))
    if (line.find("injected") != std::string::npos) ++n;
  return n;
}

void Runner::Violation(const std::string& what) {
  std::lock_guard<std::mutex> l(fmu_);
  ++f_.violations;
  f_.problems.push_back("[" + current_event_ + "] " + what);
  Log("  VIOLATION: " + what);
}

void Runner::CheckStatus(const std::string& what, int status, bool answered) {
  ++f_.requests;
  if (answered && status == 0) return;
  ++f_.uncertain;
  if (!answered) return;  // withdrawn or timed out: a lost upcall
  if (status == kEio || status == kEnospc) {
    if (FaultsInjected() == 0)
      Violation(what + " answered " + std::to_string(status) +
                " although no storage fault was injected");
    return;
  }
  Violation(what + " answered " + std::to_string(status) +
            " (only 0 or -EIO may be)");
}

void Runner::CheckDecision(const std::string& id, bool allowed,
                           bool fail_closed_ok, const std::string& how) {
  ++f_.decisions;
  Verdict v = oracle_.Classify(id);
  if (v == Verdict::kMustAllow) ++f_.must_allow;
  if (v == Verdict::kMustNotAllow) ++f_.must_not;
  if (allowed && v == Verdict::kMustNotAllow) {
    Violation("UNSAFE ALLOW: " + id + " allowed (" + how +
              ") but the RFC forbids it: " + oracle_.Explain(id));
  } else if (!allowed && v == Verdict::kMustAllow) {
    if (fail_closed_ok) {
      ++f_.fail_closed;
      return;
    }
    Violation("LOST RECLAIM: " + id + " denied (" + how +
              ") but it must be allowed: " + oracle_.Explain(id));
  }
}

void Runner::SetKernelGraceEnded(bool ended) {
  std::ofstream(nfsdfs_ + "/v4_end_grace", std::ios::trunc)
      << (ended ? "Y\n" : "N\n");
}

// cld: nfsd ends grace whatever the GraceDone upcall was answered.
void Runner::NoteGraceEndCld() {
  if (grace_open_ && !pipe_->InGrace()) {
    grace_open_ = false;
    SetKernelGraceEnded(true);
    oracle_.GraceCompleted(true);
    Log("  nfsd ended its grace period");
  }
}

void Runner::DoStart() {
  ++f_.starts;
  oracle_.Start();
  if (o_.mode == Mode::kFourFiles) {
    // nfsd sends start again while it has no instance (PROTOCOL.md §7).
    nfsdsim::StartResult r;
    for (int attempt = 0; attempt < 3; ++attempt) {
      r = k_->StartInstance(++boot_);
      CheckStatus("start", r.status, !r.timed_out);
      if (r.ok()) break;
    }
    have_instance_ = r.ok();
    grace_open_ = true;
    if (!r.ok()) {
      Log("  start failed (" + std::to_string(r.status) +
          "): nobody may reclaim");
      return;
    }
    std::string list;
    for (const auto& [id, hash] : r.allow) list += " " + id.substr(16);
    Log("  allow list:" + list);
    for (int i = 0; i < o_.clients; ++i) {
      std::string id = ClientId(i);
      auto it = r.allow.find(id);
      bool allowed = it != r.allow.end();
      if (allowed && !it->second.empty() && it->second != ClientHash(i)) {
        Violation("UNSAFE ALLOW: " + id + " allowed with another principal");
      }
      CheckDecision(id, allowed, false, "allow list");
    }
    return;
  }
  // cld: nfsd stops (the pipe goes, and with it the helper's file), then
  // starts. The helper must be there: a kernel that finds no tracker falls
  // back to other tracking methods, which is outside its reach.
  pipe_->StopNfsd();
  pipe_->WaitForClosed(kServeTimeout);
  std::this_thread::sleep_for(50ms);  // its last look at v4_end_grace
  WaitServing();
  SetKernelGraceEnded(false);
  nfsdsim::CldStartResult r = pipe_->StartNfsd(++boot_);
  // A helper killed after reading GetVersion or GraceStart (a failpoint)
  // leaves the upcall unanswered: 6.1 would wait for ever, the simulator
  // gives up and finds no tracker. The administrator restarts nfsd.
  for (int attempt = 0; attempt < 3 && r.ops == nfsdsim::CldOps::kNone;
       ++attempt) {
    Log("  no tracker answered the start: nfsd restarted");
    pipe_->StopNfsd();
    pipe_->WaitForClosed(kServeTimeout);
    WaitServing();
    r = pipe_->StartNfsd(++boot_);
  }
  if (r.ops == nfsdsim::CldOps::kNone) {
    Violation("harness: no tracker opened the cld pipe");
    harness_failed_ = true;
    return;
  }
  grace_open_ = true;
  if (r.get_version.sent)
    CheckStatus("GetVersion", r.get_version.status,
                CldAnswered(r.get_version));
  if (r.grace_start.sent)
    CheckStatus("GraceStart", r.grace_start.status,
                CldAnswered(r.grace_start));
  if (r.ops == nfsdsim::CldOps::kV0) {
    // GraceStart failed: per-client Check upcalls decide.
    bool faulted = FaultsInjected() > 0;
    Log("  GraceStart failed (" + std::to_string(r.grace_start.status) +
        "): per-client Check");
    for (int i = 0; i < o_.clients; ++i) {
      std::string id = ClientId(i);
      nfsdsim::CldCallResult c = pipe_->Check(id);
      bool answered = CldAnswered(c);
      bool allowed = answered && c.status == 0;
      if (!allowed && c.status != kEacces)
        CheckStatus("Check " + id, c.status, answered);
      bool ok = faulted && (!answered || c.status != kEacces ||
                            !ClientHash(i).empty());
      CheckDecision(id, allowed, ok, "cld Check");
      // A Check is the v0 kernel's reclaim: an allowed one re-records the
      // client in this instance, one that failed may have.
      if (allowed || (answered && c.status != kEacces) || !answered)
        oracle_.Create(id, allowed);
    }
  } else {
    std::string list;
    for (const auto& [id, hash] : r.reclaim) list += " " + id.substr(16);
    Log("  reclaim set:" + list);
    for (int i = 0; i < o_.clients; ++i) {
      std::string id = ClientId(i);
      auto it = r.reclaim.find(id);
      bool allowed = it != r.reclaim.end();
      if (allowed && !it->second.empty() && it->second != ClientHash(i))
        Violation("UNSAFE ALLOW: " + id + " allowed with another principal");
      CheckDecision(id, allowed, false, "cld reclaim set");
    }
  }
  if (r.grace_skipped)
    CheckStatus("GraceDone", r.grace_done.status, CldAnswered(r.grace_done));
  NoteGraceEndCld();
}

void Runner::DoCreateExpire(int client, bool create) {
  std::string id = ClientId(client);
  std::string what = std::string(create ? "create " : "expire ") + id;
  if (o_.mode == Mode::kFourFiles) {
    nfsdsim::StatusResult r =
        create ? k_->EstablishState(id, ClientHash(client), ClientMinor(client))
               : k_->Expire(id);
    CheckStatus(what, r.status, !r.timed_out);
    if (create)
      oracle_.Create(id, r.ok());
    else
      oracle_.Expire(id, r.ok());
    return;
  }
  nfsdsim::CldCallResult r;
  if (create)
    r = ClientMinor(client) == Minor::kV41
            ? pipe_->ReclaimComplete(id, ClientHash(client))
            : pipe_->Create(id, ClientHash(client));
  else
    r = pipe_->Expire(id);
  if (r.sent) {
    CheckStatus(what, r.status, CldAnswered(r));
    if (create)
      oracle_.Create(id, r.ok());
    else
      oracle_.Expire(id, r.ok());
  }
  NoteGraceEndCld();
}

void Runner::DoStorm(const Event& e) {
  if (o_.mode == Mode::kFourFiles) {
    int64_t inst = k_->CurrentInstance();
    std::vector<nfsdsim::Ticket> tickets;
    for (int c : e.storm) {
      bool create = c >= 0;
      int i = create ? c : ~c;
      tickets.push_back(k_->SubmitWithSeq(
          create ? Channel::kCreateClient : Channel::kExpireClient,
          [&](uint64_t seq) {
            if (create) {
              nfsdfs::CreateRequest q;
              q.seq = seq;
              q.instance = inst;
              q.client_id = ClientId(i);
              q.princhash = ClientHash(i);
              q.minor = ClientMinor(i);
              return nfsdfs::EncodeRequest(q);
            }
            nfsdfs::ExpireRequest q;
            q.seq = seq;
            q.instance = inst;
            q.client_id = ClientId(i);
            return nfsdfs::EncodeRequest(q);
          }));
    }
    if (e.kill) {
      std::this_thread::sleep_for(std::chrono::microseconds(e.delay_us));
      Restart(e.helper);
    }
    for (size_t n = 0; n < tickets.size(); ++n) {
      bool create = e.storm[n] >= 0;
      std::string id = ClientId(create ? e.storm[n] : ~e.storm[n]);
      nfsdsim::AwaitResult r = k_->Await(tickets[n]);
      bool acked = r.answered && r.status == 0;
      CheckStatus(std::string(create ? "create " : "expire ") + id, r.status,
                  r.answered);
      if (create)
        oracle_.Create(id, acked);
      else
        oracle_.Expire(id, acked);
    }
    return;
  }
  // cld: one upcall at a time, as nfsd threads would queue them, with the
  // kill falling wherever it falls.
  std::thread killer;
  if (e.kill) {
    killer = std::thread([this, &e] {
      std::this_thread::sleep_for(std::chrono::microseconds(e.delay_us));
      Restart(e.helper);
    });
  }
  for (int c : e.storm) DoCreateExpire(c >= 0 ? c : ~c, c >= 0);
  if (killer.joinable()) killer.join();
}

void Runner::DoGraceDone() {
  if (o_.mode == Mode::kFourFiles) {
    nfsdsim::StatusResult r = k_->EndGrace();
    CheckStatus("grace_done", r.status, !r.timed_out);
    // The kernel leaves grace only on 0; on anything else the helper may
    // still have recorded the end.
    oracle_.GraceCompleted(r.ok());
    if (r.ok()) grace_open_ = false;
    return;
  }
  nfsdsim::CldCallResult r = pipe_->GraceDone();
  if (r.sent) CheckStatus("GraceDone", r.status, CldAnswered(r));
  NoteGraceEndCld();
}

void Runner::DoLost(const Event& e) {
  ++f_.lost_upcalls;
  if (o_.mode == Mode::kFourFiles) {
    // The helper freezes (after reading the request or before); the kernel
    // withdraws the request after its timeout; the helper goes on.
    k_->SetRequestTimeout(kLostTimeout);
    std::thread stopper([this, &e] {
      std::this_thread::sleep_for(std::chrono::microseconds(e.delay_us));
      std::lock_guard<std::mutex> l(hmu_);
      if (helper_) helper_->Signal(SIGSTOP);
    });
    if (e.lost == EventKind::kGraceDone)
      DoGraceDone();
    else
      DoCreateExpire(e.client, e.lost == EventKind::kCreate);
    stopper.join();
    k_->SetRequestTimeout(kRequestTimeout);
    std::lock_guard<std::mutex> l(hmu_);
    if (helper_) helper_->Signal(SIGCONT);
    return;
  }
  // cld: no helper reads the pipe; the upcall fails with -ETIMEDOUT.
  {
    std::lock_guard<std::mutex> l(hmu_);
    KillHelper();
    helper_.reset();  // the supervisor leaves it down
  }
  if (e.lost == EventKind::kGraceDone)
    DoGraceDone();
  else
    DoCreateExpire(e.client, e.lost == EventKind::kCreate);
  {
    std::lock_guard<std::mutex> l(hmu_);
    StartHelper({});
  }
  if (!WaitServing()) {
    Violation("harness: the helper does not serve after a lost upcall");
    harness_failed_ = true;
  }
}

void Runner::PlayEvent(size_t i, const Event& e) {
  current_event_ = "#" + std::to_string(i) + " " + e.ToString();
  bool instance = o_.mode == Mode::kCld ? pipe_->PipeExists() : have_instance_;
  bool skip = false;
  switch (e.kind) {
    case EventKind::kStart:
      break;
    case EventKind::kCreate:
    case EventKind::kExpire:
    case EventKind::kStorm:
      skip = !instance;
      break;
    case EventKind::kGraceDone:
      skip = !instance || !grace_open_;
      break;
    case EventKind::kLostUpcall:
      skip = !instance || (e.lost == EventKind::kGraceDone && !grace_open_);
      break;
    case EventKind::kKill:
    case EventKind::kClockStep:
      break;
  }
  Log(current_event_ + (skip ? " (skipped)" : ""));
  if (skip) {
    ++f_.skipped;
    return;
  }
  ++f_.events;
  switch (e.kind) {
    case EventKind::kStart:
      DoStart();
      break;
    case EventKind::kCreate:
    case EventKind::kExpire:
      DoCreateExpire(e.client, e.kind == EventKind::kCreate);
      break;
    case EventKind::kStorm:
      DoStorm(e);
      break;
    case EventKind::kGraceDone:
      DoGraceDone();
      break;
    case EventKind::kKill:
      Restart(e.helper);
      break;
    case EventKind::kClockStep:
      ++f_.clock_steps;
      clock_offset_ += e.delta;
      std::ofstream(clock_file_, std::ios::trunc) << clock_offset_ << "\n";
      break;
    case EventKind::kLostUpcall:
      DoLost(e);
      break;
  }
}

Figures Runner::Run() {
  char tmpl[] = "/tmp/nfsdh-campaign-XXXXXX";
  if (!mkdtemp(tmpl)) {
    Violation("harness: mkdtemp failed");
    return f_;
  }
  dir_ = tmpl;
  mount_ = dir_ + "/mnt";
  db_ = dir_ + "/state/state.sqlite";
  sock_ = dir_ + "/ctl.sock";
  nfsdfs_ = dir_ + "/nfsdfs";
  clock_file_ = dir_ + "/clock-step";
  fault_report_ = dir_ + "/faults.log";
  mkdir(mount_.c_str(), 0700);
  mkdir(nfsdfs_.c_str(), 0700);
  std::ofstream(clock_file_) << "0\n";
  std::string err;
  bool mounted;
  if (o_.mode == Mode::kFourFiles) {
    nfsdsim::SimOptions so;
    so.request_timeout = kRequestTimeout;
    k_ = std::make_unique<nfsdsim::SimKernel>(so);
    mounted = k_->Mount(mount_, &err);
  } else {
    nfsdsim::CldPipeOptions co;
    co.upcall_timeout = kCldUpcallTimeout;
    co.no_reader_timeout = kCldNoReader;
    pipe_ = std::make_unique<nfsdsim::CldPipe>(co);
    mounted = pipe_->Mount(mount_, &err);
    SetKernelGraceEnded(false);
  }
  if (!mounted) {
    Violation("harness: cannot mount the simulated kernel: " + err);
  } else {
    {
      std::lock_guard<std::mutex> l(hmu_);
      StartHelper({});
    }
    std::thread supervisor([this] { SupervisorLoop(); });
    if (!WaitServing()) {
      Violation("harness: the helper does not serve");
    } else {
      for (size_t i = 0; i < h_.size() && !harness_failed_; ++i)
        PlayEvent(i, h_[i]);
      // The end: a helper on good storage, one more start, its decision
      // checked like every other.
      if (!harness_failed_) {
        current_event_ = "final: kill -9, restart clean, start";
        Log(current_event_);
        Restart({});
        if (!harness_failed_) DoStart();
      }
    }
    stop_ = true;
    supervisor.join();
    std::lock_guard<std::mutex> l(hmu_);
    if (helper_) {
      helper_->Signal(SIGCONT);
      helper_->Kill9();
      helper_->Wait(kServeTimeout);
      helper_log_ += helper_->Stderr();
    }
  }
  f_.kills += deaths_;
  f_.faults = FaultsInjected();
  if (f_.violations > 0 && o_.verbose && o_.log) {
    std::string tail = helper_log_.size() > 6000
                           ? helper_log_.substr(helper_log_.size() - 6000)
                           : helper_log_;
    o_.log("-- helper log (end) --\n" + tail);
  }
  if (k_) k_->Unmount();
  if (pipe_) pipe_->Unmount();
  k_.reset();
  pipe_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  return f_;
}

std::string Join(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

}  // namespace

Figures Play(const Options& options, const std::vector<Event>& history) {
  return Runner(options, history).Run();
}

SeedResult RunSeed(const Options& options, int shrink_runs) {
  SeedResult res;
  Options full = options;
  full.keep.clear();
  res.history = Generate(full);
  std::vector<int> idx = options.keep;
  if (idx.empty())
    for (size_t i = 0; i < res.history.size(); ++i)
      idx.push_back(static_cast<int>(i));
  auto sub = [&](const std::vector<int>& ix) {
    std::vector<Event> h;
    for (int i : ix)
      if (i >= 0 && i < static_cast<int>(res.history.size()))
        h.push_back(res.history[i]);
    return h;
  };
  res.figures = Play(options, sub(idx));
  if (res.figures.violations == 0) return res;

  // Delta debugging: drop chunks of events while some violation remains.
  // Timing varies between plays, so a candidate counts as failing if one of
  // two plays fails.
  Options quiet = options;
  quiet.verbose = false;
  int runs = 0;
  auto fails = [&](const std::vector<int>& ix) {
    for (int t = 0; t < 2 && runs < shrink_runs; ++t) {
      ++runs;
      if (Play(quiet, sub(ix)).violations > 0) return true;
    }
    return false;
  };
  std::vector<int> cur = idx;
  size_t chunk = cur.size() / 2;
  while (chunk >= 1 && runs < shrink_runs) {
    bool progress = false;
    for (size_t at = 0; at < cur.size() && runs < shrink_runs;) {
      std::vector<int> cand(cur.begin(), cur.begin() + at);
      cand.insert(cand.end(),
                  cur.begin() + std::min(cur.size(), at + chunk), cur.end());
      if (!cand.empty() && fails(cand)) {
        cur = cand;
        progress = true;
      } else {
        at += chunk;
      }
    }
    if (!progress) chunk /= 2;
  }
  res.minimal = cur;

  std::ostringstream o;
  o << "seed " << options.seed << " (" << ModeName(options.mode)
    << ") FAILED: " << res.figures.violations << " violation(s)\n";
  for (const std::string& p : res.figures.problems) o << "  " << p << "\n";
  o << "history (" << idx.size() << " events):\n";
  for (int i : idx) o << "  #" << i << " " << res.history[i].ToString() << "\n";
  o << "minimal history found (" << cur.size() << " events, " << runs
    << " plays):\n";
  for (int i : cur) o << "  #" << i << " " << res.history[i].ToString() << "\n";
  o << "reproduce: nfsdh-campaign --mode " << ModeName(options.mode)
    << " --first-seed " << options.seed << " --seeds 1 --events "
    << options.events << " --clients " << options.clients << " --keep "
    << Join(cur) << " --verbose\n";
  res.report = o.str();
  return res;
}

}  // namespace nfsdh::campaign
