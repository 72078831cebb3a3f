// helper-ctl: the operator's view of nfsd-helper's state. Everything happens
// in the verbs (ctl/verbs.h); this only hands them the command line.
#include <iostream>
#include <string>
#include <vector>

#include "ctl/dispatch.h"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::vector<std::string> args(argv + 1, argv + argc);
  int rc = nfsdh::ctl::Run(args, std::cout, std::cerr);
  std::cout.flush();
  if (!std::cout && rc == nfsdh::ctl::kExitOk) {
    std::cerr << nfsdh::ctl::kProgram << ": cannot write the output\n";
    rc = nfsdh::ctl::kExitError;
  }
  return rc;
}
