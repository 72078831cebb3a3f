#include "ctl/args.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

namespace nfsdh::ctl {
namespace {

TEST_CASE("EditDistance counts edits, adjacent swaps as one", "[ctl]") {
  CHECK(EditDistance("dump", "dump") == 0);
  CHECK(EditDistance("dupm", "dump") == 1);   // swap
  CHECK(EditDistance("dmp", "dump") == 1);    // insertion
  CHECK(EditDistance("dumpp", "dump") == 1);  // deletion
  CHECK(EditDistance("jump", "dump") == 1);   // substitution
  CHECK(EditDistance("", "help") == 4);
  CHECK(EditDistance("help", "") == 4);
  CHECK(EditDistance("kitten", "sitting") == 3);
  // Optimal string alignment: a swapped pair is not edited again.
  CHECK(EditDistance("ca", "abc") == 3);
  CHECK(EditDistance("DUMP", "dump") == 0);  // case is ignored
}

TEST_CASE("Nearest suggests only plausible typos", "[ctl]") {
  const std::vector<std::string> verbs = {"dump", "help", "version"};
  CHECK(Nearest("dupm", verbs) == std::optional<std::string>("dump"));
  CHECK(Nearest("hlep", verbs) == std::optional<std::string>("help"));
  CHECK(Nearest("verison", verbs) == std::optional<std::string>("version"));
  CHECK(Nearest("Dump", verbs) == std::optional<std::string>("dump"));
  CHECK(Nearest("vers", verbs) == std::nullopt);  // 3 edits away
  CHECK(Nearest("frobnicate", verbs) == std::nullopt);
  CHECK(Nearest("x", verbs) == std::nullopt);
  CHECK(Nearest("", verbs) == std::nullopt);
  CHECK(Nearest(std::string(10000, 'd'), verbs) == std::nullopt);
  // A tie goes to the earlier candidate.
  CHECK(Nearest("hump", {"dump", "hemp"}) ==
        std::optional<std::string>("dump"));
  CHECK(Nearest("hump", {"hemp", "dump"}) ==
        std::optional<std::string>("hemp"));
  // A closer candidate wins over an earlier one.
  CHECK(Nearest("hemp", {"dump", "hemp"}) ==
        std::optional<std::string>("hemp"));
}

TEST_CASE("ParseArgs parses long options", "[ctl]") {
  const std::vector<OptionSpec> options = {
      {"--db", "PATH"}, {"--scope", "NAME"}, {"--json", nullptr}};
  const ArgSpec specs = {options, {0, 9}};
  ParsedArgs p;
  std::string error;

  SECTION("separate and joined values, flags and operands") {
    REQUIRE(ParseArgs({"--db", "/a b", "x", "--json", "--scope=s=1"}, specs, &p,
                      &error));
    CHECK(p.value("--db") == "/a b");
    CHECK(p.value("--scope") == "s=1");
    CHECK(p.has("--json"));
    CHECK(p.value("--json", "x") == "x");  // a flag has no value
    CHECK(p.operands == std::vector<std::string>{"x"});
  }
  SECTION("a value may start with a dash") {
    REQUIRE(ParseArgs({"--db", "--json"}, specs, &p, &error));
    CHECK(p.value("--db") == "--json");
    CHECK_FALSE(p.has("--json"));
  }
  SECTION("-- ends the options") {
    REQUIRE(ParseArgs({"--json", "--", "--db", "-"}, specs, &p, &error));
    CHECK(p.operands == std::vector<std::string>{"--db", "-"});
    CHECK_FALSE(p.has("--db"));
  }
  SECTION("a lone dash is an operand") {
    REQUIRE(ParseArgs({"-"}, specs, &p, &error));
    CHECK(p.operands == std::vector<std::string>{"-"});
  }
  SECTION("an unknown option is refused, with a suggestion when near") {
    CHECK_FALSE(ParseArgs({"--jsno"}, specs, &p, &error));
    CHECK(error == "unknown option '--jsno'; did you mean '--json'?");
    CHECK_FALSE(ParseArgs({"--scop=x"}, specs, &p, &error));
    CHECK(error == "unknown option '--scop'; did you mean '--scope'?");
    CHECK_FALSE(ParseArgs({"-x"}, specs, &p, &error));
    CHECK(error == "unknown option '-x'");
  }
  SECTION("a missing, empty or repeated value is refused") {
    CHECK_FALSE(ParseArgs({"--db"}, specs, &p, &error));
    CHECK(error == "option '--db' needs a PATH");
    CHECK_FALSE(ParseArgs({"--db="}, specs, &p, &error));
    CHECK(error == "option '--db' needs a non-empty PATH");
    CHECK_FALSE(ParseArgs({"--scope", ""}, specs, &p, &error));
    CHECK(error == "option '--scope' needs a non-empty NAME");
    CHECK_FALSE(ParseArgs({"--scope", "a", "--scope=b"}, specs, &p, &error));
    CHECK(error == "option '--scope' given twice");
  }
  SECTION("a flag takes no value") {
    CHECK_FALSE(ParseArgs({"--json=yes"}, specs, &p, &error));
    CHECK(error == "option '--json' takes no value");
  }
}

TEST_CASE(
    "ParseArgs counts the operands, then checks the required options, with "
    "one message each",
    "[ctl]") {
  const std::vector<OptionSpec> options = {
      {"--scope", "NAME", "name the scope"}, {"--json", nullptr}};
  const ArgSpec one = {options, {1, 1, "name the CLIENT"}};
  ParsedArgs p;
  std::string error;
  REQUIRE(ParseArgs({"--scope", "s", "c1", "--json"}, one, &p, &error));
  CHECK(p.operands == std::vector<std::string>{"c1"});
  CHECK(p.value("--scope") == "s");
  CHECK(p.value("--scope", "other") == "s");

  // An option error comes first, wherever it is; then the operands; then
  // the required options.
  CHECK_FALSE(ParseArgs({"c1", "c2", "--jsno"}, one, &p, &error));
  CHECK(error == "unknown option '--jsno'; did you mean '--json'?");
  CHECK_FALSE(ParseArgs({"--json"}, one, &p, &error));
  CHECK(error == "name the CLIENT");
  CHECK_FALSE(ParseArgs({"c1", "c2", "c3"}, one, &p, &error));
  CHECK(error == "unexpected argument 'c2'");
  CHECK_FALSE(ParseArgs({"c1"}, one, &p, &error));
  CHECK(error == "--scope is required: name the scope");

  const ArgSpec none = {{}, {}};
  CHECK_FALSE(ParseArgs({"extra"}, none, &p, &error));
  CHECK(error == "unexpected argument 'extra'");
  CHECK_FALSE(ParseArgs({"--", "--json"}, none, &p, &error));
  CHECK(error == "unexpected argument '--json'");
  CHECK(ParseArgs({}, none, &p, &error));

  const ArgSpec optional = {{}, {0, 1}};
  CHECK(ParseArgs({}, optional, &p, &error));
  CHECK(ParseArgs({"a"}, optional, &p, &error));
  CHECK_FALSE(ParseArgs({"a", "b"}, optional, &p, &error));
  CHECK(error == "unexpected argument 'b'");
}

TEST_CASE(
    "asking for an option the verb does not declare is a bug, not 'not "
    "given'",
    "[ctl]") {
  const std::vector<OptionSpec> options = {{"--json", nullptr}};
  ParsedArgs p;
  std::string error;
  REQUIRE(ParseArgs({"--json"}, ArgSpec{options, {}}, &p, &error));
  CHECK(p.has("--json"));
  // A typo ("--jsno") would silently read as false: it aborts instead.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    (void)p.has("--jsno");
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

}  // namespace
}  // namespace nfsdh::ctl
