// The Prometheus text format helper-ctl metrics writes: escaping, values,
// cumulative histogram buckets ending at +Inf, the metric families made from
// a status, and the strict reader the tests check all of it with.
#include "ctl/prometheus.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "ctl/exposition_check.h"
#include "ctl/metrics.h"

namespace nfsdh::ctl {
namespace {

using prometheus::EscapeHelp;
using prometheus::EscapeLabelValue;
using prometheus::Family;
using prometheus::FormatValue;
using prometheus::HistogramSample;
using prometheus::Type;
using testing::Exposition;
using testing::LabelMap;
using testing::ParseExposition;

Exposition Read(const std::string& text) {
  Exposition e;
  std::string error;
  INFO(text);
  INFO(error);
  REQUIRE(ParseExposition(text, &e, &error));
  return e;
}

std::string ReadError(const std::string& text) {
  Exposition e;
  std::string error;
  INFO(text);
  CHECK_FALSE(ParseExposition(text, &e, &error));
  return error;
}

TEST_CASE("label values escape backslash, double quote and newline only",
          "[prometheus]") {
  CHECK(EscapeLabelValue("plain /var/lib/nfs") == "plain /var/lib/nfs");
  CHECK(EscapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(EscapeLabelValue("tab\tstays") == "tab\tstays");
  CHECK(EscapeHelp("a\\b\"c\nd") == "a\\\\b\"c\\nd");

  // What is written reads back as the value it was.
  const std::string nasty = "C:\\dir \"quoted\"\nline two, {braces}=";
  Family f("x_total", Type::kCounter, "help with \\ and\na newline");
  f.Add({{"path", nasty}, {"n", "1"}}, 3);
  const std::string text = prometheus::Render({f});
  CHECK(text ==
        "# HELP x_total help with \\\\ and\\na newline\n"
        "# TYPE x_total counter\n"
        "x_total{path=\"C:\\\\dir \\\"quoted\\\"\\nline two, {braces}=\","
        "n=\"1\"} 3\n");
  Exposition e = Read(text);
  CHECK(e.Value("x_total", {{"path", nasty}, {"n", "1"}}) == 3);
  CHECK(e.Family("x_total")->help == "help with \\ and\na newline");
}

TEST_CASE("sample values are the shortest decimal that reads back",
          "[prometheus]") {
  CHECK(FormatValue(0) == "0");
  CHECK(FormatValue(3) == "3");
  CHECK(FormatValue(1763771860) == "1763771860");
  CHECK(FormatValue(0.00025) == "0.00025");
  CHECK(FormatValue(2.5) == "2.5");
  CHECK(FormatValue(0.0001) == "0.0001");
  CHECK(FormatValue(0.00001) == "1e-05");
  CHECK(FormatValue(-2) == "-2");
  CHECK(FormatValue(1e21) == "1e+21");
  CHECK(FormatValue(INFINITY) == "+Inf");
  CHECK(FormatValue(-INFINITY) == "-Inf");
  CHECK(FormatValue(NAN) == "NaN");
}

TEST_CASE("histogram buckets are cumulative and end with +Inf",
          "[prometheus]") {
  HistogramSample h;
  h.bounds = {0.001, 0.0025, 1};
  h.counts = {2, 0, 3, 1};  // one value above the last bound
  h.sum = 4.25;
  Family f("d_seconds", Type::kHistogram, "durations");
  f.AddHistogram({{"scope", "default"}}, h);
  const std::string text = prometheus::Render({f});
  CHECK(text ==
        "# HELP d_seconds durations\n"
        "# TYPE d_seconds histogram\n"
        "d_seconds_bucket{scope=\"default\",le=\"0.001\"} 2\n"
        "d_seconds_bucket{scope=\"default\",le=\"0.0025\"} 2\n"
        "d_seconds_bucket{scope=\"default\",le=\"1\"} 5\n"
        "d_seconds_bucket{scope=\"default\",le=\"+Inf\"} 6\n"
        "d_seconds_sum{scope=\"default\"} 4.25\n"
        "d_seconds_count{scope=\"default\"} 6\n");
  Read(text);

  SECTION("an empty histogram still has its +Inf bucket") {
    HistogramSample empty;
    empty.bounds = {1, 2};
    empty.counts = {0, 0, 0};
    Family g("e", Type::kHistogram, "empty");
    g.AddHistogram({}, empty);
    Exposition e = Read(prometheus::Render({g}));
    CHECK(e.Value("e_bucket", {{"le", "+Inf"}}) == 0);
    CHECK(e.Value("e_count") == 0);
  }
}

TEST_CASE("a family without samples is left out", "[prometheus]") {
  Family kept("kept", Type::kGauge, "a gauge");
  kept.Add({}, 1);
  Family none("none_total", Type::kCounter, "nothing");
  CHECK(prometheus::Render({none, kept, none}) ==
        "# HELP kept a gauge\n# TYPE kept gauge\nkept 1\n");
}

TEST_CASE("the reader refuses what a scraper could misread", "[prometheus]") {
  const std::string head = "# HELP m_total h\n# TYPE m_total counter\n";
  CHECK(ReadError(head + "m_total 1") == "the text does not end in a newline");
  CHECK(ReadError("m_total 1\n") == "line 1: a sample before any TYPE");
  CHECK(ReadError("# HELP m_total h\nm_total 1\n") ==
        "line 2: a sample before any TYPE");
  CHECK(ReadError("# HELP m h\n# TYPE m counter\nm 1\n") ==
        "line 2: counter m does not end in _total");
  CHECK(ReadError(head + "m_total -1\n") ==
        "line 3: counter m_total is negative or not finite");
  CHECK(ReadError(head + "m_total{a=\"x\\t\"} 1\n") ==
        "line 3: label a: a bad escape");
  CHECK(ReadError(head + "m_total{a=x} 1\n") ==
        "line 3: label a: the value is not quoted");
  CHECK(ReadError(head + "m_total{a=\"1\",a=\"2\"} 1\n") ==
        "line 3: label a given twice");
  CHECK(ReadError(head + "m_total 1 1700000000000\n") ==
        "line 3: bad value '1 1700000000000' (or a timestamp)");
  CHECK(ReadError(head + "m_total 1\nm_total 2\n") ==
        "line 4: sample m_total repeated with the same labels");
  CHECK(ReadError(head + "other_total 1\n") ==
        "line 3: sample other_total inside family m_total");
  CHECK(ReadError(head + "m_total 1\n" + head) ==
        "line 4: family m_total appears twice");
  CHECK(ReadError(head + "\n") == "line 3: an empty line");
  CHECK(ReadError(head) == "line 2: family m_total has no samples");

  const std::string hist = "# HELP h x\n# TYPE h histogram\n";
  CHECK(ReadError(hist + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
                         "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n") ==
        "line 7: h: bucket counts are not cumulative");
  CHECK(ReadError(hist + "h_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n") ==
        "line 5: h: h_sum before the +Inf bucket");
  CHECK(ReadError(hist + "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
                         "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n") ==
        "line 7: h: le bounds do not increase");
  CHECK(ReadError(hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n") ==
        "line 5: h: _count is not the +Inf bucket");
  CHECK(ReadError(hist + "h_bucket{le=\"+Inf\"} 2\nh_sum 1\n") ==
        "line 4: h: a histogram without _sum or _count");
}

// A status as the daemon would answer it, with a value in every field.
DaemonStatus SampleStatus() {
  DaemonStatus d;
  d.version = "0.1.0";
  d.started = 1763771000;
  d.scope.name = "default";
  d.scope.boot_time = 1763771500;
  d.scope.new_boot_time = 1763771860;
  d.clients = 7;
  d.start_seen = true;
  d.start_instance = 1763771860;
  d.start_time = 1763771861;
  d.allowed = 5;
  d.reclaimed = 3;
  ChannelStatus cld;
  cld.name = "cld";
  cld.open = true;
  cld.requests = 12;
  cld.ok = 10;
  cld.malformed = 1;
  cld.failed = 1;
  d.channels.push_back(cld);
  d.purged = 2;
  d.callouts_pending = 4;
  d.storage_errors = 1;
  d.batches.rolled_back = 1;
  d.batches.Committed(3, 800);
  d.batches.Committed(1, 1500);
  d.batches.Committed(5000, 20000000);  // above every bound of both
  return d;
}

TEST_CASE("the metrics of a status", "[prometheus][metrics]") {
  DaemonStatus d = SampleStatus();
  const std::string text = MetricsText(d);
  Exposition e = Read(text);
  INFO(text);
  const LabelMap scope = {{"scope", "default"}};
  auto with = [&scope](LabelMap more) {
    more.insert(scope.begin(), scope.end());
    return more;
  };
  CHECK(e.Value("nfsd_helper_info", with({{"version", "0.1.0"}})) == 1);
  CHECK(e.Value("nfsd_helper_start_time_seconds", scope) == 1763771000);
  CHECK(e.Value("nfsd_helper_upcall_channel_open",
                with({{"channel", "cld"}})) == 1);
  CHECK(e.Value("nfsd_helper_upcall_requests_total",
                with({{"channel", "cld"}})) == 12);
  CHECK(e.Value("nfsd_helper_upcall_results_total",
                with({{"channel", "cld"}, {"result", "ok"}})) == 10);
  CHECK(e.Value("nfsd_helper_upcall_results_total",
                with({{"channel", "cld"}, {"result", "stale"}})) == 0);
  CHECK(e.Value("nfsd_helper_batches_total",
                with({{"outcome", "committed"}})) == 3);
  CHECK(e.Value("nfsd_helper_batches_total",
                with({{"outcome", "rolled_back"}})) == 1);
  // Requests: 1 <= 1, 3 <= 4, 5000 above 4096.
  CHECK(e.Value("nfsd_helper_batch_requests_bucket", with({{"le", "1"}})) == 1);
  CHECK(e.Value("nfsd_helper_batch_requests_bucket", with({{"le", "4"}})) == 2);
  CHECK(e.Value("nfsd_helper_batch_requests_bucket", with({{"le", "4096"}})) ==
        2);
  CHECK(e.Value("nfsd_helper_batch_requests_bucket", with({{"le", "+Inf"}})) ==
        3);
  CHECK(e.Value("nfsd_helper_batch_requests_sum", scope) == 5004);
  // Commit durations in seconds: 0.0008 <= 0.001, 0.0015 <= 0.0025.
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_bucket",
                with({{"le", "0.0005"}})) == 0);
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_bucket",
                with({{"le", "0.001"}})) == 1);
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_bucket",
                with({{"le", "0.0025"}})) == 2);
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_bucket",
                with({{"le", "10"}})) == 2);
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_count", scope) == 3);
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_sum", scope) ==
        Approx(20.0023));
  CHECK(e.Value("nfsd_helper_storage_errors_total", scope) == 1);
  CHECK(e.Value("nfsd_helper_clients", scope) == 7);
  CHECK(e.Value("nfsd_helper_purged_clients_total", scope) == 2);
  CHECK(e.Value("nfsd_helper_grace_open", scope) == 1);
  CHECK(e.Value("nfsd_helper_current_instance", scope) == 1763771860);
  CHECK(e.Value("nfsd_helper_last_start_time_seconds", scope) == 1763771861);
  CHECK(e.Value("nfsd_helper_last_start_allowed_clients", scope) == 5);
  CHECK(e.Value("nfsd_helper_last_start_reclaimed_clients", scope) == 3);
  CHECK(e.Value("nfsd_helper_ha_callout_outbox_events", scope) == 4);
  // Without --idmap the idmap families are left out.
  CHECK(e.Family("nfsd_helper_idmap_requests_total") == nullptr);
  // Every family is ours, and every sample names the scope.
  for (const auto& f : e.families) {
    CHECK(f.name.rfind("nfsd_helper_", 0) == 0);
    for (const auto& s : f.samples) CHECK(s.labels.at("scope") == "default");
  }
}

