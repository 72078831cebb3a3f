#include "daemon/control/client_pages.h"

#include "daemon/store/store.h"

namespace nfsdh::control {
namespace {

// How long a read waits for a lock it cannot get at once (only while the
// writer checkpoints or recovers the WAL); it holds up the event loop.
constexpr int kBusyTimeoutMs = 200;

}  // namespace

Status ClientPages::Open(const std::string& db,
                         std::unique_ptr<ClientPages>* out) {
  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(db, store::Store::Mode::kReadOnlyChecked, &st);
  if (!s.ok()) return s;
  st->SetBusyTimeout(kBusyTimeoutMs);
  out->reset(new ClientPages(std::move(st)));
  return Status::Ok();
}

ClientPages::~ClientPages() = default;

Status ClientPages::Read(const std::string& scope, const std::string& after,
                         size_t max, size_t max_bytes, bool with_count,
                         Page* out) {
  *out = Page();
  Status s = store_->BeginRead();
  if (!s.ok()) return s;
  s = ReadLocked(scope, after, max, max_bytes, with_count, out);
  store_->EndRead();
  return s;
}

Status ClientPages::ReadLocked(const std::string& scope,
                               const std::string& after, size_t max,
                               size_t max_bytes, bool with_count, Page* out) {
  Status s = store_->GetScope(scope, &out->scope);
  if (!s.ok() || !out->scope) return s;  // an error, or no such scope
  if (with_count) {
    int64_t n = 0;
    s = store_->CountClients(scope, &n);
    if (!s.ok()) return s;
    out->count = n;
  }
  if (max == 0) return Status::Ok();
  size_t bytes = 0;
  return store_->ForEachClientAfter(
      scope, after, [&](const store::ClientRow& c) {
        if (out->clients.size() == max || bytes >= max_bytes) {
          out->more = true;
          return false;
        }
        bytes += c.id.size() + c.princhash.size();
        out->clients.push_back(c);
        return true;
      });
}

}  // namespace nfsdh::control
