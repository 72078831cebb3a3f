// The [nfsd-helper] section of nfs.conf(5): the daemon's options from the
// configuration file, below the command line.
//
// Keys: those options of daemon/options.h's OptionTable() that have one
// (all but --config, --help and --version), named as the long option. A
// value is checked as the option's argument is on the command line
// (OptionValueProblem), except that a flag's key is a boolean, as nfs-utils'
// conf_get_bool reads them. The last assignment of a key, over nfs.conf and
// then nfs.conf.d/*.conf, is the one in force; an option given on the
// command line wins over it.
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

// The keys [nfsd-helper] knows, in the order of OptionTable().
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
