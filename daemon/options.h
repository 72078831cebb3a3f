// Options of nfsd-helper (see man/nfsd-helper.8): from the command line, and
// from the [nfsd-helper] section of nfs.conf (daemon/config/) for those the
// command line does not give.
#ifndef DAEMON_OPTIONS_H_
#define DAEMON_OPTIONS_H_

#include <string>

#include "daemon/control/defaults.h"
#include "daemon/util/status.h"

namespace nfsdh {

inline constexpr char kDefaultNfsdfs[] = "/proc/fs/nfsd";
inline constexpr char kDefaultDb[] = "/var/lib/nfs/nfsd-helper/state.sqlite";
inline constexpr char kDefaultScope[] = "default";
inline constexpr char kDefaultConfig[] = "/etc/nfs.conf";

// Which options the command line gave: they win over the configuration file.
struct GivenOptions {
  bool nfsdfs = false;
  bool db = false;
  bool scope = false;
  bool foreground = false;
  bool debug = false;
  bool config = false;
  bool ctl_socket = false;
};

struct Options {
  std::string nfsdfs = kDefaultNfsdfs;
  std::string db = kDefaultDb;
  std::string scope = kDefaultScope;
  // Where helper-ctl finds the daemon (daemon/control/server.h).
  std::string ctl_socket = control::kDefaultSocket;
  bool foreground = false;
  bool debug = false;
  bool help = false;
  bool version = false;
  // nfs.conf(5) file; its drop-in directory is config + ".d".
  std::string config = kDefaultConfig;
  GivenOptions given;
};

// Parses argv, recording in out->given which options it set. On error returns
// kInvalid with a message naming the option.
Status ParseOptions(int argc, char** argv, Options* out);
const char* UsageText();

// A scope name: 1..64 characters of [A-Za-z0-9._-].
bool ValidScopeName(const std::string& name);

}  // namespace nfsdh

#endif  // DAEMON_OPTIONS_H_
