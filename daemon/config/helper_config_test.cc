// [nfsd-helper] of nfs.conf as the daemon's options: keys, values refused,
// precedence (nfs.conf < nfs.conf.d < command line), and the real daemon.
#include "daemon/config/helper_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/sim/process.h"

namespace nfsdh::config {
namespace {

using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

constexpr char kName[] = "/etc/nfs.conf";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-hconf-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string Write(const std::string& rel, const std::string& text) const {
    std::string full = path + "/" + rel;
    std::string dir = full.substr(0, full.rfind('/'));
    std::system(("mkdir -p '" + dir + "'").c_str());
    std::ofstream f(full, std::ios::binary);
    f << text;
    REQUIRE(f.good());
    return full;
  }
};

// An environment with only `vars`.
EnvFn FakeEnv(std::map<std::string, std::string> vars = {}) {
  return [vars](const std::string& n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// Applies `text` (as /etc/nfs.conf) to `opts`.
ConfigReport Apply(std::string_view text, Options* opts,
                   const EnvFn& env = FakeEnv()) {
  Conf c;
  Status s = ParseConf(text, kName, &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  ConfigReport r;
  ApplyHelperSection(c, opts, &r, env);
  return r;
}

Options ParseArgs(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "nfsd-helper";
  argv.push_back(prog.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Options o;
  Status s = ParseOptions(static_cast<int>(argv.size() - 1), argv.data(), &o);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return o;
}

TEST_CASE("every key of [nfsd-helper] sets its option", "[config]") {
  Options o;
  ConfigReport r = Apply(
      "[nfsd-helper]\n"
      "nfsdfs = /srv/nfsd\n"
      "db = /srv/state.sqlite\n"
      "scope = ha-1\n"
      "foreground = yes\n"
      "debug = on\n",
      &o);
  CHECK(r.errors.empty());
  CHECK(r.warnings.empty());
  CHECK(o.nfsdfs == "/srv/nfsd");
  CHECK(o.db == "/srv/state.sqlite");
  CHECK(o.scope == "ha-1");
  CHECK(o.foreground);
  CHECK(o.debug);
  // Chosen explicitly, in the file (what the default scope's check needs).
  CHECK(o.configured.scope);
  CHECK(o.configured.db);
  CHECK_FALSE(o.configured.ctl_socket);
  CHECK_FALSE(o.given.scope);
  CHECK(r.applied == Lines{"nfsdfs = '/srv/nfsd' (/etc/nfs.conf:2)",
                           "db = '/srv/state.sqlite' (/etc/nfs.conf:3)",
                           "scope = 'ha-1' (/etc/nfs.conf:4)",
                           "foreground = 'yes' (/etc/nfs.conf:5)",
                           "debug = 'on' (/etc/nfs.conf:6)"});
}

TEST_CASE(
    "keys are case-insensitive, booleans read as nfs-utils reads them, "
    "other sections ignored",
    "[config]") {
  Options o;
  o.foreground = true;
  ConfigReport r = Apply(
      "[gssd]\n"
      "debug = 1\n"
      "db = /not/ours\n"
      "[NFSD-HELPER]\n"
      "DEBUG = On\n"
      "Foreground = f\n"
      "[nfsdcld]\n"
      "storagedir = /var/lib/nfs/nfsdcld\n",
      &o);
  CHECK(r.errors.empty());
  CHECK(r.warnings.empty());
  CHECK(o.debug);
  CHECK(!o.foreground);
  CHECK(o.db == kDefaultDb);
  CHECK(o.nfsdfs == kDefaultNfsdfs);
  CHECK(o.scope == kDefaultScope);
}

TEST_CASE(
    "nfs-utils' pipefs-directory and nfsdcld storagedir move the cld pipe "
    "and nfsdcld's database, below our own keys",
    "[config]") {
  // Debian's /etc/nfs.conf: rpc_pipefs on /run/rpc_pipefs, where nfsdcld
  // opens its pipe.
  {
    Options o;
    ConfigReport r = Apply(
        "[general]\n"
        "pipefs-directory=/run/rpc_pipefs/\n"
        "[nfsdcld]\n"
        "storagedir = /srv/nfsdcld\n",
        &o);
    CHECK(r.errors.empty());
    CHECK(r.warnings.empty());
    CHECK(o.cld_pipe == "/run/rpc_pipefs/nfsd/cld");
    CHECK(o.nfsdcld_db == "/srv/nfsdcld/main.sqlite");
    CHECK(r.applied ==
          Lines{"cld-pipe = '/run/rpc_pipefs/nfsd/cld' (/etc/nfs.conf:2: "
                "[general] pipefs-directory)",
                "nfsdcld-db = '/srv/nfsdcld/main.sqlite' (/etc/nfs.conf:4: "
                "[nfsdcld] storagedir)"});
  }
  // [nfsd-helper] wins, wherever it is in the file.
  {
    Options o;
    ConfigReport r = Apply(
        "[nfsd-helper]\n"
        "cld-pipe = /x/cld\n"
        "[general]\n"
        "pipefs-directory=/run/rpc_pipefs\n",
        &o);
    CHECK(o.cld_pipe == "/x/cld");
    CHECK(o.nfsdcld_db == "/var/lib/nfs/nfsdcld/main.sqlite");
  }
  // And the command line wins over both.
  {
    Options o = ParseArgs({"--cld-pipe", "none"});
    Apply("[general]\npipefs-directory=/run/rpc_pipefs\n", &o);
    CHECK(o.cld_pipe == "none");
  }
  // A name nfs-utils cannot expand leaves the default, with a warning.
  {
    Options o;
    ConfigReport r =
        Apply("[general]\npipefs-directory=$NOWHERE\n", &o, FakeEnv());
    CHECK(r.errors.empty());
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].find("[general] pipefs-directory") !=
          std::string::npos);
    CHECK(o.cld_pipe == kDefaultCldPipe);
  }
}

TEST_CASE(
    "conf/nfsd-helper.conf (the packaged nfs.conf.d file) names every key and "
    "shows its default",
    "[config]") {
  std::ifstream f(std::string(NFSDH_SOURCE_DIR) + "/conf/nfsd-helper.conf");
  REQUIRE(f.good());
  // Uncommented, every "# key = value" line of the section must leave the
  // options as they are by default, on Debian's nfs.conf.
  std::string text = "[general]\npipefs-directory=/run/rpc_pipefs\n";
  std::vector<std::string> keys;
  std::string line;
  bool in_section = false;
  while (std::getline(f, line)) {
    if (line == "[nfsd-helper]") {
      in_section = true;
      text += line + "\n";
      continue;
    }
    if (!in_section || line.rfind("# ", 0) != 0) continue;
    std::string rest = line.substr(2);
    size_t eq = rest.find(" = ");
    if (eq == std::string::npos || rest.find(' ') < eq) continue;
    std::string key = rest.substr(0, eq);
    keys.push_back(key);
    // Examples: their default is none (or the host name).
    static const std::set<std::string> examples = {
        "ha-callout", "etcd-endpoints", "node",     "etcd-cacert",
        "etcd-cert",  "etcd-key",       "etcd-user", "etcd-password-file"};
    if (examples.count(key)) continue;
    text += rest + "\n";
  }
  std::vector<std::string> known = KnownKeys();
  std::sort(keys.begin(), keys.end());
  std::sort(known.begin(), known.end());
  CHECK(keys == known);
  Options defaults;
  Apply("[general]\npipefs-directory=/run/rpc_pipefs\n", &defaults);
  Options o;
  ConfigReport r = Apply(text, &o);
  INFO(text);
  CHECK(r.errors.empty());
  CHECK(r.warnings.empty());
  CHECK(o.db == defaults.db);
  CHECK(o.nfsdfs == defaults.nfsdfs);
  CHECK(o.cld_pipe == defaults.cld_pipe);
  CHECK(o.scope == defaults.scope);
  CHECK(o.ctl_socket == defaults.ctl_socket);
  CHECK(o.nfsdcld_db == defaults.nfsdcld_db);
  CHECK(o.nfsdcltrack_db == defaults.nfsdcltrack_db);
  CHECK(o.idmap == defaults.idmap);
  CHECK(o.idmap_conf == defaults.idmap_conf);
  CHECK(o.idmap_rpc_dir == defaults.idmap_rpc_dir);
  CHECK(o.idmap_cache_timeout == "600");
  CHECK(o.ha_callout_timeout == "10");
  CHECK(o.etcd_endpoints == defaults.etcd_endpoints);
  CHECK(o.cluster == defaults.cluster);
  CHECK(o.etcd_lease_ttl == "10");
  CHECK(o.debug == defaults.debug);
  CHECK(o.foreground == defaults.foreground);
}

TEST_CASE("$NAME values are expanded before they are checked", "[config]") {
  Options o;
  ConfigReport r = Apply(
      "[environment]\n"
      "STATE = /srv/state\n"
      "[nfsd-helper]\n"
      "db = $STATE\n"
      "scope = $SCOPE\n",
      &o, FakeEnv({{"SCOPE", "from-env"}}));
  CHECK(r.errors.empty());
  CHECK(o.db == "/srv/state");
  CHECK(o.scope == "from-env");
}

TEST_CASE("an unknown key is a warning with its file and line", "[config]") {
  Options o;
  ConfigReport r = Apply(
      "[nfsd-helper]\n"
      "db = /x\n"
      "threads = 8\n"
      "Config = /etc/other.conf\n"
      "[nfsd-helper \"ns1\"]\n"
      "db = /y\n"
      "[mountd]\n"
      "threads = 8\n",
      &o);
  CHECK(r.errors.empty());
  CHECK(r.warnings ==
        Lines{"/etc/nfs.conf:5: [nfsd-helper \"ns1\"]: nfsd-helper reads "
              "only [nfsd-helper]; this section is ignored",
              "/etc/nfs.conf:3: [nfsd-helper] unknown key 'threads' ignored; "
              "known keys: nfsdfs, cld-pipe, db, scope, foreground, debug, "
              "ctl-socket, idmap, idmap-conf, idmap-cache-timeout, "
              "idmap-rpc-dir, nfsdcld-db, nfsdcltrack-db, ha-callout, "
              "ha-callout-timeout, etcd-endpoints, cluster, node, "
              "etcd-lease-ttl, etcd-cacert, etcd-cert, etcd-key, etcd-user, "
              "etcd-password-file",
              "/etc/nfs.conf:4: [nfsd-helper] unknown key 'Config' ignored; "
              "known keys: nfsdfs, cld-pipe, db, scope, foreground, debug, "
              "ctl-socket, idmap, idmap-conf, idmap-cache-timeout, "
              "idmap-rpc-dir, nfsdcld-db, nfsdcltrack-db, ha-callout, "
              "ha-callout-timeout, etcd-endpoints, cluster, node, "
              "etcd-lease-ttl, etcd-cacert, etcd-cert, etcd-key, etcd-user, "
              "etcd-password-file"});
  CHECK(o.db == "/x");  // the start goes on
}

TEST_CASE("every bad value is refused with its message", "[config]") {
  struct Case {
    std::string line;
    std::string error;
  };
  const std::string where = "/etc/nfs.conf:2: [nfsd-helper] ";
  const Case cases[] = {
      {"nfsdfs =", where + "nfsdfs: empty value: give a path, or remove the "
                           "line for the default"},
      {"db = \"\"", where + "db: empty value: give a path, or remove the line "
                            "for the default"},
      {"scope = # no value", where + "scope: empty value: give a scope name, "
                                     "or remove the line for the default"},
      {"debug =", where + "debug: empty value: give a boolean, or remove the "
                          "line for the default"},
      {"foreground = ''", where + "foreground: empty value: give a boolean, "
                                  "or remove the line for the default"},
      {"scope = \"two words\"",
       where + "scope 'two words': use 1-64 characters of A-Z a-z 0-9 . _ -"},
      {"scope = a/b",
       where + "scope 'a/b': use 1-64 characters of A-Z a-z 0-9 . _ -"},
      {"scope = " + std::string(65, 'x'),
       where + "scope '" + std::string(65, 'x') +
           "': use 1-64 characters of A-Z a-z 0-9 . _ -"},
      {"scope = \"caf\xc3\xa9\"",
       where + "scope 'caf\\xc3\\xa9': use 1-64 characters of A-Z a-z 0-9 . "
               "_ -"},
      {"debug = maybe", where + "debug 'maybe': not a boolean: use 1, t, "
                                "true, y, yes or on, or 0, f, false, n, no "
                                "or off"},
      {"debug = all", where + "debug 'all': not a boolean: use 1, t, true, "
                              "y, yes or on, or 0, f, false, n, no or off"},
      {"foreground = 2", where + "foreground '2': not a boolean: use 1, t, "
                                 "true, y, yes or on, or 0, f, false, n, no "
                                 "or off"},
      {"db = $NO_SUCH_VAR",
       where + "db '$NO_SUCH_VAR': $NO_SUCH_VAR is set neither in the "
               "environment nor in [environment]"},
      {"scope = $BAD_SCOPE",
       where + "scope '$BAD_SCOPE' ('bad scope'): use 1-64 characters of A-Z "
               "a-z 0-9 . _ -"},
  };
  for (const Case& c : cases) {
    INFO(c.line);
    Options o;
    ConfigReport r = Apply("[nfsd-helper]\n" + c.line + "\n", &o,
                           FakeEnv({{"BAD_SCOPE", "bad scope"}}));
    CHECK(r.errors == Lines{c.error});
    CHECK(r.warnings.empty());
    CHECK(r.applied.empty());
    CHECK(o.nfsdfs == kDefaultNfsdfs);
    CHECK(o.db == kDefaultDb);
    CHECK(o.scope == kDefaultScope);
    CHECK(!o.debug);
    CHECK(!o.foreground);
  }
}

TEST_CASE("the last assignment decides, even an empty one", "[config]") {
  Options o;
  // Good after bad: fine. Empty after good: refused, although nfs-utils
  // would keep the earlier value.
  ConfigReport r = Apply(
      "[nfsd-helper]\n"
      "scope = bad!\n"
      "scope = good\n"
      "db = /x\n"
      "db =\n",
      &o);
  CHECK(o.scope == "good");
  CHECK(r.errors ==
        Lines{"/etc/nfs.conf:5: [nfsd-helper] db: empty value: give a path, "
              "or remove the line for the default"});
}

TEST_CASE("a bad value that the command line overrides is only a warning",
          "[config]") {
  Options o = ParseArgs({"--scope", "cli", "--debug"});
  ConfigReport r = Apply(
      "[nfsd-helper]\n"
      "scope = not valid\n"
      "debug = maybe\n",
      &o);
  CHECK(r.errors.empty());
  CHECK(r.warnings ==
        Lines{"/etc/nfs.conf:2: [nfsd-helper] scope 'not valid': use 1-64 "
              "characters of A-Z a-z 0-9 . _ - (not used: --scope is on the "
              "command line)",
              "/etc/nfs.conf:3: [nfsd-helper] debug 'maybe': not a boolean: "
              "use 1, t, true, y, yes or on, or 0, f, false, n, no or off "
              "(not used: --debug is on the command line)"});
  CHECK(o.scope == "cli");
  CHECK(o.debug);
}

TEST_CASE(
    "lines nfs-utils skips are errors in [nfsd-helper], warnings "
    "elsewhere",
    "[config]") {
  Options o;
  ConfigReport r = Apply(
      "stray = 1\n"
      "[gssd]\n"
      "a broken line\n"
      "x = \"unclosed\n"
      "[nfsd-helper]\n"
      "db = \"/unclosed\n"
      "just words\n"
      "[nfsd-helper \"sub\"]\n"
      "broken here too\n"
      "[nfsd-helper\n"
      "scope = lost\n",
      &o);
  CHECK(r.warnings ==
        Lines{"/etc/nfs.conf:1: assignment before any section header; "
              "ignored",
              "/etc/nfs.conf:3: neither a section header, an assignment nor "
              "a comment; ignored",
              "/etc/nfs.conf:4: no closing \" in the value; the line is "
              "ignored",
              "/etc/nfs.conf:9: neither a section header, an assignment nor "
              "a comment; ignored",
              "/etc/nfs.conf:8: [nfsd-helper \"sub\"]: nfsd-helper reads only "
              "[nfsd-helper]; this section is ignored"});
  CHECK(r.errors ==
        Lines{"/etc/nfs.conf:6: no closing \" in the value; the line is "
              "ignored",
              "/etc/nfs.conf:7: neither a section header, an assignment nor "
              "a comment; ignored",
              "/etc/nfs.conf:10: no ']' closes the section header; lines up "
              "to the next section header are ignored",
              "/etc/nfs.conf:11: assignment after a broken section header; "
              "ignored"});

  Options o2;
  ConfigReport last = Apply("[nfsd-helper]\ndb = /x", &o2);
  CHECK(last.errors == Lines{"/etc/nfs.conf:2: no newline at the end of the "
                             "file: nfs-utils ignores this last line"});
  CHECK(o2.db == kDefaultDb);
}

TEST_CASE("command-line options: --config and what was given", "[config]") {
  Options d = ParseArgs({});
  CHECK(d.config == "/etc/nfs.conf");
  CHECK(!d.given.config);
  CHECK(!d.given.nfsdfs);
  CHECK(!d.given.db);
  CHECK(!d.given.scope);
  CHECK(!d.given.debug);
  CHECK(!d.given.foreground);

  Options o = ParseArgs({"--config", "/tmp/x.conf", "-n", "/n", "-D", "/d",
                         "-s", "s", "-F", "-d"});
  CHECK(o.config == "/tmp/x.conf");
  CHECK(o.given.config);
  CHECK(o.given.nfsdfs);
  CHECK(o.given.db);
  CHECK(o.given.scope);
  CHECK(o.given.debug);
  CHECK(o.given.foreground);
  CHECK(ParseArgs({"--config=/c"}).config == "/c");

  auto error = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    std::string prog = "nfsd-helper";
    argv.push_back(prog.data());
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    Options out;
    return ParseOptions(static_cast<int>(argv.size() - 1), argv.data(), &out)
        .message();
  };
  CHECK(error({"--config"}) == "option --config needs an argument");
  CHECK(error({"--config="}) == "--config must not be empty");
  CHECK(std::string(UsageText()).find("--config FILE") != std::string::npos);
}

TEST_CASE("precedence: nfs.conf < nfs.conf.d/*.conf < command line",
          "[config]") {
  TempDir t;
  std::string main = t.Write("nfs.conf",
                             "[nfsd-helper]\n"
                             "nfsdfs = /main\n"
                             "db = /main.sqlite\n"
                             "scope = main\n"
                             "debug = yes\n");
  t.Write("nfs.conf.d/10-site.conf",
          "[nfsd-helper]\n"
          "db = /dropin10.sqlite\n"
          "scope = dropin10\n");
  t.Write("nfs.conf.d/2-vendor.conf",
          "[nfsd-helper]\n"
          "db = /dropin2.sqlite\n"
          "debug = no\n");
  Options o = ParseArgs({"--config", main, "--scope", "cli"});
  ConfigReport r;
  Status s = LoadHelperConfig(&o, &r, FakeEnv());
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(r.errors.empty());
  CHECK(r.warnings.empty());
  CHECK(o.nfsdfs == "/main");         // only nfs.conf sets it
  CHECK(o.db == "/dropin10.sqlite");  // 10 sorts after 2
  CHECK(!o.debug);                    // the drop-in turned it off
  CHECK(o.scope == "cli");            // the command line wins
  CHECK(r.applied ==
        Lines{"nfsdfs = '/main' (" + main + ":2)",
              "db = '/dropin10.sqlite' (" + t.path +
                  "/nfs.conf.d/10-site.conf:2)",
              "debug = 'no' (" + t.path + "/nfs.conf.d/2-vendor.conf:3)"});
}

TEST_CASE("LoadHelperConfig: missing, unreadable and refused files",
          "[config]") {
  TempDir t;
  // A missing default file is fine; a missing --config file is not.
  Options o;
  o.config = t.path + "/absent.conf";
  ConfigReport r;
  CHECK(LoadHelperConfig(&o, &r).ok());
  o.given.config = true;
  Status s = LoadHelperConfig(&o, &r);
  CHECK(s.message() == "cannot read configuration file " + t.path +
                           "/absent.conf: No such file or directory");

  Options d;
  d.config = t.path;  // a directory
  s = LoadHelperConfig(&d, &r);
  CHECK(s.message() ==
        "cannot read configuration file " + t.path + ": Is a directory");

  Options b;
  b.config = t.Write("bad.conf", "[nfsd-helper]\ndebug = maybe\nscope =\n");
  ConfigReport br;
  s = LoadHelperConfig(&b, &br);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message() == "2 errors in the configuration (" + b.config + ")");
  CHECK(br.errors.size() == 2);
}

// The real daemon.

struct Run {
  nfsdsim::ExitStatus status;
  std::string output;
};

Run RunDaemon(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NFSD_HELPER_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  nfsdsim::Process p;
  std::string err;
  REQUIRE(p.Start(argv, {}, &err));
  auto st = p.Wait(10s);
  REQUIRE(st.has_value());
  // Output is captured by another thread: wait until it has seen the end.
  p.WaitForStderr("\x01 never printed", 10s);
  return Run{*st, p.Stderr()};
}

TEST_CASE("the daemon refuses a bad value in --config with exit status 1",
          "[config]") {
  TempDir t;
  std::string conf = t.Write("nfs.conf",
                             "[nfsd-helper]\n"
                             "debug = maybe\n"
                             "db = " +
                                 t.path + "/state/state.sqlite\n");
  Run r = RunDaemon({"--foreground", "--config", conf});
  INFO(r.output);
  CHECK(r.status.exited);
  CHECK(r.status.code == 1);
  CHECK(r.output.find(conf + ":2: [nfsd-helper] debug 'maybe': not a "
                             "boolean") != std::string::npos);
  CHECK(r.output.find("cannot start: 1 error in the configuration (" + conf +
                      ")") != std::string::npos);
  // Nothing was started: no database.
  CHECK(access((t.path + "/state").c_str(), F_OK) != 0);

  // Not even in the background (the refusal comes before detaching).
  Run bg = RunDaemon({"--config", conf});
  CHECK(bg.status.code == 1);
  CHECK(bg.output.find("debug 'maybe'") != std::string::npos);

  // An unreadable file: exit 1 too.
  Run dir = RunDaemon({"--foreground", "--config", t.path});
  INFO(dir.output);
  CHECK(dir.status.code == 1);
  CHECK(dir.output.find("cannot start: cannot read configuration file " +
                        t.path + ": Is a directory") != std::string::npos);
}

TEST_CASE(
    "the daemon: usage errors stay exit 2, --help needs no "
    "configuration",
    "[config]") {
  TempDir t;
  std::string conf = t.Write("nfs.conf", "[nfsd-helper]\ndebug = maybe\n");
  Run usage = RunDaemon({"--config", conf, "--bogus"});
  CHECK(usage.status.code == 2);
  CHECK(usage.output.find("unknown option --bogus") != std::string::npos);
  Run empty = RunDaemon({"--config="});
  CHECK(empty.status.code == 2);
  CHECK(empty.output.find("--config must not be empty") != std::string::npos);
  Run help = RunDaemon({"--config", conf, "--help"});
  CHECK(help.status.code == 0);
  CHECK(help.output.find("--config FILE") != std::string::npos);
}

TEST_CASE(
    "the daemon takes its settings from --config and warns about "
    "unknown keys",
    "[config]") {
  TempDir t;
  std::string db = t.path + "/state/state.sqlite";
  std::string conf = t.Write("nfs.conf",
                             "[nfsd-helper]\n"
                             "db = /overridden/by/the/drop-in\n"
                             "nfsdfs = " +
                                 t.path +
                                 "/no-nfsd\n"
                                 "threads = 4\n");
  t.Write("nfs.conf.d/local.conf", "[nfsd-helper]\ndb = " + db + "\n");
  nfsdsim::Process p;
  std::string err;
  REQUIRE(
      p.Start({NFSD_HELPER_BIN, "--foreground", "--config", conf}, {}, &err));
  CHECK(p.WaitForStderr(conf + ":4: [nfsd-helper] unknown key 'threads' "
                               "ignored",
                        10s));
  // It opened the database the drop-in names, and waits for nfsd's files.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (access(db.c_str(), F_OK) != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(access(db.c_str(), F_OK) == 0);
  CHECK(p.WaitForStderr(t.path + "/no-nfsd", 10s));
  REQUIRE(p.IsRunning());
  p.Signal(SIGTERM);
  auto st = p.Wait(10s);
  REQUIRE(st.has_value());
  INFO(p.Stderr());
  CHECK(st->success());
}

}  // namespace
}  // namespace nfsdh::config
