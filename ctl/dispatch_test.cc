#include "ctl/dispatch.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <set>

#include "common/defaults.h"
#include "ctl/test_util.h"
#include "ctl/verbs.h"
#include "daemon/store/store.h"

namespace nfsdh::ctl {
namespace {

using testing::Lines;
using testing::Result;
using testing::RunCtl;

TEST_CASE("the verb table is well formed", "[ctl]") {
  REQUIRE(kVerbCount >= 3);
  std::set<std::string> names;
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    INFO(v.name);
    CHECK(names.insert(v.name).second);  // unique
    CHECK(FindVerb(v.name) == &v);
    for (char c : std::string(v.name))
      CHECK(((c >= 'a' && c <= 'z') || c == '-'));
    std::string summary = v.summary;
    CHECK_FALSE(summary.empty());
    CHECK(summary.find('\n') == std::string::npos);
    CHECK(summary.back() != '.');
    CHECK(v.usage != nullptr);
    CHECK(v.details != nullptr);
    CHECK(v.run != nullptr);
  }
  CHECK(FindVerb("nosuch") == nullptr);
  CHECK(FindVerb("") == nullptr);
}

// What a verb's usage line must say about its options, from its ArgSpec:
// "--scope NAME [--db PATH] [--json]".
std::string OptionsUsage(const Verb& v) {
  std::string out;
  for (const OptionSpec& o : v.args.options) {
    std::string core = o.name;
    if (o.value_name) core += std::string(" ") + o.value_name;
    out += (out.empty() ? "" : " ") + (o.required ? core : "[" + core + "]");
  }
  return out;
}

TEST_CASE("each verb's usage and help name exactly the options it parses",
          "[ctl]") {
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    INFO(v.name);
    std::set<std::string> names;
    for (const OptionSpec& o : v.args.options) {
      INFO(o.name);
      CHECK(std::string(o.name).rfind("--", 0) == 0);
      CHECK(names.insert(o.name).second);
      if (o.value_name) {
        for (char c : std::string(o.value_name)) CHECK((c >= 'A' && c <= 'Z'));
      }
      // Described in `help VERB`, at the start of a line.
      const std::string details = std::string("\n") + v.details;
      CHECK(details.find(std::string("\n  ") + o.name + " ") !=
            std::string::npos);
    }
    // No option described that it does not parse.
    const std::string details = std::string("\n") + v.details;
    for (size_t at = details.find("\n  --"); at != std::string::npos;
         at = details.find("\n  --", at + 1)) {
      std::string name = details.substr(at + 3);
      name = name.substr(0, name.find_first_of(" \n"));
      INFO(name);
      CHECK(names.count(name) == 1);
    }
    // The usage line: the options in table order ("PATH|none" may say what
    // the value may be), then the operands.
    CHECK(v.args.operands.min <= v.args.operands.max);
    CHECK(v.args.operands.max <= 1);  // as the usage check below assumes
    if (v.args.operands.min > 0) CHECK(v.args.operands.missing != nullptr);
    std::string usage = v.usage;
    for (size_t at; (at = usage.find("|none")) != std::string::npos;)
      usage.erase(at, 5);
    const std::string options = OptionsUsage(v);
    REQUIRE(usage.rfind(options, 0) == 0);
    std::string operands = usage.substr(options.size());
    if (!options.empty() && !operands.empty()) {
      REQUIRE(operands[0] == ' ');
      operands.erase(0, 1);
    }
    if (v.args.operands.max == 0) {
      CHECK(operands.empty());
    } else {
      CHECK_FALSE(operands.empty());
      CHECK((operands[0] == '[') == (v.args.operands.min == 0));
      CHECK(operands.find(' ') == std::string::npos);
    }
  }
}

