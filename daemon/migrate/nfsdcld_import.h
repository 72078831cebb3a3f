// Migration from nfs-utils' client trackers: imports what nfsdcld (database
// schema versions 1 to 4) or nfsdcltrack recorded, so that the clients that
// held state under them can reclaim at nfsd-helper's first server start.
//
// Rationale. The import must allow exactly the clients nfsdcld would have
// allowed at its next grace start, and no more (fail closed):
//  - nfsdcld (schema 3 and 4) keeps a current and a recovery epoch in table
//    `grace` and one table "rec-<epoch as 16 hex digits>" of client ids (and,
//    in schema 4, principal hashes) per epoch. At a grace start it allows
//    the table of the old current epoch if the recovery epoch is 0 (the last
//    grace period ended), else, after a restart during grace, the table of
//    the recovery epoch again; the records of the current epoch are then
//    cleared. So exactly one table is imported: rec-<current> if recovery is
//    0, else rec-<recovery>.
//  - While parameters.first_time is set (no grace period has ended since the
//    database was made) and recovery is 0, nfsdcld's next start replaces
//    rec-<current> by the ids of nfsdcltrack's database if it can read it;
//    the import does the same with `nfsdcltrack_db`. (Records of the legacy
//    recovery directory, which nfsdcld would add too, are not imported.)
//  - Schema 1 (nfsdcld's 2012 `clients` table) becomes epoch 1, recovery 0,
//    first_time set, rec-1 = the clients, as nfsdcld's own upgrade does.
//  - nfsdcltrack (schema 2, `clients (id, time, has_session)`): its check
//    allows every id in the table, whatever its time; the time column only
//    decides which rows its gracedone deletes (time < that grace start). So
//    every row present is allowed at the next start: a row older than the
//    last grace start has already been deleted if that grace period ended,
//    and is still allowed by nfsdcltrack if it did not.
//  - Rows the kernel would refuse or that nfsdcld skips (an empty or NULL id,
//    an id over 1024 bytes, a principal hash that is not 32 bytes, which
//    would disable the principal check) are left out and reported.
// The records are written with instance 0 into a scope that has no instance
// (PlanStart keeps them all and allows them at the first start; the first
// grace_done purges those that did not reclaim), with the principal hash, and
// with the minor version when known (nfsdcltrack's has_session 1: 4.1, 0: 4.0;
// otherwise -1, unknown: it decides nothing, and the first create sets it).
//
// The source is opened read-only through SQLite (mode=ro; immutable=1 only
// for a WAL file without a write-ahead log, so that no -shm is created): its
// file is never written, and a transaction of a running nfsdcld is waited
// for, not read half-done. Nothing is imported from a source that does not
// validate.
#ifndef DAEMON_MIGRATE_NFSDCLD_IMPORT_H_
#define DAEMON_MIGRATE_NFSDCLD_IMPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/defaults.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::migrate {

// Its defaults, and kNone that turns an import off: common/defaults.h.

enum class SourceKind { kNfsdcld, kNfsdcltrack };
// "nfsdcld" or "nfsdcltrack".
const char* KindName(SourceKind kind);

struct SourceClient {
  std::string id;               // 1..1024 bytes
  std::string princhash;        // empty or 32 bytes
  int minor = -1;               // 0: 4.0, 1: 4.1 or later, -1: unknown
  std::optional<int64_t> time;  // nfsdcltrack's time column, when > 0
};

// What a source database holds that its tracker would allow at its next
// grace start.
struct Source {
  std::string path;
  SourceKind kind = SourceKind::kNfsdcld;
  int schema_version = 0;
  std::optional<int64_t> current_epoch;  // as stored (signed)
  std::optional<int64_t> recovery_epoch;
  bool first_time = false;
  // Where the clients come from: "table rec-0000000000000002 (current epoch;
  // not in grace)", "nfsdcltrack's clients (...)".
  std::string allowed_from;
  std::vector<SourceClient> clients;  // in the source's order, ids unique
  std::vector<std::string> skipped;   // one line per row left out, and why
};

// Reads and validates the nfsdcld or nfsdcltrack database at `path`
// (read-only; see above). `nfsdcltrack_db` is the database nfsdcld would copy
// from at its first start ("" or kNone: none). Returns kNotFound if `path`
// does not exist, kCorrupt if it is not an SQLite database or fails PRAGMA
// quick_check, kInvalid if it is not a database of a known schema version
// (1 to 4) or lacks what that version has, kIo if it cannot be read.
Status ReadSource(const std::string& path, const std::string& nfsdcltrack_db,
                  Source* out);

// Why `scope` may not receive an import: "" if it may (no instance, no
// record, no import), else a phrase ("has 3 client records").
// REQUIRES: the store is readable (inside or outside a transaction).
Status ScopeInUse(store::Backend* store, const std::string& scope,
                  std::string* why);

// Writes `src` into `scope` in one transaction (durable when this returns OK:
// the store commits with synchronous=FULL), with its ImportRow. Refuses with
// kInvalid, writing nothing, if the scope is in use (checked inside the
// transaction). With `dry_run` everything is checked and written, then rolled
// back.
// REQUIRES: store opened read-write, !store->in_transaction().
Status WriteImport(store::Backend* store, const std::string& scope,
                   const Source& src, int64_t now, bool dry_run);

// The daemon's import at its first start: if no scope of `store` has been
// used (no instance, record or import) and `nfsdcld_db` (else
// `nfsdcltrack_db`) exists, imports it into `scope` and logs what it did. A
// source that cannot be imported is logged as an error and nothing is
// imported: no client may reclaim what it held under nfsdcld.
void ImportAtFirstStart(store::Backend* store, const std::string& scope,
                        const std::string& nfsdcld_db,
                        const std::string& nfsdcltrack_db, int64_t now);

}  // namespace nfsdh::migrate

#endif  // DAEMON_MIGRATE_NFSDCLD_IMPORT_H_
