// helper-ctl status: what the running nfsd-helper is doing, asked over its
// control socket (CTL_STATUS): the upcall protocols it serves, the served
// scope and its grace period, the clients recorded and reclaimed, the
// upcalls served, the batches committed and the storage errors.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

constexpr size_t kKeyWidth = 18;

void KeyLine(std::ostream& out, const std::string& key,
             const std::string& value) {
  out << "  " << key << std::string(kKeyWidth - key.size(), ' ') << value
      << "\n";
}

std::string Grace(const store::ScopeRow& s) {
  if (s.new_boot_time) {
    return s.grace_started ? "open since " + IsoTime(*s.grace_started)
                           : "open (start time unknown)";
  }
  return s.grace_ended ? "closed since " + IsoTime(*s.grace_ended)
                       : "closed, none has ended yet";
}

std::string ErrorLine(const std::optional<StorageErrorNote>& e) {
  return e ? IsoTime(e->when) + "  " + e->message : "-";
}

// The nfsdfs line: the directory and whether its four files are served.
std::string NfsdfsLine(const DaemonStatus& d) {
  std::string path = nfsdfs::EscapeForLog(d.nfsdfs);
  switch (d.nfsdfs_state) {
    case ProtocolState::kNotConfigured:
      return path + " (upcall files not served)";
    case ProtocolState::kNotOffered:
      return path + " (this kernel has no upcall files)";
    case ProtocolState::kWaiting:
      return path + " (waiting for upcall files)";
    case ProtocolState::kOpen:
      return path + " (every upcall file open)";
  }
  return path;
}

// The cld pipe line: the pipe and whether it is open.
std::string CldLine(const DaemonStatus& d) {
  std::string path = nfsdfs::EscapeForLog(d.cld_pipe);
  switch (d.cld_state) {
    case ProtocolState::kNotConfigured:
    case ProtocolState::kNotOffered:
      return path + " (not served)";
    case ProtocolState::kWaiting:
      return path + " (waiting for nfsd to create it)";
    case ProtocolState::kOpen:
      return path + " (open)";
  }
  return path;
}

const char* StateName(ProtocolState s) {
  switch (s) {
    case ProtocolState::kNotConfigured:
      return "not_configured";
    case ProtocolState::kNotOffered:
      return "not_offered";
    case ProtocolState::kWaiting:
      return "waiting";
    case ProtocolState::kOpen:
      return "open";
  }
  return "unknown";
}

// A bucket bound in microseconds, as a person reads it: "0.25 ms", "2.5 s".
std::string Micros(uint64_t us) {
  char buf[32];
  if (us < 1000000)
    snprintf(buf, sizeof buf, "%g ms", static_cast<double>(us) / 1e3);
  else
    snprintf(buf, sizeof buf, "%g s", static_cast<double>(us) / 1e6);
  return buf;
}

// "p50 <= 1 ms", or "p99 > 10 s" when the quantile is above every bound.
std::string Quantile(const Histogram& h, double q, const char* name) {
  std::optional<uint64_t> b = h.QuantileBound(q);
  if (b) return std::string(name) + " <= " + Micros(*b);
  return std::string(name) + " > " +
         Micros(h.bounds.empty() ? 0 : h.bounds.back());
}

std::string BatchesLine(const BatchStats& b) {
  std::string line = std::to_string(b.committed) + " committed, " +
                     std::to_string(b.rolled_back) + " rolled back";
  if (b.committed > 0) {
    char each[64];
    snprintf(
        each, sizeof each, ", %.1f requests each on average",
        static_cast<double>(b.requests.sum) / static_cast<double>(b.committed));
    line += each;
  }
  return line;
}

std::string CommitLine(const BatchStats& b) {
  const Histogram& h = b.commit_usec;
  uint64_t n = h.Count();
  if (n == 0) return "- (no batch committed yet)";
  double mean = static_cast<double>(h.sum) / static_cast<double>(n);
  char buf[32];
  if (mean < 1e6)
    snprintf(buf, sizeof buf, "%.2f ms", mean / 1e3);
  else
    snprintf(buf, sizeof buf, "%.2f s", mean / 1e6);
  return Quantile(h, 0.5, "p50") + ", " + Quantile(h, 0.99, "p99") + ", mean " +
         buf;
}

Json HistogramJson(const Histogram& h) {
  Json j;
  j["count"] = h.Count();
  j["sum"] = h.sum;
  Json buckets = Json::array();
  for (size_t i = 0; i < h.counts.size(); ++i) {
    Json b;
    b["le"] = i < h.bounds.size() ? Json(h.bounds[i]) : Json(nullptr);
    b["count"] = h.counts[i];
    buckets.push_back(b);
  }
  j["buckets"] = buckets;
  return j;
}

