// nfsdh-campaign: the fault campaign (campaign.h).
//
//   nfsdh-campaign [--seeds N] [--first-seed S] [--mode 4f|cld|both]
//                  [--long SECONDS] [--events N] [--clients N]
//                  [--keep I,J,...] [--shrink-runs N] [--verbose]
//
// plays seeds S, S+1, ... (N of them, or as many as fit in SECONDS with
// --long) in each mode, prints one line per seed and the totals (seeds,
// events, faults injected, violations), and for a failing seed its history,
// the minimal history found and the command that replays it. Exits 0 only
// if there was no violation. Needs root (FUSE).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "tests/campaign/campaign.h"

namespace {

const char kUsage[] =
    "usage: nfsdh-campaign [--seeds N] [--first-seed S] [--mode 4f|cld|both]\n"
    "                      [--long SECONDS] [--events N] [--clients N]\n"
    "                      [--keep I,J,...] [--shrink-runs N] [--verbose]\n";

}  // namespace

int main(int argc, char** argv) {
  using nfsdh::campaign::Mode;
  nfsdh::campaign::Options o;
  o.helper = NFSD_HELPER_BIN;
  o.fault_so = NFSDH_FAULTVFS_SO;
  o.clock_so = NFSDH_CLOCKSTEP_SO;
  int seeds = 20;
  uint64_t first = 1;
  long long long_secs = 0;
  int shrink_runs = 120;
  std::vector<Mode> modes = {Mode::kFourFiles, Mode::kCld};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nfsdh-campaign: %s needs a value\n%s",
                     a.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seeds") {
      seeds = std::atoi(next().c_str());
    } else if (a == "--first-seed") {
      first = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--mode") {
      std::string m = next();
      if (m == "4f")
        modes = {Mode::kFourFiles};
      else if (m == "cld")
        modes = {Mode::kCld};
      else if (m == "both")
        modes = {Mode::kFourFiles, Mode::kCld};
      else {
        std::fputs(kUsage, stderr);
        return 2;
      }
    } else if (a == "--long") {
      long_secs = std::atoll(next().c_str());
    } else if (a == "--events") {
      o.events = std::atoi(next().c_str());
    } else if (a == "--clients") {
      o.clients = std::atoi(next().c_str());
    } else if (a == "--keep") {
      std::stringstream ss(next());
      std::string part;
      while (std::getline(ss, part, ',')) o.keep.push_back(std::atoi(part.c_str()));
    } else if (a == "--shrink-runs") {
      shrink_runs = std::atoi(next().c_str());
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "nfsdh-campaign: unknown option %s\n%s", a.c_str(),
                   kUsage);
      return 2;
    }
  }
  if (seeds < 1 || o.events < 1 || o.clients < 1 || long_secs < 0) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  nfsdh::campaign::Figures total;
  uint64_t tried = 0, failed = 0;
  for (uint64_t s = first;; ++s) {
    if (long_secs > 0 ? elapsed() >= static_cast<double>(long_secs)
                      : s >= first + static_cast<uint64_t>(seeds))
      break;
    for (Mode m : modes) {
      o.mode = m;
      o.seed = s;
      auto ts = std::chrono::steady_clock::now();
      nfsdh::campaign::SeedResult r = nfsdh::campaign::RunSeed(o, shrink_runs);
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - ts)
              .count();
      ++tried;
      total.Add(r.figures);
      std::printf("seed %llu %-3s %s: %s (%.1f s)\n",
                  static_cast<unsigned long long>(s), ModeName(m),
                  r.figures.violations ? "FAIL" : "ok",
                  r.figures.ToString().c_str(), secs);
      if (r.figures.violations) {
        ++failed;
        std::printf("%s", r.report.c_str());
      }
      std::fflush(stdout);
    }
  }
  std::printf("nfsdh-campaign: %llu seed runs (%llu failed) in %.0f s; %s\n",
              static_cast<unsigned long long>(tried),
              static_cast<unsigned long long>(failed), elapsed(),
              total.ToString().c_str());
  return total.violations == 0 ? 0 : 1;
}
