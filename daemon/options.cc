#include "daemon/options.h"

#include <getopt.h>

#include <string>
#include <vector>

namespace nfsdh {
namespace {

// Shorthands for the table.
constexpr OptionKind kFlag = OptionKind::kFlag;
constexpr OptionKind kPath = OptionKind::kPath;
constexpr OptionKind kPathOrNone = OptionKind::kPathOrNone;
constexpr OptionKind kAbsolutePath = OptionKind::kAbsolutePath;
constexpr OptionKind kScope = OptionKind::kScope;
constexpr OptionKind kName = OptionKind::kName;
constexpr OptionKind kUrls = OptionKind::kUrls;
constexpr ConfKey kKey = ConfKey::kSameName;
constexpr ConfKey kNoKey = ConfKey::kNone;

// An option that takes no argument.
OptionDef Flag(const char* name, char short_name, ConfKey conf,
               bool Options::*flag, bool GivenOptions::*given,
               const char* help) {
  return {name,    short_name, kFlag, nullptr, conf,
          nullptr, flag,       given, help,    0};
}

// An option that takes an argument, called `arg` in --help.
OptionDef Value(const char* name, char short_name, OptionKind kind,
                const char* arg, ConfKey conf, std::string Options::*text,
                bool GivenOptions::*given, const char* help) {
  return {name, short_name, kind, arg, conf, text, nullptr, given, help, 0};
}

// An option that takes a number of seconds, 1 to `max`.
OptionDef Seconds(const char* name, int64_t max, ConfKey conf,
                  std::string Options::*text, bool GivenOptions::*given,
                  const char* help) {
  return {name, 0,  OptionKind::kSeconds, "SECONDS", conf, text, nullptr, given,
          help, max};
}

std::vector<OptionDef> MakeOptionTable() {
  using O = Options;
  using G = GivenOptions;
  return {
      Value("nfsdfs", 'n', kPathOrNone, "DIR", kKey, &O::nfsdfs, &G::nfsdfs,
            "nfsd filesystem holding the upcall files\n"
            "(default /proc/fs/nfsd; none: do not use them)"),
      Value("cld-pipe", 0, kPathOrNone, "PATH", kKey, &O::cld_pipe,
            &G::cld_pipe,
            "the stock kernel's cld pipe (default\n"
            "/var/lib/nfs/rpc_pipefs/nfsd/cld; none: no cld)"),
      Value("db", 'D', kPath, "PATH", kKey, &O::db, &G::db,
            "SQLite database\n"
            "(default /var/lib/nfs/nfsd-helper/state.sqlite)"),
      Value("scope", 's', kScope, "NAME", kKey, &O::scope, &G::scope,
            "name of the record set served (default \"default\")"),
      Flag("foreground", 'F', kKey, &O::foreground, &G::foreground,
           "do not detach; log to stderr"),
      Flag("debug", 'd', kKey, &O::debug, &G::debug,
           "log every request and reply"),
      Value("config", 0, kPath, "FILE", kNoKey, &O::config, &G::config,
            "read section [nfsd-helper] of this nfs.conf(5)\n"
            "file and of FILE.d/*.conf (default /etc/nfs.conf)"),
      Value("ctl-socket", 0, kAbsolutePath, "PATH", kKey, &O::ctl_socket,
            &G::ctl_socket,
            "serve helper-ctl on this socket\n"
            "(default /run/nfsd-helper/ctl.sock)"),
      Flag("idmap", 0, kKey, &O::idmap, &G::idmap,
           "also serve nfsd's NFSv4 ID mapping (the\n"
           "nfs4.idtoname and nfs4.nametoid channels)"),
      Value("idmap-conf", 0, kPath, "PATH", kKey, &O::idmap_conf,
            &G::idmap_conf,
            "idmapd.conf(5) file for ID mapping\n"
            "(default /etc/idmapd.conf)"),
      Seconds("idmap-cache-timeout", 365 * 24 * 3600, kKey,
              &O::idmap_cache_timeout, &G::idmap_cache_timeout,
              "how long nfsd may keep a mapping (default:\n"
              "Cache-Expiration of idmapd.conf, else 600)"),
      Value("idmap-rpc-dir", 0, kPath, "DIR", kKey, &O::idmap_rpc_dir,
            &G::idmap_rpc_dir,
            "where the channels are (default /proc/net/rpc)"),
      Value("nfsdcld-db", 0, kPathOrNone, "PATH|none", kKey, &O::nfsdcld_db,
            &G::nfsdcld_db,
            "nfsdcld database to import at the first start\n"
            "(default /var/lib/nfs/nfsdcld/main.sqlite)"),
      Value("nfsdcltrack-db", 0, kPathOrNone, "PATH|none", kKey,
            &O::nfsdcltrack_db, &G::nfsdcltrack_db,
            "nfsdcltrack database, imported at the first\n"
            "start if there is no nfsdcld database (default\n"
            "/var/lib/nfs/nfsdcltrack/main.sqlite)"),
      Value("ha-callout", 0, kAbsolutePath, "PROG", kKey, &O::ha_callout,
            &G::ha_callout,
            "run PROG add-client|del-client SCOPE ID-HEX\n"
            "after each durable change of a record"),
      Seconds("ha-callout-timeout", 3600, kKey, &O::ha_callout_timeout,
              &G::ha_callout_timeout,
              "kill a callout still running after this long\n"
              "(default 10)"),
      Value("etcd-endpoints", 0, kUrls, "URL[,URL]...", kKey,
            &O::etcd_endpoints, &G::etcd_endpoints,
            "cluster mode: keep the records in the etcd\n"
            "cluster at these URLs, not in the database"),
      Value("cluster", 0, kName, "NAME", kKey, &O::cluster, &G::cluster,
            "the cluster's name in etcd (default \"default\")"),
      Value("node", 0, kName, "NAME", kKey, &O::node, &G::node,
            "this node's name in the cluster (default: the\n"
            "host name)"),
      Seconds("etcd-lease-ttl", 3600, kKey, &O::etcd_lease_ttl,
              &G::etcd_lease_ttl,
              "how long this node may serve without reaching\n"
              "etcd (default 10)"),
      Value("etcd-cacert", 0, kPath, "PATH", kKey, &O::etcd_cacert,
            &G::etcd_cacert,
            "CA certificate of the etcd members (https)"),
      Value("etcd-cert", 0, kPath, "PATH", kKey, &O::etcd_cert, &G::etcd_cert,
            "this node's TLS client certificate for etcd"),
      Value("etcd-key", 0, kPath, "PATH", kKey, &O::etcd_key, &G::etcd_key,
            "the private key of --etcd-cert"),
      Value("etcd-user", 0, kName, "NAME", kKey, &O::etcd_user, &G::etcd_user,
            "authenticate to etcd as this user"),
      Value("etcd-password-file", 0, kPath, "PATH", kKey,
            &O::etcd_password_file, &G::etcd_password_file,
            "file holding --etcd-user's password"),
      Flag("help", 'h', kNoKey, &O::help, nullptr, "show this help and exit"),
      Flag("version", 'V', kNoKey, &O::version, nullptr,
           "show the version and exit"),
  };
}

// getopt_long's value for the long-only option at `index` of the table:
// above every character a short option can be.
constexpr int kLongOnlyBase = 256;

// "a, b and c".
std::string JoinedList(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += items[i];
  }
  return out;
}

// `text` with its words wrapped into lines of at most `width` characters.
std::string Wrapped(const std::string& text, size_t width) {
  std::string out, line;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(' ', at);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line + "\n";
}

std::string MakeUsageText() {
  // The descriptions start in this column; an option too long to leave two
  // spaces before it gets a line of its own.
  constexpr size_t kColumn = 21;
  std::string text =
      "Usage: nfsd-helper [OPTION]...\n"
      "Keep the NFSv4 client records the Linux NFS server needs for reboot\n"
      "recovery, serving the kernel's client-tracking upcalls.\n"
      "\n";
  std::vector<std::string> no_key;
  for (const OptionDef& d : OptionTable()) {
    std::string head = "  ";
    head += d.short_name ? std::string("-") + d.short_name + ", " : "    ";
    head += std::string("--") + d.name;
    if (d.arg) head += std::string(" ") + d.arg;
    if (head.size() + 2 > kColumn) {
      head += "\n";
      head.append(kColumn, ' ');
    } else {
      head.append(kColumn - head.size(), ' ');
    }
    std::string help = d.help;
    for (size_t nl = help.find('\n'); nl != std::string::npos;
         nl = help.find('\n', nl + 1 + kColumn))
      help.insert(nl + 1, kColumn, ' ');
    text += head + help + "\n";
    if (d.conf == ConfKey::kNone) no_key.push_back(std::string("--") + d.name);
  }
  return text + "\n" +
         Wrapped("Each option but " + JoinedList(no_key) +
                     " may also be set by the key of the same name in "
                     "section [nfsd-helper] of the nfs.conf file; the "
                     "command line wins over it.",
                 72);
}

}  // namespace

