#include "daemon/options.h"

#include <getopt.h>

#include <utility>

namespace nfsdh {
namespace {

// Long options without a short form.
enum : int { kOptConfig = 256, kOptCtlSocket, kOptCldPipe };
// Migration from nfsdcld (daemon/migrate/), numbered apart from the rest.
enum : int { kOptNfsdcldDb = 340, kOptNfsdcltrackDb };
// HA callout (daemon/callout/), numbered apart from the rest.
enum : int { kOptHaCallout = 360, kOptHaCalloutTimeout };
// ID mapping (daemon/idmap/), numbered apart from the rest.
enum : int {
  kOptIdmap = 320,
  kOptIdmapConf,
  kOptIdmapCacheTimeout,
  kOptIdmapRpcDir
};

}  // namespace

const char* UsageText() {
  return "Usage: nfsd-helper [OPTION]...\n"
         "Keep the NFSv4 client records the Linux NFS server needs for reboot\n"
         "recovery, serving the kernel's client-tracking upcalls.\n"
         "\n"
         "  -n, --nfsdfs DIR   nfsd filesystem holding the upcall files\n"
         "                     (default /proc/fs/nfsd; none: do not use them)\n"
         "      --cld-pipe PATH\n"
         "                     the stock kernel's cld pipe (default\n"
         "                     /var/lib/nfs/rpc_pipefs/nfsd/cld; none: no cld)\n"
         "  -D, --db PATH      SQLite database\n"
         "                     (default /var/lib/nfs/nfsd-helper/state.sqlite)\n"
         "  -s, --scope NAME   name of the record set served (default "
         "\"default\")\n"
         "  -F, --foreground   do not detach; log to stderr\n"
         "  -d, --debug        log every request and reply\n"
         "      --config FILE  read section [nfsd-helper] of this nfs.conf(5)\n"
         "                     file and of FILE.d/*.conf (default "
         "/etc/nfs.conf)\n"
         "      --ctl-socket PATH\n"
         "                     serve helper-ctl on this socket\n"
         "                     (default /run/nfsd-helper/ctl.sock)\n"
         "      --idmap        also serve nfsd's NFSv4 ID mapping (the\n"
         "                     nfs4.idtoname and nfs4.nametoid channels)\n"
         "      --idmap-conf PATH\n"
         "                     idmapd.conf(5) file for ID mapping\n"
         "                     (default /etc/idmapd.conf)\n"
         "      --idmap-cache-timeout SECONDS\n"
         "                     how long nfsd may keep a mapping (default:\n"
         "                     Cache-Expiration of idmapd.conf, else 600)\n"
         "      --idmap-rpc-dir DIR\n"
         "                     where the channels are (default /proc/net/rpc)\n"
         "      --nfsdcld-db PATH|none\n"
         "                     nfsdcld database to import at the first start\n"
         "                     (default /var/lib/nfs/nfsdcld/main.sqlite)\n"
         "      --nfsdcltrack-db PATH|none\n"
         "                     nfsdcltrack database, imported at the first\n"
         "                     start if there is no nfsdcld database (default\n"
         "                     /var/lib/nfs/nfsdcltrack/main.sqlite)\n"
         "      --ha-callout PROG\n"
         "                     run PROG add-client|del-client SCOPE ID-HEX\n"
         "                     after each durable change of a record\n"
         "      --ha-callout-timeout SECONDS\n"
         "                     kill a callout still running after this long\n"
         "                     (default 10)\n"
         "  -h, --help         show this help and exit\n"
         "  -V, --version      show the version and exit\n"
         "\n"
         "Keys nfsdfs, cld-pipe, db, scope, foreground, debug and ctl-socket of\n"
         "[nfsd-helper] set the options of the same name; the command line\n"
         "wins over them.\n"
         "Keys idmap, idmap-conf, idmap-cache-timeout and idmap-rpc-dir set\n"
         "the --idmap options the same way. Keys nfsdcld-db and\n"
         "nfsdcltrack-db set --nfsdcld-db and --nfsdcltrack-db.\n"
         "Keys ha-callout and ha-callout-timeout set --ha-callout and\n"
         "--ha-callout-timeout.\n";
}

Status MakePathsAbsolute(const std::string& cwd, Options* opts) {
  const std::pair<const char*, std::string*> paths[] = {
      {"--db", &opts->db},
      {"--nfsdfs", &opts->nfsdfs},
      {"--cld-pipe", &opts->cld_pipe},
      {"--ctl-socket", &opts->ctl_socket},
      {"--nfsdcld-db", &opts->nfsdcld_db},
      {"--nfsdcltrack-db", &opts->nfsdcltrack_db},
      {"--idmap-conf", &opts->idmap_conf},
      {"--idmap-rpc-dir", &opts->idmap_rpc_dir},
  };
  for (const auto& [name, path] : paths) {
    if (path->empty() || (*path)[0] == '/' || *path == kNone) continue;
    if (cwd.empty())
      return Status::Invalid(std::string(name) + " " + *path +
                             " is a relative path and the current directory "
                             "cannot be found: give an absolute path");
    *path = (cwd == "/" ? cwd : cwd + "/") + *path;
  }
  return Status::Ok();
}

bool ParseSeconds(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 8) return false;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 365 * 24 * 3600) return false;
  *out = v;
  return true;
}