std::string Cell(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// The ID-mapping channels, when the daemon serves them.
void IdmapTable(const idmap::IdmapStats& im, std::ostream& out) {
  if (!im.enabled) {
    out << "\n  idmap: not served (nfsd-helper runs without --idmap)\n";
    return;
  }
  out << "\n  IDMAP     OPEN  REQUESTS      HITS    MISSES    ERRORS    QUEUED\n";
  for (auto [name, s] : {std::pair{"idtoname", &im.idtoname},
                         std::pair{"nametoid", &im.nametoid}}) {
    out << "  " << name << "  " << (s->open ? "yes " : "no  ")
        << Cell(std::to_string(s->requests), 10)
        << Cell(std::to_string(s->hits), 10)
        << Cell(std::to_string(s->misses), 10)
        << Cell(std::to_string(s->errors), 10)
        << Cell(std::to_string(s->queued), 10) << "\n";
  }
}

Json IdmapJson(const idmap::IdmapStats& im) {
  Json j;
  j["enabled"] = im.enabled;
  if (!im.enabled) return j;
  for (auto [name, s] : {std::pair{"idtoname", &im.idtoname},
                         std::pair{"nametoid", &im.nametoid}}) {
    Json c;
    c["open"] = s->open;
    c["requests"] = s->requests;
    c["hits"] = s->hits;
    c["misses"] = s->misses;
    c["errors"] = s->errors;
    c["queued"] = s->queued;
    j[name] = c;
  }
  return j;
}

void Table(const DaemonStatus& d, const std::string& socket,
           std::ostream& out) {
  out << "nfsd-helper " << d.version << ", pid " << d.pid << ", up since "
      << IsoTime(d.started) << "\n";
  KeyLine(out, "socket", nfsdfs::EscapeForLog(socket));
  if (d.cluster.enabled) {
    const ClusterStatus& c = d.cluster;
    KeyLine(out, "records",
            "etcd " + nfsdfs::EscapeForLog(c.endpoints) + ", cluster " +
                c.cluster + ", node " + c.node);
    char lease[64];
    snprintf(lease, sizeof lease, "%llx",
             static_cast<unsigned long long>(c.lease));
    KeyLine(out, "lease",
            std::string(lease) + ", " + std::to_string(c.lease_ttl) +
                " s, renewed " + std::to_string(c.renewed_ms_ago / 1000) +
                " s ago");
    KeyLine(out, "fenced",
            c.fenced ? "YES since " + IsoTime(c.fenced_since) + ": " +
                           nfsdfs::EscapeForLog(c.fence_reason) +
                           " (every upcall answered -EIO, no reclaim)"
                     : std::string("no"));
  } else {
    KeyLine(out, "database",
            nfsdfs::EscapeForLog(d.database) + " (schema version " +
                std::to_string(d.schema_version) + ")");
  }
  KeyLine(out, "nfsdfs", NfsdfsLine(d));
  KeyLine(out, "cld pipe", CldLine(d));
  const store::ScopeRow& s = d.scope;
  KeyLine(out, "scope", nfsdfs::EscapeForLog(s.name));
  KeyLine(out, "current_instance", TimeCell(CurrentInstance(s)));
  KeyLine(out, "boot_time", TimeCell(s.boot_time));
  KeyLine(out, "new_boot_time", TimeCell(s.new_boot_time));
  KeyLine(out, "old_boot_time", TimeCell(s.old_boot_time));
  KeyLine(out, "grace", Grace(s));
  KeyLine(out, "clients", std::to_string(d.clients) + " recorded");
  if (d.start_seen) {
    KeyLine(out, "last start",
            "instance " + std::to_string(d.start_instance) + " at " +
                IsoTime(d.start_time) + ": " + std::to_string(d.allowed) +
                " allowed to reclaim, " + std::to_string(d.reclaimed) +
                " reclaimed so far");
  } else {
    KeyLine(out, "last start",
            "not seen by this nfsd-helper (none since it started)");
  }
  KeyLine(out, "purged", std::to_string(d.purged) + " by helper-ctl");
  KeyLine(out, "ha-callout",
          d.callouts_pending < 0
              ? std::string("none (nfsd-helper runs without --ha-callout)")
              : std::to_string(d.callouts_pending) +
                    " event(s) in the outbox");
  KeyLine(out, "batches", BatchesLine(d.batches));
  KeyLine(out, "commit latency", CommitLine(d.batches));
  KeyLine(out, "storage errors", std::to_string(d.storage_errors));
  if (d.storage_errors > 0) {
    KeyLine(out, "first error", ErrorLine(d.first_storage_error));
    KeyLine(out, "last error", ErrorLine(d.last_storage_error));
  }
  size_t nw = 6;  // UPCALL
  for (const ChannelStatus& c : d.channels) nw = std::max(nw, c.name.size());
  out << "\n  "
      << "UPCALL" << std::string(nw - 6, ' ')
      << "  OPEN  REQUESTS        OK  MALFORMED     STALE    FAILED\n";
  for (const ChannelStatus& c : d.channels) {
    out << "  " << c.name << std::string(nw - c.name.size(), ' ') << "  "
        << (c.open ? "yes " : "no  ") << Cell(std::to_string(c.requests), 10)
        << Cell(std::to_string(c.ok), 10)
        << Cell(std::to_string(c.malformed), 11)
        << Cell(std::to_string(c.stale), 10)
        << Cell(std::to_string(c.failed), 10) << "\n";
  }
  IdmapTable(d.idmap, out);
}

Json StatusJson(const DaemonStatus& d, const std::string& socket) {
  Json j;
  j["socket"] = socket;
  j["version"] = d.version;
  j["pid"] = d.pid;
  j["started"] = d.started;
  j["started_utc"] = IsoTime(d.started);
  j["now"] = d.now;
  j["database"] = d.database;
  j["schema_version"] = d.schema_version;
  j["nfsdfs"] = d.nfsdfs;
  j["serving"] = d.serving;
  Json protocols;
  protocols["nfsdfs"] = {{"path", d.nfsdfs},
                         {"state", StateName(d.nfsdfs_state)}};
  protocols["cld"] = {{"path", d.cld_pipe}, {"state", StateName(d.cld_state)}};
  j["protocols"] = protocols;
  j["scope"] = ScopeJson(d.scope);
  Json grace;
  grace["open"] = d.scope.new_boot_time.has_value();
  std::optional<int64_t> since =
      d.scope.new_boot_time ? d.scope.grace_started : d.scope.grace_ended;
  grace["since"] = OptInt(since);
  grace["since_utc"] = OptTime(since);
  j["grace"] = grace;
  j["clients"] = d.clients;
  if (d.start_seen) {
    Json start;
    start["instance"] = d.start_instance;
    start["time"] = d.start_time;
    start["time_utc"] = IsoTime(d.start_time);
    start["allowed"] = d.allowed;
    start["reclaimed"] = d.reclaimed;
    j["last_start"] = start;
  } else {
    j["last_start"] = nullptr;
  }
  Json upcalls = Json::object();
  for (const ChannelStatus& c : d.channels) {
    Json u;
    u["open"] = c.open;
    u["requests"] = c.requests;
    u["ok"] = c.ok;
    u["malformed"] = c.malformed;
    u["stale"] = c.stale;
    u["failed"] = c.failed;
    upcalls[c.name] = u;
  }
  j["upcalls"] = upcalls;
  j["purged"] = d.purged;
  j["callouts_pending"] = d.callouts_pending < 0
                              ? Json(nullptr)
                              : Json(d.callouts_pending);
  auto note = [](const std::optional<StorageErrorNote>& e) -> Json {
    if (!e) return nullptr;
    Json n;
    n["time"] = e->when;
    n["time_utc"] = IsoTime(e->when);
    n["message"] = e->message;
    return n;
  };
  Json errors;
  errors["count"] = d.storage_errors;
  errors["first"] = note(d.first_storage_error);
  errors["last"] = note(d.last_storage_error);
  j["storage_errors"] = errors;
  Json batches;
  batches["committed"] = d.batches.committed;
  batches["rolled_back"] = d.batches.rolled_back;
  batches["requests"] = HistogramJson(d.batches.requests);
  batches["commit_microseconds"] = HistogramJson(d.batches.commit_usec);
  j["batches"] = batches;
  j["scopes"] = d.scopes;
  j["scopes_truncated"] = d.scopes_truncated;
  j["idmap"] = IdmapJson(d.idmap);
  if (d.cluster.enabled) {
    const ClusterStatus& c = d.cluster;
    Json cl;
    cl["cluster"] = c.cluster;
    cl["node"] = c.node;
    cl["endpoints"] = c.endpoints;
    cl["lease"] = c.lease;
    cl["lease_ttl"] = c.lease_ttl;
    cl["renewed_ms_ago"] = c.renewed_ms_ago;
    cl["fenced"] = c.fenced;
    cl["fence_reason"] = c.fenced ? Json(c.fence_reason) : Json(nullptr);
    cl["fenced_since"] = c.fenced ? Json(c.fenced_since) : Json(nullptr);
    j["cluster"] = cl;
  } else {
    j["cluster"] = nullptr;
  }
  return j;
}

constexpr OptionSpec kStatusOptions[] = {kCtlSocketOption, {"--json", nullptr}};

int RunStatus(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  const std::string socket = CtlSocket(parsed);
  std::unique_ptr<ControlClient> client;
  int rc = ConnectOrReport(socket, &client, err);
  if (rc != kExitOk) return rc;
  DaemonStatus d;
  Status s = client->GetStatus(&d);
  if (!s.ok()) return ReportCallError(s, err);
  if (!d.message.empty()) err << kProgram << ": warning: " << d.message << "\n";
  try {
    if (parsed.has("--json"))
      out << DumpJson(StatusJson(d, socket), 2) << "\n";
    else
      Table(d, socket, out);
  } catch (const std::exception& e) {  // nlohmann::json reports by throwing
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err);
}

}  // namespace

const Verb kStatusVerb = {
    "status",
    "show what the running nfsd-helper is doing",
    "[--ctl-socket PATH] [--json]",
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --json             write one JSON document instead of a table\n"
    "\n"
    "Exit status 3 if nfsd-helper is not running.\n",
    {kStatusOptions},
    RunStatus,
};

}  // namespace nfsdh::ctl
