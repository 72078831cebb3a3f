// Power-loss test: a child process changes the store through the power-loss
// VFS and is killed with SIGKILL at a random instant; the parent then opens
// the database with the plain "unix" VFS and checks that every change the
// child acknowledged survived, and nothing else appeared.
//
// Rationale. With the power-loss VFS (fault_vfs.h), a SIGKILL leaves on disk
// exactly what the process had synced, so the kill is a power cut. The child
// (nfsdh-powerloss --child) tells the parent, through its stdout, what it is
// about to do before Begin() ("I <txn> <ops>") and that a transaction is
// durable only after Commit() returned OK ("A <txn>"), the way the daemon
// answers the kernel. The parent replays the acknowledged transactions on a
// model, so it knows the exact state the database must be in: the state
// after the last acknowledged transaction, or after the one in flight. The
// child runs again on the same database after each cut, so every cut also
// tests recovery from the previous one.
#ifndef TESTS_FAULT_POWERLOSS_H_
#define TESTS_FAULT_POWERLOSS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace nfsdh::powerloss {

struct Options {
  std::string child_bin;  // nfsdh-powerloss, run as `child_bin --child ...`
  std::string dir;        // the database is dir/state.sqlite
  int cuts = 50;
  uint64_t seed = 1;
  // The cut comes at a uniformly random instant in [min, max) after the
  // child reported its Store open; one cut in `startup_cut_every` comes in
  // the first 5 ms after the child's start instead, so that some land while
  // it opens (and recovers) the file. Counting from the open keeps the
  // share of cuts among transactions the same on a slow machine.
  int64_t min_delay_us = 0;
  int64_t max_delay_us = 30000;
  int startup_cut_every = 8;
  // Also checkpoint the WAL now and then from a second connection, which
  // exercises the database file's writes and the WAL's truncation.
  bool checkpoints = true;
  // Negative control: the disk acknowledges xSync and persists nothing.
  bool lying_sync = false;
  bool verbose = false;  // one line per cut on stderr
};

struct Figures {
  int cuts = 0;
  int cuts_before_first_ack = 0;
  uint64_t txns_attempted = 0;
  uint64_t txns_acked = 0;
  uint64_t acked_changes_checked = 0;  // operations of acked transactions
  uint64_t lost_acks = 0;              // acked transactions not on disk
  uint64_t integrity_failures = 0;
  uint64_t phantom_records = 0;     // records no transaction ever wrote
  uint64_t unexplained_states = 0;  // matches no acknowledged prefix
  // The store failed the child by itself (refused to open what the last
  // cut left, or failed a transaction); the run stops there.
  uint64_t child_failures = 0;
  uint64_t inflight_durable = 0;      // the unacked transaction was on disk
  uint64_t checkpoints = 0;           // explicit ones that ran
  std::vector<std::string> failures;  // the first few, described

  bool ok() const {
    return lost_acks == 0 && integrity_failures == 0 && phantom_records == 0 &&
           unexplained_states == 0 && child_failures == 0;
  }
};

std::string FormatFigures(const Figures& f);

// Runs the cuts. Returns false with *error if the harness itself failed
// (the child could not be started, died by itself, ...); the figures say
// whether the store kept its promise.
bool Run(const Options& opts, Figures* figures, std::string* error);

// The child's side: `--child --db PATH --seed N --txn-base N
// [--lying-sync] [--no-checkpoints]`. Writes its protocol to stdout and
// runs until killed.
int ChildMain(int argc, char** argv);

}  // namespace nfsdh::powerloss

#endif  // TESTS_FAULT_POWERLOSS_H_
