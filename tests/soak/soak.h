// Soak: the real nfsd-helper against the simulated kernel, killed with
// SIGKILL at random instants while a random workload runs.
//
// Rationale. The crash tests of tests/scenario kill the helper at chosen
// points of one short story; this run kills it wherever a timer happens to
// fire (in its start-up, in the middle of a batch, between a COMMIT and its
// reply, with requests queued or read and unanswered) and over a long random
// history. One thread plays nfsd (server starts, restarts during grace,
// storms of concurrent creates and expires, reclaims, grace ends), another
// kills and restarts the helper. Every answer is checked against a reference
// model of the rules of PROTOCOL.md §4 written here on its own (not the
// daemon's recovery engine), which only learns what the kernel was told:
//  - lost acks: a client whose create was answered 0 (and that was neither
//    expired nor purged since) missing from the database at a quiet moment,
//    or from the allow list of the next start;
//  - unsafe allows: a client in the allow list (or allowed to reclaim by the
//    kernel) that the model forbids, or allowed with a principal hash that
//    the model does not hold for it;
//  - hung requests: a request not answered within the timeout, although the
//    killed helper's unanswered requests go back to the queue (PROTOCOL.md
//    §6) and the restarted helper must answer them.
// A request never gets a status other than 0: every one names the current
// instance and the storage does not fail.
#ifndef TESTS_SOAK_SOAK_H_
#define TESTS_SOAK_SOAK_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace nfsdh::soak {

struct Options {
  int kills = 30;
  uint64_t seed = 1;
  std::string helper;  // the nfsd-helper binary
  // A kill falls this long after the helper was started: one in four in the
  // first 3 ms (in its start-up), the rest uniformly in [3, max_delay_ms].
  int max_delay_ms = 60;
  int clients = 48;  // the pool of client ids the workload draws from
  // A request not answered this long after it was queued is hung (the
  // simulated kernel withdraws it).
  std::chrono::milliseconds hang_timeout{15000};
  // Progress lines and, with verbose, one line per kill.
  std::function<void(const std::string&)> log;
  bool verbose = false;
};

struct Figures {
  uint64_t kills = 0;
  uint64_t kills_in_flight = 0;  // with requests queued or read, unanswered
  uint64_t requests = 0;         // queued by the simulated kernel
  uint64_t requeued = 0;         // put back by a kill, served again
  uint64_t acked = 0;            // answered 0
  uint64_t starts = 0;
  uint64_t restarts_in_grace = 0;
  uint64_t grace_ends = 0;
  uint64_t reclaims_checked = 0;  // kernel reclaim decisions compared
  uint64_t db_checks = 0;         // database compared at a quiet moment
  uint64_t lost_acks = 0;
  uint64_t unsafe_allows = 0;
  uint64_t hung = 0;
  uint64_t bad_replies = 0;       // a status other than 0
  uint64_t helper_failures = 0;   // a helper that would not (re)start
  double seconds = 0;
  std::string first_problem;  // "" when everything held

  bool ok() const {
    return lost_acks == 0 && unsafe_allows == 0 && hung == 0 &&
           bad_replies == 0 && helper_failures == 0 && first_problem.empty();
  }
  std::string ToString() const;
};

// Runs the soak in a fresh temporary directory (removed afterwards) until
// `kills` kills were made, then restarts the server once more and checks its
// allow list. Needs root (FUSE).
Figures Run(const Options& options);

}  // namespace nfsdh::soak

#endif  // TESTS_SOAK_SOAK_H_
