// nfsd-sim: runs the real nfsd-helper against the simulated nfsd and narrates
// a server's life, for the project's README and for a quick manual check.
//
//   nfsd-sim demo --helper PATH --db PATH [--mount DIR] [--ctl-socket PATH]
//                 [options]
//   nfsd-sim nfsdcld-db --storage DIR [--story STORY] [--nfsdcld PATH]
//
// The demo mounts the simulated nfsd files, starts the helper on them, plays
// two boots of an NFS server with two clients and checks that the client
// that held state may reclaim after the restart while the expired one may
// not. Exit status: 0 if it did, 1 if not (or on any error or timeout), 2 for
// a usage error.
//
// nfsdcld-db runs Debian's nfsdcld against the simulated stock kernel's cld
// pipe through a reboot story (tests/sim/cld_pipe_story.h) and leaves the
// database nfsdcld wrote in DIR/main.sqlite, for migration tests.
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nfsdfs-proto/message.h"
#include "nfsdfs-proto/qword.h"
#include "tests/sim/cld_pipe_story.h"
#include "tests/sim/process.h"
#include "tests/sim/sim_kernel.h"

namespace nfsdsim {
namespace {

using namespace std::chrono_literals;

const std::string kUsage =
    "usage: nfsd-sim demo --helper PATH --db PATH [--mount DIR]\n"
    "                     [--ctl-socket PATH] [--timeout SECONDS]\n"
    "                     [--helper-log FILE] [--debug] [--verbose]\n"
    "\n"
    "Runs the nfsd-helper at PATH against a simulated nfsd and narrates two\n"
    "boots of an NFS server with two clients.\n"
    "\n"
    "  --helper PATH      the nfsd-helper binary\n"
    "  --db PATH          the helper's database (use a fresh path)\n"
    "  --mount DIR        where to mount the simulated nfsd files\n"
    "                     (default: a new directory under /tmp)\n"
    "  --ctl-socket PATH  the helper's control socket (default: ctl.sock\n"
    "                     in the directory of --db)\n"
    "  --timeout SECONDS  how long the kernel waits for each reply (10)\n"
    "  --helper-log FILE  write the helper's log to FILE instead of stderr\n"
    "  --debug            run the helper with --debug\n"
    "  --verbose          also show every line crossing the nfsd files\n"
    "\n"
    "usage: nfsd-sim nfsdcld-db --storage DIR [--story STORY]\n"
    "                           [--nfsdcld PATH]\n"
    "\n"
    "Runs nfsdcld against a simulated cld pipe through STORY and leaves its\n"
    "database in DIR/main.sqlite. STORY is steps separated by ';': start,\n"
    "stop, restart, create C, complete C, expire C, reclaim C, gracedone\n"
    "(C: a client name, C@tag with a principal). Default story:\n"
    "  " +
    std::string(kDefaultDbStory) + "\n";

const std::string kClientA = "Linux NFSv4.1 client-a.example.org";
const std::string kClientB = "Linux NFSv4.0 client-b.example.org/10.0.0.2 tcp";
// Client A authenticates with Kerberos: the kernel keeps the SHA-256 of its
// principal. Any 32 bytes do for the demo.
const std::string kPrincA(
    "\x5c\x1a\x9e\x33\x07\xd2\x48\x6b\x91\x0f\xa4\x2e\x7c\x58\xe1\x36"
    "\xbb\x04\x6d\x92\x1f\xc7\x80\x3a\x55\xe9\x12\x4f\xd6\x28\x7b\x03",
    32);

struct Args {
  std::string helper;
  std::string db;
  std::string mount;
  std::string helper_log;
  std::string ctl_socket;
  int timeout_s = 10;
  bool debug = false;
  bool verbose = false;
};

// One write(2) per line, so that lines of the helper's log (forwarded from
// another thread) never cut ours in half.
void WriteLine(int fd, const std::string& s) {
  std::string line = s + "\n";
  (void)!write(fd, line.data(), line.size());
}
void Say(const std::string& s) { WriteLine(1, s); }
void Err(const std::string& s) { WriteLine(2, "nfsd-sim: " + s); }

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string HashText(const std::string& princhash) {
  if (princhash.empty()) return "any principal";
  return "principal hash " + nfsdfs::HexString(princhash).substr(0, 12) + "...";
}

std::string StatusText(int status) {
  if (status == 0) return "0 (ok)";
  if (status == kTimedOutStatus) return "no reply (timed out)";
  return std::to_string(status) + " (" + strerror(-status) + ")";
}

// Everything that can end the demo early from another thread: a signal, or
// the helper dying. Abort() also withdraws the request the main thread waits
// for, so that it returns at once.
class Monitor {
 public:
  Monitor(SimKernel* sim, Process* helper) : sim_(sim), helper_(helper) {}
  ~Monitor() { StopThread(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void StopThread() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void set_watch_helper(bool watch) { watch_helper_ = watch; }
  bool aborted() const { return aborted_; }
  std::string reason() {
    std::lock_guard<std::mutex> lk(mu_);
    return reason_;
  }
  void Abort(const std::string& reason) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (aborted_) return;
      reason_ = reason;
      aborted_ = true;
    }
    // Reported once, by Demo::Run(); Stop() makes the step that is waiting
    // for a reply return now instead of at its timeout.
    sim_->Stop();
  }

