// Command-line helpers shared by the dispatcher and the verbs: a small
// long-option parser and "did you mean" suggestions.
#ifndef CTL_ARGS_H_
#define CTL_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nfsdh::ctl {

// The optimal-string-alignment distance between `a` and `b`, ignoring ASCII
// case: insertions, deletions, substitutions and swaps of two adjacent
// characters each cost 1 ("dupm" -> "dump" is 1).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, if it is near enough to be a plausible
// typo (distance at most 2, and at most half the candidate's length, at least
// 1). On a tie the earliest candidate wins.
std::optional<std::string> Nearest(std::string_view word,
                                   const std::vector<std::string>& candidates);

// One long option a verb accepts.
struct OptionSpec {
  const char* name;        // "--db"
  const char* value_name;  // "PATH" if the option takes a value, else nullptr
};

struct ParsedArgs {
  std::map<std::string, std::string> values;  // "--db" -> "/x/state.sqlite"
  std::set<std::string> flags;                // "--json"
  std::vector<std::string> operands;          // everything else
  bool has(const std::string& name) const {
    return flags.count(name) > 0 || values.count(name) > 0;
  }
};

// Parses `args` against `specs`. Accepts "--opt VALUE", "--opt=VALUE" and
// "--" (every later word is an operand). A word starting with '-' that is not
// a known option is an error, with a suggestion when one is near. An option
// that takes a value must get a non-empty one and may be given once. On error
// returns false and sets *error to a sentence without the program name.
bool ParseArgs(const std::vector<std::string>& args,
               const std::vector<OptionSpec>& specs, ParsedArgs* out,
               std::string* error);

}  // namespace nfsdh::ctl

#endif  // CTL_ARGS_H_
