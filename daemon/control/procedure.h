// Control procedures: one file per procedure of control-proto/nfsdh_ctl.x
// (proc_<name>.cc), each exporting a Procedure registered in kProcedures[]
// (procedure.cc). The server (server.h) knows procedures only through that
// table, as the batch runner knows the upcall channels only through
// daemon/channels/handlers.h.
//
// Every procedure runs on the event loop between batches and must return
// quickly: it may read the database, or write it in one short transaction,
// but never wait for a client.
#ifndef DAEMON_CONTROL_PROCEDURE_H_
#define DAEMON_CONTROL_PROCEDURE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control-proto/ctl_proto.h"
#include "daemon/control/client_pages.h"
#include "daemon/control/host.h"
#include "daemon/store/backend.h"

namespace nfsdh::control {

// The records of a CTL_IMPORT session, staged until its commit.
struct ImportSession {
  uint64_t id = 0;
  std::string scope;
  std::vector<store::ClientRow> records;
  size_t bytes = 0;         // of ids and hashes, with a per-record overhead
  int64_t last_active = 0;  // monotonic seconds
};

// What the procedures share; owned by the Server.
struct Context {
  Host* host = nullptr;
  std::string socket_path;
  std::unique_ptr<ClientPages> pages;  // opened at the first dump
  uint64_t purged = 0;                 // records removed by CTL_PURGE
  std::unique_ptr<ImportSession> import;  // the open CTL_IMPORT session
  uint64_t import_sessions = 0;           // opened so far
  // Connections and the import session are dropped after this long
  // without a request; set by the Server (kIdleTimeoutSeconds, or its test
  // hook).
  int idle_seconds = 0;
};

// Drops the open CTL_IMPORT session, and frees what it staged, if it has
// had no call for longer than ctx.idle_seconds. True if it did.
bool DropIdleImport(Context& ctx, int64_t now);

struct Procedure {
  rpcproc_t number;  // CTL_STATUS
  const char* name;  // "status", for logs
  // Decodes the arguments from `xprt`, does the work and sends the reply
  // (or an RPC error). Called only for a caller the server let in.
  void (*serve)(Context& ctx, SVCXPRT* xprt);
};

extern const Procedure kStatusProcedure;
extern const Procedure kDumpProcedure;
extern const Procedure kPurgeProcedure;
extern const Procedure kEndGraceProcedure;
extern const Procedure kImportProcedure;

// Every procedure but CTL_NULL, which the server answers itself.
extern const Procedure* const kProcedures[];
extern const size_t kProcedureCount;
const Procedure* FindProcedure(rpcproc_t number);

// Keeps the strings an encoded reply points to alive until it is sent.
class XdrArena {
 public:
  // `s` cut to at most `max` bytes, as the char* an XDR string field wants.
  char* Str(std::string s, size_t max);

 private:
  std::deque<std::string> strings_;  // a deque never moves its elements
};

ctl_opt XdrOpt(const std::optional<int64_t>& v);
void FillScope(const store::ScopeRow& row, XdrArena* arena,
               ctl_scope_info* out);
// Points into `c`, which must outlive the reply.
void FillClient(const store::ClientRow& c, ctl_client* out);

// A scope name as ctl_scope carries it: 1..64 of [A-Za-z0-9._-].
bool ValidScope(const char* name);

}  // namespace nfsdh::control

#endif  // DAEMON_CONTROL_PROCEDURE_H_
