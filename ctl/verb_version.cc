// helper-ctl version: the version of helper-ctl and the database schema
// version it reads.
#include "ctl/args.h"
#include "ctl/dispatch.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"

#ifndef NFSD_HELPER_VERSION
#error "NFSD_HELPER_VERSION must be defined by the build"
#endif

namespace nfsdh::ctl {
namespace {

int RunVersion(const ParsedArgs&, std::ostream& out, std::ostream&) {
  out << VersionText();
  return kExitOk;
}

}  // namespace

std::string VersionText() {
  return std::string(kProgram) + " (nfsd-helper) " NFSD_HELPER_VERSION "\n" +
         "database schema version " + std::to_string(store::kSchemaVersion) +
         "\n";
}

const Verb kVersionVerb = {
    "version",
    "show the version of helper-ctl and the database schema it reads",
    "",
    "",
    {},
    RunVersion,
};

}  // namespace nfsdh::ctl
