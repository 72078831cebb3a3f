#include "daemon/tracker/model_check.h"

#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "daemon/recovery/engine.h"

namespace nfsdh::tracker::testing {
namespace {

using store::ClientRow;
using store::ScopeRow;

std::map<std::string, int64_t> Records(store::Backend* st,
                                       const std::string& scope) {
  std::map<std::string, int64_t> out;
  REQUIRE(st->ForEachClient(scope, [&](const ClientRow& c) {
              out[c.id] = c.instance;
              return true;
            }).ok());
  return out;
}

// The outbox after `after`, as "+id" / "-id".
std::vector<std::string> Events(store::Backend* st, int64_t* after) {
  std::vector<std::string> out;
  std::optional<store::CalloutRow> next;
  while (st->NextCallout(*after, &next).ok() && next) {
    out.push_back((next->added ? "+" : "-") + next->id);
    *after = next->seq;
  }
  return out;
}

}  // namespace

void CheckAgainstModel(store::Backend* backend, const std::string& scope,
                       uint32_t seed, int steps) {
  Tracker tr(backend, scope);
  int64_t told = 0;
  tr.set_callouts(true, [&](int64_t n) { told += n; });
  REQUIRE(tr.Load().ok());
  recovery::Model model;
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  int64_t now = 1000;
  int64_t seen_events = 0;  // the outbox's last seq read
  size_t total_events = 0;
  std::map<std::string, int64_t> before_records = Records(backend, scope);
  for (int step = 0; step < steps; ++step) {
    now += pick(3);  // the clock may stand still
    const bool doomed = pick(5) == 0;
    const ScopeRow row_before = tr.row();
    const ScopeStats stats_before = tr.stats();
    recovery::Model next = model;
    Transaction t(&tr, now);
    const std::string id = "c" + std::to_string(pick(8));
    const std::string hash = pick(2) ? std::string(32, 'a' + pick(3)) : "";
    std::optional<int64_t> cur = t.state().current();
    switch (pick(6)) {
      case 0: {  // allow_client
        Collect list;
        Transaction::Started st;
        REQUIRE(t.Start({now, false}, &list, &st) ==
                Transaction::StartResult::kStarted);
        recovery::Model::StartResult m = next.Start(now);
        CHECK(st.instance == m.instance);
        CHECK(list.got == m.allowed);
        break;
      }
      case 1: {  // create_client, of the current instance or a stale one
        int64_t inst = cur && pick(4) ? *cur : now - 5;
        recovery::Verdict v = next.Create(inst, id, hash);
        CHECK(t.CheckInstance(inst) == v);
        if (v == recovery::Verdict::kApply)
          REQUIRE(t.Record(inst, id, hash, pick(2)));
        break;
      }
      case 2: {  // expire_client
        int64_t inst = cur && pick(4) ? *cur : now - 5;
        recovery::Verdict v = next.Expire(inst, id);
        CHECK(t.CheckInstance(inst) == v);
        bool existed = false;
        if (v == recovery::Verdict::kApply) REQUIRE(t.Remove(id, &existed));
        break;
      }
      case 3: {  // grace_done
        if (!t.state().in_grace()) break;
        int64_t inst = *t.state().new_boot_time;
        REQUIRE(next.GraceDone(inst) == recovery::Verdict::kApply);
        REQUIRE(t.EndGrace(inst, "test"));
        break;
      }
      case 4: {  // import
        Transaction::ImportTarget target;
        REQUIRE(t.PlanImport(scope, &target));
        recovery::ImportVerdict v = next.Import(id, hash);
        CHECK(target.plan.verdict == v);
        bool inserted = false;
        if (v != recovery::ImportVerdict::kRefused)
          REQUIRE(t.Import(target, id, hash, 0, &inserted));
        break;
      }
      case 5: {  // purge (the model's expire of the current instance)
        if (!cur) break;
        std::optional<ClientRow> removed;
        Transaction::PurgeResult r = t.Purge(scope, id, &removed);
        bool had = next.records().count(id) > 0;
        CHECK(r == (had ? Transaction::PurgeResult::kPurged
                        : Transaction::PurgeResult::kNoClient));
        next.Expire(*cur, id);
        break;
      }
    }
    if (doomed) t.Fail(Status::Io("made to fail"));
    bool committed = t.Commit().ok();
    REQUIRE(committed == !doomed);
    std::map<std::string, int64_t> records = Records(backend, scope);
    int64_t after = seen_events;
    std::vector<std::string> events = Events(backend, &after);
    if (!committed) {
      // Nothing changed: not the database, the row, the counts, the
      // outbox.
      CHECK(records == before_records);
      CHECK(tr.row().boot_time == row_before.boot_time);
      CHECK(tr.row().new_boot_time == row_before.new_boot_time);
      CHECK(tr.row().max_instance == row_before.max_instance);
      CHECK(tr.stats().clients == stats_before.clients);
      CHECK(tr.stats().allowed == stats_before.allowed);
      CHECK(events.empty());
      continue;
    }
    model = next;
    CHECK(tr.state() == model.state());
    std::map<std::string, int64_t> expected;
    for (const auto& [rid, rec] : model.records()) expected[rid] = rec.instance;
    CHECK(records == expected);
    CHECK(tr.stats().clients == static_cast<int64_t>(records.size()));
    // The outbox says exactly what changed: an event per id added or
    // removed, and the callout heard of every one.
    std::set<std::string> want;
    for (const auto& [rid, inst] : records)
      if (!before_records.count(rid)) want.insert("+" + rid);
    for (const auto& [rid, inst] : before_records)
      if (!records.count(rid)) want.insert("-" + rid);
    CHECK(std::set<std::string>(events.begin(), events.end()) == want);
    CHECK(events.size() == want.size());
    seen_events = after;
    total_events += events.size();
    CHECK(told == static_cast<int64_t>(total_events));
    before_records = records;
  }
}

}  // namespace nfsdh::tracker::testing
