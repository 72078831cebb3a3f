// The built-in defaults that nfsd-helper and helper-ctl must agree on: where
// the daemon serves its control socket and keeps its database, which scope
// and nfs.conf file it uses, where the kernel's upcalls are.
//
// Rationale. helper-ctl finds the daemon, and reads or writes its database
// when the daemon does not answer, by the same defaults the daemon starts
// with; a default changed on one side only would make helper-ctl look in the
// wrong place without any error. So both include this one header, which is
// header-only and includes nothing, so that any header of either side may
// include it (ctl/ must not depend on the daemon's option parsing,
// daemon/options.h). Defaults only one side needs stay with that side.
//
// man/nfsd-helper.8 and man/helper-ctl.8 quote these values; tests check
// that nfsd-helper --help and helper-ctl help VERB show them
// (daemon/options_test.cc, ctl/dispatch_test.cc).
#ifndef COMMON_DEFAULTS_H_
#define COMMON_DEFAULTS_H_

namespace nfsdh {

// The nfsd filesystem holding the four upcall files (--nfsdfs).
inline constexpr char kDefaultNfsdfs[] = "/proc/fs/nfsd";
// The stock kernel's cld pipe (--cld-pipe), unless nfs.conf's [general]
// pipefs-directory moves it.
inline constexpr char kDefaultCldPipe[] = "/var/lib/nfs/rpc_pipefs/nfsd/cld";
// nfsd-helper's SQLite database (--db).
inline constexpr char kDefaultDb[] = "/var/lib/nfs/nfsd-helper/state.sqlite";
// The scope served (--scope).
inline constexpr char kDefaultScope[] = "default";
// The nfs.conf(5) file read for [nfsd-helper] (--config); its drop-in
// directory is this + ".d".
inline constexpr char kDefaultConfig[] = "/etc/nfs.conf";
// Where nfsd-helper serves the control protocol (control-proto/nfsdh_ctl.x) and
// helper-ctl looks for it (--ctl-socket): an AF_LOCAL stream socket, mode
// 0600, in a directory of mode 0700.
inline constexpr char kDefaultCtlSocket[] = "/run/nfsd-helper/ctl.sock";
// nfs-utils' databases, imported at the first start (--nfsdcld-db,
// --nfsdcltrack-db) and written by helper-ctl export-nfsdcld.
// daemon/migrate/nfsdcld_import.h has copies (migrate::); a test checks that
// they agree.
inline constexpr char kDefaultNfsdcldDb[] = "/var/lib/nfs/nfsdcld/main.sqlite";
inline constexpr char kDefaultNfsdcltrackDb[] =
    "/var/lib/nfs/nfsdcltrack/main.sqlite";
// The value of --nfsdfs, --cld-pipe, --nfsdcld-db and --nfsdcltrack-db that
// turns that protocol or import off.
inline constexpr char kNone[] = "none";

}  // namespace nfsdh

#endif  // COMMON_DEFAULTS_H_
