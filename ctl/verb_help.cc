// helper-ctl help [VERB]: the list of verbs, or the arguments of one.
#include "ctl/args.h"
#include "ctl/dispatch.h"
#include "ctl/verbs.h"

namespace nfsdh::ctl {
namespace {

int RunHelp(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  if (parsed.operands.empty()) {
    PrintHelp(out);
    return kExitOk;
  }
  const Verb* verb = FindVerb(parsed.operands[0]);
  if (verb == nullptr) return UnknownVerb(parsed.operands[0], err);
  PrintVerbHelp(*verb, out);
  return kExitOk;
}

}  // namespace

const Verb kHelpVerb = {
    "help",
    "list the verbs, or show the arguments of one",
    "[VERB]",
    "",
    {{}, {0, 1}},  // no options; a VERB or none
    RunHelp,
};

}  // namespace nfsdh::ctl
