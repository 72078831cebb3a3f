#include "ctl/prometheus.h"

#include <charconv>
#include <cmath>

namespace nfsdh::ctl::prometheus {
namespace {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// name{a="x",b="y"} value, or name value without labels.
std::string SampleLine(const std::string& name, const Labels& labels,
                       double value) {
  std::string line = name;
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) line += ',';
      line += labels[i].name + "=\"" + EscapeLabelValue(labels[i].value) + '"';
    }
    line += '}';
  }
  return line + ' ' + FormatValue(value) + '\n';
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r;
  // Whole numbers as integers (counters, times in seconds); others in the
  // shortest form that reads back, fixed-point unless the exponent is below
  // -4 or beyond the digits, as Go's clients write them ("0.00025",
  // "1e-05"), so that le labels read the way they are usually queried.
  if (std::trunc(v) == v && std::fabs(v) < 9007199254740992.0)  // 2^53
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  else
    r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  if (r.ec != std::errc()) return "NaN";  // 64 bytes hold any double
  return std::string(buf, r.ptr);
}

Family::Family(std::string name, Type type, std::string help)
    : name_(std::move(name)), type_(type), help_(std::move(help)) {}

Family& Family::Add(const Labels& labels, double value) {
  lines_.push_back(SampleLine(name_, labels, value));
  return *this;
}

Family& Family::AddHistogram(const Labels& labels,
                                 const HistogramSample& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
    cumulative += h.counts[i];
    Labels with_le = labels;
    with_le.push_back({"le", FormatValue(h.bounds[i])});
    lines_.push_back(SampleLine(name_ + "_bucket", with_le,
                                static_cast<double>(cumulative)));
  }
  if (h.counts.size() > h.bounds.size()) cumulative += h.counts.back();
  Labels inf = labels;
  inf.push_back({"le", "+Inf"});
  lines_.push_back(
      SampleLine(name_ + "_bucket", inf, static_cast<double>(cumulative)));
  lines_.push_back(SampleLine(name_ + "_sum", labels, h.sum));
  lines_.push_back(
      SampleLine(name_ + "_count", labels, static_cast<double>(cumulative)));
  return *this;
}

void Family::Render(std::string* out) const {
  *out += "# HELP " + name_ + ' ' + EscapeHelp(help_) + '\n';
  *out += "# TYPE " + name_ + ' ' + TypeName(type_) + '\n';
  for (const std::string& line : lines_) *out += line;
}

std::string Render(const std::vector<Family>& families) {
  std::string out;
  for (const Family& f : families)
    if (!f.empty()) f.Render(&out);
  return out;
}

}  // namespace nfsdh::ctl::prometheus
