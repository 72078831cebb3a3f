#include "daemon/etcd/etcd_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/scope_name.h"

namespace nfsdh::etcd {
namespace {

using nlohmann::json;

// Records read from etcd per request while scanning a scope.
constexpr int64_t kPage = 512;
// Stored keys of purged records deleted after one commit, per scope.
constexpr size_t kCollectPerCommit = 1024;
// A transaction's requests stay well under etcd's --max-request-bytes
// (1.5 MiB): a record's key and value are at most about 3 KiB in base64.
constexpr size_t kMaxBytesPerTxn = 1u << 20;

std::string Hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool Unhex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (size_t j = i; j < i + 2; ++j) {
      const char c = hex[j];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                     : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    out->push_back(static_cast<char>(v));
  }
  return true;
}

json Opt(const std::optional<int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

bool GetOpt(const json& j, const char* name, std::optional<int64_t>* out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    out->reset();
    return true;
  }
  if (!it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

bool GetInt(const json& j, const char* name, int64_t* out) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

std::string ScopeValue(const store::ScopeRow& r, int64_t purged_below) {
  return json{{"boot_time", Opt(r.boot_time)},
              {"new_boot_time", Opt(r.new_boot_time)},
              {"old_boot_time", Opt(r.old_boot_time)},
              {"max_instance", r.max_instance},
              {"kernel_boot_time", Opt(r.kernel_boot_time)},
              {"grace_started", Opt(r.grace_started)},
              {"grace_ended", Opt(r.grace_ended)},
              {"purged_below", purged_below}}
      .dump();
}

bool ParseScope(const std::string& name, const std::string& value,
                store::ScopeRow* r, int64_t* purged_below) {
  json j = json::parse(value, nullptr, false);
  r->name = name;
  return j.is_object() && GetOpt(j, "boot_time", &r->boot_time) &&
         GetOpt(j, "new_boot_time", &r->new_boot_time) &&
         GetOpt(j, "old_boot_time", &r->old_boot_time) &&
         GetInt(j, "max_instance", &r->max_instance) &&
         GetOpt(j, "kernel_boot_time", &r->kernel_boot_time) &&
         GetOpt(j, "grace_started", &r->grace_started) &&
         GetOpt(j, "grace_ended", &r->grace_ended) &&
         GetInt(j, "purged_below", purged_below);
}

std::string ClientValue(const store::ClientRow& r) {
  return json{{"princhash", Hex(r.princhash)},
              {"minor", r.minor},
              {"instance", r.instance},
              {"first_seen", r.first_seen},
              {"last_seen", r.last_seen}}
      .dump();
}

bool ParseClient(const std::string& scope, const std::string& id,
                 const std::string& value, store::ClientRow* r) {
  json j = json::parse(value, nullptr, false);
  int64_t minor = 0;
  auto ph = j.is_object() ? j.find("princhash") : j.end();
  r->scope = scope;
  r->id = id;
  if (ph == j.end() || !ph->is_string() ||
      !Unhex(ph->get<std::string>(), &r->princhash) ||
      !GetInt(j, "minor", &minor) || !GetInt(j, "instance", &r->instance) ||
      !GetInt(j, "first_seen", &r->first_seen) ||
      !GetInt(j, "last_seen", &r->last_seen))
    return false;
  r->minor = static_cast<int>(minor);
  return true;
}

std::string ImportValue(const store::ImportRow& r) {
  return json{{"imported_at", r.imported_at},
              {"source", r.source},
              {"kind", r.kind},
              {"schema_version", r.schema_version},
              {"current_epoch", Opt(r.current_epoch)},
              {"recovery_epoch", Opt(r.recovery_epoch)},
              {"clients", r.clients}}
      .dump();
}

bool ParseImport(const std::string& scope, const std::string& value,
                 store::ImportRow* r) {
  json j = json::parse(value, nullptr, false);
  int64_t schema = 0;
  r->scope = scope;
  if (!j.is_object() || !GetInt(j, "imported_at", &r->imported_at) ||
      !j.contains("source") || !j["source"].is_string() ||
      !j.contains("kind") || !j["kind"].is_string() ||
      !GetInt(j, "schema_version", &schema) ||
      !GetOpt(j, "current_epoch", &r->current_epoch) ||
      !GetOpt(j, "recovery_epoch", &r->recovery_epoch) ||
      !GetInt(j, "clients", &r->clients))
    return false;
  r->source = j["source"].get<std::string>();
  r->kind = j["kind"].get<std::string>();
  r->schema_version = static_cast<int>(schema);
  return true;
}

std::string CalloutValue(const store::CalloutRow& r) {
  return json{{"scope", r.scope},
              {"added", r.added},
              {"id", Hex(r.id)},
              {"queued_at", r.queued_at}}
      .dump();
}

bool ParseCallout(int64_t seq, const std::string& value, store::CalloutRow* r) {
  json j = json::parse(value, nullptr, false);
  r->seq = seq;
  if (!j.is_object() || !j.contains("scope") || !j["scope"].is_string() ||
      !j.contains("added") || !j["added"].is_boolean() || !j.contains("id") ||
      !j["id"].is_string() || !Unhex(j["id"].get<std::string>(), &r->id) ||
      !GetInt(j, "queued_at", &r->queued_at))
    return false;
  r->scope = j["scope"].get<std::string>();
  r->added = j["added"].get<bool>();
  return true;
}

// An outbox key's sequence number: 20 decimal digits.
bool ParseSeq(const std::string& digits, int64_t* out) {
  if (digits.size() != 20) return false;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || v > (INT64_MAX - (c - '0')) / 10) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

Status Damaged(const std::string& key) {
  return Status::Corrupt("etcd key " + key +
                         " does not hold what nfsd-helper writes there");
}

}  // namespace

EtcdStore::EtcdStore(std::unique_ptr<Client> client, StoreOptions opts)
    : client_(std::move(client)), opts_(std::move(opts)) {
  prefix_ = "/nfsd-helper/" + opts_.cluster + "/";
  description_ =
      "etcd cluster " + opts_.cluster + " (node " + opts_.node + ", endpoints";
  for (const std::string& e : client_->endpoints()) description_ += " " + e;
  description_ += ")";
}

EtcdStore::~EtcdStore() = default;

Status EtcdStore::OpenReader(std::unique_ptr<Client> client,
                             const StoreOptions& opts,
                             std::unique_ptr<EtcdStore>* out) {
  if (!ValidScopeName(opts.cluster))
    return Status::Invalid("cluster name '" + opts.cluster +
                           "': " + kScopeNameRule);
  StoreOptions o = opts;
  o.node.clear();
  std::unique_ptr<EtcdStore> st(new EtcdStore(std::move(client), o));
  st->description_ = "etcd cluster " + o.cluster + " (read-only, endpoints";
  for (const std::string& e : st->client_->endpoints())
    st->description_ += " " + e;
  st->description_ += ")";
  st->read_only_ = true;
  st->fenced_ = true;  // and so nothing could be committed either way
  st->fence_reason_ = "opened to read only";
  *out = std::move(st);
  return Status::Ok();
}

Status EtcdStore::Open(std::unique_ptr<Client> client, const StoreOptions& opts,
                       std::unique_ptr<EtcdStore>* out) {
  if (!ValidScopeName(opts.cluster))
    return Status::Invalid("cluster name '" + opts.cluster +
                           "': " + kScopeNameRule);
  if (!ValidScopeName(opts.node))
    return Status::Invalid("node name '" + opts.node + "': " + kScopeNameRule);
  if (opts.lease_ttl < 2 || opts.lease_ttl > 3600)
    return Status::Invalid("the etcd lease must last 2 to 3600 seconds");
  std::unique_ptr<EtcdStore> st(new EtcdStore(std::move(client), opts));
  Status s = st->Reconnect();
  if (!s.ok()) return s;
  // The outbox continues after its last entry.
  RangeResult r;
  const std::string p = st->OutboxPrefix();
  s = st->client_->Range(p, PrefixEnd(p), 0, &r);
  if (!s.ok()) return s;
  if (!r.kvs.empty()) {
    int64_t last = 0;
    if (!ParseSeq(r.kvs.back().key.substr(p.size()), &last))
      return Damaged(r.kvs.back().key);
    st->next_seq_ = last + 1;
  }
  *out = std::move(st);
  return Status::Ok();
}

Status EtcdStore::Reconnect() {
  int64_t id = 0;
  int64_t ttl = 0;
  Status s = client_->LeaseGrant(opts_.lease_ttl, &id, &ttl);
  if (!s.ok()) return s;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const std::string node = json{
      {"host", host},
      {"pid", static_cast<int64_t>(getpid())},
      {"lease_ttl", ttl}}.dump();
  s = client_->Put(prefix_ + "node/" + opts_.node, node, id);
  if (!s.ok()) return s;
  lease_ = id;
  fenced_ = false;
  fence_reason_.clear();
  owned_.clear();
  return Status::Ok();
}

Status EtcdStore::KeepAlive() {
  int64_t ttl = 0;
  Status s = client_->LeaseKeepAlive(lease_, &ttl);
  if (s.ok() && ttl <= 0) {
    Fence("etcd says the lease has expired");
    return Status::NotFound("the etcd lease of node " + opts_.node +
                            " expired: this node may no longer write");
  }
  return s;
}

std::string EtcdStore::ScopeKey(const std::string& scope) const {
  return prefix_ + "scope/" + scope;
}
std::string EtcdStore::OwnerKey(const std::string& scope) const {
  return prefix_ + "owner/" + scope;
}
std::string EtcdStore::ClientPrefix(const std::string& scope) const {
  return prefix_ + "client/" + scope + "/";
}
std::string EtcdStore::ClientKey(const std::string& scope,
                                 const std::string& id) const {
  return ClientPrefix(scope) + Hex(id);
}
std::string EtcdStore::ImportKey(const std::string& scope) const {
  return prefix_ + "import/" + scope;
}
std::string EtcdStore::OutboxPrefix() const {
  return prefix_ + "outbox/" + opts_.node + "/";
}
std::string EtcdStore::OutboxKey(int64_t seq) const {
  char buf[24];
  snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(seq));
  return OutboxPrefix() + buf;
}

Status EtcdStore::Acquire(const std::string& scope) {
  TxnResult t;
  Status s = client_->Txn({Compare::Absent(OwnerKey(scope))},
                          {Op::Put(OwnerKey(scope), opts_.node, lease_)},
                          {Op::Get(OwnerKey(scope))}, &t);
  if (!s.ok()) return s;
  if (!t.succeeded) {
    const KeyValue* kv = t.results.empty() || t.results[0].kvs.empty()
                             ? nullptr
                             : &t.results[0].kvs[0];
    if (kv == nullptr || kv->value != opts_.node || kv->lease != lease_) {
      return Status::Permission(
          "scope " + scope + " is served by node " +
          (kv ? kv->value : std::string("?")) +
          (kv && kv->value == opts_.node
               ? " under another lease (an earlier nfsd-helper of this node, "
                 "whose lease ends within " +
                     std::to_string(opts_.lease_ttl) + " s)"
               : std::string()));
    }
  }
  owned_.insert(scope);
  to_collect_.insert(scope);
  return Status::Ok();
}

Status EtcdStore::Release(const std::string& scope) {
  TxnResult t;
  Status s = client_->Txn(
      {Compare::Value(OwnerKey(scope), Compare::Result::kEqual, opts_.node),
       Compare::Lease(OwnerKey(scope), Compare::Result::kEqual, lease_)},
      {Op::Delete(OwnerKey(scope))}, {}, &t);
  owned_.erase(scope);
  if (!s.ok()) return s;
  if (!t.succeeded)
    return Status::Permission("scope " + scope + " is not this node's");
  return Status::Ok();
}

// --- reads ---

Status EtcdStore::ReadScope(const std::string& scope, ScopeView* out) {
  *out = ScopeView();
  std::optional<KeyValue> kv;
  Status s = client_->Get(ScopeKey(scope), &kv);
  if (!s.ok() || !kv) return s;
  store::ScopeRow row;
  if (!ParseScope(scope, kv->value, &row, &out->purged_below))
    return Damaged(kv->key);
  out->row = row;
  out->mod_revision = kv->mod_revision;
  return Status::Ok();
}

Status EtcdStore::View(const std::string& scope, ScopeView** out) {
  auto it = scopes_.find(scope);
  if (it == scopes_.end()) {
    ScopeView v;
    Status s = ReadScope(scope, &v);
    if (!s.ok()) return s;
    it = scopes_.emplace(scope, v).first;
  }
  *out = &it->second;
  return Status::Ok();
}

Status EtcdStore::GetScope(const std::string& name,
                           std::optional<store::ScopeRow>* out) {
  if (!in_txn_) {
    ScopeView v;
    Status s = ReadScope(name, &v);
    *out = v.row;
    return s;
  }
  ScopeView* v = nullptr;
  Status s = View(name, &v);
  if (!s.ok()) return s;
  *out = v->row;
  return Status::Ok();
}

Status EtcdStore::ListScopes(std::vector<store::ScopeRow>* out) {
  out->clear();
  const std::string p = prefix_ + "scope/";
  RangeResult r;
  Status s = client_->Range(p, PrefixEnd(p), 0, &r);
  if (!s.ok()) return s;
  std::map<std::string, store::ScopeRow> rows;
  for (const KeyValue& kv : r.kvs) {
    store::ScopeRow row;
    int64_t floor = 0;
    const std::string name = kv.key.substr(p.size());
    if (!ParseScope(name, kv.value, &row, &floor)) return Damaged(kv.key);
    rows[name] = row;
  }
  if (in_txn_) {
    for (const auto& [name, v] : scopes_)
      if (v.row) rows[name] = *v.row;
  }
  for (auto& [name, row] : rows) out->push_back(std::move(row));
  return Status::Ok();
}

Status EtcdStore::BeginRead() {
  if (in_txn_ || pinned_) return Status::Ok();
  std::optional<KeyValue> kv;
  int64_t revision = 0;
  Status s = client_->Get(prefix_, &kv, &revision);
  if (!s.ok()) return s;
  client_->SetReadRevision(revision);
  pinned_ = true;
  return Status::Ok();
}

void EtcdStore::EndRead() {
  if (!pinned_) return;
  client_->SetReadRevision(0);
  pinned_ = false;
}

Status EtcdStore::Scan(const std::string& scope, const std::string& start,
                       const std::function<bool(const store::ClientRow&)>& fn) {
  ScopeView fresh;
  ScopeView* v = &fresh;
  Status s = in_txn_ ? View(scope, &v) : ReadScope(scope, &fresh);
  if (!s.ok()) return s;
  const int64_t floor = v->purged_below;
  const std::string p = ClientPrefix(scope);
  const std::string end = PrefixEnd(p);
  auto buffered = clients_.lower_bound(start);
  auto emit = [&](const store::ClientRow& r) {
    return r.instance < floor || fn(r);
  };
  // Emits the buffered records before `key` (all of them: empty key).
  auto flush_until = [&](const std::string& key, bool* go_on) {
    for (; buffered != clients_.end() && buffered->first < end &&
           (key.empty() || buffered->first < key);
         ++buffered) {
      if (buffered->second && !emit(*buffered->second)) {
        *go_on = false;
        return;
      }
    }
  };
  std::string from = start;
  bool go_on = true;
  while (go_on) {
    RangeResult r;
    s = client_->Range(from, end, kPage, &r);
    if (!s.ok()) return s;
    for (const KeyValue& kv : r.kvs) {
      flush_until(kv.key, &go_on);
      if (!go_on) return Status::Ok();
      if (buffered != clients_.end() && buffered->first == kv.key) {
        if (buffered->second && !emit(*buffered->second)) return Status::Ok();
        ++buffered;
        continue;
      }
      std::string id;
      store::ClientRow row;
      if (!Unhex(kv.key.substr(p.size()), &id) || id.empty() ||
          !ParseClient(scope, id, kv.value, &row))
        return Damaged(kv.key);
      if (!emit(row)) return Status::Ok();
    }
    if (!r.more || r.kvs.empty()) break;
    from = r.kvs.back().key + std::string(1, '\0');
  }
  if (go_on) flush_until("", &go_on);
  return Status::Ok();
}

Status EtcdStore::CountClients(const std::string& scope, int64_t* out) {
  *out = 0;
  return Scan(scope, ClientPrefix(scope), [out](const store::ClientRow&) {
    ++*out;
    return true;
  });
}

Status EtcdStore::ForEachClient(
    const std::string& scope,
    const std::function<bool(const store::ClientRow&)>& fn) {
  return Scan(scope, ClientPrefix(scope), fn);
}

Status EtcdStore::ForEachClientAfter(
    const std::string& scope, const std::string& after,
    const std::function<bool(const store::ClientRow&)>& fn) {
  // The smallest key above after's: ids of after's bytes and more sort
  // after it, as in SQLite.
  const std::string start =
      after.empty() ? ClientPrefix(scope)
                    : ClientKey(scope, after) + std::string(1, '\0');
  return Scan(scope, start, fn);
}

Status EtcdStore::ForEachClientOlderThan(
    const std::string& scope, int64_t instance,
    const std::function<bool(const store::ClientRow&)>& fn) {
  return Scan(scope, ClientPrefix(scope), [&](const store::ClientRow& r) {
    return r.instance >= instance || fn(r);
  });
}

Status EtcdStore::GetClient(const std::string& scope, const std::string& id,
                            std::optional<store::ClientRow>* out) {
  out->reset();
  const std::string key = ClientKey(scope, id);
  ScopeView fresh;
  ScopeView* v = &fresh;
  Status s = in_txn_ ? View(scope, &v) : ReadScope(scope, &fresh);
  if (!s.ok()) return s;
  auto it = clients_.find(key);
  if (it != clients_.end()) {
    if (it->second && it->second->instance >= v->purged_below)
      *out = it->second;
    return Status::Ok();
  }
  std::optional<KeyValue> kv;
  s = client_->Get(key, &kv);
  if (!s.ok() || !kv) return s;
  store::ClientRow row;
  if (!ParseClient(scope, id, kv->value, &row)) return Damaged(kv->key);
  if (row.instance >= v->purged_below) *out = row;
  return Status::Ok();
}

Status EtcdStore::GetImport(const std::string& scope,
                            std::optional<store::ImportRow>* out) {
  out->reset();
  auto it = imports_.find(scope);
  if (in_txn_ && it != imports_.end()) {
    *out = it->second;
    return Status::Ok();
  }
  std::optional<KeyValue> kv;
  Status s = client_->Get(ImportKey(scope), &kv);
  if (!s.ok() || !kv) return s;
  store::ImportRow row;
  if (!ParseImport(scope, kv->value, &row)) return Damaged(kv->key);
  *out = row;
  return Status::Ok();
}

// --- writes ---

Status EtcdStore::RequireTxn(const char* what) const {
  if (!in_txn_)
    return Status::Invalid(std::string("etcd store: ") + what +
                           " outside a transaction");
  return Status::Ok();
}

void EtcdStore::Fence(const std::string& why) {
  if (!fenced_) fence_reason_ = why;
  fenced_ = true;
}

Status EtcdStore::Begin() {
  if (in_txn_) return Status::Invalid("etcd store: a transaction is open");
  if (pinned_)
    return Status::Invalid("etcd store: a read snapshot is open (EndRead)");
  if (read_only_)
    return Status::Permission(description_ + ": opened to read only");
  // A fenced node could commit nothing: fail before a read waits on etcd.
  if (fenced_)
    return Status::Io("node " + opts_.node + " is fenced (" + fence_reason_ +
                      "): nothing is acknowledged");
  in_txn_ = true;
  next_seq_at_begin_ = next_seq_;
  return Status::Ok();
}

void EtcdStore::Rollback() {
  in_txn_ = false;
  scopes_.clear();
  clients_.clear();
  imports_.clear();
  outbox_.clear();
  written_.clear();
  next_seq_ = next_seq_at_begin_;
}

Status EtcdStore::PutScope(const store::ScopeRow& row) {
  Status s = RequireTxn("PutScope");
  ScopeView* v = nullptr;
  if (s.ok()) s = View(row.name, &v);
  if (!s.ok()) return s;
  v->row = row;
  v->dirty = true;
  written_.insert(row.name);
  return Status::Ok();
}

Status EtcdStore::UpsertClient(const store::ClientRow& row) {
  std::optional<store::ClientRow> before;
  Status s = RequireTxn("UpsertClient");
  if (s.ok()) s = GetClient(row.scope, row.id, &before);
  if (!s.ok()) return s;
  if (row.instance < scopes_[row.scope].purged_below)
    return Status::Invalid(
        "etcd store: a record stamped below its scope's "
        "purge floor would never be read");
  store::ClientRow next = row;
  if (before) next.first_seen = before->first_seen;
  clients_[ClientKey(row.scope, row.id)] = next;
  written_.insert(row.scope);
  return Status::Ok();
}

Status EtcdStore::InsertClientIfAbsent(const store::ClientRow& row,
                                       bool* inserted) {
  std::optional<store::ClientRow> before;
  Status s = RequireTxn("InsertClientIfAbsent");
  if (s.ok()) s = GetClient(row.scope, row.id, &before);
  if (!s.ok()) return s;
  *inserted = !before;
  if (before) return Status::Ok();
  return UpsertClient(row);
}

Status EtcdStore::DeleteClient(const std::string& scope, const std::string& id,
                               bool* existed) {
  std::optional<store::ClientRow> before;
  Status s = RequireTxn("DeleteClient");
  if (s.ok()) s = GetClient(scope, id, &before);
  if (!s.ok()) return s;
  *existed = before.has_value();
  clients_[ClientKey(scope, id)] = std::nullopt;
  written_.insert(scope);
  return Status::Ok();
}

Status EtcdStore::PutImport(const store::ImportRow& row) {
  std::optional<store::ImportRow> before;
  Status s = RequireTxn("PutImport");
  if (s.ok()) s = GetImport(row.scope, &before);
  if (!s.ok()) return s;
  if (before)
    return Status::Invalid("scope " + row.scope + " already has an import");
  imports_[row.scope] = row;
  written_.insert(row.scope);
  return Status::Ok();
}

Status EtcdStore::PurgeOlderThan(const std::string& scope, int64_t instance,
                                 int64_t* deleted) {
  *deleted = 0;
  Status s = RequireTxn("PurgeOlderThan");
  ScopeView* v = nullptr;
  if (s.ok()) s = View(scope, &v);
  if (s.ok())
    s = ForEachClientOlderThan(scope, instance,
                               [deleted](const store::ClientRow&) {
                                 ++*deleted;
                                 return true;
                               });
  if (!s.ok()) return s;
  // One key hides every record below the floor; their keys go later.
  if (instance > v->purged_below) {
    v->purged_below = instance;
    v->dirty = true;
    written_.insert(scope);
  }
  for (auto& [key, row] : clients_) {
    if (row && row->scope == scope && row->instance < instance) row.reset();
  }
  return Status::Ok();
}

Status EtcdStore::QueueCallout(const std::string& scope, bool added,
                               const std::string& id, int64_t now) {
  Status s = RequireTxn("QueueCallout");
  if (!s.ok()) return s;
  store::CalloutRow r;
  r.seq = next_seq_++;
  r.scope = scope;
  r.added = added;
  r.id = id;
  r.queued_at = now;
  outbox_.push_back(r);
  return Status::Ok();
}

Status EtcdStore::QueuePurgeCallouts(const std::string& scope, int64_t instance,
                                     int64_t now, int64_t* queued) {
  *queued = 0;
  std::vector<std::string> ids;
  Status s = ForEachClientOlderThan(scope, instance,
                                    [&ids](const store::ClientRow& r) {
                                      ids.push_back(r.id);
                                      return true;
                                    });
  for (size_t i = 0; s.ok() && i < ids.size(); ++i) {
    s = QueueCallout(scope, false, ids[i], now);
    if (s.ok()) ++*queued;
  }
  return s;
}

Status EtcdStore::NextCallout(int64_t after,
                              std::optional<store::CalloutRow>* out) {
  out->reset();
  const std::string p = OutboxPrefix();
  RangeResult r;
  Status s = client_->Range(OutboxKey(after + 1), PrefixEnd(p), 1, &r);
  if (!s.ok() || r.kvs.empty()) return s;
  store::CalloutRow row;
  const KeyValue& kv = r.kvs.front();
  int64_t seq = 0;
  if (!ParseSeq(kv.key.substr(p.size()), &seq) ||
      !ParseCallout(seq, kv.value, &row))
    return Damaged(kv.key);
  *out = row;
  return Status::Ok();
}

Status EtcdStore::CountCallouts(int64_t* out) {
  const std::string p = OutboxPrefix();
  RangeResult r;
  Status s = client_->Range(p, PrefixEnd(p), 1, &r);
  *out = r.count;
  return s;
}

Status EtcdStore::DeleteCalloutsThrough(int64_t seq) {
  return client_->Delete(OutboxPrefix(), OutboxKey(seq + 1));
}

Status EtcdStore::CountPurgedKeys(const std::string& scope, int64_t* out) {
  *out = 0;
  ScopeView v;
  Status s = ReadScope(scope, &v);
  const std::string p = ClientPrefix(scope);
  std::string from = p;
  while (s.ok()) {
    RangeResult r;
    s = client_->Range(from, PrefixEnd(p), kPage, &r);
    if (!s.ok()) break;
    for (const KeyValue& kv : r.kvs) {
      store::ClientRow row;
      if (ParseClient(scope, "x", kv.value, &row) &&
          row.instance < v.purged_below)
        ++*out;
    }
    if (!r.more || r.kvs.empty()) break;
    from = r.kvs.back().key + std::string(1, '\0');
  }
  return s;
}

// --- commit ---

std::vector<Compare> EtcdStore::OwnerCompares(
    const std::set<std::string>& scopes) const {
  std::vector<Compare> out;
  for (const std::string& scope : scopes) {
    if (owned_.count(scope) != 0) {
      out.push_back(
          Compare::Value(OwnerKey(scope), Compare::Result::kEqual, opts_.node));
      out.push_back(
          Compare::Lease(OwnerKey(scope), Compare::Result::kEqual, lease_));
    } else {
      // A scope no node serves (helper-ctl on an idle scope): it must stay
      // so until this commits.
      out.push_back(Compare::Absent(OwnerKey(scope)));
    }
  }
  return out;
}

Status EtcdStore::CommitChunks(const std::vector<Op>& ops,
                               const std::vector<Compare>& first,
                               const std::vector<Compare>& each) {
  size_t i = 0;
  bool is_first = true;
  while (i < ops.size() || is_first) {
    std::vector<Compare> compares = each;
    if (is_first) compares.insert(compares.end(), first.begin(), first.end());
    std::vector<Op> chunk;
    size_t bytes = 0;
    while (i < ops.size() && chunk.size() < kMaxOpsPerTxn &&
           (chunk.empty() || bytes + ops[i].key.size() + ops[i].value.size() <
                                 kMaxBytesPerTxn)) {
      bytes += ops[i].key.size() + ops[i].value.size();
      chunk.push_back(ops[i++]);
    }
    TxnResult t;
    Status s = client_->Txn(compares, chunk, {}, &t);
    if (!s.ok()) return s;
    if (!t.succeeded) return Explain(written_);
    is_first = false;
  }
  return Status::Ok();
}

Status EtcdStore::Explain(const std::set<std::string>& scopes) {
  for (const std::string& scope : scopes) {
    std::optional<KeyValue> owner;
    Status s = client_->Get(OwnerKey(scope), &owner);
    if (!s.ok()) return s;
    const bool ours =
        owner && owner->value == opts_.node && owner->lease == lease_;
    if (owned_.count(scope) != 0 && !ours) {
      Fence(owner ? "node " + owner->value + " serves scope " + scope
                  : "the owner key of scope " + scope +
                        " is gone (the lease expired)");
      return Status::Io("scope " + scope + " is no longer served by node " +
                        opts_.node + " (" +
                        (owner ? "node " + owner->value + " serves it"
                               : std::string("its lease expired")) +
                        "): nothing is acknowledged");
    }
    if (owned_.count(scope) == 0 && owner)
      return Status::Io("scope " + scope + " is served by node " +
                        owner->value + ": change it there");
  }
  return Status::Io(
      "a scope changed in etcd while this transaction ran (another writer): "
      "nothing is acknowledged");
}

Status EtcdStore::Commit() {
  Status s = RequireTxn("Commit");
  if (!s.ok()) return s;
  if (fenced_) {
    Rollback();
    return Status::Io("node " + opts_.node + " is fenced (" + fence_reason_ +
                      "): nothing is acknowledged");
  }
  std::vector<Op> ops;
  std::vector<Compare> first;
  std::set<std::string> floors_raised;
  for (const auto& [scope, v] : scopes_) {
    if (v.dirty) {
      // A purge of a scope with no row yet keeps its floor in a row of
      // its own defaults.
      store::ScopeRow row = v.row.value_or(store::ScopeRow());
      row.name = scope;
      ops.push_back(Op::Put(ScopeKey(scope), ScopeValue(row, v.purged_below)));
      floors_raised.insert(scope);
    }
    if (written_.count(scope) != 0) {
      first.push_back(v.mod_revision == 0
                          ? Compare::Absent(ScopeKey(scope))
                          : Compare::ModRevision(ScopeKey(scope),
                                                 Compare::Result::kEqual,
                                                 v.mod_revision));
    }
  }
  for (const auto& [key, row] : clients_) {
    ops.push_back(row ? Op::Put(key, ClientValue(*row)) : Op::Delete(key));
  }
  for (const auto& [scope, row] : imports_)
    ops.push_back(Op::Put(ImportKey(scope), ImportValue(row)));
  for (const store::CalloutRow& r : outbox_)
    ops.push_back(Op::Put(OutboxKey(r.seq), CalloutValue(r)));
  s = ops.empty() ? Status::Ok()
                  : CommitChunks(ops, first, OwnerCompares(written_));
  const std::set<std::string> written = written_;
  const int64_t next_seq = next_seq_;
  Rollback();
  if (!s.ok()) return s;
  next_seq_ = next_seq;  // the outbox entries are stored
  next_seq_at_begin_ = next_seq;
  for (const std::string& scope : floors_raised) to_collect_.insert(scope);
  std::set<std::string> left;
  for (const std::string& scope : to_collect_) {
    if ((owned_.count(scope) != 0 || written.count(scope) != 0) &&
        !CollectPurged(scope, kCollectPerCommit))
      continue;  // done
    left.insert(scope);
  }
  to_collect_ = std::move(left);
  return Status::Ok();
}

bool EtcdStore::CollectPurged(const std::string& scope, size_t max) {
  ScopeView v;
  Status s = ReadScope(scope, &v);
  if (!s.ok()) return true;  // tried again after the next commit
  if (v.purged_below == 0) return false;
  const std::string p = ClientPrefix(scope);
  std::vector<Op> ops;
  std::string from = p;
  bool more = true;
  while (more && ops.size() < max) {
    RangeResult r;
    if (!client_->Range(from, PrefixEnd(p), kPage, &r).ok()) return true;
    for (const KeyValue& kv : r.kvs) {
      store::ClientRow row;
      if (ParseClient(scope, "x", kv.value, &row) &&
          row.instance < v.purged_below && ops.size() < max) {
        // Deleted only if still below the floor (unchanged since read).
        ops.push_back(Op::Delete(kv.key));
      }
    }
    more = r.more && !r.kvs.empty();
    if (more) from = r.kvs.back().key + std::string(1, '\0');
  }
  if (ops.empty()) return false;
  // Only while the floor is what was read: a newer batch may have
  // written one of these ids again.
  std::vector<Compare> first = {Compare::ModRevision(
      ScopeKey(scope), Compare::Result::kEqual, v.mod_revision)};
  std::set<std::string> one = {scope};
  written_ = one;
  s = CommitChunks(ops, first, OwnerCompares(one));
  written_.clear();
  return !s.ok() || more || ops.size() >= max;
}

}  // namespace nfsdh::etcd
