// What the verbs that talk to nfsd-helper share: the --ctl-socket option,
// connecting, and saying in an operator's words why it failed.
#ifndef CTL_DAEMON_CONN_H_
#define CTL_DAEMON_CONN_H_

#include <memory>
#include <ostream>
#include <string>

#include "ctl/args.h"
#include "ctl/control_client.h"
#include "daemon/options.h"
#include "daemon/util/status.h"

namespace nfsdh::ctl {

inline constexpr OptionSpec kCtlSocketOption = {"--ctl-socket", "PATH"};
inline constexpr OptionSpec kConfigOption = {"--config", "FILE"};

// Where helper-ctl finds the daemon and its database: --ctl-socket and --db
// if given, else the keys ctl-socket and db of [nfsd-helper] in nfs.conf
// (--config FILE, default /etc/nfs.conf, and FILE.d/*.conf, read as the
// daemon reads them: daemon/config/helper_config.h), else the built-in
// defaults.
struct CtlDefaults {
  std::string db;
  std::string ctl_socket;
  std::string nfsdfs;  // key nfsdfs, else /proc/fs/nfsd
  // Every option as the daemon would take it from nfs.conf, with the etcd
  // options (--etcd-endpoints, --cluster, --etcd-cacert, --etcd-cert,
  // --etcd-key, --etcd-user, --etcd-password-file) of the command line.
  Options options;
};
// Fills *out from `parsed` and the configuration. A problem in the file is
// reported on `err` as a warning and that key is not used; a --config FILE
// that cannot be read is an error (kExitError).
int LoadCtlDefaults(const ParsedArgs& parsed, CtlDefaults* out,
                    std::ostream& err);

// The socket named by --ctl-socket, or by nfs.conf, or the default.
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
