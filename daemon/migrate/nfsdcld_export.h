// Hand-back to nfsdcld: writes nfsdcld's database from nfsd-helper's records
// (helper-ctl export-nfsdcld), the reverse of nfsdcld_import.h, so that when
// nfsd-helper is removed the clients that hold state can still reclaim after
// the next nfsd start under Debian's nfsdcld (nfs-utils 2.6).
//
// Rationale. The database written must let nfsdcld allow exactly the clients
// nfsd-helper's own next start would allow, and no more (fail closed):
//  - Which records: recovery::PlanNextStart on the scope row and the steps of
//    the pending-steps file (store/pending_steps.h), the daemon's own rules.
//    If an instance is in grace (in the database, or one whose start the
//    database missed), nfsd may have ended that grace period without the
//    database knowing: as the daemon does at its start, <nfsdfs>/v4_end_grace
//    is read, and Y records the end. If it says N, nfsd may still be running
//    that grace period: then nothing is written unless <nfsdfs>/threads says
//    nfsd is stopped (0), since nfsdcld would either take that grace period's
//    end as the end of its own or never hear of it. A file that cannot be
//    read is no answer: nothing is written (--nfsdfs none says nfsd is known
//    to be stopped, as for the daemon).
//  - nfsdcld's layout (schema 4, utils/nfsdcld/sqlite.c): parameters
//    (version 4, first_time 0), grace (current E, recovery 0), and one table
//    "rec-<E as 16 hex digits>" (id BLOB PRIMARY KEY, princhash BLOB) holding
//    the records. recovery 0 says the last grace period ended, so nfsdcld's
//    next GraceStart makes E the recovery epoch and offers that table, whole,
//    to nfsd; its Creates and Removes meanwhile (nfsd running, or upcalls
//    queued while no tracker ran) go to that same table, as under nfsd-helper.
//    first_time is 0: with 1, nfsdcld's start would replace the table by the
//    ids of an nfsdcltrack database and add the legacy recovery directory.
//    A GraceDone with recovery 0 (nfsd in a grace period nfsdcld never saw
//    start) makes nfsdcld drop the table: it can lose records, never add any.
//  - princhash: the record's principal hash (32 bytes), or NULL when it has
//    none, as nfsdcld stores a client without a principal. The minor version
//    is not kept: nfsdcld does not record it.
//  - E is the replaced database's current epoch + 1, or 1: epochs only name
//    tables, and keep increasing across the hand-back.
//
// Writing: a new file beside the target (TARGET.new, mode 0600, no journal),
// filled in one transaction, fsync()ed, renamed over TARGET, and the
// directory fsync()ed: a crash leaves the old database or the new one. An
// existing TARGET must be an nfsdcld database that validates (ReadSource),
// with no journal or write-ahead log of its own beside it, unless `force`;
// it must be a regular file in any case. A running nfsdcld holds no lock, so
// the processes that have TARGET open are looked for in /proc, and any is a
// refusal: nfsdcld keeps its database open and would go on writing the old
// file after the rename.
#ifndef DAEMON_MIGRATE_NFSDCLD_EXPORT_H_
#define DAEMON_MIGRATE_NFSDCLD_EXPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/recovery/engine.h"
#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::migrate {

struct HandbackClient {
  std::string id;         // 1..1024 bytes
  std::string princhash;  // empty or 32 bytes
};

// What a scope hands back to nfsdcld.
struct Handback {
  std::string scope;
  recovery::ScopeState state;  // as the database has it
  // The pending-steps file's steps, then the grace end nfsd reported, if any.
  std::vector<recovery::PendingStep> pending;
  bool kernel_ended_grace = false;  // v4_end_grace said Y and it counted
  recovery::NextStartPlan plan;
  // Why these records, in an operator's words.
  std::string allowed_from;
  std::vector<HandbackClient> clients;  // ordered by id
  int64_t left_out = 0;                 // records the next start would purge
};

// Selects the records of `scope` in `store` (the database `db`) that its
// next server start allows; `nfsdfs` is nfsd's filesystem (kNone: nfsd is
// known to be stopped). Returns kNotFound if the database has no such scope;
// kInvalid, saying why and what to do, if what nfsd did cannot be known
// (a pending-steps file that does not parse, a grace period nfsd may still
// be running, a v4_end_grace that cannot be read).
// REQUIRES: no nfsd-helper serves `scope` (the caller holds its ScopeLock).
Status SelectHandback(store::Backend* store, const std::string& db,
                      const std::string& scope, const std::string& nfsdfs,
                      Handback* out);

// What WriteNfsdcld found and wrote.
struct NfsdcldWrite {
  // What TARGET was: "" (absent), "an nfsdcld database (schema N, current
  // epoch C, ...)", or what else it was (replaced with `force`).
  std::string replaced;
  bool replaced_foreign = false;  // it was not an nfsdcld database
  int64_t current_epoch = 1;
};

// The processes that have `path` open (an nfsdcld serving it), as
// "nfsdcld (pid 812)"; empty if none or if `path` does not exist. Processes
// whose descriptors cannot be read (another user's, without root) are not
// seen.
std::vector<std::string> ProcessesWithFileOpen(const std::string& path);

// Writes `clients` as nfsdcld's database `path` (see above). Refuses, with
// kInvalid and writing nothing, a TARGET that is not a regular file, one
// that a process has open, and, unless `force`, one that is not an nfsdcld
// database or has a journal of its own. Creates TARGET's directory (0700)
// if it is missing, as nfsdcld would.
Status WriteNfsdcld(const std::string& path,
                    const std::vector<HandbackClient>& clients, bool force,
                    NfsdcldWrite* out);

}  // namespace nfsdh::migrate

#endif  // DAEMON_MIGRATE_NFSDCLD_EXPORT_H_
