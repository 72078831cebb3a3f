// How helper-ctl reaches a cluster's records in etcd without a daemon
// (`cluster`, and `export` and `import` in cluster mode): with the options
// the daemon would use (etcd-* keys of nfs.conf, overridden by the command
// line), a reader that never writes, and a writer that owns one scope for
// the time of one import.
#ifndef CTL_ETCD_ACCESS_H_
#define CTL_ETCD_ACCESS_H_

#include <memory>
#include <string>

#include "ctl/args.h"
#include "daemon/etcd/etcd_store.h"
#include "daemon/etcd/lease_keeper.h"
#include "daemon/options.h"
#include "daemon/util/status.h"

namespace nfsdh::ctl {

// The etcd options a verb that reads or writes etcd accepts, as
// OptionSpec entries: append them to the verb's own list.
#define NFSDH_CTL_ETCD_OPTIONS                            \
  {"--etcd-endpoints", "URLS"}, {"--cluster", "NAME"},    \
      {"--etcd-cacert", "FILE"}, {"--etcd-cert", "FILE"}, \
      {"--etcd-key", "FILE"}, {"--etcd-user", "NAME"}, {  \
    "--etcd-password-file", "FILE"                        \
  }

// The help text of those options, a string literal to join to a verb's.
#define NFSDH_CTL_ETCD_OPTIONS_HELP                                          \
  "  --etcd-endpoints URLS  etcd's client URLs, comma-separated (default:\n" \
  "                         the etcd-endpoints key of nfs.conf)\n"           \
  "  --cluster NAME         the cluster (default: the cluster key of\n"      \
  "                         nfs.conf, else \"default\")\n"                   \
  "  --etcd-cacert FILE     the CA of etcd's TLS certificates\n"             \
  "  --etcd-cert FILE       a TLS client certificate (with --etcd-key)\n"    \
  "  --etcd-key FILE        the private key of --etcd-cert\n"                \
  "  --etcd-user NAME       an etcd user (with --etcd-password-file)\n"      \
  "  --etcd-password-file FILE\n"                                            \
  "                         the file whose first line is its password\n"     \
  "                         (default of each: the key of nfs.conf)\n"

// Opens a read-only store of cluster o.cluster (EtcdStore::OpenReader),
// asking the endpoints from the `first`-th on (then the ones before it):
// a caller whose reads failed on one endpoint tries the next. kInvalid for
// options that cannot be used (no endpoints, a bad TLS pair...).
Status OpenEtcdReader(const Options& o, size_t first,
                      std::unique_ptr<etcd::EtcdStore>* out);

// Reads with `read` on a reader, on each endpoint in turn until one read
// works (reads may be sent again). The last failure, with each endpoint's
// reason, if none did.
Status ReadEtcd(const Options& o,
                const std::function<Status(etcd::EtcdStore&)>& read);

// A store that owns one scope of the cluster for a while, as a node of its
// own ("helper-ctl.<host>.<pid>"), its lease kept alive by a thread: the
// writes of an import are fenced like a daemon's, and a daemon that starts
// on the scope meanwhile waits. The destructor gives the scope up and
// revokes the lease.
class EtcdScopeWriter {
 public:
  // kPermission naming the owner if another node owns `scope`.
  static Status Open(const Options& o, const std::string& scope,
                     std::unique_ptr<EtcdScopeWriter>* out);
  ~EtcdScopeWriter();
  EtcdScopeWriter(const EtcdScopeWriter&) = delete;
  EtcdScopeWriter& operator=(const EtcdScopeWriter&) = delete;

  etcd::EtcdStore& store() { return *store_; }
  // Fails if the lease was lost meanwhile (then nothing more commits).
  Status CheckLease();

 private:
  EtcdScopeWriter() = default;
  std::string scope_;
  std::unique_ptr<etcd::EtcdStore> store_;
  std::unique_ptr<etcd::LeaseKeeper> keeper_;
};

}  // namespace nfsdh::ctl

#endif  // CTL_ETCD_ACCESS_H_