Status ParseOptions(int argc, char** argv, Options* out) {
  static const struct option kLong[] = {
      {"nfsdfs", required_argument, nullptr, 'n'},
      {"db", required_argument, nullptr, 'D'},
      {"scope", required_argument, nullptr, 's'},
      {"foreground", no_argument, nullptr, 'F'},
      {"debug", no_argument, nullptr, 'd'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {"config", required_argument, nullptr, kOptConfig},
      {"ctl-socket", required_argument, nullptr, kOptCtlSocket},
      {"nfsdcld-db", required_argument, nullptr, kOptNfsdcldDb},
      {"nfsdcltrack-db", required_argument, nullptr, kOptNfsdcltrackDb},
      {"cld-pipe", required_argument, nullptr, kOptCldPipe},
      {"idmap", no_argument, nullptr, kOptIdmap},
      {"idmap-conf", required_argument, nullptr, kOptIdmapConf},
      {"idmap-cache-timeout", required_argument, nullptr,
       kOptIdmapCacheTimeout},
      {"idmap-rpc-dir", required_argument, nullptr, kOptIdmapRpcDir},
      {"ha-callout", required_argument, nullptr, kOptHaCallout},
      {"ha-callout-timeout", required_argument, nullptr, kOptHaCalloutTimeout},
      {nullptr, 0, nullptr, 0},
  };
  Options o;
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":n:D:s:FdhV", kLong, nullptr)) != -1) {
    switch (c) {
      case 'n':
        o.nfsdfs = optarg;
        o.given.nfsdfs = true;
        break;
      case 'D':
        o.db = optarg;
        o.given.db = true;
        break;
      case 's':
        o.scope = optarg;
        o.given.scope = true;
        break;
      case 'F':
        o.foreground = true;
        o.given.foreground = true;
        break;
      case 'd':
        o.debug = true;
        o.given.debug = true;
        break;
      case 'h':
        o.help = true;
        break;
      case 'V':
        o.version = true;
        break;
      case kOptIdmap:
        o.idmap = true;
        o.given.idmap = true;
        break;
      case kOptIdmapConf:
        o.idmap_conf = optarg;
        o.given.idmap_conf = true;
        break;
      case kOptIdmapCacheTimeout:
        o.idmap_cache_timeout = optarg;
        o.given.idmap_cache_timeout = true;
        break;
      case kOptIdmapRpcDir:
        o.idmap_rpc_dir = optarg;
        o.given.idmap_rpc_dir = true;
        break;
      case kOptNfsdcldDb:
        o.nfsdcld_db = optarg;
        o.given.nfsdcld_db = true;
        break;
      case kOptNfsdcltrackDb:
        o.nfsdcltrack_db = optarg;
        o.given.nfsdcltrack_db = true;
        break;
      case kOptHaCallout:
        o.ha_callout = optarg;
        o.given.ha_callout = true;
        break;
      case kOptHaCalloutTimeout:
        o.ha_callout_timeout = optarg;
        o.given.ha_callout_timeout = true;
        break;
      case kOptCtlSocket:
        o.ctl_socket = optarg;
        o.given.ctl_socket = true;
        break;
      case kOptCldPipe:
        o.cld_pipe = optarg;
        o.given.cld_pipe = true;
        break;
      case kOptConfig:
        o.config = optarg;
        o.given.config = true;
        break;
      case ':':
        return Status::Invalid(std::string("option ") + argv[optind - 1] +
                               " needs an argument");
      default:
        return Status::Invalid(std::string("unknown option ") +
                               argv[optind - 1]);
    }
  }
  if (optind < argc)
    return Status::Invalid(std::string("unexpected argument '") +
                           argv[optind] + "'");
  if (o.nfsdfs.empty()) return Status::Invalid("--nfsdfs must not be empty");
  if (o.cld_pipe.empty())
    return Status::Invalid("--cld-pipe must not be empty");
  if (o.db.empty()) return Status::Invalid("--db must not be empty");
  if (o.config.empty()) return Status::Invalid("--config must not be empty");
  if (o.nfsdcld_db.empty() || o.nfsdcltrack_db.empty())
    return Status::Invalid(
        "--nfsdcld-db and --nfsdcltrack-db must not be empty (use none)");
  if (o.ctl_socket.empty() || o.ctl_socket[0] != '/')
    return Status::Invalid("--ctl-socket must be an absolute path");
  if (o.idmap_conf.empty())
    return Status::Invalid("--idmap-conf must not be empty");
  if (o.idmap_rpc_dir.empty())
    return Status::Invalid("--idmap-rpc-dir must not be empty");
  int64_t seconds;
  if (o.given.idmap_cache_timeout &&
      !ParseSeconds(o.idmap_cache_timeout, &seconds))
    return Status::Invalid("--idmap-cache-timeout '" + o.idmap_cache_timeout +
                           "': give a number of seconds, 1 to 31536000");
  if (o.given.ha_callout && (o.ha_callout.empty() || o.ha_callout[0] != '/'))
    return Status::Invalid("--ha-callout must be an absolute path");
  if (o.given.ha_callout_timeout &&
      (!ParseSeconds(o.ha_callout_timeout, &seconds) || seconds > 3600))
    return Status::Invalid("--ha-callout-timeout '" + o.ha_callout_timeout +
                           "': give a number of seconds, 1 to 3600");
  if (!ValidScopeName(o.scope))
    return Status::Invalid("--scope '" + o.scope +
                           "': use 1-64 characters of A-Z a-z 0-9 . _ -");
  *out = o;
  return Status::Ok();
}

}  // namespace nfsdh
