#include "ctl/exposition_check.h"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>

namespace nfsdh::ctl::testing {
namespace {

const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");
const std::regex kFloat(
    "[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?Inf|NaN");

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool ParseFloat(const std::string& s, double* v) {
  if (!std::regex_match(s, kFloat)) return false;
  if (s == "NaN") {
    *v = NAN;
  } else if (s == "+Inf" || s == "Inf") {
    *v = INFINITY;
  } else if (s == "-Inf") {
    *v = -INFINITY;
  } else {
    *v = strtod(s.c_str(), nullptr);
  }
  return true;
}

// Unescapes `s`, allowing \\, \n and (if `quote`) \"; false on any other
// backslash sequence.
bool Unescape(std::string_view s, bool quote, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      *out += s[i];
      continue;
    }
    if (++i == s.size()) return false;
    if (s[i] == '\\')
      *out += '\\';
    else if (s[i] == 'n')
      *out += '\n';
    else if (s[i] == '"' && quote)
      *out += '"';
    else
      return false;
  }
  return true;
}

// Parses "name{labels} value" into *s.
bool ParseSample(std::string_view line, ExpositionSample* s, std::string* why) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s->name = std::string(line.substr(0, i));
  if (!std::regex_match(s->name, kMetricName)) {
    *why = "bad metric name '" + s->name + "'";
    return false;
  }
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t eq = line.find('=', i);
      if (eq == std::string_view::npos) {
        *why = "a label without '='";
        return false;
      }
      std::string name(line.substr(i, eq - i));
      if (!std::regex_match(name, kLabelName) || name.rfind("__", 0) == 0) {
        *why = "bad label name '" + name + "'";
        return false;
      }
      if (eq + 1 >= line.size() || line[eq + 1] != '"') {
        *why = "label " + name + ": the value is not quoted";
        return false;
      }
      size_t j = eq + 2;
      while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
      if (j >= line.size()) {
        *why = "label " + name + ": no closing quote";
        return false;
      }
      std::string value;
      if (!Unescape(line.substr(eq + 2, j - eq - 2), true, &value)) {
        *why = "label " + name + ": a bad escape";
        return false;
      }
      if (!s->labels.emplace(name, value).second) {
        *why = "label " + name + " given twice";
        return false;
      }
      i = j + 1;
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i >= line.size() || line[i] != '}') {
        *why = "labels not separated by ','";
        return false;
      }
    }
  }
  if (i >= line.size() || line[i] != ' ') {
    *why = "no single space before the value";
    return false;
  }
  std::string value(line.substr(i + 1));
  if (!ParseFloat(value, &s->value)) {
    *why = "bad value '" + value + "' (or a timestamp)";
    return false;
  }
  return true;
}

// The checks of a whole histogram family.
bool CheckHistogram(const ExpositionFamily& f, std::string* why) {
  struct Series {
    std::vector<std::pair<double, double>> buckets;  // le, count
    std::optional<double> sum, count;
  };
  std::map<LabelMap, Series> by_labels;
  for (const ExpositionSample& s : f.samples) {
    LabelMap key = s.labels;
    if (s.name == f.name + "_bucket") {
      auto le = key.find("le");
      double bound;
      if (le == key.end() || !ParseFloat(le->second, &bound)) {
        *why = "a bucket without a valid le label";
        return false;
      }
      key.erase(le);
      Series& series = by_labels[key];
      if (series.sum || series.count) {
        *why = "a bucket after _sum or _count";
        return false;
      }
      if (!series.buckets.empty()) {
        auto [prev_le, prev_count] = series.buckets.back();
        if (!(bound > prev_le)) {
          *why = "le bounds do not increase";
          return false;
        }
        if (s.value < prev_count) {
          *why = "bucket counts are not cumulative";
          return false;
        }
      }
      series.buckets.push_back({bound, s.value});
    } else {
      if (key.count("le")) {
        *why = s.name + " has an le label";
        return false;
      }
      Series& series = by_labels[key];
      if (series.buckets.empty() || !std::isinf(series.buckets.back().first)) {
        *why = s.name + " before the +Inf bucket";
        return false;
      }
      if (s.name == f.name + "_sum") {
        series.sum = s.value;
      } else {
        series.count = s.value;
        if (s.value != series.buckets.back().second) {
          *why = "_count is not the +Inf bucket";
          return false;
        }
      }
    }
  }
  for (const auto& [labels, series] : by_labels) {
    if (!series.sum || !series.count) {
      *why = "a histogram without _sum or _count";
      return false;
    }
  }
  return true;
}

}  // namespace

