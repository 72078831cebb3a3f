// The man pages describe the programs as built: every option the binaries
// accept is documented, and every documented option and verb exists.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config/helper_config.h"

namespace {

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// The page's text with roff's escaped hyphens and zero-width marks undone.
std::string ManText(const std::string& page) {
  std::ifstream f(std::string(NFSDH_SOURCE_DIR) + "/man/" + page);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  s = std::regex_replace(s, std::regex(R"(\\-)"), "-");
  s = std::regex_replace(s, std::regex(R"(\\%|\\&|\\f[BIRP])"), "");
  return s;
}

// The lines of `text` from ".SH name" to the next ".SH".
std::string Section(const std::string& text, const std::string& name) {
  size_t a = text.find("\n.SH " + name + "\n");
  REQUIRE(a != std::string::npos);
  size_t b = text.find("\n.SH ", a + 1);
  return text.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

std::set<std::string> LongOptions(const std::string& text) {
  std::set<std::string> out;
  std::regex re(R"(--[a-z][a-z-]*[a-z])");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
       it != std::sregex_iterator(); ++it)
    out.insert(it->str());
  return out;
}

TEST_CASE("nfsd-helper(8) documents exactly the options of nfsd-helper",
          "[docs]") {
  std::set<std::string> code =
      LongOptions(Run(std::string(NFSD_HELPER_BIN) + " --help"));
  REQUIRE(code.count("--nfsdfs"));
  std::string man = ManText("nfsd-helper.8");
  CHECK(LongOptions(Section(man, "OPTIONS")) == code);
}

TEST_CASE("nfsd-helper(8) SYNOPSIS names every option and no other", "[docs]") {
  const std::string help = Run(std::string(NFSD_HELPER_BIN) + " --help");
  std::set<std::string> code = LongOptions(help);
  REQUIRE(code.count("--ha-callout-timeout"));
  // The synopsis may give an option by its short form ("-F"): --help
  // pairs them ("  -F, --foreground").
  std::map<std::string, std::string> long_of;
  std::regex pair(R"(\n  (-[A-Za-z]), (--[a-z][a-z-]*[a-z]))");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), pair);
       it != std::sregex_iterator(); ++it)
    long_of[(*it)[1].str()] = (*it)[2].str();
  REQUIRE(long_of["-F"] == "--foreground");

  const std::string synopsis = Section(ManText("nfsd-helper.8"), "SYNOPSIS");
  std::set<std::string> shown = LongOptions(synopsis);
  std::regex short_opt(R"([ \[|](-[A-Za-z])\b)");
  for (auto it =
           std::sregex_iterator(synopsis.begin(), synopsis.end(), short_opt);
       it != std::sregex_iterator(); ++it) {
    INFO((*it)[1].str());
    REQUIRE(long_of.count((*it)[1].str()) == 1);
    shown.insert(long_of[(*it)[1].str()]);
  }
  CHECK(shown == code);
}

