#include "daemon/options.h"

#include <getopt.h>

namespace nfsdh {
namespace {

// Long options without a short form.
enum : int { kOptConfig = 256, kOptCtlSocket };

}  // namespace

const char* UsageText() {
  return "Usage: nfsd-helper [OPTION]...\n"
         "Keep the NFSv4 client records the Linux NFS server needs for reboot\n"
         "recovery, serving the kernel's client-tracking upcalls.\n"
         "\n"
         "  -n, --nfsdfs DIR   nfsd filesystem holding the upcall files\n"
         "                     (default /proc/fs/nfsd)\n"
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
         "  -h, --help         show this help and exit\n"
         "  -V, --version      show the version and exit\n"
         "\n"
         "Keys nfsdfs, db, scope, foreground, debug and ctl-socket of\n"
         "[nfsd-helper] set the options of the same name; the command line\n"
         "wins over them.\n";
}

bool ValidScopeName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
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
      case kOptCtlSocket:
        o.ctl_socket = optarg;
        o.given.ctl_socket = true;
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
  if (o.db.empty()) return Status::Invalid("--db must not be empty");
  if (o.config.empty()) return Status::Invalid("--config must not be empty");
  if (o.ctl_socket.empty() || o.ctl_socket[0] != '/')
    return Status::Invalid("--ctl-socket must be an absolute path");
  if (!ValidScopeName(o.scope))
    return Status::Invalid("--scope '" + o.scope +
                           "': use 1-64 characters of A-Z a-z 0-9 . _ -");
  *out = o;
  return Status::Ok();
}

}  // namespace nfsdh
