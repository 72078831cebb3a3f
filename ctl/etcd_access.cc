#include "ctl/etcd_access.h"

#include <unistd.h>

#include <cctype>
#include <vector>

#include "common/scope_name.h"
#include "daemon/etcd/client_options.h"

namespace nfsdh::ctl {
namespace {

// helper-ctl's own lease: long enough that a slow etcd does not end it
// while an import commits, short enough that a helper-ctl killed meanwhile
// holds the scope for a short while only.
constexpr int64_t kWriterLeaseTtl = 15;

Status ClientOptionsFor(const Options& o, etcd::ClientOptions* co) {
  if (o.etcd_endpoints.empty())
    return Status::Invalid(
        "no etcd endpoints: give --etcd-endpoints URL,... or set "
        "etcd-endpoints in [nfsd-helper] of nfs.conf");
  Status s = etcd::ClientOptionsFrom(o, co);
  if (!s.ok()) return s;
  co->connect_timeout_ms = 1000;
  co->request_timeout_ms = 3000;
  return Status::Ok();
}

// "helper-ctl.<host>.<pid>", within the node name rules.
std::string WriterNodeName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string h;
  for (const char* p = host; *p != '\0'; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    h += (std::isalnum(c) || c == '-' || c == '_') ? *p : '_';
  }
  const std::string pid = "." + std::to_string(getpid());
  const std::string head = "helper-ctl.";
  const size_t room = 64 - head.size() - pid.size();
  if (h.size() > room) h.resize(room);
  return head + (h.empty() ? "host" : h) + pid;
}

}  // namespace

Status OpenEtcdReader(const Options& o, size_t first,
                      std::unique_ptr<etcd::EtcdStore>* out) {
  etcd::ClientOptions co;
  Status s = ClientOptionsFor(o, &co);
  if (!s.ok()) return s;
  const std::vector<std::string> all = co.endpoints;
  first %= all.size();
  co.endpoints.assign(all.begin() + first, all.end());
  co.endpoints.insert(co.endpoints.end(), all.begin(), all.begin() + first);
  std::unique_ptr<etcd::Client> client;
  s = etcd::Client::Open(co, &client);
  if (!s.ok()) return s;
  etcd::StoreOptions so;
  so.cluster = o.cluster;
  return etcd::EtcdStore::OpenReader(std::move(client), so, out);
}

Status ReadEtcd(const Options& o,
                const std::function<Status(etcd::EtcdStore&)>& read) {
  etcd::ClientOptions co;
  Status s = ClientOptionsFor(o, &co);
  if (!s.ok()) return s;
  std::string why;
  for (size_t first = 0; first < co.endpoints.size(); ++first) {
    std::unique_ptr<etcd::EtcdStore> st;
    s = OpenEtcdReader(o, first, &st);
    if (!s.ok()) return s;  // the options, not the endpoint
    s = read(*st);
    if (s.ok()) return s;
    why += (why.empty() ? "" : "; ") + co.endpoints[first] + ": " + s.message();
  }
  return Status::Io("cannot read cluster " + o.cluster + " from etcd (" + why +
                    ")");
}

Status EtcdScopeWriter::Open(const Options& o, const std::string& scope,
                             std::unique_ptr<EtcdScopeWriter>* out) {
  etcd::ClientOptions co;
  Status s = ClientOptionsFor(o, &co);
  if (!s.ok()) return s;
  std::unique_ptr<etcd::Client> client, keeper_client;
  s = etcd::Client::Open(co, &client);
  if (s.ok()) s = etcd::Client::Open(co, &keeper_client);
  if (!s.ok()) return s;
  etcd::StoreOptions so;
  so.cluster = o.cluster;
  so.node = WriterNodeName();
  so.lease_ttl = kWriterLeaseTtl;
  std::unique_ptr<EtcdScopeWriter> w(new EtcdScopeWriter());
  w->scope_ = scope;
  const int64_t granted = etcd::LeaseKeeper::NowMs();
  s = etcd::EtcdStore::Open(std::move(client), so, &w->store_);
  if (!s.ok())
    return Status::Io("cannot join cluster " + so.cluster + " in etcd (" +
                      o.etcd_endpoints + "): " + s.message());
  w->keeper_ = std::make_unique<etcd::LeaseKeeper>(std::move(keeper_client),
                                                   so.lease_ttl);
  w->keeper_->Keep(w->store_->lease(), granted);
  s = w->store_->Acquire(scope);
  if (!s.ok()) return s;  // the destructor revokes the lease
  *out = std::move(w);
  return Status::Ok();
}

Status EtcdScopeWriter::CheckLease() {
  const etcd::LeaseKeeper::State k = keeper_->Get();
  if (!k.lost) return Status::Ok();
  store_->Fence(k.why);
  return Status::Io("helper-ctl's etcd lease was lost (" + k.why + ")");
}

EtcdScopeWriter::~EtcdScopeWriter() {
  if (keeper_) keeper_->Stop();
  if (!store_) return;
  if (!store_->fenced()) store_->Release(scope_);
  // Ends the node key too; a failure leaves both to the lease's time out.
  store_->client().LeaseRevoke(store_->lease());
}

}  // namespace nfsdh::ctl
