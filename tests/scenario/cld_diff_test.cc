// The differential test of cld trackers: the same reboot stories, played by
// the simulated stock kernel (tests/sim/sim_cld_pipe.h) against Debian's
// /usr/sbin/nfsdcld and against nfsd-helper in cld mode, every reclaim
// decision compared. Where the two agree, the story says so with one
// expected decision (`reclaim A=allow`); where they differ it names both
// (`reclaim A=allow/bad`: nfsdcld, then nfsd-helper), and the difference is
// explained in tests/sim/CLD-DIFFERENCES.md under the story's name, so a
// change on either side fails here and sends the reader to the document.
// The stories are research/recovery.md's scenarios that the cld protocol
// can express (numbers in `scenario`).
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/cld_pipe_story.h"

namespace {

using namespace std::chrono_literals;
using nfsdsim::CldPipe;
using nfsdsim::CldTracker;
using nfsdsim::CldTrackerConfig;
using nfsdsim::CldTrackerKind;
using nfsdsim::StoryResult;
using nfsdsim::StoryStep;

struct DiffStory {
  const char* name;      // also the heading in CLD-DIFFERENCES.md
  const char* scenario;  // research/recovery.md scenario number(s)
  const char* story;
};

// Every story starts from empty tracker state. `start` on an empty state
// skips grace (nothing to reclaim), so the first instance is past grace.
const DiffStory kStories[] = {
    {"baseline", "1",
     "start; complete A; create B; restart; reclaim A=allow; "
     "reclaim B=allow; complete A; create B; gracedone; restart; "
     "reclaim A=allow; reclaim B=allow"},
    {"never-held-state", "2",
     "start; complete A; restart; reclaim A=allow; reclaim N=bad"},
    {"expired-before-restart", "3",
     "start; complete A; complete B; expire A; restart; reclaim A=bad; "
     "reclaim B=allow"},
    {"expired-then-reconnected", "4",
     "start; complete A; complete B; expire A; complete A; restart; "
     "reclaim A=allow; reclaim B=allow"},
    {"silent-through-grace", "5",
     "start; complete A; complete B; restart; reclaim B=allow; complete B; "
     "gracedone; restart; reclaim A=bad; reclaim B=allow"},
    {"restart-during-grace", "6",
     "start; complete A; complete B; restart; reclaim B=allow; complete B; "
     "restart; reclaim A=allow; reclaim B=allow"},
    {"repeated-restarts-in-grace", "7",
     "start; complete A; complete C; restart; reclaim C=allow; complete C; "
     "restart; reclaim A=allow; complete A; gracedone; restart; "
     "reclaim A=allow; reclaim C=bad"},
    {"reclaimed-then-expired", "8",
     "start; complete A; complete B; restart; reclaim A=allow; complete A; "
     "reclaim B=allow; complete B; expire A; restart; reclaim A=bad; "
     "reclaim B=allow"},
    {"reclaim-complete-ends-reclaims", "9, 11",
     "start; complete A; complete B; restart; reclaim A=allow; complete A; "
     "reclaim A=nograce; reclaim B=allow; complete B; reclaim B=nograce"},
    {"partial-reclaim", "10",
     "start; complete A; complete B; restart; reclaim A=allow; "
     "reclaim B=allow; complete B; gracedone; restart; reclaim A=bad; "
     "reclaim B=allow"},
    {"principal-hash", "19",
     "start; complete A@k1; create B@k2; restart; reclaim A@k9=bad; "
     "reclaim A=bad; reclaim A@k1=allow; reclaim B@k2=allow"},
    {"tracker-restarted", "12",
     "start; complete A; restart-tracker; complete B; kill-tracker; "
     "start-tracker; restart; reclaim A=allow; reclaim B=allow"},
    {"double-restart-after-grace", "5, 6",
     "start; complete A; complete B; restart; reclaim A=allow; complete A; "
     "gracedone; restart; restart; reclaim A=allow; reclaim B=bad"},
    // The documented differences.
    {"expired-during-grace-then-restart", "3, 6",
     "start; complete A; complete B; restart; reclaim A=allow; complete A; "
     "expire A; restart; reclaim A=allow/bad; reclaim B=allow"},
    {"new-client-in-unfinished-grace", "6, 7",
     "start; complete A; restart; complete N; restart; reclaim A=allow; "
     "reclaim N=bad/allow"},
    {"principal-on-a-v1-kernel", "19",
     "start; complete A@k1; complete B; kernel 1; restart; "
     "reclaim A@k9=allow/bad; reclaim B=allow; kernel 2; restart; "
     "reclaim A@k1=allow; reclaim A@k9=bad; reclaim B=allow"},
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-clddiff-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    if (std::system(("rm -rf '" + path_ + "'").c_str()) != 0) {
      // Best effort.
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Plays one story with a fresh pipe and a fresh tracker of `kind`.
StoryResult Play(const DiffStory& s, CldTrackerKind kind, std::string* log) {
  TempDir dir;
  const std::string mount = dir.path() + "/pipefs";
  const std::string state = dir.path() + "/state";
  REQUIRE(mkdir(mount.c_str(), 0700) == 0);
  REQUIRE(mkdir(state.c_str(), 0700) == 0);
  nfsdsim::CldPipeOptions o;
  o.upcall_timeout = 10s;
  CldPipe pipe(o);
  std::string err;
  INFO(err);
  REQUIRE(pipe.Mount(mount, &err));
  CldTrackerConfig tc;
  tc.kind = kind;
  if (kind == CldTrackerKind::kNfsdHelper) tc.binary = NFSD_HELPER_BIN;
  tc.pipefs_dir = mount;
  tc.state_dir = state;
  CldTracker tracker(tc);
  REQUIRE(tracker.Start(&err));
  std::vector<StoryStep> steps;
  REQUIRE(nfsdsim::ParseStory(s.story, &steps, &err));
  StoryResult r = nfsdsim::RunStory(pipe, tracker, steps);
  pipe.StopNfsd();
  std::string stop_err;
  tracker.Stop(&stop_err);
  pipe.Unmount();
  *log = tracker.Log();
  return r;
}

std::string Transcript(const StoryResult& r) {
  std::string t;
  for (const auto& l : r.transcript) t += "  " + l + "\n";
  return t;
}

// Every documented difference has its section in the document, and every
// story with differing expectations is documented.
TEST_CASE("cld differential: each difference is documented", "[cld_diff]") {
  std::ifstream in(std::string(NFSDH_SOURCE_DIR) +
                   "/tests/sim/CLD-DIFFERENCES.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  int differences = 0;
  for (const DiffStory& s : kStories) {
    std::vector<StoryStep> steps;
    std::string err;
    INFO(s.name << ": " << err);
    REQUIRE(nfsdsim::ParseStory(s.story, &steps, &err));
    bool differs = false;
    for (const StoryStep& st : steps) {
      if (st.op != StoryStep::Op::kReclaim) continue;
      // Every reclaim in a differential story states what to expect.
      REQUIRE(st.expect_nfsdcld);
      differs = differs || *st.expect_nfsdcld != *st.expect_helper;
    }
    const bool documented =
        doc.find(std::string("### ") + s.name + "\n") != std::string::npos;
    CHECK(documented == differs);
    differences += differs;
  }
  CHECK(differences == 3);
}

TEST_CASE("cld differential: Debian's nfsdcld plays every story",
          "[cld_diff][nfsdcld]") {
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);  // nfs-kernel-server
  for (const DiffStory& s : kStories) {
    std::string log;
    StoryResult r = Play(s, CldTrackerKind::kNfsdcld, &log);
    INFO("story " << s.name << ": " << s.story << "\n"
                  << Transcript(r) << "nfsdcld's log:\n"
                  << log);
    CHECK(r.error == "");
    CHECK(r.ok);
  }
}

// nfsd-helper's side: the same stories, and the decisions compared with
// those of nfsdcld made in the same run.
TEST_CASE("cld differential: nfsd-helper in cld mode against nfsdcld",
          "[cld_diff][nfsdcld]") {
  std::string why;
  INFO(why);
  REQUIRE(CldTracker::HelperSupportsCld(NFSD_HELPER_BIN, &why));
  REQUIRE(access(nfsdsim::kNfsdcldBin, X_OK) == 0);
  for (const DiffStory& s : kStories) {
    std::string helper_log, nfsdcld_log;
    StoryResult h = Play(s, CldTrackerKind::kNfsdHelper, &helper_log);
    StoryResult n = Play(s, CldTrackerKind::kNfsdcld, &nfsdcld_log);
    INFO("story " << s.name << ": " << s.story << "\nnfsd-helper:\n"
                  << Transcript(h) << "nfsdcld:\n"
                  << Transcript(n) << "nfsd-helper's log:\n"
                  << helper_log);
    CHECK(h.error == "");
    CHECK(h.ok);
    CHECK(n.ok);
    // Decision by decision: equal, except at the steps where the story
    // documents a difference (there each side met its own expectation).
    std::vector<StoryStep> steps;
    std::string err;
    REQUIRE(nfsdsim::ParseStory(s.story, &steps, &err));
    std::vector<bool> documented;
    for (const StoryStep& st : steps) {
      if (st.op == StoryStep::Op::kReclaim) {
        documented.push_back(*st.expect_nfsdcld != *st.expect_helper);
      }
    }
    REQUIRE(h.decisions.size() == documented.size());
    REQUIRE(n.decisions.size() == documented.size());
    for (size_t i = 0; i < documented.size(); ++i) {
      INFO("decision " << i + 1);
      CHECK((h.decisions[i] != n.decisions[i]) == documented[i]);
    }
  }
}

}  // namespace
