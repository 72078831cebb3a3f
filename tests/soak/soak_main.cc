// nfsdh-soak: the long kill -9 soak (soak.h).
//
//   nfsdh-soak [--kills N] [--seed S] [--max-delay-ms M] [--clients N]
//              [--hang-timeout-ms M] [--helper PATH] [--verbose]
//
// prints its figures (kills, requests, lost acks, unsafe allows, hung
// requests, ...) and exits 0 only if every answer held. Needs root (FUSE).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "tests/soak/soak.h"

namespace {

const char kUsage[] =
    "usage: nfsdh-soak [--kills N] [--seed S] [--max-delay-ms M]\n"
    "                  [--clients N] [--hang-timeout-ms M] [--helper PATH]\n"
    "                  [--verbose]\n";

}  // namespace

int main(int argc, char** argv) {
  nfsdh::soak::Options o;
  o.kills = 1000;
  o.seed = static_cast<uint64_t>(time(nullptr));
  o.helper = NFSD_HELPER_BIN;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nfsdh-soak: %s needs a value\n%s", a.c_str(),
                     kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--kills") {
      o.kills = std::atoi(next());
    } else if (a == "--seed") {
      o.seed = std::strtoull(next(), nullptr, 10);
    } else if (a == "--max-delay-ms") {
      o.max_delay_ms = std::atoi(next());
    } else if (a == "--clients") {
      o.clients = std::atoi(next());
    } else if (a == "--hang-timeout-ms") {
      o.hang_timeout = std::chrono::milliseconds(std::atoll(next()));
    } else if (a == "--helper") {
      o.helper = next();
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "nfsdh-soak: unknown option %s\n%s", a.c_str(),
                   kUsage);
      return 2;
    }
  }
  if (o.kills < 0 || o.max_delay_ms < 1 || o.clients < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "nfsdh-soak: %s\n", line.c_str());
  };
  std::printf("nfsdh-soak: seed %llu\n",
              static_cast<unsigned long long>(o.seed));
  std::fflush(stdout);
  nfsdh::soak::Figures f = nfsdh::soak::Run(o);
  std::printf("%s\n", f.ToString().c_str());
  return f.ok() ? 0 : 1;
}
