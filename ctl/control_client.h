// ControlClient: helper-ctl's side of the control protocol
// (control-proto/nfsdh_ctl.x), one connection to a running nfsd-helper.
//
// Every call returns a Status for what went wrong on the way (no daemon,
// refused, broken connection); what the daemon itself answered, including
// its own errors, is in the result. This header needs no libtirpc.
#ifndef CTL_CONTROL_CLIENT_H_
#define CTL_CONTROL_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/idmap/idmap_stats.h"
#include "daemon/stats.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

struct __rpc_client;  // libtirpc's CLIENT

namespace nfsdh::ctl {

// The daemon's answer to a call (ctl_stat in nfsdh_ctl.x).
enum class DaemonStat {
  kOk = 0,
  kInvalid = 1,   // a bad argument
  kNoScope = 2,   // the scope is not in the database
  kNoClient = 3,  // the scope has no such record
  kStorage = 4,   // the database failed; nothing changed
  kNoFile = 5,    // no v4_end_grace file
  kIo = 6,        // writing v4_end_grace failed
  kRefused = 7,   // import: the scope's grace period ended
  kSession = 8,   // import: the session is gone
  kTooBig = 9,    // import: more records than the daemon stages
};

struct ChannelStatus {
  std::string name;
  bool open = false;
  uint64_t requests = 0, ok = 0, malformed = 0, stale = 0, failed = 0;
};

struct StorageErrorNote {
  int64_t when = 0;
  std::string message;
};

// CTL_STATUS's cluster node (field meanings: nfsdh_ctl.x, ctl_cluster).
struct ClusterStatus {
  bool enabled = false;
  std::string cluster;
  std::string node;
  std::string endpoints;
  int64_t lease = 0;
  int64_t lease_ttl = 0;
  int64_t renewed_ms_ago = 0;
  bool fenced = false;
  std::string fence_reason;
  int64_t fenced_since = 0;
};

// CTL_STATUS (field meanings: nfsdh_ctl.x).
struct DaemonStatus {
  std::string message;  // set when part of the status could not be read
  std::string version;
  int64_t pid = 0;
  int64_t started = 0;
  int64_t now = 0;
  std::string database;
  int schema_version = 0;
  std::string nfsdfs;
  bool serving = false;
  store::ScopeRow scope;
  int64_t clients = 0;
  bool start_seen = false;
  int64_t start_instance = 0;
  int64_t start_time = 0;
  int64_t allowed = 0;
  int64_t reclaimed = 0;
  std::vector<ChannelStatus> channels;
  uint64_t purged = 0;
  int64_t callouts_pending = -1;  // -1: no HA callout
  uint64_t storage_errors = 0;
  std::optional<StorageErrorNote> first_storage_error;
  std::optional<StorageErrorNote> last_storage_error;
  std::vector<std::string> scopes;
  bool scopes_truncated = false;
  idmap::IdmapStats idmap;
  ProtocolState nfsdfs_state = ProtocolState::kNotConfigured;
  std::string cld_pipe;
  ProtocolState cld_state = ProtocolState::kNotConfigured;
  BatchStats batches;
  ClusterStatus cluster;
};

struct DumpPage {
  DaemonStat stat = DaemonStat::kOk;
  std::string message;
  store::ScopeRow scope;
  std::optional<int64_t> count;  // on the first page only
  std::vector<store::ClientRow> clients;
  bool more = false;
};

struct PurgeResult {
  DaemonStat stat = DaemonStat::kOk;
  std::string message;
  store::ClientRow removed;
};

struct EndGraceResult {
  DaemonStat stat = DaemonStat::kOk;
  std::string message;
  std::string path;
  bool was_in_grace = false;
};

// One record for CTL_IMPORT.
struct ImportRecord {
  std::string id;
  std::string princhash;  // empty or 32 bytes
  int minor = 0;
};

struct ImportReply {
  DaemonStat stat = DaemonStat::kOk;
  std::string message;
  uint64_t session = 0;
  int64_t staged = 0;
  bool committed = false;
  bool fresh = false;
  int64_t stamp = 0;
  int64_t imported = 0;
  int64_t kept = 0;
  store::ScopeRow scope;
};

class ControlClient {
 public:
  // Connects to the daemon at `socket_path`. Returns kNotFound when no
  // daemon is there (no socket file, or nobody listening on it),
  // kPermission when the socket may not be reached (only root may), kIo
  // for anything else.
  static Status Connect(const std::string& socket_path,
                        std::unique_ptr<ControlClient>* out);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Each call returns kPermission if the daemon refused the caller (not
  // root), kIo if the call could not be made or answered.
  Status Ping();
  Status GetStatus(DaemonStatus* out);
  // Records of `scope` with an id greater than `after` ("" for the first
  // page), at most `max` (0: the scope and its count only).
  Status Dump(const std::string& scope, const std::string& after, uint32_t max,
              DumpPage* out);
  Status Purge(const std::string& scope, const std::string& id,
               PurgeResult* out);
  Status EndGrace(EndGraceResult* out);
  // One CTL_IMPORT call: `records` for `session` (0: open one), applying
  // the session if `commit`. The caller keeps each call's XDR under the
  // daemon's request limit (ImportRecordSize).
  Status Import(const std::string& scope, uint64_t session,
                const std::vector<ImportRecord>& records, bool commit,
                ImportReply* out);
  // The bytes one record adds to a CTL_IMPORT call.
  static size_t ImportRecordSize(const ImportRecord& r);

  const std::string& socket_path() const { return path_; }

 private:
  ControlClient(struct __rpc_client* clnt, std::string path)
      : clnt_(clnt), path_(std::move(path)) {}

  struct __rpc_client* clnt_;
  std::string path_;
};

}  // namespace nfsdh::ctl

#endif  // CTL_CONTROL_CLIENT_H_
