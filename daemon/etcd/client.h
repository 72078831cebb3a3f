// etcd::Client: the parts of etcd's v3 API the cluster mode needs (keys,
// transactions with compares, leases, members), over etcd's JSON gateway.
//
// Rationale. etcd serves its v3 API as gRPC and, on the same client port, as
// JSON over HTTP (the gateway: POST /v3/kv/range and so on, keys and values
// in base64, 64-bit numbers as strings). The gateway is reached with libcurl
// (TLS, client certificates, keep-alive) and the JSON read and written with
// nlohmann-json, both Debian's: no HTTP or JSON is written by hand, and no
// generated gRPC code is needed for the dozen calls used.
//
// Endpoints and failures. A request goes to the endpoint that answered last;
// only when it cannot be sent at all (the connection is refused or cannot be
// made) is the next endpoint tried, since a request that was sent may have
// been applied, and sending it again elsewhere could apply it twice (or make
// a transaction's compares fail against its own first write). A request
// sent and not answered within the request timeout fails with kIo, its
// outcome unknown; the caller must treat it as not done, and must not
// acknowledge anything that depended on it. etcd's own errors (no leader,
// the request too large, a lease that does not exist) are kIo, or kNotFound
// for a lease that is gone, with etcd's message.
//
// Thread affinity: a Client is used by one thread at a time; it blocks that
// thread for up to the request timeout. Never call it on the event loop.
#ifndef DAEMON_ETCD_CLIENT_H_
#define DAEMON_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/util/status.h"

namespace nfsdh::etcd {

struct ClientOptions {
  // "http://host:port" or "https://host:port", as etcd's
  // --advertise-client-urls; at least one.
  std::vector<std::string> endpoints;
  // TLS (https endpoints): the CA that signed the members' certificates
  // (empty: the system's), and this client's certificate and key for etcd's
  // --client-cert-auth (both or neither).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // etcd's own authentication (etcdctl user add): both or neither.
  std::string user;
  std::string password;
  int connect_timeout_ms = 1000;
  int request_timeout_ms = 5000;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision when it was read
  std::vector<KeyValue> kvs;
  bool more = false;  // a limit cut the result short
  int64_t count = 0;  // keys in the range
};

// One condition of a transaction on a key.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;  // all targets but kValue
  std::string value;   // kValue

  // The key does not exist (its version is 0).
  static Compare Absent(std::string key);
  static Compare ModRevision(std::string key, Result r, int64_t rev);
  static Compare CreateRevision(std::string key, Result r, int64_t rev);
  static Compare Value(std::string key, Result r, std::string value);
  // The key is attached to `lease` (0: to none).
  static Compare Lease(std::string key, Result r, int64_t lease);
};

// One operation of a transaction.
struct Op {
  enum class Kind { kPut, kDelete, kRange };
  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;  // delete or range: [key, range_end); empty: key
  std::string value;      // put
  int64_t lease = 0;      // put: attach to this lease (0: none)
  int64_t limit = 0;      // range: at most this many keys (0: all)

  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key);
  static Op DeletePrefix(const std::string& prefix);
  static Op Get(std::string key);
  static Op GetPrefix(const std::string& prefix, int64_t limit = 0);
};

struct TxnResult {
  int64_t revision = 0;    // after the transaction
  bool succeeded = false;  // the compares held: the success ops ran
  // One entry per op that ran, in order: for a range its result, for a
  // delete the number of keys deleted in `count`, for a put nothing.
  std::vector<RangeResult> results;
};

struct Member {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> client_urls;
  std::vector<std::string> peer_urls;
};

struct EndpointStatus {
  std::string endpoint;
  std::string version;
  uint64_t member_id = 0;
  uint64_t leader = 0;
  int64_t raft_term = 0;
  int64_t db_size = 0;
};

// The end of the range of every key that starts with `prefix`.
std::string PrefixEnd(const std::string& prefix);

class Client {
 public:
  // Checks `opts` (endpoints, files); connects to nothing yet.
  static Status Open(const ClientOptions& opts, std::unique_ptr<Client>* out);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Status Range(const std::string& key, const std::string& range_end,
               int64_t limit, RangeResult* out);
  // The value of one key (unset: no such key).
  Status Get(const std::string& key, std::optional<KeyValue>* out,
             int64_t* revision = nullptr);
  Status Put(const std::string& key, const std::string& value,
             int64_t lease = 0, int64_t* revision = nullptr);
  // Deletes [key, range_end) (range_end empty: the key alone).
  Status Delete(const std::string& key, const std::string& range_end,
                int64_t* deleted = nullptr);
  // If every compare holds, runs `success`, else `failure`, atomically.
  // etcd refuses more than its --max-txn-ops operations (128 by default)
  // or a request over --max-request-bytes (1.5 MiB by default).
  Status Txn(const std::vector<Compare>& compares,
             const std::vector<Op>& success, const std::vector<Op>& failure,
             TxnResult* out);

  Status LeaseGrant(int64_t ttl_seconds, int64_t* id, int64_t* ttl);
  // Renews `id` once; *ttl gets its time to live, 0 if it has expired.
  Status LeaseKeepAlive(int64_t id, int64_t* ttl);
  // kNotFound if the lease does not exist (expired, or revoked).
  Status LeaseRevoke(int64_t id);
  // *ttl gets the lease's remaining time to live: -1 if it has expired.
  Status LeaseTimeToLive(int64_t id, int64_t* ttl);

  Status MemberList(std::vector<Member>* out, uint64_t* cluster_id = nullptr);
  // Asks `endpoint` itself (not whichever answers).
  Status StatusOf(const std::string& endpoint, EndpointStatus* out);

  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // From now on Range and Get read the store as it was at `revision` (0:
  // as it is), so that a series of reads sees one snapshot. etcd answers
  // an error once that revision has been compacted.
  void SetReadRevision(int64_t revision) { read_revision_ = revision; }
  // The endpoint the next request goes to first.
  const std::string& current_endpoint() const { return endpoints_[current_]; }

 private:
  struct Curl;
  Client(ClientOptions opts, std::unique_ptr<Curl> curl);
  // POSTs `body` to `path` ("/v3/kv/range"): at the current endpoint,
  // then the next ones while a request cannot be sent; signs it in first
  // with the user and password, and once more if the token expired.
  nfsdh::Status Call(const std::string& path, const std::string& body,
                     std::string* response);
  nfsdh::Status CallAt(const std::string& endpoint, const std::string& path,
                       const std::string& body, bool with_token,
                       std::string* response, bool* not_sent);
  nfsdh::Status Authenticate(const std::string& endpoint);

  ClientOptions opts_;
  std::vector<std::string> endpoints_;
  int64_t read_revision_ = 0;
  size_t current_ = 0;
  std::string token_;
  std::unique_ptr<Curl> curl_;
};

}  // namespace nfsdh::etcd

#endif  // DAEMON_ETCD_CLIENT_H_
