// The helper-ctl dispatcher: finds the verb named on the command line in
// kVerbs[] and runs it. It knows no verb by name; the help it prints is
// generated from the table.
#ifndef CTL_DISPATCH_H_
#define CTL_DISPATCH_H_

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/verbs.h"

namespace nfsdh::ctl {

inline constexpr char kProgram[] = "helper-ctl";

// Runs the command line `args` (argv without argv[0]):
//   VERB [ARGS]...          parses ARGS against the verb's ArgSpec, and
//                           runs the verb if they are good (else exit 2);
//   VERB ... --help|-h ...  prints the verb's help;
//   --help|-h               prints the help generated from kVerbs[];
//   --version|-V            prints VersionText().
// Anything else is a usage error (exit 2): no verb, an unknown option before
// the verb, or an unknown verb, with the nearest verb suggested.
int Run(const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err);

// Parses `args` (the words after the verb's name) against verb.args and, if
// they are good, runs the verb with them; else reports the usage error
// (UsageError) and returns kExitUsage.
int RunVerb(const Verb& verb, const std::vector<std::string>& args,
            std::ostream& out, std::ostream& err);

// The verb called `name`, or nullptr.
const Verb* FindVerb(std::string_view name);

// The general help: usage, one line per verb, exit statuses.
void PrintHelp(std::ostream& out);
// One verb's usage line, summary and option descriptions.
void PrintVerbHelp(const Verb& verb, std::ostream& out);

// Reports an unknown verb to `err` ("helper-ctl: unknown verb 'dupm'; did you
// mean 'dump'?") and returns kExitUsage.
int UnknownVerb(std::string_view name, std::ostream& err);

// Reports a usage error of `verb` ("helper-ctl dump: <message>" and the
// verb's usage line) to `err` and returns kExitUsage.
int UsageError(const Verb& verb, const std::string& message, std::ostream& err);

// "helper-ctl (nfsd-helper) 0.1.0" and the schema version this build reads;
// defined in verb_version.cc.
std::string VersionText();

}  // namespace nfsdh::ctl

#endif  // CTL_DISPATCH_H_
