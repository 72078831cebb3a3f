// The one table that registers every helper-ctl verb.
#include "ctl/verbs.h"

#include "ctl/dispatch.h"

namespace nfsdh::ctl {

const Verb* const kVerbs[] = {
    &kClusterVerb,
    &kDumpVerb,
    &kEndGraceVerb,
    &kExportVerb,
    &kExportNfsdcldVerb,
    &kHelpVerb,
    &kImportVerb,
    &kImportNfsdcldVerb,
    &kMetricsVerb,
    &kPurgeVerb,
    &kStatusVerb,
    &kVersionVerb,
};
const size_t kVerbCount = sizeof(kVerbs) / sizeof(kVerbs[0]);

int FinishOutput(std::ostream& out, std::ostream& err, const char* note) {
  out.flush();
  if (out) return kExitOk;
  err << kProgram << ": cannot write the output" << note << "\n";
  return kExitError;
}

}  // namespace nfsdh::ctl
