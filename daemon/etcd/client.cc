#include "daemon/etcd/client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <type_traits>
#include <utility>

namespace nfsdh::etcd {
namespace {

using nlohmann::json;

// A response larger than this is refused rather than held: a range that
// large must be read in pages (a limit).
constexpr size_t kMaxResponseBytes = 64u << 20;

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(in.data()),
                      static_cast<int>(in.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

bool Unbase64(const std::string& in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->assign(3 * (in.size() / 4), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                      reinterpret_cast<const unsigned char*>(in.data()),
                      static_cast<int>(in.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t len = static_cast<size_t>(n);
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;
  out->resize(len);
  return true;
}

// A 64-bit number as the gateway writes it (a string of decimal digits,
// with a '-' for a negative signed one), or as a JSON number. Absent: 0
// (proto3 leaves out zero values).
template <typename T>
bool Number(const json& j, const char* name, T* out) {
  *out = 0;
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, *out);
    return ec == std::errc() && p == end && !s.empty();
  }
  const bool fits =
      std::is_signed_v<T> ? it->is_number_integer() : it->is_number_unsigned();
  if (!fits) return false;
  *out = it->get<T>();
  return true;
}

bool Int(const json& j, const char* name, int64_t* out) {
  return Number(j, name, out);
}

bool Uint(const json& j, const char* name, uint64_t* out) {
  return Number(j, name, out);
}

bool Bytes(const json& j, const char* name, std::string* out) {
  out->clear();
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  return it->is_string() && Unbase64(it->get<std::string>(), out);
}

bool Strings(const json& j, const char* name, std::vector<std::string>* out) {
  out->clear();
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_array()) return false;
  for (const json& e : *it) {
    if (!e.is_string()) return false;
    out->push_back(e.get<std::string>());
  }
  return true;
}

Status Malformed(const std::string& what) {
  return Status::Io("etcd answered with a malformed " + what);
}

bool ParseRevision(const json& j, int64_t* revision) {
  auto h = j.find("header");
  if (h == j.end()) {
    *revision = 0;
    return true;
  }
  return h->is_object() && Int(*h, "revision", revision);
}

bool ParseRange(const json& j, RangeResult* out) {
  *out = RangeResult();
  if (!j.is_object() || !ParseRevision(j, &out->revision) ||
      !Int(j, "count", &out->count))
    return false;
  auto more = j.find("more");
  if (more != j.end()) {
    if (!more->is_boolean()) return false;
    out->more = more->get<bool>();
  }
  auto kvs = j.find("kvs");
  if (kvs == j.end()) return true;
  if (!kvs->is_array()) return false;
  for (const json& e : *kvs) {
    KeyValue kv;
    if (!e.is_object() || !Bytes(e, "key", &kv.key) ||
        !Bytes(e, "value", &kv.value) ||
        !Int(e, "create_revision", &kv.create_revision) ||
        !Int(e, "mod_revision", &kv.mod_revision) ||
        !Int(e, "version", &kv.version) || !Int(e, "lease", &kv.lease))
      return false;
    out->kvs.push_back(std::move(kv));
  }
  return true;
}

json RangeRequest(const std::string& key, const std::string& range_end,
                  int64_t limit, int64_t revision = 0) {
  json r = {{"key", Base64(key)}};
  if (!range_end.empty()) r["range_end"] = Base64(range_end);
  if (limit > 0) r["limit"] = std::to_string(limit);
  if (revision > 0) r["revision"] = std::to_string(revision);
  return r;
}

json OpJson(const Op& op) {
  switch (op.kind) {
    case Op::Kind::kPut: {
      json p = {{"key", Base64(op.key)}, {"value", Base64(op.value)}};
      if (op.lease != 0) p["lease"] = std::to_string(op.lease);
      return {{"request_put", p}};
    }
    case Op::Kind::kDelete: {
      json d = {{"key", Base64(op.key)}};
      if (!op.range_end.empty()) d["range_end"] = Base64(op.range_end);
      return {{"request_delete_range", d}};
    }
    case Op::Kind::kRange:
      break;
  }
  return {{"request_range", RangeRequest(op.key, op.range_end, op.limit)}};
}

json CompareJson(const Compare& c) {
  static const char* const kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE",
                                         "LEASE"};
  static const char* const kResults[] = {"EQUAL", "GREATER", "LESS",
                                         "NOT_EQUAL"};
  json j = {{"key", Base64(c.key)},
            {"target", kTargets[static_cast<int>(c.target)]},
            {"result", kResults[static_cast<int>(c.result)]}};
  const std::string n = std::to_string(c.number);
  switch (c.target) {
    case Compare::Target::kVersion:
      j["version"] = n;
      break;
    case Compare::Target::kCreateRevision:
      j["create_revision"] = n;
      break;
    case Compare::Target::kModRevision:
      j["mod_revision"] = n;
      break;
    case Compare::Target::kValue:
      j["value"] = Base64(c.value);
      break;
    case Compare::Target::kLease:
      j["lease"] = n;
      break;
  }
  return j;
}

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t bytes = size * n;
  if (out->size() + bytes > kMaxResponseBytes) return 0;  // fails the call
  out->append(data, bytes);
  return bytes;
}

