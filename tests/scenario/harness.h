// Harness for black-box scenario tests: a temporary directory with a
// database, and Nodes, each a simulated nfsd (a FUSE mount) served by a real
// nfsd-helper process that can be stopped, killed and restarted.
#ifndef TESTS_SCENARIO_HARNESS_H_
#define TESTS_SCENARIO_HARNESS_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "tests/sim/process.h"
#include "tests/sim/sim_kernel.h"

namespace scenario {

using namespace std::chrono_literals;
using nfsdfs::Minor;
using nfsdsim::ReclaimResult;

// How long any single step may take before the test fails instead of hanging.
inline constexpr auto kStepTimeout = 10s;

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One nfsd (network namespace) and the helper serving it.
class Node {
 public:
  // Mounts a simulated nfsd filesystem at `mount_dir` (created).
  Node(std::string mount_dir, std::string db, std::string scope = "default");
  ~Node();

  nfsdsim::SimKernel& k() { return *kernel_; }

  // Starts nfsd-helper (foreground, debug) and waits until it has all four
  // files open. `env` is added to its environment, `extra_args` to its
  // command line.
  void StartHelper(const std::map<std::string, std::string>& env = {},
                   const std::vector<std::string>& extra_args = {});
  // SIGTERM; the helper must exit 0 and release every file.
  void StopHelper();
  // SIGKILL; waits until it is reaped and its files are released.
  void KillHelper();
  // Waits for a helper that is expected to die by itself (a failpoint).
  nfsdsim::ExitStatus WaitHelperDeath();
  bool HelperRunning();
  // The running helper's process id (-1 if none was started).
  pid_t HelperPid() const { return helper_ ? helper_->pid() : -1; }
  // Every line the helpers of this node logged so far, across restarts.
  std::string Log() const;
  // Waits until the running helper has logged `needle` (its stderr is read
  // by another thread, so a line may arrive after the reply that followed
  // it).
  bool WaitForLog(const std::string& needle);

 private:
  void CollectLog();
  std::string mount_dir_, db_, scope_;
  std::unique_ptr<nfsdsim::SimKernel> kernel_;
  std::unique_ptr<nfsdsim::Process> helper_;
  std::string past_logs_;
};

// Read-only views of the database, opened afresh each time, the way an
// operator's helper-ctl would see it.
std::set<std::string> RecordedIds(const std::string& db,
                                  const std::string& scope = "default");
std::optional<nfsdh::store::ScopeRow> ScopeOf(
    const std::string& db, const std::string& scope = "default");

// Damages the database `db` the way a failing disk would, keeping its
// header (so the file is still recognisably nfsd-helper's): moves the WAL
// into the file, then overwrites the b-tree root page of `table` with
// garbage, from outside any SQLite connection. A helper that has the file
// open meets the damage at its next transaction.
void DamageTable(const std::string& db, const std::string& table);

// Queues a raw create_client for `instance` without waiting for its reply.
nfsdsim::Ticket SubmitCreate(nfsdsim::SimKernel& k, int64_t instance,
                             const std::string& id, Minor minor = Minor::kV41);

// A 32-byte principal hash made from a short tag.
std::string Hash(const std::string& tag);

// Runs nfsd-helper with `args` after the test defaults (--foreground, no cld
// pipe, no import) and expects it to refuse to start: exit status 1 and
// "cannot start". Returns what it wrote on stderr.
std::string ExpectNoStart(const std::vector<std::string>& args);

// Keys of an allow set.
std::set<std::string> Ids(const std::map<std::string, std::string>& allow);

}  // namespace scenario

#endif  // TESTS_SCENARIO_HARNESS_H_