TEST_CASE("every man page carries the same date", "[docs]") {
  std::set<std::string> dates;
  std::regex th(R"re(^\.TH [A-Z-]+ [0-9] "([^"]*)")re");
  for (const char* page : {"nfsd-helper.8", "helper-ctl.8", "nfsdfs-proto.7"}) {
    std::smatch m;
    std::string text = ManText(page);
    INFO(page);
    REQUIRE(std::regex_search(text, m, th));
    dates.insert(m[1].str());
  }
  std::string all;
  for (const std::string& d : dates) all += " \"" + d + "\"";
  INFO("dates:" << all);
  CHECK(dates.size() == 1);
}

TEST_CASE("helper-ctl(8) documents exactly the verbs and their options",
          "[docs]") {
  std::string help = Run(std::string(HELPER_CTL_BIN) + " help");
  std::set<std::string> verbs;
  std::regex verb_line(R"(\n  ([a-z][a-z-]*) +[a-z])");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), verb_line);
       it != std::sregex_iterator(); ++it)
    verbs.insert((*it)[1].str());
  REQUIRE(verbs.count("dump"));

  std::string man = ManText("helper-ctl.8");
  std::string section = Section(man, "VERBS");
  std::set<std::string> documented;
  std::regex item(R"(\n\.TP\n\.BR? ([a-z][a-z-]*))");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), item);
       it != std::sregex_iterator(); ++it)
    documented.insert((*it)[1].str());
  CHECK(documented == verbs);

  std::set<std::string> code_options = {"--help", "--version"};
  for (const std::string& v : verbs) {
    auto opts = LongOptions(Run(std::string(HELPER_CTL_BIN) + " " + v +
                                " --help"));
    INFO("verb " << v);
    for (const std::string& o : opts) {
      CHECK(man.find(o) != std::string::npos);
      code_options.insert(o);
    }
  }
  // "--option value" is the page's placeholder for the general syntax.
  std::set<std::string> man_options = LongOptions(man);
  man_options.erase("--option");
  CHECK(man_options == code_options);
}

}  // namespace

namespace {

// The keys of [nfsd-helper] that nfsd-helper(8) lists under CONFIGURATION,
// Keys: ".BI key " = value"".
std::set<std::string> ManConfKeys() {
  std::string conf = Section(ManText("nfsd-helper.8"), "CONFIGURATION");
  size_t a = conf.find("\n.SS Keys\n");
  REQUIRE(a != std::string::npos);
  size_t b = conf.find("\n.SS ", a + 1);
  std::string keys = conf.substr(a, b == std::string::npos ? b : b - a);
  std::set<std::string> out;
  std::regex item(R"(\n\.TP\n\.BI? ([a-z][a-z-]*) ")");
  for (auto it = std::sregex_iterator(keys.begin(), keys.end(), item);
       it != std::sregex_iterator(); ++it)
    out.insert((*it)[1].str());
  return out;
}

TEST_CASE("nfsd-helper(8) documents exactly the keys of [nfsd-helper]",
          "[docs]") {
  std::vector<std::string> known = nfsdh::config::KnownKeys();
  std::set<std::string> code(known.begin(), known.end());
  REQUIRE(code.count("db"));
  REQUIRE(code.count("ha-callout"));
  CHECK(ManConfKeys() == code);
  // Every key sets the option of the same name, which --help lists.
  std::string help = Run(std::string(NFSD_HELPER_BIN) + " --help");
  for (const std::string& k : code) {
    INFO(k);
    CHECK(help.find("--" + k) != std::string::npos);
  }
}

TEST_CASE("nfsdfs-proto(7) names the four files and every status code",
          "[docs]") {
  std::string man = ManText("nfsdfs-proto.7");
  for (const char* f : {"allow_client", "create_client", "expire_client",
                        "grace_done"}) {
    INFO(f);
    CHECK(Section(man, "FILES").find(std::string("\n.I ") + f + "\n") !=
          std::string::npos);
  }
  std::string codes = Section(man, "STATUS CODES");
  for (const char* c : {"0", "-22", "-116", "-5", "-93"}) {
    INFO(c);
    CHECK(codes.find(std::string("\n.B") + (c[0] == '0' ? " " : "R ") + c) !=
          std::string::npos);
  }
}

}  // namespace

// ctest runs each test case by name (catch_discover_tests); a ';' in a name
// splits it into CMake list items, and the pieces match no test, so the
// test would "pass" without running.
TEST_CASE("no test case name contains a semicolon", "[docs]") {
  const auto& all =
      Catch::getRegistryHub().getTestCaseRegistry().getAllTests();
  REQUIRE(all.size() > 100);
  for (const auto& tc : all) {
    INFO(tc.getTestCaseInfo().name);
    CHECK(tc.getTestCaseInfo().name.find(';') == std::string::npos);
  }
}