 private:
  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    while (!stop_) {
      timespec ts = {0, 50 * 1000 * 1000};
      int sig = sigtimedwait(&set, nullptr, &ts);
      if (sig > 0) {
        Abort(std::string("interrupted by SIG") + sigabbrev_np(sig));
      }
      // watch_helper_ is read again after IsRunning(): Cleanup() clears it
      // before it sends SIGTERM, so an expected exit is never reported.
      if (watch_helper_ && !helper_->IsRunning() && watch_helper_) {
        auto st = helper_->exit_status();
        Abort("the helper exited unexpectedly (" +
              (st ? st->ToString() : std::string("?")) + ")");
        watch_helper_ = false;
      }
    }
  }

  SimKernel* const sim_;
  Process* const helper_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> watch_helper_{false};
  std::atomic<bool> aborted_{false};
  std::mutex mu_;
  std::string reason_;
  std::thread thread_;
};

class Demo {
 public:
  explicit Demo(const Args& args)
      : args_(args), sim_(MakeOptions(args)), monitor_(&sim_, &helper_) {}

  int Run() {
    int rc = Play() ? 0 : 1;
    if (!Cleanup()) rc = 1;
    if (rc == 0) {
      Say("");
      Say("RESULT: OK: client A was allowed to reclaim after the restart, "
          "client B (expired before it) was denied.");
    } else {
      Err("FAILED" + (monitor_.aborted() ? ": " + monitor_.reason()
                      : failure_.empty() ? std::string()
                                         : ": " + failure_));
    }
    return rc;
  }

 private:
  static SimOptions MakeOptions(const Args& args) {
    SimOptions o;
    o.request_timeout = std::chrono::seconds(args.timeout_s);
    if (args.verbose) {
      o.log = [](const std::string& line) { WriteLine(2, "[kernel] " + line); };
    }
    return o;
  }

  bool Fail(const std::string& why) {
    if (failure_.empty()) failure_ = why;
    return false;
  }

  // A step's outcome: fails the demo on a non-zero status or a timeout.
  bool Check(const StatusResult& r, const std::string& what) {
    Say("      " + what + " -> " + StatusText(r.status));
    if (monitor_.aborted()) return false;
    if (!r.ok()) return Fail(what + " failed: " + StatusText(r.status));
    return true;
  }

  bool Boot(int n) {
    const int64_t boot_time = time(nullptr);
    Say("[boot " + std::to_string(n) + "] nfsd starts its NFSv4 state: " +
        "allow_client <- start 1 " + std::to_string(boot_time));
    StartResult r = sim_.StartInstance(boot_time);
    if (monitor_.aborted()) return false;
    if (!r.ok())
      return Fail("boot " + std::to_string(n) +
                  " failed: " + StatusText(r.status));
    Say("      instance " + std::to_string(r.instance) +
        ", grace period begins; allowed to reclaim: " +
        (r.allow.empty() ? "nobody"
                         : std::to_string(r.allow.size()) + " client(s)"));
    for (const auto& [id, hash] : r.allow) {
      Say("        - " + Quoted(id) + " (" + HashText(hash) + ")");
    }
    return true;
  }

  bool Reclaim(const std::string& who, const std::string& id,
               const std::string& princhash, ReclaimResult* out) {
    *out = sim_.Reclaim(id, princhash);
    Say("      client " + who +
        " reclaims its state (OPEN CLAIM_PREVIOUS) -> " +
        (*out == ReclaimResult::kAllowed
             ? std::string("allowed")
             : std::string("denied, ") + ReclaimResultName(*out)));
    return !monitor_.aborted();
  }

