// Defaults of the control socket, shared by nfsd-helper and helper-ctl.
// Free of libtirpc so that any header may include it.
#ifndef DAEMON_CONTROL_DEFAULTS_H_
#define DAEMON_CONTROL_DEFAULTS_H_

namespace nfsdh::control {

// Where nfsd-helper serves the control protocol (ctl/proto/nfsdh_ctl.x) and
// helper-ctl looks for it: an AF_LOCAL stream socket, mode 0600, in a
// directory of mode 0700.
inline constexpr char kDefaultSocket[] = "/run/nfsd-helper/ctl.sock";

}  // namespace nfsdh::control

#endif  // DAEMON_CONTROL_DEFAULTS_H_
