#include "tests/sim/cld_pipe_story.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace nfsdsim {
namespace {

using namespace std::chrono_literals;

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\n");
  return std::string(s.substr(b, e - b + 1));
}

std::optional<ReclaimResult> ParseDecision(const std::string& s) {
  if (s == "allow") return ReclaimResult::kAllowed;
  if (s == "bad") return ReclaimResult::kReclaimBad;
  if (s == "nograce") return ReclaimResult::kNoGrace;
  return std::nullopt;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string StatusText(const CldCallResult& r) {
  if (!r.sent) return "no upcall";
  if (r.timed_out) return "no downcall (timed out)";
  if (r.status == 0) return "0";
  return std::to_string(r.status) + " (" + strerror(-r.status) + ")";
}

std::string SetText(const std::map<std::string, std::string>& set) {
  std::string out = "{";
  for (const auto& [id, hash] : set) {
    if (out.size() > 1) out += ",";
    // Story clients print as their names.
    const std::string prefix = ClientId("");
    out += id.compare(0, prefix.size(), prefix) == 0 ? id.substr(prefix.size())
                                                     : id;
    if (!hash.empty()) out += "@";
  }
  return out + "}";
}

}  // namespace

const char* CldTrackerName(CldTrackerKind kind) {
  return kind == CldTrackerKind::kNfsdcld ? "nfsdcld" : "nfsd-helper";
}

const char* DecisionName(ReclaimResult r) {
  switch (r) {
    case ReclaimResult::kAllowed:
      return "allow";
    case ReclaimResult::kReclaimBad:
      return "bad";
    case ReclaimResult::kNoGrace:
      return "nograce";
  }
  return "?";
}

std::string ClientId(const std::string& name) {
  return "Linux NFSv4 story client " + name;
}

std::string PrincipalHash(const std::string& tag) {
  if (tag.empty()) return "";
  // Any 32 bytes stand for the SHA-256 of the principal; distinct tags give
  // distinct hashes (FNV-1a over the tag, then a counter).
  std::string h(32, '\0');
  uint64_t x = 1469598103934665603ull;
  for (unsigned char c : tag) x = (x ^ c) * 1099511628211ull;
  for (size_t i = 0; i < h.size(); ++i) {
    x = (x ^ i) * 1099511628211ull;
    h[i] = static_cast<char>(x >> 56);
  }
  return h;
}

// ---- The tracker
// --------------------------------------------------------------

CldTracker::CldTracker(CldTrackerConfig config) : config_(std::move(config)) {
  if (config_.binary.empty() && config_.kind == CldTrackerKind::kNfsdcld) {
    config_.binary = kNfsdcldBin;
  }
}

CldTracker::~CldTracker() {
  if (proc_ && proc_->IsRunning()) proc_->Kill9();
}

bool CldTracker::Running() { return proc_ && proc_->IsRunning(); }

std::string CldTracker::Log() const {
  return past_log_ + (proc_ ? proc_->Stderr() : std::string());
}

bool CldTracker::Start(std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = std::string(CldTrackerName(config_.kind)) + ": " + why;
    return false;
  };
  if (Running()) return fail("already running");
  if (proc_) {
    proc_->WaitForStderrEnd(config_.timeout);
    past_log_ += proc_->Stderr();
  }
  std::vector<std::string> argv;
  std::string ready_file;
  if (config_.kind == CldTrackerKind::kNfsdcld) {
    argv = {config_.binary,   "-F", "-d", "-p", config_.pipefs_dir, "-s",
            config_.state_dir};
  } else {
    ready_file = config_.state_dir + "/ctl.sock";
    unlink(ready_file.c_str());
    argv = {config_.binary,
            "-F",
            "-d",
            "--db",
            config_.state_dir + "/state.sqlite",
            "--nfsdfs",
            config_.nfsdfs_dir,
            "--cld-pipe",
            config_.pipefs_dir + "/nfsd/cld",
            "--ctl-socket",
            ready_file};
    argv.insert(argv.end(), config_.extra_args.begin(),
                config_.extra_args.end());
  }
  proc_ = std::make_unique<Process>();
  ProcessOptions po;
  po.on_stderr_line = config_.on_log_line;
  std::string err;
  if (!proc_->Start(argv, po, &err)) return fail(err);
  // Ready once it can notice the pipe: nfsdcld has set its inotify watch and
  // tried the pipe before it logs that its event loop starts.
  const auto deadline = std::chrono::steady_clock::now() + config_.timeout;
  while (true) {
    if (config_.kind == CldTrackerKind::kNfsdcld) {
      if (proc_->WaitForStderr("Starting event dispatch handler", 50ms)) break;
    } else {
      if (Exists(ready_file)) break;
      std::this_thread::sleep_for(20ms);
    }
    if (!proc_->IsRunning()) {
      auto st = proc_->exit_status();
      proc_->WaitForStderrEnd(config_.timeout);
      return fail("exited while starting (" +
                  (st ? st->ToString() : std::string("?")) +
                  "): " + proc_->Stderr());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return fail("not ready within " +
                  std::to_string(config_.timeout.count()) +
                  " ms: " + proc_->Stderr());
    }
  }
  return true;
}

