#include "ctl/args.h"

#include <algorithm>

namespace nfsdh::ctl {
namespace {

char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  // d[i][j]: distance between the first i characters of a and j of b.
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::optional<std::string> Nearest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  // Words longer than any plausible typo are not worth the quadratic table.
  if (word.size() > 64) return std::nullopt;
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    size_t limit = std::max<size_t>(1, std::min<size_t>(2, c.size() / 2));
    size_t dist = EditDistance(word, c);
    if (dist > limit) continue;
    if (!best || dist < best_distance) {
      best = c;
      best_distance = dist;
    }
  }
  return best;
}

bool ParseArgs(const std::vector<std::string>& args,
               const std::vector<OptionSpec>& specs, ParsedArgs* out,
               std::string* error) {
  *out = ParsedArgs();
  auto find = [&specs](std::string_view name) -> const OptionSpec* {
    for (const OptionSpec& s : specs)
      if (name == s.name) return &s;
    return nullptr;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word == "--") {
      out->operands.insert(out->operands.end(), args.begin() + i + 1,
                           args.end());
      break;
    }
    if (word.size() < 2 || word[0] != '-') {
      out->operands.push_back(word);
      continue;
    }
    size_t eq = word.find('=');
    std::string name = word.substr(0, eq);
    const OptionSpec* spec = find(name);
    if (spec == nullptr) {
      *error = "unknown option '" + name + "'";
      std::vector<std::string> names;
      for (const OptionSpec& s : specs) names.push_back(s.name);
      if (auto near = Nearest(name, names))
        *error += "; did you mean '" + *near + "'?";
      return false;
    }
    if (spec->value_name == nullptr) {
      if (eq != std::string::npos) {
        *error = "option '" + name + "' takes no value";
        return false;
      }
      out->flags.insert(name);
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = word.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      *error = "option '" + name + "' needs a " + spec->value_name;
      return false;
    }
    if (value.empty()) {
      *error = "option '" + name + "' needs a non-empty " + spec->value_name;
      return false;
    }
    if (out->values.count(name)) {
      *error = "option '" + name + "' given twice";
      return false;
    }
    out->values[name] = value;
  }
  return true;
}

}  // namespace nfsdh::ctl
