#include "ctl/dispatch.h"

#include <algorithm>

#include "ctl/args.h"

namespace nfsdh::ctl {
namespace {

bool IsHelpOption(const std::string& word) {
  return word == "--help" || word == "-h";
}

// True if `args` asks for help before any "--".
bool AsksForHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (IsHelpOption(a)) return true;
  }
  return false;
}

std::string UsageLine(const Verb& verb) {
  std::string line = std::string(kProgram) + " " + verb.name;
  if (*verb.usage) line += std::string(" ") + verb.usage;
  return line;
}

}  // namespace

const Verb* FindVerb(std::string_view name) {
  for (size_t i = 0; i < kVerbCount; ++i)
    if (name == kVerbs[i]->name) return kVerbs[i];
  return nullptr;
}

void PrintHelp(std::ostream& out) {
  size_t width = 0;
  for (size_t i = 0; i < kVerbCount; ++i)
    width = std::max(width, std::string_view(kVerbs[i]->name).size());
  out << "Usage: " << kProgram << " VERB [ARGS]...\n"
      << "Inspect and steer nfsd-helper, the NFSv4 client-tracking helper of\n"
      << "the Linux NFS server.\n\nVerbs:\n";
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    out << "  " << v.name
        << std::string(width + 2 - std::string_view(v.name).size(), ' ')
        << v.summary << "\n";
  }
  out << "\nRun '" << kProgram << " help VERB' or '" << kProgram
      << " VERB --help' for the\narguments of a verb.\n"
      << "Exit status: " << kExitOk << " success, " << kExitError << " error, "
      << kExitUsage << " usage error, " << kExitNotRunning
      << " nfsd-helper not running.\n"
      << "See helper-ctl(8).\n";
}

void PrintVerbHelp(const Verb& verb, std::ostream& out) {
  std::string summary = verb.summary;
  if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z')
    summary[0] = static_cast<char>(summary[0] - 'a' + 'A');
  out << "Usage: " << UsageLine(verb) << "\n" << summary << ".\n";
  if (*verb.details) out << "\n" << verb.details;
}

int UnknownVerb(std::string_view name, std::ostream& err) {
  std::vector<std::string> names;
  for (size_t i = 0; i < kVerbCount; ++i) names.push_back(kVerbs[i]->name);
  err << kProgram << ": unknown verb '" << name << "'";
  if (auto near = Nearest(name, names))
    err << "; did you mean '" << *near << "'?\n";
  else
    err << "; run '" << kProgram << " help' for the list of verbs\n";
  return kExitUsage;
}

int UsageError(const Verb& verb, const std::string& message,
               std::ostream& err) {
  err << kProgram << " " << verb.name << ": " << message << "\n"
      << "usage: " << UsageLine(verb) << "\n";
  return kExitUsage;
}

int RunVerb(const Verb& verb, const std::vector<std::string>& args,
            std::ostream& out, std::ostream& err) {
  ParsedArgs parsed;
  std::string error;
  if (!ParseArgs(args, verb.args, &parsed, &error))
    return UsageError(verb, error, err);
  return verb.run(parsed, out, err);
}

int Run(const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err) {
  if (args.empty()) {
    err << "usage: " << kProgram << " VERB [ARGS]...\n"
        << "Run '" << kProgram << " help' for the list of verbs.\n";
    return kExitUsage;
  }
  const std::string& first = args[0];
  if (IsHelpOption(first)) {
    PrintHelp(out);
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    out << VersionText();
    return kExitOk;
  }
  if (first.size() > 1 && first[0] == '-') {
    err << kProgram << ": unknown option '" << first << "'";
    if (auto near = Nearest(first, {"--help", "--version"}))
      err << "; did you mean '" << *near << "'?";
    err << "\n"
        << "usage: " << kProgram << " VERB [ARGS]...\n";
    return kExitUsage;
  }
  const Verb* verb = FindVerb(first);
  if (verb == nullptr) return UnknownVerb(first, err);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (AsksForHelp(rest)) {
    PrintVerbHelp(*verb, out);
    return kExitOk;
  }
  return RunVerb(*verb, rest, out, err);
}

}  // namespace nfsdh::ctl