bool CldTracker::Kill9() {
  if (!proc_) return false;
  proc_->Kill9();
  return proc_->Wait(config_.timeout).has_value();
}

bool CldTracker::Stop(std::string* error) {
  if (!Running()) return true;
  proc_->Signal(SIGTERM);
  auto st = proc_->Wait(config_.timeout);
  if (!st) {
    if (error) *error = "did not exit after SIGTERM";
    proc_->Kill9();
    proc_->Wait(config_.timeout);
    return false;
  }
  return true;
}

bool CldTracker::HelperSupportsCld(const std::string& binary,
                                   std::string* why) {
  if (access(binary.c_str(), X_OK) != 0) {
    if (why) *why = binary + " is not an executable file";
    return false;
  }
  Process p;
  std::string err;
  if (!p.Start({binary, "--help"}, {}, &err)) {
    if (why) *why = err;
    return false;
  }
  p.Wait(10s);
  p.WaitForStderrEnd(10s);
  if (p.Stderr().find("--cld-pipe") == std::string::npos) {
    if (why) *why = binary + " --help does not mention --cld-pipe";
    return false;
  }
  return true;
}

// ---- Stories
// ------------------------------------------------------------------

bool ParseStory(std::string_view text, std::vector<StoryStep>* steps,
                std::string* error) {
  using Op = StoryStep::Op;
  steps->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t semi = text.find(';', pos);
    if (semi == std::string_view::npos) semi = text.size();
    std::string step = Trim(text.substr(pos, semi - pos));
    pos = semi + 1;
    if (step.empty()) continue;
    auto fail = [&](const std::string& why) {
      if (error) *error = "step \"" + step + "\": " + why;
      return false;
    };
    std::string verb = step.substr(0, step.find(' '));
    std::string arg =
        step.size() > verb.size() ? Trim(step.substr(verb.size())) : "";
    StoryStep s;
    s.text = step;
    static const std::pair<const char*, Op> kNoArg[] = {
        {"start", Op::kStart},
        {"stop", Op::kStop},
        {"restart", Op::kRestart},
        {"gracedone", Op::kGraceDone},
        {"kill-tracker", Op::kKillTracker},
        {"start-tracker", Op::kStartTracker},
        {"restart-tracker", Op::kRestartTracker}};
    static const std::pair<const char*, Op> kClient[] = {
        {"create", Op::kCreate},
        {"complete", Op::kComplete},
        {"expire", Op::kExpire},
        {"reclaim", Op::kReclaim}};
    bool known = false;
    for (const auto& [name, op] : kNoArg) {
      if (verb != name) continue;
      if (!arg.empty()) return fail("takes no argument");
      s.op = op;
      known = true;
    }
    for (const auto& [name, op] : kClient) {
      if (verb != name) continue;
      known = true;
      s.op = op;
      std::string who = arg;
      if (op == Op::kReclaim) {
        size_t eq = arg.find('=');
        if (eq != std::string::npos) {
          who = arg.substr(0, eq);
          std::string want = arg.substr(eq + 1);
          size_t slash = want.find('/');
          s.expect_nfsdcld = ParseDecision(want.substr(0, slash));
          s.expect_helper = slash == std::string::npos
                                ? s.expect_nfsdcld
                                : ParseDecision(want.substr(slash + 1));
          if (!s.expect_nfsdcld || !s.expect_helper) {
            return fail("expected decisions are allow, bad or nograce");
          }
        }
      }
      size_t at = who.find('@');
      s.client = who.substr(0, at);
      if (at != std::string::npos) s.principal = who.substr(at + 1);
      if (s.client.empty() || s.client.find(' ') != std::string::npos ||
          (at != std::string::npos && s.principal.empty())) {
        return fail("needs one client, like A or A@tag");
      }
    }
    if (verb == "kernel") {
      known = true;
      s.op = Op::kKernel;
      if (arg != "1" && arg != "2") return fail("kernel 1 or kernel 2");
      s.kernel_version = arg == "1" ? 1 : 2;
    }
    if (!known) return fail("unknown step");
    steps->push_back(std::move(s));
  }
  if (steps->empty()) {
    if (error) *error = "empty story";
    return false;
  }
  return true;
}

