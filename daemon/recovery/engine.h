// Recovery engine: the reboot-recovery rules of PROTOCOL.md §4 as pure logic.
//
// Rationale. RFC 7530 §9.6.3 and RFC 8881 §8.4.3 let a client reclaim after a
// server restart only if no conflicting state can have been granted since it
// last held state. The engine decides this from three instance ids kept per
// scope (boot_time, new_boot_time, old_boot_time) and the instance stamped on
// each client record:
//  - a record stamped older than the last instance that completed its grace
//    period belongs to a client that did not reclaim in that grace period, so
//    others may have taken conflicting state since: it is deleted;
//  - a restart before grace_done keeps boot_time, so no client is lost by a
//    crash during grace, and no conflicting state exists yet;
//  - instance ids come from max(now, largest ever + 1): a wall clock stepping
//    backwards cannot make an old record look new.
// The engine does no I/O and reads no clock; the caller passes `now` and
// applies the plans it returns to the store (or, in tests, to Model).
#ifndef DAEMON_RECOVERY_ENGINE_H_
#define DAEMON_RECOVERY_ENGINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nfsdh::recovery {

struct ScopeState {
  std::optional<int64_t> boot_time;
  std::optional<int64_t> new_boot_time;
  std::optional<int64_t> old_boot_time;
  int64_t max_instance = 0;  // largest instance ever issued in the scope

  bool in_grace() const { return new_boot_time.has_value(); }
  // The instance the kernel tags its requests with: new_boot_time while in
  // grace, else boot_time; none before the first start.
  std::optional<int64_t> current() const {
    return new_boot_time ? new_boot_time : boot_time;
  }
  bool operator==(const ScopeState& o) const {
    return boot_time == o.boot_time && new_boot_time == o.new_boot_time &&
           old_boot_time == o.old_boot_time && max_instance == o.max_instance;
  }
};

// max(now, max_instance + 1), and at least 1.
int64_t NextInstance(const ScopeState& s, int64_t now);

struct StartPlan {
  int64_t instance = 0;  // the new server instance
  // Delete every record stamped older than this before building the allow
  // list (unset: keep all records).
  std::optional<int64_t> purge_older_than;
  ScopeState next;
  bool restart_in_grace = false;  // the previous instance never ended grace
};
StartPlan PlanStart(const ScopeState& s, int64_t now);

enum class Verdict {
  kApply,        // do it
  kAlreadyDone,  // a replay of something already applied: answer 0
  kStale,        // not the current instance: answer -ESTALE, change nothing
};

// create_client / expire_client: allowed only for the current instance.
Verdict CheckInstance(const ScopeState& s, int64_t instance);

struct GraceDonePlan {
  Verdict verdict = Verdict::kStale;
  ScopeState next;              // valid when kApply
  int64_t purge_older_than = 0;  // valid when kApply
};
GraceDonePlan PlanGraceDone(const ScopeState& s, int64_t instance);

// Import of client records moved from another server (helper-ctl import,
// HA take-over). The kernel receives the allow list when an instance starts,
// so an imported record can only count for the grace period that opens at
// the scope's next start: the first start of a scope that has none yet, or
// the restart of an instance whose grace period is still open (a start in
// grace keeps boot_time). A scope whose grace period has ended refuses
// imports: a client that held no state here during that instance may not
// reclaim, since conflicting state may have been granted meanwhile.
//
// The stamp puts the records on the allow list of the next start and on no
// later one: it is >= boot_time (a start purges only what is older), and
// older than the running instance, so that grace_done of an instance the
// records could not reclaim in (the kernel never had them on its list)
// purges them. With no boot_time, 0 is below every instance id.
enum class ImportVerdict {
  kFresh,    // no instance yet: the first start allows the records
  kInGrace,  // the current instance is in grace: its restart allows them
  kRefused,  // the grace period ended: the records may never be allowed
};
struct ImportPlan {
  ImportVerdict verdict = ImportVerdict::kRefused;
  int64_t stamp = 0;  // the instance to stamp new records with
};
ImportPlan PlanImport(const ScopeState& s);

// What nfsd did on the stock kernel's cld pipe that the database could not
// record yet (daemon/store/FORMAT.md, `<db>.grace-end.<scope>`): a server
// start whose GraceStart was not recorded, or the end of a grace period, of
// `instance` or, when it is unset, of the instance of the start before it.
// The daemon applies them, in order, before anything else.
struct PendingStep {
  bool start = false;
  std::optional<int64_t> instance;  // of an end; unset: the start's
  bool operator==(const PendingStep& o) const {
    return start == o.start && instance == o.instance;
  }
};

// The grace end to add to `pending` when nfsd says (v4_end_grace) that it has
// ended the grace period of its running (or last) instance: the instance in
// grace in the database, or the one whose start the database missed (an
// end without instance). Unset when what nfsd says decides nothing: no
// instance is in grace, or an end is pending already.
std::optional<PendingStep> KernelGraceEnd(
    const ScopeState& s, const std::vector<PendingStep>& pending);

// Which records the next server start of a scope allows, decided on the
// database alone (helper-ctl export-nfsdcld hands them to nfsdcld): the
// steps of `pending` applied as the daemon applies them (a start by
// PlanStart; an end by PlanGraceDone when its instance is the one in grace,
// else it is no longer pending and changes nothing), then PlanStart. Each
// step only ever purges the records stamped older than some instance, so the
// records allowed are exactly those stamped >= `keep_from` (unset: all).
// A start the database missed is given an instance above max_instance, as
// the daemon's would be: no record is stamped with it, and its grace end
// purges every record.
struct NextStartPlan {
  std::optional<int64_t> keep_from;
  ScopeState after_pending;  // the scope once `pending` is applied
};
NextStartPlan PlanNextStart(const ScopeState& s,
                            const std::vector<PendingStep>& pending);

// An in-memory scope that applies the plans exactly as the store does. It is
// the reference the unit tests drive through the RFC scenarios and the oracle
// against which black-box tests check the real daemon.
class Model {
 public:
  struct Record {
    std::string princhash;
    int64_t instance = 0;
  };
  struct StartResult {
    int64_t instance = 0;
    std::map<std::string, std::string> allowed;  // client id -> princhash
  };

  StartResult Start(int64_t now);
  Verdict Create(int64_t instance, const std::string& id,
                 const std::string& princhash = "");
  Verdict Expire(int64_t instance, const std::string& id);
  Verdict GraceDone(int64_t instance);
  // Adds the record stamped by PlanImport unless it exists (an existing
  // record is left as it is). Returns the verdict; nothing changes when
  // refused.
  ImportVerdict Import(const std::string& id,
                       const std::string& princhash = "");
  // Forget everything, as after the loss of the database.
  void Wipe() { *this = Model(); }

  const ScopeState& state() const { return state_; }
  const std::map<std::string, Record>& records() const { return records_; }

 private:
  void PurgeOlderThan(int64_t instance);
  ScopeState state_;
  std::map<std::string, Record> records_;
};

}  // namespace nfsdh::recovery

#endif  // DAEMON_RECOVERY_ENGINE_H_