bool StartsWith(const std::string& s, const char* p) {
  return s.compare(0, strlen(p), p) == 0;
}

}  // namespace

// --- Compare and Op ---

Compare Compare::Absent(std::string key) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kVersion;
  c.result = Result::kEqual;
  c.number = 0;
  return c;
}

Compare Compare::ModRevision(std::string key, Result r, int64_t rev) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kModRevision;
  c.result = r;
  c.number = rev;
  return c;
}

Compare Compare::CreateRevision(std::string key, Result r, int64_t rev) {
  Compare c = ModRevision(std::move(key), r, rev);
  c.target = Target::kCreateRevision;
  return c;
}

Compare Compare::Value(std::string key, Result r, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.result = r;
  c.value = std::move(value);
  return c;
}

Compare Compare::Lease(std::string key, Result r, int64_t lease) {
  Compare c = ModRevision(std::move(key), r, lease);
  c.target = Target::kLease;
  return c;
}

Op Op::Put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::Delete(std::string key) {
  Op op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  return op;
}

Op Op::DeletePrefix(const std::string& prefix) {
  Op op = Delete(prefix);
  op.range_end = PrefixEnd(prefix);
  return op;
}

Op Op::Get(std::string key) {
  Op op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  return op;
}

Op Op::GetPrefix(const std::string& prefix, int64_t limit) {
  Op op = Get(prefix);
  op.range_end = PrefixEnd(prefix);
  op.limit = limit;
  return op;
}