const ExpositionFamily* Exposition::Family(const std::string& name) const {
  for (const ExpositionFamily& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

std::optional<double> Exposition::Value(const std::string& name,
                                        const LabelMap& labels) const {
  for (const ExpositionFamily& f : families)
    for (const ExpositionSample& s : f.samples)
      if (s.name == name && s.labels == labels) return s.value;
  return std::nullopt;
}

bool ParseExposition(std::string_view text, Exposition* out,
                     std::string* error) {
  *out = Exposition();
  if (!text.empty() && text.back() != '\n') {
    *error = "the text does not end in a newline";
    return false;
  }
  std::set<std::string> seen_families;
  std::set<std::pair<std::string, LabelMap>> seen_series;
  ExpositionFamily* cur = nullptr;
  bool typed = false;  // the current family's TYPE line was read
  size_t number = 0;
  auto fail = [&](const std::string& why) {
    *error = "line " + std::to_string(number) + ": " + why;
    return false;
  };
  auto finish = [&]() -> bool {
    if (cur == nullptr) return true;
    if (!typed) return fail("family " + cur->name + " has no TYPE line");
    if (cur->samples.empty())
      return fail("family " + cur->name + " has no samples");
    std::string why;
    if (cur->type == "histogram" && !CheckHistogram(*cur, &why))
      return fail(cur->name + ": " + why);
    return true;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++number;
    if (line.empty()) return fail("an empty line");
    if (line.find('\r') != std::string_view::npos) return fail("a CR");
    if (line[0] == '#') {
      if (line.rfind("# HELP ", 0) == 0) {
        if (!finish()) return false;
        std::string_view rest = line.substr(7);
        size_t sp = rest.find(' ');
        if (sp == std::string_view::npos) return fail("HELP without a text");
        std::string name(rest.substr(0, sp));
        if (!std::regex_match(name, kMetricName))
          return fail("bad family name '" + name + "'");
        if (!seen_families.insert(name).second)
          return fail("family " + name + " appears twice");
        out->families.push_back({});
        cur = &out->families.back();
        cur->name = name;
        typed = false;
        if (!Unescape(rest.substr(sp + 1), false, &cur->help))
          return fail("a bad escape in HELP");
        continue;
      }
      if (line.rfind("# TYPE ", 0) == 0) {
        std::string_view rest = line.substr(7);
        size_t sp = rest.find(' ');
        if (cur == nullptr || typed || sp == std::string_view::npos ||
            rest.substr(0, sp) != cur->name)
          return fail("a TYPE line not right after its family's HELP");
        cur->type = std::string(rest.substr(sp + 1));
        if (cur->type != "counter" && cur->type != "gauge" &&
            cur->type != "histogram")
          return fail("type '" + cur->type + "'");
        if (cur->type == "counter" && !EndsWith(cur->name, "_total"))
          return fail("counter " + cur->name + " does not end in _total");
        typed = true;
        continue;
      }
      return fail("a comment other than HELP or TYPE");
    }
    if (cur == nullptr || !typed) return fail("a sample before any TYPE");
    ExpositionSample s;
    std::string why;
    if (!ParseSample(line, &s, &why)) return fail(why);
    bool ours = cur->type == "histogram" ? (s.name == cur->name + "_bucket" ||
                                            s.name == cur->name + "_sum" ||
                                            s.name == cur->name + "_count")
                                         : s.name == cur->name;
    if (!ours) return fail("sample " + s.name + " inside family " + cur->name);
    if (cur->type == "counter" && !(std::isfinite(s.value) && s.value >= 0))
      return fail("counter " + s.name + " is negative or not finite");
    if (!seen_series.insert({s.name, s.labels}).second)
      return fail("sample " + s.name + " repeated with the same labels");
    cur->samples.push_back(std::move(s));
  }
  return finish();
}

}  // namespace nfsdh::ctl::testing