StoryResult RunStory(CldPipe& pipe, CldTracker& tracker,
                     const std::vector<StoryStep>& steps) {
  using Op = StoryStep::Op;
  StoryResult res;
  const bool is_nfsdcld = tracker.config().kind == CldTrackerKind::kNfsdcld;
  auto note = [&](const std::string& s) { res.transcript.push_back(s); };
  auto fail = [&](const StoryStep& st, const std::string& why) {
    res.error = "step \"" + st.text + "\": " + why;
    note("FAILED: " + why);
    return res;
  };
  auto start = [&](const StoryStep& st, bool restart) -> bool {
    CldStartResult r = restart ? pipe.RestartNfsd() : pipe.StartNfsd();
    note(st.text + ": " + CldOpsName(r.ops) + ", GetVersion " +
         StatusText(r.get_version) + " (version " +
         std::to_string(r.get_version.version) + "), GraceStart " +
         StatusText(r.grace_start) + ", reclaim set " + SetText(r.reclaim) +
         (r.grace_skipped
              ? ", grace skipped (GraceDone " + StatusText(r.grace_done) + ")"
              : ""));
    if (!r.ok() || (r.grace_skipped && !r.grace_done.ok())) {
      res.error = "step \"" + st.text + "\": nfsd could not start its " +
                  "client tracking: " + res.transcript.back();
      return false;
    }
    return true;
  };
  auto upcall = [&](const StoryStep& st, const CldCallResult& r) -> bool {
    note(st.text + ": " + StatusText(r));
    if (r.sent && !r.ok()) {
      res.error = "step \"" + st.text + "\": upcall " + StatusText(r);
      return false;
    }
    return true;
  };
  for (const StoryStep& st : steps) {
    const std::string id = ClientId(st.client);
    const std::string hash = PrincipalHash(st.principal);
    std::string err;
    switch (st.op) {
      case Op::kStart:
      case Op::kRestart:
        if (!start(st, st.op == Op::kRestart)) return res;
        break;
      case Op::kStop:
        pipe.StopNfsd();
        note("stop");
        break;
      case Op::kCreate:
        if (!upcall(st, pipe.Create(id, hash))) return res;
        break;
      case Op::kComplete:
        if (!upcall(st, pipe.ReclaimComplete(id, hash))) return res;
        break;
      case Op::kExpire:
        if (!upcall(st, pipe.Expire(id))) return res;
        break;
      case Op::kGraceDone:
        if (!upcall(st, pipe.GraceDone())) return res;
        break;
      case Op::kReclaim: {
        ReclaimResult d = pipe.Reclaim(id, hash);
        std::string line = "reclaim " + st.client + ": " + DecisionName(d);
        res.decisions.push_back(line);
        note(line);
        const auto& want = is_nfsdcld ? st.expect_nfsdcld : st.expect_helper;
        if (want && *want != d) {
          return fail(st, std::string("expected ") + DecisionName(*want) +
                              ", got " + DecisionName(d));
        }
        break;
      }
      case Op::kKernel:
        pipe.SetKernelVersion(st.kernel_version);
        note(st.text);
        break;
      case Op::kKillTracker:
      case Op::kRestartTracker:
        if (!tracker.Kill9()) return fail(st, "the tracker did not die");
        if (!pipe.WaitForClosed(tracker.config().timeout)) {
          return fail(st, "the pipe stayed open after the tracker died");
        }
        note("tracker killed");
        if (st.op == Op::kKillTracker) break;
        [[fallthrough]];
      case Op::kStartTracker:
        if (!tracker.Start(&err)) return fail(st, err);
        if (pipe.PipeExists() && !pipe.WaitForOpen(tracker.config().timeout)) {
          return fail(st, "the restarted tracker did not open the pipe");
        }
        note("tracker started");
        break;
    }
  }
  res.ok = true;
  return res;
}

bool MakeNfsdcldDatabase(const std::string& story,
                         const std::string& storage_dir, std::string* error,
                         StoryResult* result, const std::string& nfsdcld_bin) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  std::vector<StoryStep> steps;
  std::string err;
  if (!ParseStory(story, &steps, &err)) return fail(err);
  if (mkdir(storage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail("cannot create " + storage_dir + ": " + strerror(errno));
  }
  char tmpl[] = "/tmp/nfsdcld-db-pipefs.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    return fail(std::string("mkdtemp: ") + strerror(errno));
  }
  const std::string mount = tmpl;
  bool ok = false;
  {
    CldPipe pipe;
    if (!pipe.Mount(mount, &err)) {
      rmdir(mount.c_str());
      return fail(err);
    }
    CldTrackerConfig tc;
    tc.kind = CldTrackerKind::kNfsdcld;
    tc.binary = nfsdcld_bin;
    tc.pipefs_dir = mount;
    tc.state_dir = storage_dir;
    CldTracker tracker(tc);
    if (!tracker.Start(&err)) {
      fail(err);
    } else {
      StoryResult r = RunStory(pipe, tracker, steps);
      if (result) *result = r;
      pipe.StopNfsd();
      std::string stop_err;
      bool stopped = tracker.Stop(&stop_err);
      if (!r.ok) {
        fail(r.error + "\nnfsdcld's log:\n" + tracker.Log());
      } else if (!stopped) {
        fail("nfsdcld: " + stop_err);
      } else {
        ok = true;
      }
    }
    pipe.Unmount();
  }
  rmdir(mount.c_str());
  if (ok && !Exists(storage_dir + "/main.sqlite")) {
    return fail("nfsdcld left no " + storage_dir + "/main.sqlite");
  }
  return ok;
}

}  // namespace nfsdsim
