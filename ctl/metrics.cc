#include "ctl/metrics.h"

#include "ctl/json_util.h"

namespace nfsdh::ctl {
namespace {

using prometheus::Family;
using prometheus::HistogramSample;
using prometheus::Labels;
using prometheus::Type;

double D(uint64_t v) { return static_cast<double>(v); }
double D(int64_t v) { return static_cast<double>(v); }

// A histogram of the daemon's, its bounds and sum divided by `unit` (1e6
// for microseconds to seconds).
HistogramSample Scaled(const Histogram& h, double unit) {
  HistogramSample out;
  for (uint64_t b : h.bounds) out.bounds.push_back(D(b) / unit);
  out.counts = h.counts;
  out.sum = D(h.sum) / unit;
  return out;
}

}  // namespace

std::vector<Family> MetricFamilies(const DaemonStatus& d) {
  const Labels scope = {{"scope", d.scope.name}};
  auto with = [&scope](const char* name, const std::string& value) {
    Labels l = scope;
    l.push_back({name, value});
    return l;
  };
  std::vector<Family> f;

  f.emplace_back("nfsd_helper_info", Type::kGauge,
                 "Always 1; the version label is nfsd-helper's.");
  f.back().Add(with("version", d.version), 1);
  f.emplace_back("nfsd_helper_start_time_seconds", Type::kGauge,
                 "When nfsd-helper started, in seconds since the epoch.");
  f.back().Add(scope, D(d.started));

  // The upcall channels: the four nfsdfs files and the cld pipe.
  Family open("nfsd_helper_upcall_channel_open", Type::kGauge,
              "1 while nfsd-helper holds the upcall channel open.");
  Family requests("nfsd_helper_upcall_requests_total", Type::kCounter,
                  "Upcalls read from the channel.");
  Family results("nfsd_helper_upcall_results_total", Type::kCounter,
                 "Upcalls answered, by result: ok (0), malformed (-EINVAL "
                 "or unanswerable), stale (-ESTALE), failed (-EIO).");
  for (const ChannelStatus& c : d.channels) {
    open.Add(with("channel", c.name), c.open ? 1 : 0);
    requests.Add(with("channel", c.name), D(c.requests));
    for (auto [result, n] :
         {std::pair{"ok", c.ok}, std::pair{"malformed", c.malformed},
          std::pair{"stale", c.stale}, std::pair{"failed", c.failed}}) {
      Labels l = with("channel", c.name);
      l.push_back({"result", result});
      results.Add(l, D(n));
    }
  }
  f.push_back(std::move(open));
  f.push_back(std::move(requests));
  f.push_back(std::move(results));

  // The batches: one transaction, one fsync each.
  const BatchStats& b = d.batches;
  f.emplace_back("nfsd_helper_batches_total", Type::kCounter,
                 "Batches of upcalls handled in one transaction, by "
                 "outcome: committed, or rolled_back (a storage failure).");
  f.back()
      .Add(with("outcome", "committed"), D(b.committed))
      .Add(with("outcome", "rolled_back"), D(b.rolled_back));
  f.emplace_back("nfsd_helper_batch_requests", Type::kHistogram,
                 "Upcalls per committed batch.");
  f.back().AddHistogram(scope, Scaled(b.requests, 1));
  f.emplace_back("nfsd_helper_batch_commit_duration_seconds", Type::kHistogram,
                 "Time from BEGIN to COMMIT returning (fsync included) of "
                 "each committed batch.");
  f.back().AddHistogram(scope, Scaled(b.commit_usec, 1e6));

  f.emplace_back("nfsd_helper_storage_errors_total", Type::kCounter,
                 "Transactions that failed, so that their upcalls were "
                 "answered -EIO, and failed helper-ctl purges and imports.");
  f.back().Add(scope, D(d.storage_errors));

  // The served scope and its grace period.
  f.emplace_back("nfsd_helper_clients", Type::kGauge,
                 "Client records of the scope.");
  f.back().Add(scope, D(d.clients));
  f.emplace_back("nfsd_helper_purged_clients_total", Type::kCounter,
                 "Client records removed by helper-ctl purge.");
  f.back().Add(scope, D(d.purged));
  f.emplace_back("nfsd_helper_grace_open", Type::kGauge,
                 "1 while the scope's grace period is open.");
  f.back().Add(scope, d.scope.new_boot_time ? 1 : 0);
  f.emplace_back("nfsd_helper_current_instance", Type::kGauge,
                 "The scope's current server instance id (normally its "
                 "start time in seconds, but only its order matters).");
  if (std::optional<int64_t> cur = CurrentInstance(d.scope))
    f.back().Add(scope, D(*cur));
  f.emplace_back("nfsd_helper_last_start_time_seconds", Type::kGauge,
                 "When the last server start this nfsd-helper answered "
                 "happened, in seconds since the epoch.");
  if (d.start_seen) f.back().Add(scope, D(d.start_time));
  f.emplace_back("nfsd_helper_last_start_allowed_clients", Type::kGauge,
                 "Clients allowed to reclaim at the last server start this "
                 "nfsd-helper answered.");
  if (d.start_seen) f.back().Add(scope, D(d.allowed));
  f.emplace_back("nfsd_helper_last_start_reclaimed_clients", Type::kGauge,
                 "Of those, the clients that have reclaimed so far.");
  if (d.start_seen) f.back().Add(scope, D(d.reclaimed));

  f.emplace_back("nfsd_helper_ha_callout_outbox_events", Type::kGauge,
                 "HA callout events not yet delivered.");
  if (d.callouts_pending >= 0) f.back().Add(scope, D(d.callouts_pending));

  // The ID-mapping channels, with --idmap.
  Family im_open("nfsd_helper_idmap_channel_open", Type::kGauge,
                 "1 while nfsd-helper holds the ID-mapping channel open.");
  Family im_requests("nfsd_helper_idmap_requests_total", Type::kCounter,
                     "ID-mapping upcalls read.");
  Family im_results("nfsd_helper_idmap_results_total", Type::kCounter,
                    "ID-mapping upcalls answered, by result: hit (a "
                    "mapping), miss (nobody or a negative entry), error.");
  Family im_queued("nfsd_helper_idmap_queued_requests", Type::kGauge,
                   "ID-mapping upcalls read and not yet answered.");
  if (d.idmap.enabled) {
    for (auto [name, s] : {std::pair{"idtoname", &d.idmap.idtoname},
                           std::pair{"nametoid", &d.idmap.nametoid}}) {
      im_open.Add(with("direction", name), s->open ? 1 : 0);
      im_requests.Add(with("direction", name), D(s->requests));
      for (auto [result, n] :
           {std::pair{"hit", s->hits}, std::pair{"miss", s->misses},
            std::pair{"error", s->errors}}) {
        Labels l = with("direction", name);
        l.push_back({"result", result});
        im_results.Add(l, D(n));
      }
      im_queued.Add(with("direction", name), D(s->queued));
    }
  }
  f.push_back(std::move(im_open));
  f.push_back(std::move(im_requests));
  f.push_back(std::move(im_results));
  f.push_back(std::move(im_queued));
  return f;
}

std::string MetricsText(const DaemonStatus& d) {
  return prometheus::Render(MetricFamilies(d));
}

}  // namespace nfsdh::ctl