TEST_CASE("help VERB shows the defaults helper-ctl shares with nfsd-helper",
          "[ctl]") {
  // An option of these names defaults to the daemon's own (common/
  // defaults.h), and its description says which.
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"--ctl-socket", kDefaultCtlSocket},
      {"--db", kDefaultDb},
      {"--config", kDefaultConfig},
      {"--nfsdfs", kDefaultNfsdfs},
      {"--nfsdcld-db", kDefaultNfsdcldDb},
      {"--nfsdcltrack-db", kDefaultNfsdcltrackDb},
  };
  size_t checked = 0;
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    for (const auto& [name, value] : defaults) {
      if (v.args.options.Find(name) == nullptr) continue;
      INFO(v.name << " " << name);
      CHECK(std::string(v.details).find(value) != std::string::npos);
      ++checked;
    }
  }
  CHECK(checked >= 10);
}

TEST_CASE(
    "every verb refuses an unknown option, an extra operand and a missing "
    "one the same way",
    "[ctl]") {
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    INFO(v.name);
    std::string usage = std::string("usage: helper-ctl ") + v.name;
    if (*v.usage) usage += std::string(" ") + v.usage;
    usage += "\n";
    // Whatever else the verb needs, given: its required options and
    // operands.
    std::vector<std::string> good = {v.name};
    for (const OptionSpec& o : v.args.options) {
      if (!o.required) continue;
      good.push_back(o.name);
      good.push_back("x");
    }
    for (size_t n = 0; n < v.args.operands.min; ++n) good.push_back("op");

    std::vector<std::string> args = good;
    args.push_back("--no-such-option");
    Result r = RunCtl(args);
    CHECK(r.code == kExitUsage);
    CHECK(r.out.empty());
    CHECK(r.err == std::string("helper-ctl ") + v.name +
                       ": unknown option '--no-such-option'\n" + usage);

    args = good;
    for (size_t n = v.args.operands.min; n < v.args.operands.max; ++n)
      args.push_back("op");
    args.push_back("surplus");
    r = RunCtl(args);
    CHECK(r.code == kExitUsage);
    CHECK(r.err == std::string("helper-ctl ") + v.name +
                       ": unexpected argument 'surplus'\n" + usage);

    if (v.args.operands.min > 0) {
      args = good;
      args.pop_back();
      r = RunCtl(args);
      CHECK(r.code == kExitUsage);
      CHECK(r.err == std::string("helper-ctl ") + v.name + ": " +
                         v.args.operands.missing + "\n" + usage);
    }
    for (const OptionSpec& o : v.args.options) {
      if (!o.required) continue;
      INFO(o.name);
      args = {v.name};
      for (size_t n = 0; n < v.args.operands.min; ++n) args.push_back("op");
      r = RunCtl(args);
      CHECK(r.code == kExitUsage);
      CHECK(r.err == std::string("helper-ctl ") + v.name + ": " + o.name +
                         " is required: " + o.required + "\n" + usage);
    }
  }
}

TEST_CASE("help is generated from the verb table", "[ctl]") {
  Result r = RunCtl({"help"});
  REQUIRE(r.code == kExitOk);
  CHECK(r.err.empty());
  // One line per verb, in table order, name then summary, summaries aligned.
  std::vector<std::string> lines = Lines(r.out);
  size_t at = 0, column = std::string::npos;
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    std::string prefix = std::string("  ") + v.name + " ";
    bool found = false;
    for (; at < lines.size(); ++at) {
      if (lines[at].rfind(prefix, 0) == 0) {
        found = true;
        break;
      }
    }
    INFO(v.name);
    REQUIRE(found);
    size_t col = lines[at].find(v.summary);
    REQUIRE(col != std::string::npos);
    CHECK(lines[at].size() == col + std::string(v.summary).size());
    if (column == std::string::npos) column = col;
    CHECK(col == column);
    ++at;
  }
  CHECK_THAT(r.out, Catch::Contains("Usage: helper-ctl VERB [ARGS]..."));
  CHECK_THAT(r.out, Catch::Contains("Exit status: 0 success, 1 error, 2 usage "
                                    "error, 3 nfsd-helper not running."));
  // --help and -h print exactly the same text.
  CHECK(RunCtl({"--help"}).out == r.out);
  CHECK(RunCtl({"-h"}).out == r.out);
  CHECK(RunCtl({"--help"}).code == kExitOk);
}