  bool Play() {
    struct stat st;
    if (stat(args_.helper.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        access(args_.helper.c_str(), X_OK) != 0) {
      return Fail("the helper " + args_.helper +
                  " does not exist or is not executable");
    }

    // The mount point.
    std::string dir = args_.mount;
    if (dir.empty()) {
      char tmpl[] = "/tmp/nfsd-sim-demo.XXXXXX";
      if (mkdtemp(tmpl) == nullptr) {
        return Fail(std::string("mkdtemp: ") + strerror(errno));
      }
      dir = tmpl;
      created_dir_ = dir;
    } else if (stat(dir.c_str(), &st) != 0) {
      if (mkdir(dir.c_str(), 0700) != 0) {
        return Fail("cannot create " + dir + ": " + strerror(errno));
      }
      created_dir_ = dir;
    }
    std::string error;
    if (!sim_.Mount(dir, &error)) return Fail(error);
    Say("nfsd-sim: simulated nfsd files mounted on " + dir);
    monitor_.Start();

    // The helper.
    // Only the simulated files: never a cld pipe, an old tracker's database
    // or the control socket (its own nfsd-helper may listen there) of the
    // machine the demo runs on.
    std::vector<std::string> argv = {args_.helper,    "--nfsdfs",
                                     dir,             "--db",
                                     args_.db,        "--foreground",
                                     "--cld-pipe",    "none",
                                     "--nfsdcld-db",  "none",
                                     "--nfsdcltrack-db", "none",
                                     "--ctl-socket",  args_.ctl_socket};
    if (args_.debug) argv.push_back("--debug");
    ProcessOptions po;
    if (args_.helper_log.empty()) {
      po.on_stderr_line = [](std::string_view line) {
        WriteLine(2, "[helper] " + std::string(line));
      };
    } else {
      po.stderr_path = args_.helper_log;
    }
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    Say("nfsd-sim: starting the helper: " + cmd);
    if (!args_.helper_log.empty()) {
      Say("nfsd-sim: the helper's log goes to " + args_.helper_log);
    }
    if (!helper_.Start(argv, po, &error)) return Fail(error);
    monitor_.set_watch_helper(true);
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(args_.timeout_s);
    while (!sim_.WaitForOpen(100ms)) {
      if (monitor_.aborted()) return false;
      if (std::chrono::steady_clock::now() > deadline) {
        return Fail("the helper did not open the four nfsd files within " +
                    std::to_string(args_.timeout_s) + " s");
      }
    }
    Say("nfsd-sim: the helper (pid " + std::to_string(helper_.pid()) +
        ") has opened all four files");
    Say("");
    Say("client A: " + Quoted(kClientA) + ", NFSv4.1, Kerberos");
    Say("client B: " + Quoted(kClientB) + ", NFSv4.0, AUTH_SYS");
    Say("");

    if (!Boot(1)) return false;
    Say("[grace] the grace period of boot 1 ends: grace_done");
    if (!Check(sim_.EndGrace(), "grace_done")) return false;
    Say("[A] client A sends RECLAIM_COMPLETE after its first OPENs: "
        "create_client v41");
    if (!Check(sim_.EstablishState(kClientA, kPrincA, Minor::kV41),
               "create_client")) {
      return false;
    }
    Say("[B] client B confirms its first OPEN (OPEN_CONFIRM): "
        "create_client v40");
    if (!Check(sim_.EstablishState(kClientB, "", Minor::kV40),
               "create_client")) {
      return false;
    }
    Say("[B] client B stops renewing; its lease expires: expire_client");
    if (!Check(sim_.Expire(kClientB), "expire_client")) return false;

    Say("");
    Say("[restart] the NFS server restarts (rpc.nfsd 0; rpc.nfsd 8)");
    sim_.Stop();
    if (!Boot(2)) return false;
    ReclaimResult a, b;
    if (!Reclaim("A", kClientA, kPrincA, &a)) return false;
    if (!Reclaim("B", kClientB, "", &b)) return false;
    Say("[A] client A sends RECLAIM_COMPLETE: create_client v41");
    if (!Check(sim_.ReclaimComplete(kClientA, kPrincA), "create_client")) {
      return false;
    }
    Say("[grace] the grace period of boot 2 ends: grace_done");
    if (!Check(sim_.EndGrace(), "grace_done")) return false;

    if (a != ReclaimResult::kAllowed) {
      return Fail("client A was denied its reclaim");
    }
    if (b == ReclaimResult::kAllowed) {
      return Fail("client B was allowed to reclaim although its lease expired");
    }
    return true;
  }

  // Stops the helper and unmounts; false if the helper did not exit with 0.
  bool Cleanup() {
    bool ok = true;
    monitor_.set_watch_helper(false);
    if (helper_.pid() > 0) {
      if (helper_.IsRunning()) {
        Say("");
        Say("nfsd-sim: stopping the helper with SIGTERM");
        helper_.Signal(SIGTERM);
      }
      auto st = helper_.Wait(std::chrono::seconds(args_.timeout_s));
      if (!st) {
        Err("the helper did not exit within " +
            std::to_string(args_.timeout_s) + " s of SIGTERM; killing it");
        helper_.Kill9();
        st = helper_.Wait(10s);
        ok = false;
      }
      if (st) {
        Say("nfsd-sim: the helper exited: " + st->ToString());
        if (!st->success()) {
          ok = false;
          Fail("the helper's exit status was " + st->ToString() +
               ", expected exit 0");
        }
      }
    }
    monitor_.StopThread();
    sim_.Unmount();
    if (!created_dir_.empty()) rmdir(created_dir_.c_str());
    return ok;
  }

  const Args args_;
  SimKernel sim_;
  Process helper_;
  Monitor monitor_;
  std::string created_dir_;
  std::string failure_;
};

bool ParseArgs(int argc, char** argv, Args* args, bool* help) {
  *help = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        Err(a + " needs a value");
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      *help = true;
      return true;
    } else if (a == "--helper") {
      if (!value(&args->helper)) return false;
    } else if (a == "--db") {
      if (!value(&args->db)) return false;
    } else if (a == "--mount") {
      if (!value(&args->mount)) return false;
    } else if (a == "--ctl-socket") {
      if (!value(&args->ctl_socket)) return false;
    } else if (a == "--helper-log") {
      if (!value(&args->helper_log)) return false;
    } else if (a == "--timeout") {
      std::string v;
      if (!value(&v)) return false;
      char* end = nullptr;
      long n = strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 3600) {
        Err("--timeout must be 1..3600 seconds, not " + v);
        return false;
      }
      args->timeout_s = static_cast<int>(n);
    } else if (a == "--debug" || a == "-d") {
      args->debug = true;
    } else if (a == "--verbose" || a == "-v") {
      args->verbose = true;
    } else {
      Err("unknown argument " + a);
      return false;
    }
  }
  if (args->helper.empty() || args->db.empty()) {
    Err("--helper and --db are required");
    return false;
  }
  if (args->ctl_socket.empty()) {
    // ctl.sock beside the database, as an absolute path (the helper wants
    // one).
    const size_t slash = args->db.rfind('/');
    std::string dir =
        slash == std::string::npos ? "" : args->db.substr(0, slash);
    if (args->db[0] != '/') {
      char* cwd = getcwd(nullptr, 0);
      if (cwd == nullptr) {
        Err(std::string("getcwd: ") + strerror(errno));
        return false;
      }
      dir = std::string(cwd) + (dir.empty() ? "" : "/" + dir);
      free(cwd);
    }
    args->ctl_socket = dir + "/ctl.sock";
  }
  return true;
}

