// nfsdh-powerloss: the long power-loss run, and the child it cuts.
//
//   nfsdh-powerloss [--cuts N] [--seed S] [--min-delay-ms M]
//                   [--max-delay-ms M] [--startup-cut-every N] [--dir DIR]
//                   [--keep] [--no-checkpoints] [--lying-sync] [--verbose]
//
// prints the figures (cuts, acked changes checked, lost acks, integrity
// failures, ...) and exits 0 only if no acknowledged change was lost. The
// test suite runs a short version ([fault][powerloss]); this is the one to
// leave running. --lying-sync is the negative control: it must report lost
// acks. `nfsdh-powerloss --child ...` is the workload (powerloss.h).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/fault/powerloss.h"

namespace {

const char kUsage[] =
    "usage: nfsdh-powerloss [--cuts N] [--seed S] [--min-delay-ms M]\n"
    "                       [--max-delay-ms M] [--startup-cut-every N]\n"
    "                       [--dir DIR] [--keep] [--no-checkpoints]\n"
    "                       [--lying-sync] [--verbose]\n";

std::string SelfPath() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return buf;
}

// The overlay model needs no real durability from the directory's file
// system, so the fast tmpfs is as honest as a disk.
std::string MakeTempDir() {
  struct stat st;
  std::string base =
      stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/nfsdh-powerloss-XXXXXX";
  if (!mkdtemp(tmpl.data())) return "";
  return tmpl;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--child") == 0)
      return nfsdh::powerloss::ChildMain(argc, argv);

  nfsdh::powerloss::Options o;
  o.cuts = 1000;
  o.seed = static_cast<uint64_t>(time(nullptr));
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nfsdh-powerloss: %s needs a value\n%s", a.c_str(),
                     kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--cuts") {
      o.cuts = std::atoi(next());
    } else if (a == "--seed") {
      o.seed = std::strtoull(next(), nullptr, 10);
    } else if (a == "--min-delay-ms") {
      o.min_delay_us = static_cast<int64_t>(std::atof(next()) * 1000);
    } else if (a == "--max-delay-ms") {
      o.max_delay_us = static_cast<int64_t>(std::atof(next()) * 1000);
    } else if (a == "--startup-cut-every") {
      o.startup_cut_every = std::atoi(next());
    } else if (a == "--dir") {
      o.dir = next();
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--no-checkpoints") {
      o.checkpoints = false;
    } else if (a == "--lying-sync") {
      o.lying_sync = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "nfsdh-powerloss: unknown argument %s\n%s",
                   a.c_str(), kUsage);
      return 2;
    }
  }
  if (o.cuts <= 0 || o.max_delay_us <= o.min_delay_us) {
    std::fprintf(stderr, "nfsdh-powerloss: bad --cuts or delays\n");
    return 2;
  }
  o.child_bin = SelfPath();
  bool made_dir = o.dir.empty();
  if (made_dir) o.dir = MakeTempDir();
  if (o.child_bin.empty() || o.dir.empty()) {
    std::fprintf(stderr,
                 "nfsdh-powerloss: cannot find myself or make a "
                 "temporary directory\n");
    return 2;
  }
  std::printf("nfsdh-powerloss: seed %llu, %d cuts, database in %s\n",
              static_cast<unsigned long long>(o.seed), o.cuts, o.dir.c_str());
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  nfsdh::powerloss::Figures f;
  std::string err;
  bool ran = nfsdh::powerloss::Run(o, &f, &err);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (made_dir && !keep) {
    std::string cmd = "rm -rf '" + o.dir + "'";
    if (std::system(cmd.c_str()) != 0) {
      // A leftover temporary directory is harmless.
    }
  }
  if (!ran) {
    std::fprintf(stderr, "nfsdh-powerloss: harness failure: %s\n", err.c_str());
    return 2;
  }
  std::printf("nfsdh-powerloss: %s (%.1f s)\n",
              nfsdh::powerloss::FormatFigures(f).c_str(), secs);
  for (const auto& what : f.failures)
    std::printf("nfsdh-powerloss: FAILURE %s\n", what.c_str());
  std::printf("nfsdh-powerloss: %s\n", f.ok() ? "PASS" : "FAIL");
  return f.ok() ? 0 : 1;
}
