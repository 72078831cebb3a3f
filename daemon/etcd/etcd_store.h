// etcd::EtcdStore: the client records of a cluster in etcd, as a
// store::Backend, so that the tracker and the channels work on it as on the
// SQLite store. The design, the keys and why every part of a batch is safe
// alone: daemon/store/ETCD.md.
//
// A batch (Begin ... Commit) is buffered and overlaid on what it reads; at
// Commit it becomes one etcd transaction, or several of at most
// kMaxOpsPerTxn operations, the scope's own key first, each conditional on
// this node still owning every scope it writes (its owner key holds the
// node's name and is on the node's lease), and the first also on each
// scope it read being unchanged since. Commit returns OK only once every
// one committed at the quorum.
//
// Thread affinity: one thread (the one that owns the Client).
#ifndef DAEMON_ETCD_ETCD_STORE_H_
#define DAEMON_ETCD_ETCD_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/etcd/client.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::etcd {

struct StoreOptions {
  std::string cluster;     // the cluster's name: its keys' prefix
  std::string node;        // this node's name, unique in the cluster
  int64_t lease_ttl = 10;  // seconds
};

class EtcdStore final : public store::Backend {
 public:
  // etcd's default --max-txn-ops.
  static constexpr size_t kMaxOpsPerTxn = 128;

  // Grants the node's lease and registers the node (node/<node>, on the
  // lease). Names follow the scope name rules (common/scope_name.h).
  static Status Open(std::unique_ptr<Client> client, const StoreOptions& opts,
                     std::unique_ptr<EtcdStore>* out);
  // A store that only reads the cluster's keys (`helper-ctl cluster`,
  // dump and export of a cluster's records): no lease, no node key, and
  // every Begin fails. opts.node and opts.lease_ttl are not used.
  static Status OpenReader(std::unique_ptr<Client> client,
                           const StoreOptions& opts,
                           std::unique_ptr<EtcdStore>* out);
  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  // Makes this node the owner of `scope` if nobody is (OK too if it
  // already is, on this lease); kPermission naming the owner otherwise.
  Status Acquire(const std::string& scope);
  // Gives `scope` up, if this node owns it (a clean hand-over).
  Status Release(const std::string& scope);
  // Renews the node's lease once. kNotFound once it has expired: the store
  // is then fenced (every Commit fails) until Reconnect().
  Status KeepAlive();
  // A new lease after the old one expired; scopes must be acquired again.
  Status Reconnect();
  // Takes this node as fenced from now on (its lease is lost, as
  // LeaseKeeper concluded): every Begin and Commit fails at once, naming
  // `why`, until Reconnect().
  void Fence(const std::string& why);
  bool fenced() const { return fenced_; }
  // Why it is fenced ("" when it is not).
  const std::string& fence_reason() const { return fence_reason_; }
  int64_t lease() const { return lease_; }
  const std::string& node() const { return opts_.node; }
  int64_t lease_ttl() const { return opts_.lease_ttl; }
  const std::string& prefix() const { return prefix_; }
  Client& client() { return *client_; }

  // store::Backend
  const std::string& path() const override { return description_; }
  Status GetScope(const std::string& name,
                  std::optional<store::ScopeRow>* out) override;
  Status ListScopes(std::vector<store::ScopeRow>* out) override;
  Status CountClients(const std::string& scope, int64_t* out) override;
  Status ForEachClient(
      const std::string& scope,
      const std::function<bool(const store::ClientRow&)>& fn) override;
  Status ForEachClientAfter(
      const std::string& scope, const std::string& after,
      const std::function<bool(const store::ClientRow&)>& fn) override;
  Status ForEachClientOlderThan(
      const std::string& scope, int64_t instance,
      const std::function<bool(const store::ClientRow&)>& fn) override;
  Status GetClient(const std::string& scope, const std::string& id,
                   std::optional<store::ClientRow>* out) override;
  // Every read until EndRead() sees etcd as it was at BeginRead() (outside
  // a transaction; inside one, reads are those of the transaction).
  Status BeginRead() override;
  void EndRead() override;
  Status Begin() override;
  Status Commit() override;
  void Rollback() override;
  bool in_transaction() const override { return in_txn_; }
  Status PutScope(const store::ScopeRow& row) override;
  Status UpsertClient(const store::ClientRow& row) override;
  Status InsertClientIfAbsent(const store::ClientRow& row,
                              bool* inserted) override;
  Status DeleteClient(const std::string& scope, const std::string& id,
                      bool* existed) override;
  Status PutImport(const store::ImportRow& row) override;
  Status GetImport(const std::string& scope,
                   std::optional<store::ImportRow>* out) override;
  Status PurgeOlderThan(const std::string& scope, int64_t instance,
                        int64_t* deleted) override;
  Status QueueCallout(const std::string& scope, bool added,
                      const std::string& id, int64_t now) override;
  Status QueuePurgeCallouts(const std::string& scope, int64_t instance,
                            int64_t now, int64_t* queued) override;
  Status NextCallout(int64_t after,
                     std::optional<store::CalloutRow>* out) override;
  Status CountCallouts(int64_t* out) override;
  Status DeleteCalloutsThrough(int64_t seq) override;

