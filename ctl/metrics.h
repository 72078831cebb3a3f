// What helper-ctl metrics writes: the daemon's status (CTL_STATUS) as
// Prometheus metric families, every one named nfsd_helper_* and listed in
// man/helper-ctl.8 (METRICS).
#ifndef CTL_METRICS_H_
#define CTL_METRICS_H_

#include <string>
#include <vector>

#include "ctl/control_client.h"
#include "ctl/prometheus.h"

namespace nfsdh::ctl {

// The families, in the order they are written. Every sample carries the
// label scope="<the served scope>", so that the files of two helpers on
// one host (one per network namespace) never collide.
std::vector<prometheus::Family> MetricFamilies(const DaemonStatus& d);

// The whole exposition text.
std::string MetricsText(const DaemonStatus& d);

}  // namespace nfsdh::ctl

#endif  // CTL_METRICS_H_
