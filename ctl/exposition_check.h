// A strict reader of the Prometheus text exposition format (version
// 0.0.4), for the tests: it reads what helper-ctl metrics writes back into
// samples, and refuses anything a scraper could misread. promtool is not
// used: Debian ships it only inside the whole prometheus package.
//
// Stricter than the format in what it accepts (only what helper-ctl should
// ever write):
//   - every line ends in '\n'; no empty lines, no comments but HELP/TYPE;
//   - each family is "# HELP name text", "# TYPE name type" (counter, gauge
//     or histogram), then all its samples; a family appears once;
//   - names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
//     [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"; a label appears
//     once per sample; label values and HELP use only the escapes \\, \"
//     (label values only) and \n;
//   - a sample is "name{labels} value" (no timestamp); the value is a Go
//     float ("1", "2.5e-05", "+Inf", "NaN");
//   - a counter's name ends in "_total", its samples are named so and are
//     finite and not negative; a gauge's samples carry its name;
//   - a histogram has, per label set, name_bucket samples with increasing
//     "le" bounds ending at "+Inf" and counts that never decrease, then
//     name_sum and name_count, the count equal to the +Inf bucket;
//   - no two samples have the same name and labels.
#ifndef CTL_EXPOSITION_CHECK_H_
#define CTL_EXPOSITION_CHECK_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nfsdh::ctl::testing {

using LabelMap = std::map<std::string, std::string>;

struct ExpositionSample {
  std::string name;
  LabelMap labels;  // values unescaped
  double value = 0;
};

struct ExpositionFamily {
  std::string name;
  std::string type;
  std::string help;  // unescaped
  std::vector<ExpositionSample> samples;
};

struct Exposition {
  std::vector<ExpositionFamily> families;

  const ExpositionFamily* Family(const std::string& name) const;
  // The value of the sample `name` with exactly `labels`.
  std::optional<double> Value(const std::string& name,
                              const LabelMap& labels = {}) const;
};

// Reads `text`. On error returns false and sets *error to "line N: what".
bool ParseExposition(std::string_view text, Exposition* out,
                     std::string* error);

}  // namespace nfsdh::ctl::testing

#endif  // CTL_EXPOSITION_CHECK_H_
