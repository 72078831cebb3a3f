#include "ctl/daemon_conn.h"

#include "ctl/dispatch.h"
#include "ctl/verbs.h"
#include "daemon/control/defaults.h"

namespace nfsdh::ctl {

std::string CtlSocket(const ParsedArgs& parsed) {
  auto it = parsed.values.find(kCtlSocketOption.name);
  return it != parsed.values.end() ? it->second
                                   : std::string(control::kDefaultSocket);
}

int ConnectOrReport(const std::string& socket,
                    std::unique_ptr<ControlClient>* out, std::ostream& err) {
  Status s = ControlClient::Connect(socket, out);
  if (s.ok()) s = (*out)->Ping();
  if (s.ok()) return kExitOk;
  out->reset();
  if (s.code() == Status::Code::kNotFound) {
    err << kProgram << ": nfsd-helper is not running: nothing answers on "
        << socket << "\n";
    return kExitNotRunning;
  }
  return ReportCallError(s, err);
}

int ReportCallError(const Status& s, std::ostream& err) {
  if (s.code() == Status::Code::kPermission) {
    err << kProgram << ": permission denied: " << s.message() << "\n"
        << kProgram << ": only root may use nfsd-helper's control socket; "
        << "run " << kProgram << " as root\n";
  } else {
    err << kProgram << ": " << s.message() << "\n";
  }
  return kExitError;
}

}  // namespace nfsdh::ctl
