#include "ctl/dispatch.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <set>

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
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl help: too many arguments\n"
                                      "usage: helper-ctl help [VERB]\n"));
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
        "helper-ctl version: takes no arguments\nusage: helper-ctl version\n");
  r = RunCtl({"version", "--json"});
  CHECK(r.code == kExitUsage);
  CHECK_THAT(r.err, Catch::StartsWith("helper-ctl version: unknown option "
                                      "'--json'\n"));
}

}  // namespace
}  // namespace nfsdh::ctl
