// Options of nfsd-helper (see man/nfsd-helper.8): from the command line, and
// from the [nfsd-helper] section of nfs.conf (daemon/config/) for those the
// command line does not give.
//
// Rationale. Each option is written once, as one OptionDef of OptionTable()
// (options.cc): its long and short name, whether it takes an argument and
// how that is checked, whether nfs.conf has a key for it, its line of
// --help, and the members of Options and GivenOptions it sets. From that
// table come getopt_long's option array and short-option string, what
// parsing an option does, the value checks, the keys of [nfsd-helper] that
// daemon/config/helper_config.cc accepts and lists, the --help text, and
// the paths made absolute. Adding an option is: a member of Options (and
// of GivenOptions), a row of the table, and its description in
// man/nfsd-helper.8 (tests/docs_test.cc checks that the page and --help
// agree; daemon/options_test.cc checks the table against everything it
// feeds).
#ifndef DAEMON_OPTIONS_H_
#define DAEMON_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

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
  bool etcd_endpoints = false;
  bool cluster = false;
  bool node = false;
  bool etcd_lease_ttl = false;
  bool etcd_cacert = false;
  bool etcd_cert = false;
  bool etcd_key = false;
  bool etcd_user = false;
  bool etcd_password_file = false;
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
  // Cluster mode (daemon/store/ETCD.md): the records in etcd at these
  // comma-separated URLs instead of the SQLite database ("": SQLite). The
  // keys are under /nfsd-helper/<cluster>/; this node is `node` ("": the
  // host name). etcd_lease_ttl is a number of seconds as text ("" = 10).
  // TLS: the members' CA, and this node's client certificate and key;
  // etcd's own authentication: a user, and the file its password is read
  // from (never the command line, which every local user can read).
  std::string etcd_endpoints;
  std::string cluster = "default";
  std::string node;
  std::string etcd_lease_ttl;
  std::string etcd_cacert;
  std::string etcd_cert;
  std::string etcd_key;
  std::string etcd_user;
  std::string etcd_password_file;
  // nfs.conf(5) file; its drop-in directory is config + ".d".
  std::string config = kDefaultConfig;
  GivenOptions given;
  // Which options the configuration file set (daemon/config/): with
  // `given`, what was chosen explicitly rather than left to its default.
  GivenOptions configured;
};

// What an option's argument is, which decides how it is checked on the
// command line and in nfs.conf alike (OptionValueProblem).
enum class OptionKind {
  kFlag,          // no argument: sets a bool; in nfs.conf, a boolean
  kPath,          // a non-empty path; a relative one is made absolute
  kPathOrNone,    // the same, or "none" (kNone) to turn something off
  kAbsolutePath,  // a path that starts with '/'
  kScope,         // a scope name (common/scope_name.h)
  kSeconds,       // 1 to OptionDef::max_seconds decimal seconds
  kName,          // a name by the scope name rules: a cluster, node, user
  kUrls,          // comma-separated http:// or https:// URLs
};

// Whether [nfsd-helper] of nfs.conf has a key for the option. The key is
// always the long name ("ha-callout" sets --ha-callout), as the man page
// and --help promise.
enum class ConfKey { kNone, kSameName };

// One option of nfsd-helper: everything the command line, nfs.conf and
// --help need to know about it.
struct OptionDef {
  const char* name;  // the long option without "--": "ctl-socket"
  char short_name;   // 'D' for -D; 0 if none
  OptionKind kind;
  const char* arg;  // the argument in --help ("PATH"); nullptr for kFlag
  ConfKey conf;
  // Where the option goes: `text` gets the argument, or, for kFlag, `flag`
  // becomes true. `given` is marked in Options::given (and, by nfs.conf,
  // in Options::configured); nullptr for --help and --version, which are
  // not choices about the service.
  std::string Options::*text;
  bool Options::*flag;
  bool GivenOptions::*given;
  // Its description in --help: lines of at most 51 characters, separated
  // by '\n', without the last one.
  const char* help;
  int64_t max_seconds;  // kSeconds only
};

// Every option, in the order --help lists them; the keys of [nfsd-helper]
// are applied and listed in this order too.
const std::vector<OptionDef>& OptionTable();

// What is wrong with `value` as the argument of `def` (not kFlag), as a
// phrase for the end of a message ("give an absolute path"), or "" if
// nothing is. An empty value is wrong for every kind. The command line
// (ParseOptions) and nfs.conf (daemon/config/) check with this alike.
std::string OptionValueProblem(const OptionDef& def, const std::string& value);

// Parses argv, recording in out->given which options it set. On error returns
// kInvalid with a message naming the option.
Status ParseOptions(int argc, char** argv, Options* out);
// The text of --help, generated from OptionTable().
const char* UsageText();

// Makes the relative paths among the options (those of the path kinds but
// --config, which has been read by then; "none" is left alone) absolute
// against `cwd`, the directory nfsd-helper was started in: detached, it runs
// in "/", where a relative path would name another file than the one meant.
// An empty `cwd` (it cannot be found) and a relative path is kInvalid, naming
// the option.
Status MakePathsAbsolute(const std::string& cwd, Options* opts);

// A cache timeout: 1..31536000 decimal seconds.
bool ParseSeconds(const std::string& text, int64_t* out);

// The URLs of a kUrls option ("http://a:2379,https://b:2379"), or what is
// wrong with them (a phrase, as OptionValueProblem's).
std::string SplitUrls(const std::string& text, std::vector<std::string>* out);

}  // namespace nfsdh

#endif  // DAEMON_OPTIONS_H_
