// The Prometheus text exposition format, version 0.0.4, as helper-ctl
// metrics writes it (man/helper-ctl.8, METRICS).
//
// Rationale. The format is lines of text: for each metric family a "# HELP"
// and a "# TYPE" line, then its samples, "name{label="value",...} value".
// Every sample of a family must follow its TYPE line with no other family
// in between, so families are built whole (Family) and then written in
// order (Render). Histograms are given as per-bucket counts, the way
// daemon/util/histogram.h keeps them, and written as the format wants
// them: cumulative "_bucket" samples with an "le" label, ending with
// le="+Inf" (every value), then "_sum" and "_count".
//
// Names are not checked here: they are constants of helper-ctl, checked by
// the tests (ctl/prometheus_test.cc reads the output back strictly).
#ifndef CTL_PROMETHEUS_H_
#define CTL_PROMETHEUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nfsdh::ctl::prometheus {

struct Label {
  std::string name;
  std::string value;  // any bytes; escaped when written
};
using Labels = std::vector<Label>;

// A label value as the format carries it between double quotes: backslash,
// double quote and newline written as \\, \" and \n.
std::string EscapeLabelValue(std::string_view value);
// A HELP text: backslash and newline written as \\ and \n.
std::string EscapeHelp(std::string_view text);
// A sample value: the shortest decimal that reads back as `v`, whole
// numbers below 2^53 as integers, others in fixed-point unless their
// exponent is below -4 ("3", "1763771860", "0.00025", "1e-05", "1e+21"),
// or "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);

enum class Type { kCounter, kGauge, kHistogram };

// A histogram in the metric's unit (seconds, not microseconds).
struct HistogramSample {
  std::vector<double> bounds;    // upper bounds, increasing
  std::vector<uint64_t> counts;  // per bucket, bounds.size() + 1 of them:
                                 // the last counts the values above all
  double sum = 0;
};

class Family {
 public:
  // `name` is the family's name: for a counter it ends in "_total" and is
  // also its samples' name; for a histogram, the samples are named
  // name_bucket, name_sum and name_count.
  Family(std::string name, Type type, std::string help);

  // A sample of a counter or gauge.
  Family& Add(const Labels& labels, double value);
  // A histogram's samples (with `labels`, and "le" for each bucket).
  // REQUIRES: type is kHistogram; h.counts.size() == h.bounds.size() + 1.
  Family& AddHistogram(const Labels& labels, const HistogramSample& h);

  const std::string& name() const { return name_; }
  bool empty() const { return lines_.empty(); }
  // The HELP and TYPE lines, then every sample added, in order.
  void Render(std::string* out) const;

 private:
  std::string name_;
  Type type_;
  std::string help_;
  std::vector<std::string> lines_;  // rendered samples
};

// Every family that has samples, in order. A family without samples is left
// out (a histogram or counter that does not apply, as the idmap ones
// without --idmap).
std::string Render(const std::vector<Family>& families);

}  // namespace nfsdh::ctl::prometheus

#endif  // CTL_PROMETHEUS_H_
