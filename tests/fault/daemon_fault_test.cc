// The real nfsd-helper under storage faults, black-box: the daemon runs with
// libnfsdh_faultvfs.so preloaded (it contains no test code), in power-loss
// mode so that SIGKILL is a power cut, against the simulated kernel. For
// every kind of fault and K = 1, 2, ... a short reboot story is played:
//  - every reply is 0 or -EIO (-5);
//  - a 0 is given only for a change that is in the database (seen by a
//    concurrent reader at once, and after a power cut or a stop whose
//    checkpoint fails);
//  - a -EIO leaves the database unchanged;
//  - the daemon keeps serving: after a one-shot fault the same request
//    succeeds; under a persistent fault it keeps answering -EIO (never 0),
//    and once restarted on good storage it succeeds.
// The loop over K ends with the first run in which no fault was injected.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/recovery/engine.h"
#include "tests/fault/fault_vfs.h"
#include "tests/fault/plain_db.h"
#include "tests/scenario/harness.h"

namespace scenario {
namespace {

using nfsdh::faultvfs::Err;
using nfsdh::faultvfs::FaultSpec;
using nfsdh::faultvfs::Op;
using nfsdh::recovery::Model;
using nfsdh::recovery::Verdict;

constexpr int kEio = -5;
constexpr uint64_t kMaxK = 100;

const std::string kA = "client-A";
const std::string kB = "client-B";
const std::string kC = "client-C";

enum class Kind { kStart, kCreate, kExpire, kGraceDone };
struct Step {
  Kind kind;
  std::string id;
};

// A reboot with a database holding A and B: A reclaims, grace ends (B, who
// did not reclaim, is purged), C gets state, A's lease expires.
const std::vector<Step> kStory = {
    {Kind::kStart, ""},  {Kind::kCreate, kA}, {Kind::kGraceDone, ""},
    {Kind::kCreate, kC}, {Kind::kExpire, kA},
};

const char* StepName(const Step& s) {
  switch (s.kind) {
    case Kind::kStart:
      return "start";
    case Kind::kCreate:
      return "create_client";
    case Kind::kExpire:
      return "expire_client";
    case Kind::kGraceDone:
      return "grace_done";
  }
  return "?";
}

struct Reply {
  int status = 0;
  int64_t instance = 0;
  std::set<std::string> allow;
};

Reply Play(nfsdsim::SimKernel& k, const Step& s) {
  Reply r;
  switch (s.kind) {
    case Kind::kStart: {
      auto res = k.StartInstance(4242);
      r.status = res.status;
      r.instance = res.instance;
      r.allow = Ids(res.allow);
      break;
    }
    case Kind::kCreate:
      r.status = k.EstablishState(s.id, "", Minor::kV41).status;
      break;
    case Kind::kExpire:
      r.status = k.Expire(s.id).status;
      break;
    case Kind::kGraceDone:
      r.status = k.EndGrace().status;
      break;
  }
  return r;
}

// Applies an acknowledged step to the reference model.
void Apply(Model* m, const Step& s, const Reply& r) {
  int64_t inst = m->state().current().value_or(0);
  switch (s.kind) {
    case Kind::kStart: {
      auto res = m->Start(r.instance);
      REQUIRE(res.instance == r.instance);
      REQUIRE(Ids(res.allowed) == r.allow);
      break;
    }
    case Kind::kCreate:
      REQUIRE(m->Create(inst, s.id) == Verdict::kApply);
      break;
    case Kind::kExpire:
      REQUIRE(m->Expire(inst, s.id) == Verdict::kApply);
      break;
    case Kind::kGraceDone:
      REQUIRE(m->GraceDone(inst) == Verdict::kApply);
      break;
  }
}

// The database holds exactly what the model says was acknowledged.
void RequireDb(const std::string& db, const Model& m, const char* when) {
  INFO(when);
  std::set<std::string> want;
  for (const auto& [id, r] : m.records()) want.insert(id);
  REQUIRE(RecordedIds(db) == want);
  auto row = ScopeOf(db);
  REQUIRE(row.has_value());
  nfsdh::recovery::ScopeState got;
  got.boot_time = row->boot_time;
  got.new_boot_time = row->new_boot_time;
  got.old_boot_time = row->old_boot_time;
  got.max_instance = row->max_instance;
  REQUIRE(got == m.state());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string KindName(const FaultSpec& s) {
  return std::string(nfsdh::faultvfs::OpName(s.op)) + "/" +
         nfsdh::faultvfs::ErrName(s.err) + "/" +
         (s.persistent ? "persistent" : "one-shot");
}

std::vector<FaultSpec> AllKinds() {
  std::vector<FaultSpec> v;
  for (Op op : {Op::kWrite, Op::kSync, Op::kTruncate})
    for (Err err : {Err::kEio, Err::kEnospc})
      for (bool persistent : {false, true})
        v.push_back({op, 1, err, persistent});
  return v;
}

TEST_CASE(
    "the daemon under storage faults never acknowledges what is not "
    "durable, answers -EIO, and keeps serving",
    "[fault][daemon]") {
  nfsdh::faulttest::TempDir t;
  const std::string db = t.path() + "/state/state.sqlite";
  const std::string baseline = t.path() + "/baseline.sqlite";
  Node n(t.path() + "/nfsd", db);

  // The database before the story, made without faults: one completed
  // boot, clients A and B.
  Model base;
  {
    n.StartHelper();
    auto r = n.k().StartInstance(1);
    REQUIRE(r.ok());
    REQUIRE(base.Start(r.instance).instance == r.instance);
    REQUIRE(n.k().EndGrace().ok());
    REQUIRE(base.GraceDone(r.instance) == Verdict::kApply);
    for (const auto& id : {kA, kB}) {
      REQUIRE(n.k().EstablishState(id, "", Minor::kV41).ok());
      REQUIRE(base.Create(r.instance, id) == Verdict::kApply);
    }
    n.StopHelper();
    REQUIRE(nfsdh::faulttest::CopyCrashImage(db, baseline));
  }

  const std::map<std::string, std::string> good_storage = {
      {"LD_PRELOAD", NFSDH_FAULTVFS_SO}, {"NFSDH_FAULT_POWERLOSS", "1"}};
  uint64_t runs = 0, eio_replies = 0, injected_runs = 0;
  for (FaultSpec spec : AllKinds()) {
    uint64_t k = 1;
    for (;; ++k) {
      REQUIRE(k <= kMaxK);
      spec.k = k;
      const std::string fault = nfsdh::faultvfs::Describe(spec);
      INFO("NFSDH_FAULT=" << fault);
      ++runs;
      REQUIRE(nfsdh::faulttest::CopyCrashImage(baseline, db));
      size_t log_start = n.Log().size();
      const std::string report_path =
          t.path() + "/report-" + std::to_string(runs) + ".txt";
      auto env = good_storage;
      env["NFSDH_FAULT"] = fault;
      env["NFSDH_FAULT_REPORT"] = report_path;
      n.StartHelper(env);
      Model m = base;
      bool saw_eio = false;
      for (const Step& s : kStory) {
        INFO("step " << StepName(s) << " " << s.id);
        Reply r = Play(n.k(), s);
        INFO(n.Log().substr(log_start));
        REQUIRE((r.status == 0 || r.status == kEio));
        if (r.status == 0) {
          Apply(&m, s, r);
          RequireDb(db, m, "after a 0 reply");
          continue;
        }
        ++eio_replies;
        saw_eio = true;
        RequireDb(db, m, "after a -EIO reply");
        Reply again = Play(n.k(), s);
        if (!spec.persistent) {
          // The fault is used up: the same request now succeeds.
          REQUIRE(again.status == 0);
          Apply(&m, s, again);
          RequireDb(db, m, "after the retry");
        } else {
          // Storage stays broken: still answered, never with a 0.
          REQUIRE(again.status == kEio);
          ++eio_replies;
          RequireDb(db, m, "after a second -EIO");
        }
        // A power cut now, then a restart on good storage.
        n.KillHelper();
        RequireDb(db, m, "after a power cut following the fault");
        n.StartHelper(good_storage);
        if (spec.persistent) {
          Reply last = Play(n.k(), s);
          REQUIRE(last.status == 0);
          Apply(&m, s, last);
          RequireDb(db, m, "after the restart");
        }
      }
      // The story's end: a clean stop (SIGTERM), whose checkpoint of the
      // WAL into the database meets the faults that K has not reached yet.
      // In power-loss mode an exit loses unsynced data as a cut does.
      n.StopHelper();
      RequireDb(db, m, "after a stop");
      REQUIRE(RecordedIds(db) == std::set<std::string>{kC});
      // The VFS's own report, not the daemon's stderr: a helper's last lines
      // may still be in its pipe when the harness collects its log.
      std::string report = ReadFile(report_path);
      REQUIRE(report.find("nfsdh-faultvfs: default VFS is nfsdh-fault; fault " +
                          fault) != std::string::npos);
      bool injected =
          report.find("nfsdh-faultvfs: injected") != std::string::npos;
      // Only an injected fault may make the daemon answer -EIO.
      if (saw_eio) REQUIRE(injected);
      if (!injected) break;
      ++injected_runs;
    }
    std::printf("[fault][daemon] %-26s K = 1..%llu\n", KindName(spec).c_str(),
                static_cast<unsigned long long>(k));
  }
  std::printf(
      "[fault][daemon] %llu runs of the story, %llu with a fault "
      "injected, %llu -EIO replies, no unacknowledged-but-0 reply\n",
      static_cast<unsigned long long>(runs),
      static_cast<unsigned long long>(injected_runs),
      static_cast<unsigned long long>(eio_replies));
  CHECK(eio_replies > 0);
}

}  // namespace
}  // namespace scenario