  // The keys of the records below their scope's purged_below that are
  // still stored (they are deleted after each commit, a bounded number at
  // a time); for tests and status.
  Status CountPurgedKeys(const std::string& scope, int64_t* out);

 private:
  // A scope as this store sees it: its row and purge floor, and (inside a
  // transaction) the mod revision it was read at.
  struct ScopeView {
    std::optional<store::ScopeRow> row;
    int64_t purged_below = 0;
    int64_t mod_revision = 0;  // 0: the key did not exist
    bool dirty = false;        // written in this transaction
  };

  EtcdStore(std::unique_ptr<Client> client, StoreOptions opts);
  std::string ScopeKey(const std::string& scope) const;
  std::string OwnerKey(const std::string& scope) const;
  std::string ClientPrefix(const std::string& scope) const;
  std::string ClientKey(const std::string& scope, const std::string& id) const;
  std::string ImportKey(const std::string& scope) const;
  std::string OutboxPrefix() const;
  std::string OutboxKey(int64_t seq) const;

  // The scope, read from etcd (and remembered for the transaction).
  Status View(const std::string& scope, ScopeView** out);
  Status ReadScope(const std::string& scope, ScopeView* out);
  // The records of `scope` from `start` on, stored and buffered merged, in
  // id order, those below the purge floor left out.
  Status Scan(const std::string& scope, const std::string& start,
              const std::function<bool(const store::ClientRow&)>& fn);
  Status RequireTxn(const char* what) const;
  // The compares every transaction of a batch writing `scopes` carries.
  std::vector<Compare> OwnerCompares(const std::set<std::string>& scopes) const;
  // Commits `ops` in transactions of at most kMaxOpsPerTxn, the first
  // with `first` in addition to `each`.
  Status CommitChunks(const std::vector<Op>& ops,
                      const std::vector<Compare>& first,
                      const std::vector<Compare>& each);
  // Why a transaction's compares failed, in an operator's words; sets
  // fenced_ when this node no longer owns a scope it wrote.
  Status Explain(const std::set<std::string>& scopes);
  // Deletes up to `max` stored keys of records below their scope's floor;
  // true if some may be left (or the attempt failed).
  bool CollectPurged(const std::string& scope, size_t max);

  std::unique_ptr<Client> client_;
  StoreOptions opts_;
  std::string prefix_;
  std::string description_;
  int64_t lease_ = 0;
  std::string fence_reason_;
  bool fenced_ = false;
  bool read_only_ = false;  // OpenReader
  bool pinned_ = false;     // between BeginRead and EndRead
  std::set<std::string> owned_;
  std::set<std::string> to_collect_;  // scopes with purged keys left

  // The transaction.
  bool in_txn_ = false;
  std::map<std::string, ScopeView> scopes_;
  std::map<std::string, std::optional<store::ClientRow>> clients_;  // by key
  std::map<std::string, store::ImportRow> imports_;
  std::vector<store::CalloutRow> outbox_;
  std::set<std::string> written_;  // scopes this transaction writes
  int64_t next_seq_ = 1;
  int64_t next_seq_at_begin_ = 1;
};

}  // namespace nfsdh::etcd

#endif  // DAEMON_ETCD_ETCD_STORE_H_
