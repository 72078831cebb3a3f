// The [nfsd-helper] section of nfs.conf(5): the daemon's options from the
// configuration file, below the command line.
//
// Keys: nfsdfs, cld-pipe and db (paths; "none" turns a protocol off), scope
// (a scope name), foreground and debug (booleans, as nfs-utils'
// conf_get_bool reads them). ID mapping: idmap (a
// boolean), idmap-conf and idmap-rpc-dir (paths), idmap-cache-timeout
// (seconds, 1 to 31536000). Migration: nfsdcld-db and nfsdcltrack-db (paths
// or "none"). The last assignment of
// a key, over nfs.conf and then nfs.conf.d/*.conf, is the one in force; an
// option given on the command line wins over it.
//
// nfs-utils skips with a warning what it cannot parse; nfsd-helper does too,
// except in its own section, where such a line is an error, as is a value it
// cannot use (an empty value, which nfs-utils would silently ignore, a bad
// scope name or boolean, or a '$NAME' that names nothing). An unknown key in
// [nfsd-helper] is a warning, and other sections are left to their daemons,
// except two settings of nfs-utils that move where nfsdcld looks, and so
// where a helper in its place must look unless told otherwise: [general]
// pipefs-directory (the cld pipe is DIR/nfsd/cld) and [nfsdcld] storagedir
// (nfsdcld's database, imported at the first start, is DIR/main.sqlite).
#ifndef DAEMON_CONFIG_HELPER_CONFIG_H_
#define DAEMON_CONFIG_HELPER_CONFIG_H_

#include <string>
#include <vector>

#include "daemon/config/conf.h"
#include "daemon/options.h"
#include "daemon/util/status.h"

namespace nfsdh::config {

inline constexpr char kHelperSection[] = "nfsd-helper";

// What applying a configuration found. Every line is "FILE:LINE: ...", with
// whatever came from the file escaped for a log.
struct ConfigReport {
  std::vector<std::string> warnings;  // the start goes on
  std::vector<std::string> errors;    // the start is refused
  // One line per option taken from the file: "db = '/x' (FILE:LINE)".
  std::vector<std::string> applied;
};

// The keys [nfsd-helper] knows, in the order of the table.
std::vector<std::string> KnownKeys();

// Sets in *opts every option that [nfsd-helper] of `conf` sets and
// opts->given does not mark as given on the command line, and marks it in
// opts->configured.
// `env` looks up '$NAME' values (getenv if null).
void ApplyHelperSection(const Conf& conf, Options* opts, ConfigReport* report,
                        const EnvFn& env = nullptr);

// Reads opts->config and its drop-in directory and applies [nfsd-helper].
// A missing file is no error unless --config named it. Returns non-OK when
// the start must be refused: a file that cannot be read, an include cycle
// (the message says which), or errors in report->errors.
Status LoadHelperConfig(Options* opts, ConfigReport* report,
                        const EnvFn& env = nullptr);

}  // namespace nfsdh::config

#endif  // DAEMON_CONFIG_HELPER_CONFIG_H_
