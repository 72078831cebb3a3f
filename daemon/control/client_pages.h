// ClientPages: a scope's client records one page at a time, for CTL_DUMP.
//
// Rationale. A dump of a million records must neither sit in memory nor
// hold a read transaction open between two calls of a client that may never
// make the next one; so every page is its own short read transaction that
// resumes after the last id of the previous page (the key is (scope, id), so
// that is one index seek). The reads use a second, read-only Store on the
// same file, so that a page never waits for, nor blocks, the writer (WAL).
//
// A dump made of several pages is not one snapshot: a record created or
// removed between two pages may or may not appear, but every record that
// exists throughout the dump appears exactly once, in id order.
//
// Loop affinity: used on the daemon's event loop only.
#ifndef DAEMON_CONTROL_CLIENT_PAGES_H_
#define DAEMON_CONTROL_CLIENT_PAGES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::control {

class ClientPages {
 public:
  // Opens the SQLite database `db` read-only. The file must exist (the
  // daemon created it).
  static Status Open(const std::string& db, std::unique_ptr<ClientPages>* out);
  // Pages over `store`, a connection of its own.
  explicit ClientPages(std::unique_ptr<store::Backend> store)
      : owned_(std::move(store)), store_(owned_.get()) {}
  // Pages over the daemon's own store (cluster mode: etcd, whose reads
  // take no lock), which must outlive this.
  explicit ClientPages(store::Backend* store) : store_(store) {}
  ~ClientPages();
  ClientPages(const ClientPages&) = delete;
  ClientPages& operator=(const ClientPages&) = delete;

  struct Page {
    std::optional<store::ScopeRow> scope;  // unset: no such scope
    std::optional<int64_t> count;          // when asked for
    std::vector<store::ClientRow> clients;
    bool more = false;  // records with larger ids remain
  };
  // Reads, in one snapshot, the row of `scope`, its record count if
  // `with_count`, and its records with an id greater than `after` (all if
  // empty) in id order: at most `max` of them (none: the scope and count
  // only), and no more once their ids and hashes add up to `max_bytes`.
  Status Read(const std::string& scope, const std::string& after, size_t max,
              size_t max_bytes, bool with_count, Page* out);

 private:
  Status ReadLocked(const std::string& scope, const std::string& after,
                    size_t max, size_t max_bytes, bool with_count, Page* out);

  std::unique_ptr<store::Backend> owned_;
  store::Backend* store_;
};

}  // namespace nfsdh::control

#endif  // DAEMON_CONTROL_CLIENT_PAGES_H_
