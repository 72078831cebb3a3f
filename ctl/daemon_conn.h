// What the verbs that talk to nfsd-helper share: the --ctl-socket option,
// connecting, and saying in an operator's words why it failed.
#ifndef CTL_DAEMON_CONN_H_
#define CTL_DAEMON_CONN_H_

#include <memory>
#include <ostream>
#include <string>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "daemon/util/status.h"

namespace nfsdh::ctl {

inline constexpr OptionSpec kCtlSocketOption = {"--ctl-socket", "PATH"};

// The socket named by --ctl-socket, or the default.
std::string CtlSocket(const ParsedArgs& parsed);

// Connects to the daemon for a verb that needs it. On failure says why on
// `err` and returns kExitNotRunning if no daemon answers, else kExitError;
// returns kExitOk on success.
int ConnectOrReport(const std::string& socket,
                    std::unique_ptr<ControlClient>* out, std::ostream& err);

// Says why a call failed (refused, no answer); returns kExitError.
int ReportCallError(const Status& s, std::ostream& err);

}  // namespace nfsdh::ctl

#endif  // CTL_DAEMON_CONN_H_
