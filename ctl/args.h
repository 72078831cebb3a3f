// Command-line helpers shared by the dispatcher and the verbs: the one
// parser of every verb's arguments and "did you mean" suggestions.
//
// Rationale. Each verb declares what it accepts (ArgSpec: its long options,
// which of them are required, how many operands) in its entry of the verb
// table, and the dispatcher parses the command line against it before the
// verb runs. So an unknown option, a missing or repeated value, a missing or
// extra operand and a missing required option get the same words, and exit
// status 2, in every verb; the verb itself checks only what is its own
// (a valid scope name, options that exclude each other).
#ifndef CTL_ARGS_H_
#define CTL_ARGS_H_

#include <cstddef>
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
  // If not null, the option must be given, and leaving it out is the usage
  // error "--scope is required: " + required.
  const char* required = nullptr;
};

// The options of a verb: a view of a constant array of the verb's file (or
// of a vector that outlives the view). Implicit, so that a verb's table
// entry names its array.
class OptionList {
 public:
  constexpr OptionList() = default;
  template <size_t N>
  constexpr OptionList(const OptionSpec (&specs)[N])  // NOLINT: implicit
      : begin_(specs), size_(N) {}
  OptionList(const std::vector<OptionSpec>& specs)  // NOLINT: implicit
      : begin_(specs.data()), size_(specs.size()) {}
  const OptionSpec* begin() const { return begin_; }
  const OptionSpec* end() const { return begin_ + size_; }
  size_t size() const { return size_; }
  // The option called `name`, or nullptr.
  const OptionSpec* Find(std::string_view name) const;

 private:
  const OptionSpec* begin_ = nullptr;
  size_t size_ = 0;
};

// The operands a verb takes after (or among) its options.
struct OperandSpec {
  size_t min = 0;
  size_t max = 0;
  // The usage error when fewer than `min` are given ("name the CLIENT to
  // purge"). More than `max` is "unexpected argument 'WORD'".
  const char* missing = nullptr;
};

// Everything a verb accepts after its name: its part of the verb table
// (ctl/verbs.h), checked by ParseArgs before the verb runs.
struct ArgSpec {
  OptionList options = {};
  OperandSpec operands = {};  // none by default
};

// A verb's arguments, parsed and checked against its ArgSpec.
struct ParsedArgs {
  std::map<std::string, std::string> values;  // "--db" -> "/x/state.sqlite"
  std::set<std::string> flags;                // "--json"
  std::vector<std::string> operands;          // everything else
  OptionList spec;                            // what was parsed against

  // Whether option `name` was given, and its value (`fallback` if it was
  // not). REQUIRES: `name` is in `spec`; asking for another is a bug in the
  // verb (a typo would otherwise read as "not given"), and aborts.
  bool has(std::string_view name) const;
  std::string value(std::string_view name,
                    const std::string& fallback = "") const;
};

// Parses `args` against `spec`. Accepts "--opt VALUE", "--opt=VALUE" and
// "--" (every later word is an operand). A word starting with '-' that is not
// a known option is an error, with a suggestion when one is near. An option
// that takes a value must get a non-empty one and may be given once. Then
// the number of operands, then the required options, are checked. On error
// returns false and sets *error to a sentence without the program name; the
// first problem found is the one reported.
bool ParseArgs(const std::vector<std::string>& args, const ArgSpec& spec,
               ParsedArgs* out, std::string* error);

}  // namespace nfsdh::ctl

#endif  // CTL_ARGS_H_
