#include "daemon/recovery/engine.h"

#include <algorithm>

namespace nfsdh::recovery {

int64_t NextInstance(const ScopeState& s, int64_t now) {
  return std::max<int64_t>({now, s.max_instance + 1, 1});
}

StartPlan PlanStart(const ScopeState& s, int64_t now) {
  StartPlan p;
  p.instance = NextInstance(s, now);
  p.restart_in_grace = s.in_grace();
  p.purge_older_than = s.boot_time;
  p.next = s;
  p.next.new_boot_time = p.instance;
  p.next.max_instance = p.instance;
  return p;
}

Verdict CheckInstance(const ScopeState& s, int64_t instance) {
  auto cur = s.current();
  return cur && *cur == instance ? Verdict::kApply : Verdict::kStale;
}

GraceDonePlan PlanGraceDone(const ScopeState& s, int64_t instance) {
  GraceDonePlan p;
  if (s.new_boot_time && *s.new_boot_time == instance) {
    p.verdict = Verdict::kApply;
    p.next = s;
    p.next.old_boot_time = s.boot_time;
    p.next.boot_time = instance;
    p.next.new_boot_time.reset();
    p.purge_older_than = instance;
  } else if (!s.new_boot_time && s.boot_time && *s.boot_time == instance) {
    p.verdict = Verdict::kAlreadyDone;
  } else {
    p.verdict = Verdict::kStale;
  }
  return p;
}

ImportPlan PlanImport(const ScopeState& s) {
  ImportPlan p;
  if (s.in_grace()) {
    p.verdict = ImportVerdict::kInGrace;
    p.stamp = s.boot_time.value_or(0);
  } else if (!s.boot_time) {
    p.verdict = ImportVerdict::kFresh;
    p.stamp = 0;
  }
  return p;
}

std::optional<PendingStep> KernelGraceEnd(
    const ScopeState& s, const std::vector<PendingStep>& pending) {
  const bool unrecorded_start = !pending.empty() && pending.back().start;
  const bool end_pending = !pending.empty() && !pending.back().start;
  if ((!s.in_grace() && !unrecorded_start) || end_pending) return std::nullopt;
  PendingStep end;
  if (!unrecorded_start) end.instance = s.new_boot_time;
  return end;
}

NextStartPlan PlanNextStart(const ScopeState& s,
                            const std::vector<PendingStep>& pending) {
  NextStartPlan out;
  auto purge = [&out](std::optional<int64_t> older_than) {
    if (older_than && (!out.keep_from || *older_than > *out.keep_from))
      out.keep_from = older_than;
  };
  ScopeState st = s;
  std::optional<int64_t> started;
  for (const PendingStep& step : pending) {
    if (step.start) {
      // `now` 0: the instance is max_instance + 1; a later clock only makes
      // it larger, and no record is stamped with either.
      StartPlan p = PlanStart(st, 0);
      purge(p.purge_older_than);
      st = p.next;
      started = p.instance;
      continue;
    }
    std::optional<int64_t> target = step.instance ? step.instance : started;
    if (!target) continue;
    GraceDonePlan g = PlanGraceDone(st, *target);
    if (g.verdict != Verdict::kApply) continue;
    purge(g.purge_older_than);
    st = g.next;
  }
  out.after_pending = st;
  purge(PlanStart(st, 0).purge_older_than);
  return out;
}

Model::StartResult Model::Start(int64_t now) {
  StartPlan p = PlanStart(state_, now);
  if (p.purge_older_than) PurgeOlderThan(*p.purge_older_than);
  state_ = p.next;
  StartResult r;
  r.instance = p.instance;
  for (const auto& [id, rec] : records_) r.allowed[id] = rec.princhash;
  return r;
}

Verdict Model::Create(int64_t instance, const std::string& id,
                      const std::string& princhash) {
  Verdict v = CheckInstance(state_, instance);
  if (v == Verdict::kApply) records_[id] = Record{princhash, instance};
  return v;
}

Verdict Model::Expire(int64_t instance, const std::string& id) {
  Verdict v = CheckInstance(state_, instance);
  if (v == Verdict::kApply) records_.erase(id);
  return v;
}

Verdict Model::GraceDone(int64_t instance) {
  GraceDonePlan p = PlanGraceDone(state_, instance);
  if (p.verdict == Verdict::kApply) {
    PurgeOlderThan(p.purge_older_than);
    state_ = p.next;
  }
  return p.verdict;
}

ImportVerdict Model::Import(const std::string& id,
                            const std::string& princhash) {
  ImportPlan p = PlanImport(state_);
  if (p.verdict != ImportVerdict::kRefused && !records_.count(id))
    records_[id] = Record{princhash, p.stamp};
  return p.verdict;
}

void Model::PurgeOlderThan(int64_t instance) {
  for (auto it = records_.begin(); it != records_.end();) {
    it = it->second.instance < instance ? records_.erase(it) : std::next(it);
  }
}

}  // namespace nfsdh::recovery
