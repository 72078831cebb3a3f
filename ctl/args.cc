#include "ctl/args.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

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

const OptionSpec* OptionList::Find(std::string_view name) const {
  for (const OptionSpec& s : *this)
    if (name == s.name) return &s;
  return nullptr;
}

bool ParsedArgs::has(std::string_view name) const {
  if (spec.Find(name) == nullptr) {
    std::fprintf(stderr,
                 "helper-ctl: bug: the verb asks for option %.*s, "
                 "which is not in its table entry\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  const std::string key(name);
  return flags.count(key) > 0 || values.count(key) > 0;
}

std::string ParsedArgs::value(std::string_view name,
                              const std::string& fallback) const {
  if (!has(name)) return fallback;
  auto it = values.find(std::string(name));
  return it == values.end() ? fallback : it->second;
}

bool ParseArgs(const std::vector<std::string>& args, const ArgSpec& spec,
               ParsedArgs* out, std::string* error) {
  *out = ParsedArgs();
  out->spec = spec.options;
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
    const OptionSpec* option = spec.options.Find(name);
    if (option == nullptr) {
      *error = "unknown option '" + name + "'";
      std::vector<std::string> names;
      for (const OptionSpec& s : spec.options) names.push_back(s.name);
      if (auto near = Nearest(name, names))
        *error += "; did you mean '" + *near + "'?";
      return false;
    }
    if (option->value_name == nullptr) {
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
      *error = "option '" + name + "' needs a " + option->value_name;
      return false;
    }
    if (value.empty()) {
      *error = "option '" + name + "' needs a non-empty " + option->value_name;
      return false;
    }
    if (out->values.count(name)) {
      *error = "option '" + name + "' given twice";
      return false;
    }
    out->values[name] = value;
  }
  const OperandSpec& operands = spec.operands;
  if (out->operands.size() < operands.min) {
    *error = operands.missing ? operands.missing : "too few arguments";
    return false;
  }
  if (out->operands.size() > operands.max) {
    *error = "unexpected argument '" + out->operands[operands.max] + "'";
    return false;
  }
  for (const OptionSpec& s : spec.options) {
    if (s.required && !out->has(s.name)) {
      *error = std::string(s.name) + " is required: " + s.required;
      return false;
    }
  }
  return true;
}

}  // namespace nfsdh::ctl
