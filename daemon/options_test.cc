// The option table of nfsd-helper (daemon/options.h) against everything it
// feeds: the command line, the keys of [nfsd-helper], --help and the paths
// made absolute; and the shared defaults (common/defaults.h). Each test
// walks the whole table, so that a row added later is checked too.
#include "daemon/options.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/config/helper_config.h"
#include "daemon/migrate/nfsdcld_import.h"

namespace nfsdh {
namespace {

using Args = std::vector<std::string>;

// ParseOptions on `args` (after the program name).
Status Parse(Args args, Options* out) {
  std::vector<char*> argv;
  std::string prog = "nfsd-helper";
  argv.push_back(prog.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return ParseOptions(static_cast<int>(argv.size() - 1), argv.data(), out);
}

// `text` as /etc/nfs.conf, applied to *opts.
config::ConfigReport ApplyConf(const std::string& text, Options* opts) {
  config::Conf conf;
  Status s = config::ParseConf(text, "/etc/nfs.conf", &conf);
  INFO(s.ToString());
  REQUIRE(s.ok());
  config::ConfigReport report;
  config::ApplyHelperSection(conf, opts, &report,
                             [](const std::string&) { return nullptr; });
  return report;
}

// A good argument for `d` other than its default.
std::string GoodValue(const OptionDef& d) {
  switch (d.kind) {
    case OptionKind::kScope:
    case OptionKind::kName:
      return "scope-1";
    case OptionKind::kUrls:
      return "http://192.0.2.1:2379,https://[2001:db8::1]:2379";
    case OptionKind::kSeconds:
      return "7";
    default:
      return std::string("/srv/") + d.name;
  }
}

std::string Long(const OptionDef& d) { return std::string("--") + d.name; }

TEST_CASE("the option table is well formed", "[options]") {
  const std::vector<OptionDef>& table = OptionTable();
  REQUIRE(table.size() >= 18);
  std::set<std::string> names;
  std::set<char> letters;
  std::vector<bool GivenOptions::*> givens;  // member pointers have no <
  for (const OptionDef& d : table) {
    INFO(d.name);
    CHECK(names.insert(d.name).second);
    for (char c : std::string(d.name))
      CHECK(((c >= 'a' && c <= 'z') || c == '-'));
    if (d.short_name) CHECK(letters.insert(d.short_name).second);
    const bool flag = d.kind == OptionKind::kFlag;
    CHECK((d.arg == nullptr) == flag);
    CHECK((d.flag != nullptr) == flag);
    CHECK((d.text == nullptr) == flag);
    CHECK((d.max_seconds > 0) == (d.kind == OptionKind::kSeconds));
    // Only --help and --version are no choice about the service.
    CHECK((d.given == nullptr) ==
          (std::string(d.name) == "help" || std::string(d.name) == "version"));
    if (d.given) {
      for (bool GivenOptions::*g : givens) CHECK(g != d.given);
      givens.push_back(d.given);
    }
    // Every line of its description fits beside the option column.
    std::string help = d.help;
    CHECK_FALSE(help.empty());
    CHECK(help.back() != '\n');
    for (size_t at = 0, nl; at <= help.size(); at = nl + 1) {
      nl = help.find('\n', at);
      if (nl == std::string::npos) nl = help.size();
      CHECK(nl - at <= 51);
    }
  }
  // A key of nfs.conf marks Options::configured: it needs a `given`.
  for (const OptionDef& d : table)
    if (d.conf == ConfKey::kSameName) CHECK(d.given != nullptr);
}

TEST_CASE("every option is in --help, with its short form and argument",
          "[options]") {
  const std::string usage = UsageText();
  for (const OptionDef& d : OptionTable()) {
    INFO(d.name);
    std::string head = std::string("  ") +
                       (d.short_name ? std::string("-") + d.short_name + ", "
                                     : std::string("    ")) +
                       Long(d) + (d.arg ? std::string(" ") + d.arg : "");
    // Padded to the description column, or on a line of its own.
    CHECK((usage.find("\n" + head + "  ") != std::string::npos ||
           usage.find("\n" + head + "\n") != std::string::npos));
    // Every line of the description, in the description column.
    std::string help = d.help;
    for (size_t at = 0, nl; at < help.size(); at = nl + 1) {
      nl = help.find('\n', at);
      if (nl == std::string::npos) nl = help.size();
      CHECK(usage.find(help.substr(at, nl - at) + "\n") != std::string::npos);
    }
  }
  // No line is wider than a terminal.
  for (size_t at = 0, nl; at < usage.size(); at = nl + 1) {
    nl = usage.find('\n', at);
    CHECK(nl - at <= 79);
  }
}

TEST_CASE("--help shows the default of every option that has one",
          "[options]") {
  const std::string usage = UsageText();
  const Options defaults;
  for (const OptionDef& d : OptionTable()) {
    if (d.kind == OptionKind::kFlag) continue;
    const std::string& value = defaults.*d.text;
    INFO(d.name << " defaults to " << value);
    if (value.empty() || value == kDefaultScope) {
      // "" is no default to show; the scope's is shown quoted.
      if (value == kDefaultScope)
        CHECK(std::string(d.help).find("\"default\"") != std::string::npos);
      continue;
    }
    CHECK(std::string(d.help).find(value) != std::string::npos);
  }
  CHECK(usage.find(kDefaultCtlSocket) != std::string::npos);
  CHECK(usage.find(kDefaultDb) != std::string::npos);
}

TEST_CASE("--help says which options are not keys of nfs.conf, and only those",
          "[options]") {
  const std::string usage = UsageText();
  size_t blank = usage.rfind("\n\n");
  REQUIRE(blank != std::string::npos);
  const std::string last = usage.substr(blank);
  CHECK(last.find("[nfsd-helper]") != std::string::npos);
  for (const OptionDef& d : OptionTable()) {
    INFO(d.name);
    CHECK((last.find(Long(d) + ",") != std::string::npos ||
           last.find(Long(d) + " ") != std::string::npos) ==
          (d.conf == ConfKey::kNone));
  }
}

TEST_CASE("every option parses, in its long and short form", "[options]") {
  for (const OptionDef& d : OptionTable()) {
    INFO(d.name);
    std::vector<Args> forms;
    const std::string value = GoodValue(d);
    if (d.kind == OptionKind::kFlag) {
      forms.push_back({Long(d)});
      if (d.short_name) forms.push_back({std::string("-") + d.short_name});
    } else {
      forms.push_back({Long(d), value});
      forms.push_back({Long(d) + "=" + value});
      if (d.short_name) {
        forms.push_back({std::string("-") + d.short_name, value});
        forms.push_back({std::string("-") + d.short_name + value});
      }
    }
    for (const Args& args : forms) {
      INFO(args[0]);
      Options o;
      Status s = Parse(args, &o);
      INFO(s.ToString());
      REQUIRE(s.ok());
      if (d.kind == OptionKind::kFlag) {
        CHECK(o.*d.flag);
      } else {
        CHECK(o.*d.text == value);
      }
      // It is marked as given, and nothing else is.
      for (const OptionDef& other : OptionTable()) {
        if (other.given == nullptr) continue;
        INFO("given: " << other.name);
        CHECK(o.given.*other.given == (&other == &d));
      }
    }
    if (d.kind != OptionKind::kFlag) {
      Options o;
      CHECK(Parse({Long(d)}, &o).message() ==
            "option " + Long(d) + " needs an argument");
      CHECK_FALSE(Parse({Long(d) + "="}, &o).ok());  // empty is never good
    } else {
      Options o;
      CHECK_FALSE(Parse({Long(d) + "=yes"}, &o).ok());
    }
  }
  Options o;
  CHECK(Parse({"--no-such-option"}, &o).message() ==
        "unknown option --no-such-option");
  CHECK(Parse({"-x"}, &o).message() == "unknown option -x");
  CHECK(Parse({"operand"}, &o).message() == "unexpected argument 'operand'");
}

TEST_CASE("every key of [nfsd-helper] is accepted, applied and listed",
          "[options]") {
  std::vector<std::string> keys;
  for (const OptionDef& d : OptionTable()) {
    INFO(d.name);
    const std::string value =
        d.kind == OptionKind::kFlag ? "yes" : GoodValue(d);
    Options o;
    config::ConfigReport r = ApplyConf(
        "[nfsd-helper]\n" + std::string(d.name) + " = " + value + "\n", &o);
    if (d.conf == ConfKey::kNone) {
      // Not a key: warned about and ignored.
      CHECK(r.errors.empty());
      REQUIRE(r.warnings.size() == 1);
      CHECK(r.warnings[0].find("unknown key '" + std::string(d.name) + "'") !=
            std::string::npos);
      continue;
    }
    keys.push_back(d.name);
    CHECK(r.errors.empty());
    CHECK(r.warnings.empty());
    CHECK(r.applied.size() == 1);
    if (d.kind == OptionKind::kFlag) {
      CHECK(o.*d.flag);
    } else {
      CHECK(o.*d.text == value);
    }
    CHECK(o.configured.*d.given);
    CHECK_FALSE(o.given.*d.given);

    // The command line wins over it.
    Options cli;
    Args args = {Long(d)};
    if (d.kind != OptionKind::kFlag) args.push_back(GoodValue(d) + "0");
    REQUIRE(Parse(args, &cli).ok());
    Options before = cli;
    r = ApplyConf(
        "[nfsd-helper]\n" + std::string(d.name) + " = " + value + "\n", &cli);
    CHECK(r.applied.empty());
    if (d.kind != OptionKind::kFlag) CHECK(cli.*d.text == before.*d.text);
  }
  CHECK(config::KnownKeys() == keys);
  // The warning about an unknown key lists them all, in the table's order.
  Options o;
  config::ConfigReport r = ApplyConf("[nfsd-helper]\nthreads = 8\n", &o);
  REQUIRE(r.warnings.size() == 1);
  std::string list;
  for (const std::string& k : keys) list += (list.empty() ? "" : ", ") + k;
  CHECK(r.warnings[0] ==
        "/etc/nfs.conf:2: [nfsd-helper] unknown key 'threads' ignored; "
        "known keys: " +
            list);
}

TEST_CASE("the command line and nfs.conf refuse the same values", "[options]") {
  const std::vector<std::string> samples = {
      "",           "relative/path", "/absolute", "none",
      "bad scope!", "scope-1",       "0",         "1",
      "3600",       "3601",          "31536000",  "31536001",
      "12x",        "yes",           "-",
  };
  for (const OptionDef& d : OptionTable()) {
    if (d.kind == OptionKind::kFlag || d.conf == ConfKey::kNone) continue;
    for (const std::string& v : samples) {
      INFO(d.name << " '" << v << "'");
      Options cli;
      const bool cli_ok = Parse({Long(d) + "=" + v}, &cli).ok();
      Options conf;
      config::ConfigReport r = ApplyConf(
          "[nfsd-helper]\n" + std::string(d.name) + " = \"" + v + "\"\n",
          &conf);
      CHECK(cli_ok == r.errors.empty());
      CHECK(cli_ok == OptionValueProblem(d, v).empty());
    }
  }
}

TEST_CASE("what the command line says about a bad value", "[options]") {
  auto error = [](Args args) {
    Options o;
    return Parse(args, &o).message();
  };
  CHECK(error({"--db="}) == "--db must not be empty");
  CHECK(error({"--config="}) == "--config must not be empty");
  CHECK(error({"--nfsdfs="}) == "--nfsdfs must not be empty (use none)");
  CHECK(error({"--nfsdcltrack-db="}) ==
        "--nfsdcltrack-db must not be empty (use none)");
  CHECK(error({"--ctl-socket", "ctl.sock"}) ==
        "--ctl-socket must be an absolute path");
  CHECK(error({"--ha-callout="}) == "--ha-callout must be an absolute path");
  CHECK(error({"-s", "a/b"}) ==
        "--scope 'a/b': use 1-64 characters of A-Z a-z 0-9 . _ -");
  CHECK(error({"--idmap-cache-timeout", "0"}) ==
        "--idmap-cache-timeout '0': give a number of seconds, 1 to 31536000");
  CHECK(error({"--ha-callout-timeout", "3601"}) ==
        "--ha-callout-timeout '3601': give a number of seconds, 1 to 3600");
  CHECK(error({"-D"}) == "option -D needs an argument");
}

TEST_CASE(
    "nfs.conf refuses what the command line refuses: a relative "
    "ctl-socket or ha-callout, a callout timeout over an hour",
    "[options]") {
  Options o;
  config::ConfigReport r = ApplyConf(
      "[nfsd-helper]\n"
      "ctl-socket = ctl.sock\n"
      "ha-callout = bin/callout\n"
      "ha-callout-timeout = 3601\n"
      "idmap-cache-timeout = 31536000\n",
      &o);
  CHECK(r.errors ==
        std::vector<std::string>{
            "/etc/nfs.conf:2: [nfsd-helper] ctl-socket 'ctl.sock': give an "
            "absolute path",
            "/etc/nfs.conf:3: [nfsd-helper] ha-callout 'bin/callout': give "
            "an absolute path",
            "/etc/nfs.conf:4: [nfsd-helper] ha-callout-timeout '3601': give "
            "a number of seconds, 1 to 3600"});
  CHECK(o.idmap_cache_timeout == "31536000");
  CHECK(o.ctl_socket == kDefaultCtlSocket);
  r = ApplyConf("[nfsd-helper]\nctl-socket =\n", &o);
  CHECK(r.errors == std::vector<std::string>{
                        "/etc/nfs.conf:2: [nfsd-helper] ctl-socket: empty "
                        "value: give an absolute path, or remove the line for "
                        "the default"});
}

TEST_CASE("MakePathsAbsolute makes every path option absolute but --config",
          "[options]") {
  Options o;
  for (const OptionDef& d : OptionTable())
    if (d.kind != OptionKind::kFlag) o.*d.text = std::string("rel-") + d.name;
  o.cld_pipe = kNone;
  REQUIRE(MakePathsAbsolute("/start", &o).ok());
  for (const OptionDef& d : OptionTable()) {
    if (d.kind == OptionKind::kFlag) continue;
    INFO(d.name);
    const std::string& v = o.*d.text;
    const bool path = d.kind == OptionKind::kPath ||
                      d.kind == OptionKind::kPathOrNone ||
                      d.kind == OptionKind::kAbsolutePath;
    if (d.text == &Options::cld_pipe) {
      CHECK(v == kNone);  // "none" is no path
    } else if (path && d.text != &Options::config) {
      CHECK(v == std::string("/start/rel-") + d.name);
    } else {
      CHECK(v == std::string("rel-") + d.name);
    }
  }
  Options r;
  r.db = "state.sqlite";
  CHECK(MakePathsAbsolute("", &r).message() ==
        "--db state.sqlite is a relative path and the current directory "
        "cannot be found: give an absolute path");
}

}  // namespace
}  // namespace nfsdh