std::string PrefixEnd(const std::string& prefix) {
  // The smallest key greater than every key that starts with `prefix`:
  // the prefix with its last byte that is not 0xff incremented, and what
  // follows it dropped. A prefix of 0xff bytes only (or none) has no end:
  // "\0" means "to the end of the key space" to etcd.
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// --- Client ---

struct Client::Curl {
  CURL* handle = nullptr;
  ~Curl() {
    if (handle != nullptr) curl_easy_cleanup(handle);
  }
};

Client::Client(ClientOptions opts, std::unique_ptr<Curl> curl)
    : opts_(std::move(opts)),
      endpoints_(opts_.endpoints),
      curl_(std::move(curl)) {}

Client::~Client() = default;

Status Client::Open(const ClientOptions& opts, std::unique_ptr<Client>* out) {
  if (opts.endpoints.empty()) return Status::Invalid("etcd: no endpoint given");
  for (const std::string& e : opts.endpoints) {
    const bool http = StartsWith(e, "http://");
    const bool https = StartsWith(e, "https://");
    const size_t scheme = http ? 7 : 8;
    if ((!http && !https) || e.size() <= scheme ||
        e.find_first_of("/?# ", scheme) != std::string::npos)
      return Status::Invalid("etcd: endpoint '" + e +
                             "' is not http://HOST:PORT or https://HOST:PORT");
  }
  if (opts.cert_file.empty() != opts.key_file.empty())
    return Status::Invalid(
        "etcd: a client certificate needs its key, and a key its certificate");
  if (opts.user.empty() != opts.password.empty())
    return Status::Invalid(
        "etcd: a user needs a password, and a password a "
        "user");
  for (const std::string* f :
       {&opts.ca_file, &opts.cert_file, &opts.key_file}) {
    if (!f->empty() && access(f->c_str(), R_OK) != 0)
      return Status::FromErrno("etcd: " + *f, errno);
  }
  if (opts.connect_timeout_ms <= 0 || opts.request_timeout_ms <= 0)
    return Status::Invalid("etcd: timeouts must be positive");
  static std::once_flag once;
  static CURLcode global = CURLE_OK;
  std::call_once(once, [] { global = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global != CURLE_OK)
    return Status::Io(std::string("etcd: libcurl: ") +
                      curl_easy_strerror(global));
  auto curl = std::make_unique<Curl>();
  curl->handle = curl_easy_init();
  if (curl->handle == nullptr)
    return Status::Io("etcd: libcurl cannot make a handle");
  out->reset(new Client(opts, std::move(curl)));
  return Status::Ok();
}

Status Client::CallAt(const std::string& endpoint, const std::string& path,
                      const std::string& body, bool with_token,
                      std::string* response, bool* not_sent) {
  *not_sent = false;
  response->clear();
  CURL* h = curl_->handle;
  curl_easy_reset(h);
  const std::string url = endpoint + path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(opts_.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(opts_.request_timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, response);
  if (!opts_.ca_file.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
  if (!opts_.cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, opts_.cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLKEY, opts_.key_file.c_str());
  }
  struct curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth;
  if (with_token && !token_.empty()) {
    auth = "Authorization: " + token_;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    // Only these mean the request never left: anything later may have
    // reached etcd and been applied.
    *not_sent = rc == CURLE_COULDNT_CONNECT ||
                rc == CURLE_COULDNT_RESOLVE_HOST ||
                (rc == CURLE_OPERATION_TIMEDOUT && [h] {
                  // Nothing of the request written: the connection was
                  // never made (a reused one was made earlier, so its
                  // connect time says nothing).
                  long sent = 0;
                  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
                  return sent == 0;
                }());
    return Status::Io("etcd " + endpoint + ": " + curl_easy_strerror(rc) +
                      (*not_sent ? "" : " (the outcome is not known)"));
  }
  long http = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  if (http == 200) return Status::Ok();
  // etcd's error: {"error": ..., "message": ..., "code": <gRPC code>}.
  std::string message = "HTTP status " + std::to_string(http);
  int64_t code = 0;
  json j = json::parse(*response, nullptr, false);
  if (j.is_object()) {
    auto m = j.find("message");
    if (m != j.end() && m->is_string()) message = m->get<std::string>();
    Int(j, "code", &code);
  }
  // gRPC NOT_FOUND: a lease that does not exist.
  if (code == 5) return Status::NotFound("etcd " + endpoint + ": " + message);
  // UNAUTHENTICATED / PERMISSION_DENIED, or an auth token gone stale.
  if (code == 16 || code == 7 ||
      message.find("invalid auth token") != std::string::npos)
    return Status::Permission("etcd " + endpoint + ": " + message);
  return Status::Io("etcd " + endpoint + ": " + message);
}

Status Client::Authenticate(const std::string& endpoint) {
  const std::string body =
      json{{"name", opts_.user}, {"password", opts_.password}}.dump();
  std::string response;
  bool not_sent = false;
  Status s = CallAt(endpoint, "/v3/auth/authenticate", body, false, &response,
                    &not_sent);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  auto t = j.is_object() ? j.find("token") : j.end();
  if (t == j.end() || !t->is_string() || t->get<std::string>().empty())
    return Malformed("authentication answer");
  token_ = t->get<std::string>();
  return Status::Ok();
}

Status Client::Call(const std::string& path, const std::string& body,
                    std::string* response) {
  Status last;
  for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
    const std::string& endpoint = endpoints_[current_];
    bool not_sent = false;
    if (!opts_.user.empty() && token_.empty()) {
      last = Authenticate(endpoint);
      if (!last.ok()) {
        // Signing in changes nothing: the next endpoint may answer.
        current_ = (current_ + 1) % endpoints_.size();
        continue;
      }
    }
    last = CallAt(endpoint, path, body, true, response, &not_sent);
    if (last.code() == Status::Code::kPermission && !opts_.user.empty()) {
      // The token expired (or the member restarted): refused, so nothing
      // was applied; sign in again and send it once more.
      token_.clear();
      Status a = Authenticate(endpoint);
      if (!a.ok()) return a;
      last = CallAt(endpoint, path, body, true, response, &not_sent);
    }
    if (last.ok() || !not_sent) return last;
    current_ = (current_ + 1) % endpoints_.size();
  }
  return last;
}

Status Client::Range(const std::string& key, const std::string& range_end,
                     int64_t limit, RangeResult* out) {
  std::string response;
  Status s = Call("/v3/kv/range",
                  RangeRequest(key, range_end, limit, read_revision_).dump(),
                  &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  if (!ParseRange(j, out)) return Malformed("range answer");
  return Status::Ok();
}

Status Client::Get(const std::string& key, std::optional<KeyValue>* out,
                   int64_t* revision) {
  RangeResult r;
  Status s = Range(key, "", 0, &r);
  if (!s.ok()) return s;
  out->reset();
  if (!r.kvs.empty()) *out = std::move(r.kvs.front());
  if (revision != nullptr) *revision = r.revision;
  return Status::Ok();
}

Status Client::Put(const std::string& key, const std::string& value,
                   int64_t lease, int64_t* revision) {
  json p = {{"key", Base64(key)}, {"value", Base64(value)}};
  if (lease != 0) p["lease"] = std::to_string(lease);
  std::string response;
  Status s = Call("/v3/kv/put", p.dump(), &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  int64_t rev = 0;
  if (!j.is_object() || !ParseRevision(j, &rev)) return Malformed("put answer");
  if (revision != nullptr) *revision = rev;
  return Status::Ok();
}

Status Client::Delete(const std::string& key, const std::string& range_end,
                      int64_t* deleted) {
  json d = {{"key", Base64(key)}};
  if (!range_end.empty()) d["range_end"] = Base64(range_end);
  std::string response;
  Status s = Call("/v3/kv/deleterange", d.dump(), &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  int64_t n = 0;
  if (!j.is_object() || !Int(j, "deleted", &n))
    return Malformed("delete answer");
  if (deleted != nullptr) *deleted = n;
  return Status::Ok();
}

Status Client::Txn(const std::vector<Compare>& compares,
                   const std::vector<Op>& success,
                   const std::vector<Op>& failure, TxnResult* out) {
  *out = TxnResult();
  json t = json::object();
  json c = json::array();
  for (const Compare& x : compares) c.push_back(CompareJson(x));
  json ok = json::array();
  for (const Op& x : success) ok.push_back(OpJson(x));
  json ko = json::array();
  for (const Op& x : failure) ko.push_back(OpJson(x));
  if (!c.empty()) t["compare"] = c;
  if (!ok.empty()) t["success"] = ok;
  if (!ko.empty()) t["failure"] = ko;
  std::string response;
  Status s = Call("/v3/kv/txn", t.dump(), &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  if (!j.is_object() || !ParseRevision(j, &out->revision))
    return Malformed("transaction answer");
  auto succeeded = j.find("succeeded");
  if (succeeded != j.end()) {
    if (!succeeded->is_boolean()) return Malformed("transaction answer");
    out->succeeded = succeeded->get<bool>();
  }
  const std::vector<Op>& ran = out->succeeded ? success : failure;
  auto responses = j.find("responses");
  const size_t n =
      responses == j.end() || !responses->is_array() ? 0 : responses->size();
  if (n != ran.size()) return Malformed("transaction answer (op count)");
  for (size_t i = 0; i < n; ++i) {
    const json& r = (*responses)[i];
    RangeResult rr;
    bool good = r.is_object();
    if (good && ran[i].kind == Op::Kind::kRange) {
      auto x = r.find("response_range");
      good = x != r.end() && ParseRange(*x, &rr);
    } else if (good && ran[i].kind == Op::Kind::kDelete) {
      auto x = r.find("response_delete_range");
      good = x != r.end() && x->is_object() && Int(*x, "deleted", &rr.count);
    } else if (good) {
      good = r.find("response_put") != r.end();
    }
    if (!good) return Malformed("transaction answer (op result)");
    out->results.push_back(std::move(rr));
  }
  return Status::Ok();
}

Status Client::LeaseGrant(int64_t ttl_seconds, int64_t* id, int64_t* ttl) {
  std::string response;
  Status s = Call("/v3/lease/grant",
                  json{{"TTL", std::to_string(ttl_seconds)}}.dump(), &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  if (!j.is_object() || !Int(j, "ID", id) || !Int(j, "TTL", ttl) || *id == 0)
    return Malformed("lease grant answer");
  auto e = j.find("error");
  if (e != j.end() && e->is_string() && !e->get<std::string>().empty())
    return Status::Io("etcd: lease grant: " + e->get<std::string>());
  return Status::Ok();
}

Status Client::LeaseKeepAlive(int64_t id, int64_t* ttl) {
  std::string response;
  Status s = Call("/v3/lease/keepalive",
                  json{{"ID", std::to_string(id)}}.dump(), &response);
  if (!s.ok()) return s;
  // A stream of one answer: {"result": {...}} (or {"error": {...}}).
  json j = json::parse(response, nullptr, false);
  auto r = j.is_object() ? j.find("result") : j.end();
  if (r == j.end() || !r->is_object() || !Int(*r, "TTL", ttl))
    return Malformed("lease keepalive answer");
  return Status::Ok();
}

Status Client::LeaseRevoke(int64_t id) {
  std::string response;
  return Call("/v3/lease/revoke", json{{"ID", std::to_string(id)}}.dump(),
              &response);
}

Status Client::LeaseTimeToLive(int64_t id, int64_t* ttl) {
  std::string response;
  Status s = Call("/v3/lease/timetolive",
                  json{{"ID", std::to_string(id)}}.dump(), &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  if (!j.is_object() || !Int(j, "TTL", ttl))
    return Malformed("lease time-to-live answer");
  return Status::Ok();
}

Status Client::MemberList(std::vector<Member>* out, uint64_t* cluster_id) {
  out->clear();
  std::string response;
  Status s = Call("/v3/cluster/member/list", "{}", &response);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  auto h = j.is_object() ? j.find("header") : j.end();
  uint64_t cid = 0;
  if (h == j.end() || !h->is_object() || !Uint(*h, "cluster_id", &cid))
    return Malformed("member list");
  if (cluster_id != nullptr) *cluster_id = cid;
  auto members = j.find("members");
  if (members == j.end()) return Status::Ok();
  if (!members->is_array()) return Malformed("member list");
  for (const json& m : *members) {
    Member x;
    if (!m.is_object() || !Uint(m, "ID", &x.id) ||
        !Strings(m, "clientURLs", &x.client_urls) ||
        !Strings(m, "peerURLs", &x.peer_urls))
      return Malformed("member list");
    auto name = m.find("name");
    if (name != m.end() && name->is_string()) x.name = name->get<std::string>();
    out->push_back(std::move(x));
  }
  return Status::Ok();
}

Status Client::StatusOf(const std::string& endpoint, EndpointStatus* out) {
  *out = EndpointStatus();
  out->endpoint = endpoint;
  std::string response;
  bool not_sent = false;
  if (!opts_.user.empty() && token_.empty()) {
    Status a = Authenticate(endpoint);
    if (!a.ok()) return a;
  }
  Status s = CallAt(endpoint, "/v3/maintenance/status", "{}", true, &response,
                    &not_sent);
  if (!s.ok()) return s;
  json j = json::parse(response, nullptr, false);
  auto h = j.is_object() ? j.find("header") : j.end();
  auto v = j.is_object() ? j.find("version") : j.end();
  if (h == j.end() || !h->is_object() ||
      !Uint(*h, "member_id", &out->member_id) ||
      !Uint(j, "leader", &out->leader) ||
      !Int(j, "raftTerm", &out->raft_term) ||
      !Int(j, "dbSize", &out->db_size) || v == j.end() || !v->is_string())
    return Malformed("status answer");
  out->version = v->get<std::string>();
  return Status::Ok();
}

}  // namespace nfsdh::etcd
