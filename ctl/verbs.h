// The helper-ctl verb table.
//
// Rationale. Like tmux's cmd_table[], each verb lives in its own file
// (verb_<name>.cc) and exports one const Verb descriptor; kVerbs[] lists them.
// The dispatcher (dispatch.h) and the generated help know verbs only through
// this table, so adding a verb is: write verb_<name>.cc, add one line to
// kVerbs[] in verbs.cc, describe it in man/helper-ctl.8.
//
// A verb's entry says what arguments it takes (ArgSpec, ctl/args.h), and the
// dispatcher parses them against it before the verb runs: the run function
// gets them checked and parsed, and refuses only what is its own to refuse.
// It writes to the streams it is given, never to std::cout or std::cerr, so
// tests run verbs in-process and read what they printed. (Only purge reads:
// its confirmation, from std::cin, and only when that is a terminal.) Verbs
// that need the daemon talk to it through ControlClient (control_client.h).
#ifndef CTL_VERBS_H_
#define CTL_VERBS_H_

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "ctl/args.h"

namespace nfsdh::ctl {

// Exit statuses of helper-ctl (man/helper-ctl.8, EXIT STATUS).
inline constexpr int kExitOk = 0;     // success
inline constexpr int kExitError = 1;  // the verb ran and failed
inline constexpr int kExitUsage = 2;  // bad command line; nothing was done
// The verb needs nfsd-helper and none answers on its control socket.
inline constexpr int kExitNotRunning = 3;

// Flushes a verb's output. If it could not be written (a full disk, a
// closed pipe), says so on `err`, adding `note` if not empty, and returns
// kExitError; otherwise kExitOk.
int FinishOutput(std::ostream& out, std::ostream& err,
                 const char* note = "");

// `args` are the words after the verb name, parsed against the verb's
// ArgSpec. Normal output goes to `out`, diagnostics to `err`. Returns one of
// the exit statuses above.
using RunFn = int (*)(const ParsedArgs& args, std::ostream& out,
                      std::ostream& err);

struct Verb {
  const char* name;     // "dump"
  const char* summary;  // one line, lower case, no final period
  const char* usage;    // the arguments after the name: "[--json]"; "" if none
  const char* details;  // option descriptions for `help VERB`; "" if none
  ArgSpec args;         // what `usage` shows, for the parser
  RunFn run;
};

// One descriptor per verb_<name>.cc.
extern const Verb kClusterVerb;
extern const Verb kDumpVerb;
extern const Verb kEndGraceVerb;
extern const Verb kExportVerb;
extern const Verb kExportNfsdcldVerb;
extern const Verb kHelpVerb;
extern const Verb kImportVerb;
extern const Verb kImportNfsdcldVerb;
extern const Verb kMetricsVerb;
extern const Verb kPurgeVerb;
extern const Verb kStatusVerb;
extern const Verb kVersionVerb;

// Every verb, in the order `helper-ctl help` lists them.
extern const Verb* const kVerbs[];
extern const size_t kVerbCount;

}  // namespace nfsdh::ctl

#endif  // CTL_VERBS_H_
