// Fault campaign: random, seeded histories of the real nfsd-helper against
// the simulated kernel, every allow decision checked by the RFC oracle.
//
// Rationale. The soak (tests/soak/) kills the helper at random instants
// under a workload whose every request succeeds; the scenario and fault
// tests play chosen stories. This campaign, in the spirit of Jepsen and of
// SQLite's crash tests, draws from a seed a short history (tens of events)
// mixing everything the helper must survive, in either protocol:
//  - nfsd starts, restarts (also during grace) and grace ends (four files:
//    grace_done; cld: GraceDone, and the early end once every client of the
//    reclaim set sent RECLAIM_COMPLETE, or at once for an empty set);
//  - creates and expires of clients from a small pool, alone or in storms;
//  - helper kill -9 between requests, at a random instant of a storm, or
//    just before or after the COMMIT of its n-th batch (the daemon's
//    NFSD_HELPER_TEST_CRASH failpoint);
//  - storage faults: the fault VFS (tests/fault/) LD_PRELOADed into the
//    helper, failing its k-th write or fsync with EIO or ENOSPC, once or from
//    then on, in power-loss mode so that every kill is also a power cut;
//  - wall-clock steps, forwards and backwards, of the running helper (the
//    LD_PRELOADed libnfsdh_clockstep.so: the daemon has no clock knob);
//  - lost upcalls (four files: the helper stopped with SIGSTOP while the
//    kernel withdraws the request after its timeout; cld: an upcall nobody
//    reads, which fails with -ETIMEDOUT) and replays (the kernel requeues a
//    killed helper's unanswered requests).
// The history is data, generated before the run from the seed alone, so that
// a failing history can be replayed with events left out: the runner plays
// each event against whatever state the kernel is in (an event that cannot
// apply, a grace_done outside grace, is skipped). Process timing is not
// reproducible, so a replay may need a few tries.
//
// The oracle (oracle.h) follows what the kernel was told; at every start the
// kernel's allow decision for every client of the pool is checked: a client
// the oracle says MUST NOT be allowed that is allowed is an unsafe allow; a
// client that MUST be allowed that is denied is a lost reclaim, unless the
// denial is a fail-closed one permitted below. Besides, every reply must be
// 0, or -EIO only in a run in which a storage fault was injected.
//
// When a denial is permitted. Denying is always safe by the RFC, but a
// helper that loses an acknowledged client without a storage fault has a
// bug. A must-allow client may be denied only when the helper failed closed
// for an injected, logged fault: the start (allow_client, cld GraceStart)
// was not answered 0, so the kernel lets nobody reclaim (four files) or
// falls back to per-client Check upcalls (cld); then a Check answered -EIO,
// after at least one injected fault, is permitted, and so is a Check refusal
// of a client recorded with a principal hash (cld Check cannot verify one:
// the helper refuses it, documented in daemon/channels/cld_handler.cc). An allow list
// answered 0 must hold every must-allow client, fault or not.
#ifndef TESTS_CAMPAIGN_CAMPAIGN_H_
#define TESTS_CAMPAIGN_CAMPAIGN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace nfsdh::campaign {

enum class Mode { kFourFiles, kCld };
const char* ModeName(Mode m);  // "4f", "cld"

// The settings a (re)started helper runs with.
struct HelperConfig {
  std::string fault;  // NFSDH_FAULT spec ("" none), e.g. "sync:3:eio"
  std::string crash;  // NFSD_HELPER_TEST_CRASH ("" none)
};

enum class EventKind {
  kStart,      // nfsd (re)starts; its allow decision is checked
  kCreate,     // a client establishes state
  kExpire,     // a client's lease expires, or it is destroyed
  kStorm,      // several creates and expires at once, maybe a kill -9 in it
  kGraceDone,  // nfsd ends its grace period
  kKill,       // kill -9 of the helper, restarted with `helper`
  kClockStep,  // the wall clock steps by `delta` seconds
  kLostUpcall  // a create, expire or grace_done the helper never answers
};

struct Event {
  EventKind kind = EventKind::kStart;
  int client = 0;                  // kCreate, kExpire, kLostUpcall
  std::vector<int> storm;          // kStorm: client i, negative: expire ~i
  bool kill = false;               // kStorm: kill -9 in the middle
  int delay_us = 0;                // kStorm: kill; kLostUpcall: SIGSTOP
  HelperConfig helper;             // kKill, kStorm with kill
  int64_t delta = 0;               // kClockStep
  EventKind lost = EventKind::kCreate;  // kLostUpcall: what is lost
  std::string ToString() const;
};

struct Options {
  Mode mode = Mode::kFourFiles;
  uint64_t seed = 1;
  int events = 30;   // history length
  int clients = 6;   // pool size
  std::string helper;     // the nfsd-helper binary
  std::string fault_so;   // libnfsdh_faultvfs.so
  std::string clock_so;   // libnfsdh_clockstep.so
  // Keep only these indices of the generated history (empty: all).
  std::vector<int> keep;
  std::function<void(const std::string&)> log;  // progress, verbose
  bool verbose = false;
};

struct Figures {
  uint64_t events = 0;        // played (not skipped)
  uint64_t skipped = 0;       // could not apply in the state reached
  uint64_t starts = 0;
  uint64_t decisions = 0;     // allow decisions checked against the oracle
  uint64_t must_allow = 0;    // of which the oracle said MUST allow
  uint64_t must_not = 0;      // ... MUST NOT allow
  uint64_t requests = 0;      // create/expire/grace_done sent
  uint64_t uncertain = 0;     // of which not answered 0
  uint64_t faults = 0;        // storage faults injected (fault VFS reports)
  uint64_t kills = 0;         // kill -9: events, storms, failpoints
  uint64_t lost_upcalls = 0;  // requests the kernel gave up on
  uint64_t clock_steps = 0;
  uint64_t fail_closed = 0;   // permitted denials of must-allow clients
  uint64_t violations = 0;
  std::vector<std::string> problems;  // one line per violation
  void Add(const Figures& o);
  std::string ToString() const;
};

// The history of `seed` (options.events long, filtered by options.keep).
std::vector<Event> Generate(const Options& options);
// Plays `history` once in a fresh temporary directory. Needs root (FUSE).
Figures Play(const Options& options, const std::vector<Event>& history);

struct SeedResult {
  Figures figures;
  std::vector<Event> history;
  std::vector<int> minimal;  // indices into history; empty unless failing
  std::string report;        // printed on failure: history, minimal, command
};
// Generates, plays and, if it fails, shrinks (delta debugging over the
// events, `shrink_runs` plays at most) the history of options.seed.
SeedResult RunSeed(const Options& options, int shrink_runs);

}  // namespace nfsdh::campaign

#endif  // TESTS_CAMPAIGN_CAMPAIGN_H_
