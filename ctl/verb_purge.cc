// helper-ctl purge: remove one client record through the running
// nfsd-helper (CTL_PURGE), as if the kernel had expired the client: it will
// not be allowed to reclaim at the next server start. The daemon does it in
// its own transaction, so the record is gone for good once this returns 0.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "ctl/daemon_conn.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/json_util.h"
#include "ctl/verbs.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

// Asks on the terminal; true for "y" or "yes".
bool Confirm(const std::string& id, const std::string& scope,
             std::ostream& err) {
  err << "Purge the record of client " << IdCell(id) << " from scope "
      << nfsdfs::EscapeForLog(scope)
      << "? It will not be allowed to reclaim its state. [y/N] ";
  err.flush();
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

constexpr OptionSpec kPurgeOptions[] = {
    {"--scope", "NAME", "name the scope the record belongs to"},
    kCtlSocketOption,
    {"--yes", nullptr},
    {"--json", nullptr},
};

int RunPurge(const ParsedArgs& parsed, std::ostream& out, std::ostream& err) {
  const std::string scope = parsed.value("--scope");
  std::string id, error;
  if (!ParseClientId(parsed.operands[0], &id, &error))
    return UsageError(kPurgeVerb, error, err);
  const bool interactive = !parsed.has("--yes") && isatty(STDIN_FILENO);
  if (!parsed.has("--yes") && !interactive) {
    return UsageError(kPurgeVerb,
                      "refusing to purge without confirmation: the standard "
                      "input is not a terminal; add --yes",
                      err);
  }

  const std::string socket = CtlSocket(parsed);
  std::unique_ptr<ControlClient> client;
  int rc = ConnectOrReport(socket, &client, err);
  if (rc != kExitOk) return rc;
  if (interactive) {
    // The answer may take a while; the daemon closes idle connections.
    client.reset();
    if (!Confirm(id, scope, err)) {
      err << kProgram << ": nothing purged\n";
      return kExitError;
    }
    rc = ConnectOrReport(socket, &client, err);
    if (rc != kExitOk) return rc;
  }

  PurgeResult res;
  Status s = client->Purge(scope, id, &res);
  if (!s.ok()) return ReportCallError(s, err);
  switch (res.stat) {
    case DaemonStat::kOk:
      break;
    case DaemonStat::kInvalid:
      return UsageError(kPurgeVerb, res.message, err);
    case DaemonStat::kNoScope:
      err << kProgram << ": no scope '" << nfsdfs::EscapeForLog(scope)
          << "' in nfsd-helper's database\n";
      return kExitError;
    case DaemonStat::kNoClient:
      err << kProgram << ": scope " << nfsdfs::EscapeForLog(scope)
          << " has no record of client " << IdCell(id) << "\n";
      return kExitError;
    default:
      err << kProgram
          << ": nfsd-helper could not purge the record: " << res.message
          << "\n";
      return kExitError;
  }
  try {
    if (parsed.has("--json")) {
      Json j;
      j["scope"] = scope;
      j["purged"] = ClientJson(res.removed);
      out << DumpJson(j, 2) << "\n";
    } else {
      out << "purged client " << IdCell(res.removed.id) << " from scope "
          << nfsdfs::EscapeForLog(scope) << " (instance "
          << res.removed.instance << ", last seen "
          << IsoTime(res.removed.last_seen)
          << "); it may not reclaim at the next server start\n";
    }
  } catch (const std::exception& e) {
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  return FinishOutput(out, err, " (the record was purged)");
}

}  // namespace

const Verb kPurgeVerb = {
    "purge",
    "remove one client record, so that the client may not reclaim",
    "--scope NAME [--ctl-socket PATH] [--yes] [--json] CLIENT",
    "  --scope NAME       the scope the record belongs to (required)\n"
    "  --ctl-socket PATH  nfsd-helper's control socket\n"
    "                     (default /run/nfsd-helper/ctl.sock)\n"
    "  --yes              do not ask for confirmation (required when the\n"
    "                     standard input is not a terminal)\n"
    "  --json             describe the removed record as JSON\n"
    "\n"
    "CLIENT is the client id as dump shows it: a printable id as text\n"
    "(with or without its double quotes), any id as 0x and hex digits.\n"
    "The running nfsd-helper removes the record in its own transaction.\n"
    "Exit status 3 if nfsd-helper is not running.\n",
    {kPurgeOptions, {1, 1, "name the CLIENT to purge"}},
    RunPurge,
};

}  // namespace nfsdh::ctl
