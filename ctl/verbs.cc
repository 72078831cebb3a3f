// The one table that registers every helper-ctl verb.
#include "ctl/verbs.h"

namespace nfsdh::ctl {

const Verb* const kVerbs[] = {
    &kDumpVerb,
    &kEndGraceVerb,
    &kHelpVerb,
    &kPurgeVerb,
    &kStatusVerb,
    &kVersionVerb,
};
const size_t kVerbCount = sizeof(kVerbs) / sizeof(kVerbs[0]);

}  // namespace nfsdh::ctl