TEST_CASE("help VERB and VERB --help show the verb's usage", "[ctl]") {
  for (size_t i = 0; i < kVerbCount; ++i) {
    const Verb& v = *kVerbs[i];
    INFO(v.name);
    std::string usage = std::string("Usage: helper-ctl ") + v.name;
    if (*v.usage) usage += std::string(" ") + v.usage;
    Result r = RunCtl({"help", v.name});
    CHECK(r.code == kExitOk);
    CHECK(Lines(r.out).at(0) == usage);
    std::string summary = v.summary;
    summary[0] = static_cast<char>(std::toupper(summary[0]));
    CHECK(Lines(r.out).at(1) == summary + ".");
    CHECK(RunCtl({v.name, "--help"}).out == r.out);
  }
  Result r = RunCtl({"dump", "--json", "-h"});
  CHECK(r.code == kExitOk);
  CHECK_THAT(r.out, Catch::Contains("--scope NAME"));
  CHECK_THAT(r.out, Catch::Contains("/var/lib/nfs/nfsd-helper/state.sqlite"));
  // After "--", --help is not an option.
  r = RunCtl({"version", "--", "--help"});
  CHECK(r.code == kExitUsage);
}

TEST_CASE("an unknown verb is a usage error with a suggestion", "[ctl]") {
  Result r = RunCtl({"dupm"});
  CHECK(r.code == kExitUsage);
  CHECK(r.out.empty());
  CHECK(r.err == "helper-ctl: unknown verb 'dupm'; did you mean 'dump'?\n");

  r = RunCtl({"verison", "--json"});
  CHECK(r.code == kExitUsage);
  CHECK(r.err ==
        "helper-ctl: unknown verb 'verison'; did you mean 'version'?\n");

  r = RunCtl({"DUMP"});  // verbs are case-sensitive, but the hint is not
  CHECK(r.code == kExitUsage);
  CHECK(r.err == "helper-ctl: unknown verb 'DUMP'; did you mean 'dump'?\n");

  r = RunCtl({"frobnicate"});
  CHECK(r.code == kExitUsage);
  CHECK(r.err ==
        "helper-ctl: unknown verb 'frobnicate'; run 'helper-ctl help' for "
        "the list of verbs\n");

  r = RunCtl({"help", "hlep"});
  CHECK(r.code == kExitUsage);
  CHECK(r.out.empty());
  CHECK(r.err == "helper-ctl: unknown verb 'hlep'; did you mean 'help'?\n");

  // No abbreviations: a prefix is not a verb.
  CHECK(RunCtl({"du"}).code == kExitUsage);
}

TEST_CASE("command-line errors before the verb", "[ctl]") {
  Result r = RunCtl({});
  CHECK(r.code == kExitUsage);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::StartsWith("usage: helper-ctl VERB"));

  r = RunCtl({"--versoin"});
  CHECK(r.code == kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: unknown option "
                                      "'--versoin'; did you mean "
                                      "'--version'?\n"));
  r = RunCtl({"--db", "/x", "dump"});
  CHECK(r.code == kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl: unknown option '--db'\n"));

  r = RunCtl({"help", "dump", "version"});
  CHECK(r.code == kExitUsage);
  CHECK(r.err ==
        "helper-ctl help: unexpected argument 'version'\n"
        "usage: helper-ctl help [VERB]\n");
}

TEST_CASE("version", "[ctl]") {
  Result r = RunCtl({"version"});
  CHECK(r.code == kExitOk);
  CHECK(r.err.empty());
  CHECK(r.out == std::string("helper-ctl (nfsd-helper) ") +
                     HELPER_CTL_TEST_VERSION + "\ndatabase schema version " +
                     std::to_string(store::kSchemaVersion) + "\n");
  CHECK(RunCtl({"--version"}).out == r.out);
  CHECK(RunCtl({"-V"}).out == r.out);

  r = RunCtl({"version", "extra"});
  CHECK(r.code == kExitUsage);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "helper-ctl version: unexpected argument 'extra'\n"
        "usage: helper-ctl version\n");
  r = RunCtl({"version", "--json"});
  CHECK(r.code == kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl version: unknown option "
                                      "'--json'\n"));
}

}  // namespace
}  // namespace nfsdh::ctl
