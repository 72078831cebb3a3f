// Options of nfsd-helper (see man/nfsd-helper.8): from the command line, and
// from the [nfsd-helper] section of nfs.conf (daemon/config/) for those the
// command line does not give.
#ifndef DAEMON_OPTIONS_H_
#define DAEMON_OPTIONS_H_

#include <cstdint>
#include <string>

#include "common/defaults.h"
#include "common/scope_name.h"
#include "daemon/util/status.h"

namespace nfsdh {

// Which options the command line gave: they win over the configuration file.
struct GivenOptions {
  bool nfsdfs = false;
  bool db = false;
  bool scope = false;
  bool foreground = false;
  bool debug = false;
  bool config = false;
  bool ctl_socket = false;
  bool nfsdcld_db = false;
  bool nfsdcltrack_db = false;
  bool cld_pipe = false;
  bool idmap = false;
  bool idmap_conf = false;
  bool idmap_cache_timeout = false;
  bool idmap_rpc_dir = false;
  bool ha_callout = false;
  bool ha_callout_timeout = false;
};

struct Options {
  std::string nfsdfs = kDefaultNfsdfs;  // "none": no four-file protocol
  // The stock kernel's cld pipe; "none": no cld protocol.
  std::string cld_pipe = kDefaultCldPipe;
  std::string db = kDefaultDb;
  std::string scope = kDefaultScope;
  // Where helper-ctl finds the daemon (daemon/control/server.h).
  std::string ctl_socket = kDefaultCtlSocket;
  bool foreground = false;
  bool debug = false;
  bool help = false;
  bool version = false;
  // ID mapping (daemon/idmap/): serve nfsd's nfs4.idtoname and
  // nfs4.nametoid cache channels under idmap_rpc_dir with libnfsidmap,
  // configured from idmap_conf. idmap_cache_timeout is a number of seconds
  // as text ("" = idmapd.conf's Cache-Expiration, else 600).
  bool idmap = false;
  std::string idmap_conf = "/etc/idmapd.conf";
  std::string idmap_cache_timeout;
  std::string idmap_rpc_dir = "/proc/net/rpc";
  // nfs-utils' databases, imported at the first start unless "none"
  // (daemon/migrate/nfsdcld_import.h).
  std::string nfsdcld_db = kDefaultNfsdcldDb;
  std::string nfsdcltrack_db = kDefaultNfsdcltrackDb;
  // HA callout (daemon/callout/): PROG run as "PROG add-client|del-client
  // SCOPE CLIENT-ID-HEX" after each durable change; "" for none. The
  // timeout is a number of seconds as text ("" = 10).
  std::string ha_callout;
  std::string ha_callout_timeout;
  // nfs.conf(5) file; its drop-in directory is config + ".d".
  std::string config = kDefaultConfig;
  GivenOptions given;
  // Which options the configuration file set (daemon/config/): with
  // `given`, what was chosen explicitly rather than left to its default.
  GivenOptions configured;
};

// Parses argv, recording in out->given which options it set. On error returns
// kInvalid with a message naming the option.
Status ParseOptions(int argc, char** argv, Options* out);
const char* UsageText();

// Makes the relative paths among the options (db, nfsdfs, cld_pipe,
// ctl_socket, nfsdcld_db, nfsdcltrack_db, idmap_conf, idmap_rpc_dir; "none"
// is left alone) absolute against `cwd`, the directory nfsd-helper was
// started in: detached, it runs in "/", where a relative path would name
// another file than the one meant. An empty `cwd` (it cannot be found) and
// a relative path is kInvalid, naming the option.
Status MakePathsAbsolute(const std::string& cwd, Options* opts);

// A cache timeout: 1..31536000 decimal seconds.
bool ParseSeconds(const std::string& text, int64_t* out);

}  // namespace nfsdh

#endif  // DAEMON_OPTIONS_H_