// nfsd-sim nfsdcld-db: see the file comment.
int NfsdcldDb(int argc, char** argv) {
  std::string storage, story = kDefaultDbStory, bin = kNfsdcldBin;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage.c_str(), stdout);
      return 0;
    }
    if ((a == "--storage" || a == "--story" || a == "--nfsdcld") &&
        i + 1 < argc) {
      (a == "--storage" ? storage : a == "--story" ? story : bin) = argv[++i];
    } else {
      Err("unknown or incomplete argument " + a);
      return 2;
    }
  }
  if (storage.empty()) {
    Err("--storage is required");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  std::string error;
  StoryResult result;
  bool ok = MakeNfsdcldDatabase(story, storage, &error, &result, bin);
  for (const auto& line : result.transcript) Say(line);
  if (!ok) {
    Err("FAILED: " + error);
    return 1;
  }
  Say("nfsdcld's database: " + storage + "/main.sqlite");
  return 0;
}

int Main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "nfsdcld-db") {
    return NfsdcldDb(argc, argv);
  }
  if (argc < 2 || std::string(argv[1]) != "demo") {
    if (argc >= 2 &&
        (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
      std::fputs(kUsage.c_str(), stdout);
      return 0;
    }
    std::fputs(kUsage.c_str(), stderr);
    return 2;
  }
  Args args;
  bool help = false;
  if (!ParseArgs(argc, argv, &args, &help)) {
    std::fputs(kUsage.c_str(), stderr);
    return 2;
  }
  if (help) {
    std::fputs(kUsage.c_str(), stdout);
    return 0;
  }
  // Signals are taken by the monitor thread with sigtimedwait(), so they must
  // be blocked in every thread: block them before the first one is created.
  // (The helper gets a clean signal mask from Process.)
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A closed stdout (nfsd-sim demo | head) must not kill us before cleanup.
  signal(SIGPIPE, SIG_IGN);

  Demo demo(args);
  return demo.Run();
}

}  // namespace
}  // namespace nfsdsim

int main(int argc, char** argv) { return nfsdsim::Main(argc, argv); }
