// helper-ctl cluster: what a cluster of nfsd-helpers keeps in etcd (cluster
// mode, daemon/store/ETCD.md): etcd's members, the nodes that hold a lease,
// and each scope with its owner, state and records.
//
// It reads etcd itself, with the same etcd options as the daemon (from the
// command line, else nfs.conf), and needs no running nfsd-helper: an
// operator asks on any machine that reaches etcd, also while a scope has no
// owner. It writes nothing (etcd::EtcdStore::OpenReader). The lists are
// read one after the other, not in one snapshot: a node that comes or goes
// meanwhile may show in one list and not in another.
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctl/args.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/etcd_access.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/etcd/client.h"
#include "daemon/etcd/etcd_store.h"

namespace nfsdh::ctl {
namespace {

struct MemberInfo {
  etcd::Member member;
  std::optional<etcd::EndpointStatus> status;  // unset: it did not answer
  std::string error;                           // why it did not
};

struct NodeInfo {
  std::string name;
  std::string host;
  int64_t pid = 0;
  int64_t lease = 0;
  int64_t ttl = -1;  // seconds left of its lease; -1: expired meanwhile
};

struct ScopeInfo {
  store::ScopeRow row;
  std::string owner;  // "" when none
  int64_t records = 0;
};

struct ClusterView {
  std::string cluster;
  std::vector<std::string> endpoints;
  uint64_t cluster_id = 0;
  uint64_t leader = 0;  // 0: no member that answered knows one
  std::vector<MemberInfo> members;
  std::vector<NodeInfo> nodes;
  std::vector<ScopeInfo> scopes;
};

std::string Hex64(uint64_t v) {
  char buf[20];
  snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// Reads what `view` shows; the first failure to read a list ends it (a
// member that does not answer its status is shown as such instead).
Status ReadCluster(etcd::EtcdStore& st, ClusterView* view) {
  etcd::Client& c = st.client();
  std::vector<etcd::Member> members;
  Status s = c.MemberList(&members, &view->cluster_id);
  if (!s.ok()) return s;
  for (etcd::Member& m : members) {
    MemberInfo info;
    info.member = std::move(m);
    if (info.member.client_urls.empty()) {
      info.error = "no client URL (not started yet)";
    } else {
      etcd::EndpointStatus es;
      Status e = c.StatusOf(info.member.client_urls[0], &es);
      if (e.ok()) {
        info.status = es;
        if (es.leader != 0) view->leader = es.leader;
      } else {
        info.error = e.message();
      }
    }
    view->members.push_back(std::move(info));
  }

  const std::string np = st.prefix() + "node/";
  etcd::RangeResult nodes;
  s = c.Range(np, etcd::PrefixEnd(np), 0, &nodes);
  if (!s.ok()) return s;
  for (const etcd::KeyValue& kv : nodes.kvs) {
    NodeInfo n;
    n.name = kv.key.substr(np.size());
    n.lease = kv.lease;
    const nlohmann::json j = nlohmann::json::parse(kv.value, nullptr, false);
    if (j.is_object()) {
      n.host = j.value("host", "");
      n.pid = j.value("pid", int64_t{0});
    }
    if (n.lease != 0) {
      s = c.LeaseTimeToLive(n.lease, &n.ttl);
      if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
    }
    view->nodes.push_back(std::move(n));
  }

  const std::string op = st.prefix() + "owner/";
  etcd::RangeResult owners;
  s = c.Range(op, etcd::PrefixEnd(op), 0, &owners);
  if (!s.ok()) return s;
  std::map<std::string, std::string> owner_of;
  for (const etcd::KeyValue& kv : owners.kvs)
    owner_of[kv.key.substr(op.size())] = kv.value;

  std::vector<store::ScopeRow> rows;
  s = st.ListScopes(&rows);
  if (!s.ok()) return s;
  for (store::ScopeRow& row : rows) {
    ScopeInfo si;
    si.row = std::move(row);
    auto it = owner_of.find(si.row.name);
    if (it != owner_of.end()) {
      si.owner = it->second;
      owner_of.erase(it);
    }
    s = st.CountClients(si.row.name, &si.records);
    if (!s.ok()) return s;
    view->scopes.push_back(std::move(si));
  }
  // A scope taken that has no state yet (its owner has not started it).
  for (auto& [name, owner] : owner_of) {
    ScopeInfo si;
    si.row.name = name;
    si.owner = owner;
    view->scopes.push_back(std::move(si));
  }
  return Status::Ok();
}

// "in grace", "serving", or "not started" for a scope without a row yet.
std::string ScopeState(const ScopeInfo& s) {
  if (!s.row.boot_time && !s.row.new_boot_time) return "not started";
  return s.row.new_boot_time ? "in grace" : "serving";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

void Table(const ClusterView& v, std::ostream& out) {
  out << "cluster " << v.cluster << " (etcd cluster id " << Hex64(v.cluster_id)
      << ", endpoints";
  for (const std::string& e : v.endpoints) out << " " << e;
  out << ")\n";

  out << "\n  MEMBER            ID                CLIENT URL                "
         "VERSION   ROLE\n";
  for (const MemberInfo& m : v.members) {
    const std::string url =
        m.member.client_urls.empty() ? "-" : m.member.client_urls[0];
    out << "  " << Pad(m.member.name.empty() ? "-" : m.member.name, 18)
        << Pad(Hex64(m.member.id), 18) << Pad(url, 26);
    if (m.status) {
      out << Pad(m.status->version, 10)
          << (m.status->leader == m.member.id ? "leader" : "follower");
    } else {
      out << "-         not answering: " << m.error;
    }
    out << "\n";
  }

  out << "\n  NODE              HOST              PID       LEASE             "
         "TTL\n";
  if (v.nodes.empty()) out << "  (no node holds a lease)\n";
  for (const NodeInfo& n : v.nodes) {
    out << "  " << Pad(n.name, 18) << Pad(n.host.empty() ? "-" : n.host, 18)
        << Pad(std::to_string(n.pid), 10) << Pad(Hex64(n.lease), 18)
        << (n.ttl < 0 ? std::string("expired") : std::to_string(n.ttl) + " s")
        << "\n";
  }

  out << "\n  SCOPE             OWNER             STATE         INSTANCE    "
         "RECORDS\n";
  if (v.scopes.empty()) out << "  (no scope)\n";
  for (const ScopeInfo& s : v.scopes) {
    const std::optional<int64_t> inst = CurrentInstance(s.row);
    out << "  " << Pad(s.row.name, 18)
        << Pad(s.owner.empty() ? "(none)" : s.owner, 18)
        << Pad(ScopeState(s), 14)
        << Pad(inst ? std::to_string(*inst) : std::string("-"), 12) << s.records
        << "\n";
  }
}

Json ClusterJson(const ClusterView& v) {
  Json j;
  j["cluster"] = v.cluster;
  j["endpoints"] = v.endpoints;
  j["etcd_cluster_id"] = Hex64(v.cluster_id);
  j["leader"] = v.leader == 0 ? Json(nullptr) : Json(Hex64(v.leader));
  Json members = Json::array();
  for (const MemberInfo& m : v.members) {
    Json e;
    e["name"] = m.member.name;
    e["id"] = Hex64(m.member.id);
    e["client_urls"] = m.member.client_urls;
    e["peer_urls"] = m.member.peer_urls;
    e["answering"] = m.status.has_value();
    e["version"] = m.status ? Json(m.status->version) : Json(nullptr);
    e["leader"] =
        m.status ? Json(m.status->leader == m.member.id) : Json(nullptr);
    e["db_size"] = m.status ? Json(m.status->db_size) : Json(nullptr);
    e["error"] = m.status ? Json(nullptr) : Json(m.error);
    members.push_back(e);
  }
  j["members"] = members;
  Json nodes = Json::array();
  for (const NodeInfo& n : v.nodes) {
    Json e;
    e["node"] = n.name;
    e["host"] = n.host;
    e["pid"] = n.pid;
    e["lease"] = Hex64(n.lease);
    e["ttl"] = n.ttl < 0 ? Json(nullptr) : Json(n.ttl);
    nodes.push_back(e);
  }
  j["nodes"] = nodes;
  Json scopes = Json::array();
  for (const ScopeInfo& s : v.scopes) {
    Json e;
    e["scope"] = s.row.name;
    e["owner"] = s.owner.empty() ? Json(nullptr) : Json(s.owner);
    e["state"] = ScopeState(s);
    e["records"] = s.records;
    e["fields"] = ScopeJson(s.row);
    scopes.push_back(e);
  }
  j["scopes"] = scopes;
  return j;
}

constexpr OptionSpec kClusterOptions[] = {
    NFSDH_CTL_ETCD_OPTIONS,
    kConfigOption,
    {"--json", nullptr},
};

int RunCluster(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  CtlDefaults d;
  int rc = LoadCtlDefaults(parsed, &d, err);
  if (rc != kExitOk) return rc;
  const Options& o = d.options;
  if (o.etcd_endpoints.empty())
    return UsageError(kClusterVerb,
                      "no etcd endpoints: give --etcd-endpoints URL,... or "
                      "set etcd-endpoints in [nfsd-helper] of nfs.conf",
                      err);
  std::vector<std::string> endpoints;
  {
    // The options are checked before anything is asked of etcd.
    std::unique_ptr<etcd::EtcdStore> first;
    Status s = OpenEtcdReader(o, 0, &first);
    if (!s.ok()) return UsageError(kClusterVerb, s.message(), err);
    endpoints = first->client().endpoints();
  }
  ClusterView view;
  Status s = ReadEtcd(o, [&](etcd::EtcdStore& st) {
    view = ClusterView();
    view.cluster = o.cluster;
    view.endpoints = endpoints;
    return ReadCluster(st, &view);
  });
  if (!s.ok()) {
    err << kProgram << ": " << s.message() << "\n";
    return kExitError;
  }
  if (view.nodes.empty() && view.scopes.empty())
    err << kProgram << ": warning: etcd holds no node and no scope of cluster "
        << o.cluster << " (is the cluster name right?)\n";
  try {
    if (parsed.has("--json"))
      out << DumpJson(ClusterJson(view), 2) << "\n";
    else
      Table(view, out);
  } catch (const std::exception& e) {  // nlohmann::json reports by throwing
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err);
}

}  // namespace

const Verb kClusterVerb = {
    "cluster",
    "show the cluster's etcd members, nodes and scopes (cluster mode)",
    "[--etcd-endpoints URLS] [--cluster NAME] [--etcd-cacert FILE] "
    "[--etcd-cert FILE] [--etcd-key FILE] [--etcd-user NAME] "
    "[--etcd-password-file FILE] [--config FILE] [--json]",
    NFSDH_CTL_ETCD_OPTIONS_HELP
    "  --config FILE          nfs.conf file for the defaults (default\n"
    "                         /etc/nfs.conf)\n"
    "  --json                 write one JSON document instead of tables\n"
    "\n"
    "Reads etcd itself; needs no running nfsd-helper and writes nothing.\n",
    {kClusterOptions},
    RunCluster,
};

}  // namespace nfsdh::ctl