const std::vector<OptionDef>& OptionTable() {
  static const std::vector<OptionDef> table = MakeOptionTable();
  return table;
}

const char* UsageText() {
  static const std::string text = MakeUsageText();
  return text.c_str();
}

std::string OptionValueProblem(const OptionDef& def, const std::string& value) {
  switch (def.kind) {
    case OptionKind::kFlag:
      return "";
    case OptionKind::kPath:
    case OptionKind::kPathOrNone:
      return value.empty() ? "give a path" : "";
    case OptionKind::kAbsolutePath:
      return !value.empty() && value[0] == '/' ? "" : "give an absolute path";
    case OptionKind::kScope:
    case OptionKind::kName:
      return ValidScopeName(value) ? "" : kScopeNameRule;
    case OptionKind::kUrls: {
      std::vector<std::string> urls;
      return SplitUrls(value, &urls);
    }
    case OptionKind::kSeconds: {
      int64_t seconds;
      if (ParseSeconds(value, &seconds) && seconds <= def.max_seconds)
        return "";
      return "give a number of seconds, 1 to " +
             std::to_string(def.max_seconds);
    }
  }
  return "";
}

Status MakePathsAbsolute(const std::string& cwd, Options* opts) {
  for (const OptionDef& d : OptionTable()) {
    if (d.kind != OptionKind::kPath && d.kind != OptionKind::kPathOrNone &&
        d.kind != OptionKind::kAbsolutePath)
      continue;
    if (d.text == &Options::config) continue;  // read already
    std::string* path = &(opts->*d.text);
    if (path->empty() || (*path)[0] == '/' || *path == kNone) continue;
    if (cwd.empty())
      return Status::Invalid(std::string("--") + d.name + " " + *path +
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

std::string SplitUrls(const std::string& text, std::vector<std::string>* out) {
  out->clear();
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    const std::string url = text.substr(at, comma - at);
    at = comma + 1;
    const size_t host = url.rfind("https://", 0) == 0  ? 8
                        : url.rfind("http://", 0) == 0 ? 7
                                                       : 0;
    if (host == 0 || url.size() == host ||
        url.find_first_of(" \t\n/?#", host) != std::string::npos)
      return "give URLs such as http://192.0.2.1:2379, separated by commas";
    out->push_back(url);
  }
  return "";
}

namespace {

// The message for a bad argument `value` of `def` on the command line.
std::string CommandLineProblem(const OptionDef& def, const std::string& value) {
  const std::string flag = std::string("--") + def.name;
  switch (def.kind) {
    case OptionKind::kPath:
    case OptionKind::kPathOrNone:
      if (!value.empty()) return "";
      return flag + " must not be empty" +
             (def.kind == OptionKind::kPathOrNone ? " (use none)" : "");
    case OptionKind::kAbsolutePath:
      return value.empty() || value[0] != '/'
                 ? flag + " must be an absolute path"
                 : "";
    default: {
      std::string problem = OptionValueProblem(def, value);
      return problem.empty() ? "" : flag + " '" + value + "': " + problem;
    }
  }
}

}  // namespace

Status ParseOptions(int argc, char** argv, Options* out) {
  const std::vector<OptionDef>& table = OptionTable();
  std::vector<struct option> long_options;
  std::string short_options = ":";  // ':' reports a missing argument
  for (size_t i = 0; i < table.size(); ++i) {
    const OptionDef& d = table[i];
    const bool arg = d.kind != OptionKind::kFlag;
    long_options.push_back(
        {d.name, arg ? required_argument : no_argument, nullptr,
         d.short_name ? d.short_name : kLongOnlyBase + static_cast<int>(i)});
    if (d.short_name) {
      short_options += d.short_name;
      if (arg) short_options += ':';
    }
  }
  long_options.push_back({nullptr, 0, nullptr, 0});

  Options o;
  opterr = 0;
  // 0, not 1: glibc then also forgets how far into an argument the last
  // scan got ("-Dx" cut short by an error), which a second parse in the
  // same process (the tests) would otherwise trip over.
  optind = 0;
  int c;
  while ((c = getopt_long(argc, argv, short_options.c_str(),
                          long_options.data(), nullptr)) != -1) {
    if (c == ':')
      return Status::Invalid(std::string("option ") + argv[optind - 1] +
                             " needs an argument");
    const OptionDef* def = nullptr;
    if (c >= kLongOnlyBase &&
        c < kLongOnlyBase + static_cast<int>(table.size())) {
      def = &table[c - kLongOnlyBase];
    } else if (c != '?') {
      for (const OptionDef& d : table)
        if (d.short_name == c) def = &d;
    }
    if (def == nullptr)
      return Status::Invalid(std::string("unknown option ") + argv[optind - 1]);
    if (def->kind == OptionKind::kFlag) {
      o.*def->flag = true;
    } else {
      o.*def->text = optarg;
    }
    if (def->given) o.given.*def->given = true;
  }
  if (optind < argc)
    return Status::Invalid(std::string("unexpected argument '") + argv[optind] +
                           "'");
  for (const OptionDef& d : table) {
    if (d.kind == OptionKind::kFlag || !(o.given.*d.given)) continue;
    std::string problem = CommandLineProblem(d, o.*d.text);
    if (!problem.empty()) return Status::Invalid(problem);
  }
  *out = o;
  return Status::Ok();
}

}  // namespace nfsdh
