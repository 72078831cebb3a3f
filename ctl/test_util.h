// Helpers for the helper-ctl tests: run a command line in-process and keep
// what it printed; make and remove a scratch directory.
#ifndef CTL_TEST_UTIL_H_
#define CTL_TEST_UTIL_H_

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/dispatch.h"

namespace nfsdh::ctl::testing {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs `args` (without the program name) as helper-ctl would.
inline Result RunCtl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result r;
  r.code = Run(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-ctl-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// The lines of `text`, without their '\n'.
// The whole content of a file ("" if it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace nfsdh::ctl::testing

#endif  // CTL_TEST_UTIL_H_
