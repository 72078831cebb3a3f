// Reboot stories played by the simulated cld pipe (cld_pipe.h) against a
// real cld tracker process: Debian's /usr/sbin/nfsdcld or nfsd-helper in cld
// mode. Used by the tests of the pipe, by the differential test
// (tests/scenario/cld_diff_test.cc) and by `nfsd-sim nfsdcld-db`.
//
// A story is a text of steps separated by ';' (spaces around them ignored):
//
//   start | stop | restart      nfsd starts (pipe appears, GetVersion,
//                               GraceStart), stops (pipe removed), or both
//   create C                    NFSv4.0 first OPEN_CONFIRM of client C
//   complete C                  NFSv4.1 RECLAIM_COMPLETE of client C
//   expire C                    C's lease expires (Remove if C is stable)
//   reclaim C[=R[/R2]]          C reclaims; the decision is recorded. R is
//                               the expected one (allow, bad = RECLAIM_BAD,
//                               nograce = NO_GRACE) for every tracker, or R
//                               for nfsdcld and R2 for nfsd-helper
//   gracedone                   the grace period ends (GraceDone)
//   kill-tracker | start-tracker | restart-tracker
//                               SIGKILL the tracker, start it again, or both
//   kernel 1 | kernel 2         the next nfsd start runs a kernel whose
//                               highest cld version is 1 (no principal
//                               hashes) or 2
//
// A client is a letter or word; `C@tag` gives it a Kerberos principal (its
// hash is made from `tag`), otherwise it has none (AUTH_SYS). Its client id
// on the wire is ClientId(C).
//
// Making an nfsdcld database for migration tests: MakeNfsdcldDatabase()
// runs Debian's nfsdcld against a private simulated pipe through a story
// and leaves its database in `<storage_dir>/main.sqlite`; from the shell:
//
//   nfsd-sim nfsdcld-db --storage DIR [--story "start; complete A; ..."]
//
// (see `nfsd-sim --help`; the default story leaves a database with current
// epoch records and a recovery epoch in grace).
#ifndef TESTS_SIM_CLD_PIPE_STORY_H_
#define TESTS_SIM_CLD_PIPE_STORY_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/process.h"

namespace nfsdsim {

inline constexpr char kNfsdcldBin[] = "/usr/sbin/nfsdcld";

enum class CldTrackerKind { kNfsdcld, kNfsdHelper };
const char* CldTrackerName(CldTrackerKind kind);  // "nfsdcld", "nfsd-helper"

struct CldTrackerConfig {
  CldTrackerKind kind = CldTrackerKind::kNfsdcld;
  std::string binary;      // default: kNfsdcldBin for nfsdcld
  std::string pipefs_dir;  // CldPipe::mount_dir()
  // nfsdcld: its storage directory (main.sqlite). nfsd-helper: a directory
  // for its database (state.sqlite) and control socket (ctl.sock).
  std::string state_dir;
  // nfsd-helper: its --nfsdfs (a directory that may hold a v4_end_grace
  // file standing for nfsd's).
  std::string nfsdfs_dir = "none";
  // nfsd-helper: more options for its command line ("--nfsdcld-db", PATH).
  std::vector<std::string> extra_args;
  std::function<void(std::string_view)> on_log_line;
  std::chrono::milliseconds timeout{10000};  // for starting and stopping
};

// One tracker daemon, run in the foreground with debug logging:
//   nfsdcld -F -d -p PIPEFS -s STATE
//   nfsd-helper -F -d --db STATE/state.sqlite --nfsdfs NFSDFS (none)
//               --cld-pipe PIPEFS/nfsd/cld --ctl-socket STATE/ctl.sock
class CldTracker {
 public:
  explicit CldTracker(CldTrackerConfig config);
  ~CldTracker();  // SIGKILLs a running tracker
  // Starts the daemon and waits until it is ready to notice the pipe
  // (nfsdcld: its event loop runs; nfsd-helper: its control socket exists).
  bool Start(std::string* error);
  bool Kill9();                   // SIGKILL and reap
  bool Stop(std::string* error);  // SIGTERM, reap
  bool Running();
  std::string Log() const;  // everything every run of it logged
  const CldTrackerConfig& config() const { return config_; }

  // Whether `binary` is an nfsd-helper that serves the cld pipe (its --help
  // mentions --cld-pipe); *why says what is missing if not.
  static bool HelperSupportsCld(const std::string& binary, std::string* why);

 private:
  CldTrackerConfig config_;
  std::unique_ptr<Process> proc_;
  std::string past_log_;
};

struct StoryStep {
  enum class Op {
    kStart,
    kStop,
    kRestart,
    kCreate,
    kComplete,
    kExpire,
    kReclaim,
    kGraceDone,
    kKillTracker,
    kStartTracker,
    kRestartTracker,
    kKernel,
  };
  Op op = Op::kStart;
  std::string client;      // the name in the story ("A")
  std::string principal;   // tag after '@', "" for none
  int kernel_version = 2;  // for kKernel
  // For kReclaim: the expected decision with nfsdcld and with nfsd-helper.
  std::optional<ReclaimResult> expect_nfsdcld;
  std::optional<ReclaimResult> expect_helper;
  std::string text;  // the step as written
};

// Parses a story; false with *error naming the bad step.
bool ParseStory(std::string_view text, std::vector<StoryStep>* steps,
                std::string* error);

// The client id on the wire of a story's client name, and the principal
// hash of a tag ("" for "").
std::string ClientId(const std::string& name);
std::string PrincipalHash(const std::string& tag);

// "allow", "bad", "nograce".
const char* DecisionName(ReclaimResult r);

struct StoryResult {
  bool ok = false;    // every step worked and every expectation held
  std::string error;  // the first failure
  // The reclaim decisions in story order, as "reclaim A: allow".
  std::vector<std::string> decisions;
  // What happened at each step (reclaim sets, upcall statuses, decisions).
  std::vector<std::string> transcript;
};

// Plays `steps` on `pipe` (mounted) with `tracker` (started by the caller,
// or by a start-tracker step). Expectations are checked against the
// tracker's kind. Upcalls must succeed (status 0, no timeout).
StoryResult RunStory(CldPipe& pipe, CldTracker& tracker,
                     const std::vector<StoryStep>& steps);

// The story `nfsd-sim nfsdcld-db` plays by default: two instances; leaves
// nfsd in the grace period of the second with clients in both epochs.
inline constexpr char kDefaultDbStory[] =
    "start; complete A; create B@krb-b; complete C; expire C; restart; "
    "reclaim A=allow; reclaim B@krb-b=allow; complete A; complete D";

// Runs Debian's nfsdcld (`nfsdcld_bin`) against a private simulated pipe
// mounted under a temporary directory, plays `story` and stops nfsd and
// nfsdcld; nfsdcld's database is then `storage_dir`/main.sqlite (the
// directory is created if needed). Stopping nfsd sends no upcall, so a story
// that ends in grace leaves the recovery epoch in the database.
bool MakeNfsdcldDatabase(const std::string& story,
                         const std::string& storage_dir, std::string* error,
                         StoryResult* result = nullptr,
                         const std::string& nfsdcld_bin = kNfsdcldBin);

}  // namespace nfsdsim

#endif  // TESTS_SIM_CLD_PIPE_STORY_H_