TEST_CASE("metrics leave out what does not apply", "[prometheus][metrics]") {
  DaemonStatus d;
  d.version = "0.1.0";
  d.scope.name = "s1";
  d.callouts_pending = -1;  // no HA callout
  d.idmap.enabled = true;
  d.idmap.nametoid.requests = 9;
  d.idmap.nametoid.misses = 2;
  Exposition e = Read(MetricsText(d));
  CHECK(e.Family("nfsd_helper_current_instance") == nullptr);
  CHECK(e.Family("nfsd_helper_last_start_allowed_clients") == nullptr);
  CHECK(e.Family("nfsd_helper_ha_callout_outbox_events") == nullptr);
  CHECK(e.Value("nfsd_helper_grace_open", {{"scope", "s1"}}) == 0);
  CHECK(e.Value("nfsd_helper_idmap_requests_total",
                {{"scope", "s1"}, {"direction", "nametoid"}}) == 9);
  CHECK(e.Value("nfsd_helper_idmap_results_total", {{"scope", "s1"},
                                                    {"direction", "nametoid"},
                                                    {"result", "miss"}}) == 2);
  // No batch yet: the histograms are there, with zero counts.
  CHECK(e.Value("nfsd_helper_batch_commit_duration_seconds_count",
                {{"scope", "s1"}}) == 0);
}

}  // namespace
}  // namespace nfsdh::ctl
