// Tests of the verbs that talk to nfsd-helper (status, purge, end-grace) that
// need no daemon: arguments, client ids, and what they say when no daemon
// answers. Against a live daemon: tests/scenario/ctl_test.cc.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "ctl/format.h"
#include "ctl/test_util.h"
#include "ctl/verbs.h"

namespace nfsdh::ctl {
namespace {

using testing::Result;
using testing::RunCtl;
using testing::TempDir;

std::string Id(std::string_view arg) {
  std::string id, error;
  INFO(arg);
  REQUIRE(ParseClientId(arg, &id, &error));
  return id;
}

std::string IdError(std::string_view arg) {
  std::string id, error;
  INFO(arg);
  REQUIRE_FALSE(ParseClientId(arg, &id, &error));
  return error;
}

TEST_CASE("client ids typed as dump shows them", "[ctl]") {
  CHECK(Id("linux-client-1") == "linux-client-1");
  CHECK(Id("Linux NFSv4.0 host/10.0.0.1 tcp") ==
        "Linux NFSv4.0 host/10.0.0.1 tcp");
  CHECK(Id("0x0001feff") == std::string("\x00\x01\xfe\xff", 4));
  CHECK(Id("0X0A1b") == "\x0a\x1b");
  CHECK(Id("\"linux-client-1\"") == "linux-client-1");
  CHECK(Id("\"say \\\"hi\\\"\\\\now\"") == "say \"hi\"\\now");
  CHECK(Id("\"0xab\"") == "0xab");  // a text id that looks like hex
  CHECK(Id("\"") == "\"");
  // Every id dump shows reads back as itself.
  for (const std::string& id :
       {std::string("say \"hi\"\\now"), std::string("\x00\x01\xfe\xff", 4),
        std::string("tab\there"), std::string("x")}) {
    CHECK(Id(IdCell(id)) == id);
  }
  CHECK(Id(std::string(1024, 'a')) == std::string(1024, 'a'));

  CHECK(IdError("0x") ==
        "a hex client id needs an even number of digits after 0x");
  CHECK(IdError("0xabc") ==
        "a hex client id needs an even number of digits after 0x");
  CHECK(IdError("0xzz") ==
        "'0xzz' is not hex (quote a text id that starts "
        "with 0x: '\"0xzz\"')");
  CHECK(IdError("\"\"") == "the client id is empty");
  CHECK(IdError("") == "the client id is empty");
  CHECK(IdError("\"a\\b\"") ==
        "in a quoted client id, a backslash may only precede \" or \\");
  CHECK(IdError("\"a\"b\"") ==
        "in a quoted client id, a double quote must be written \\\"");
  CHECK(IdError(std::string(1025, 'a')) ==
        "a client id is at most 1024 bytes; this one has 1025");
  CHECK(IdError("0x" + std::string(2050, 'a')) ==
        "a client id is at most 1024 bytes; this one has 1025");
}

TEST_CASE("verbs that need nfsd-helper exit 3 when it is not running",
          "[ctl]") {
  TempDir t;
  const std::string sock = t.path + "/ctl.sock";
  const std::string not_running =
      "helper-ctl: nfsd-helper is not running: nothing answers on " + sock +
      "\n";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status", "--ctl-socket", sock},
        std::vector<std::string>{"status", "--json", "--ctl-socket=" + sock},
        std::vector<std::string>{"end-grace", "--ctl-socket", sock},
        std::vector<std::string>{"metrics", "--ctl-socket", sock},
        std::vector<std::string>{"purge", "--scope", "default", "--yes", "c1",
                                 "--ctl-socket", sock}}) {
    INFO(args[0]);
    Result r = RunCtl(args);
    CHECK(r.code == kExitNotRunning);
    CHECK(r.out.empty());
    CHECK(r.err == not_running);
  }
  // A socket file that nobody listens on is the same.
  std::ofstream(sock).close();
  Result r = RunCtl({"status", "--ctl-socket", sock});
  CHECK(r.code == kExitNotRunning);
}

TEST_CASE("status, purge, end-grace: usage errors", "[ctl]") {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::string purge_usage =
      "usage: helper-ctl purge --scope NAME [--ctl-socket PATH] [--yes] "
      "[--json] CLIENT\n";
  for (const Case& c : std::vector<Case>{
           {{"status", "extra"},
            "helper-ctl status: unexpected argument 'extra'\nusage: "
            "helper-ctl status [--ctl-socket PATH] [--json]\n"},
           {{"status", "--ctl-sokcet", "/x"},
            "helper-ctl status: unknown option '--ctl-sokcet'; did you mean "
            "'--ctl-socket'?\nusage: helper-ctl status [--ctl-socket PATH] "
            "[--json]\n"},
           {{"end-grace", "now"},
            "helper-ctl end-grace: unexpected argument 'now'\nusage: "
            "helper-ctl end-grace [--ctl-socket PATH] [--json]\n"},
           {{"metrics", "--json"},
            "helper-ctl metrics: unknown option '--json'\nusage: "
            "helper-ctl metrics [--ctl-socket PATH] [--textfile FILE]\n"},
           {{"metrics", "--textfile"},
            "helper-ctl metrics: option '--textfile' needs a FILE\nusage: "
            "helper-ctl metrics [--ctl-socket PATH] [--textfile FILE]\n"},
           {{"purge", "--scope", "default", "--yes"},
            "helper-ctl purge: name the CLIENT to purge\n" + purge_usage},
           {{"purge", "--yes", "c1"},
            "helper-ctl purge: --scope is required: name the scope the record "
            "belongs to\n" +
                purge_usage},
           {{"purge", "--scope", "default", "--yes", "c1", "c2"},
            "helper-ctl purge: unexpected argument 'c2'\n" + purge_usage},
           {{"purge", "--scope", "default", "--yes", "0xabc"},
            "helper-ctl purge: a hex client id needs an even number of digits "
            "after 0x\n" +
                purge_usage},
       }) {
    INFO(c.args[0] << " " << c.err);
    Result r = RunCtl(c.args);
    CHECK(r.code == kExitUsage);
    CHECK(r.out.empty());
    CHECK(r.err == c.err);
  }
}

// Runs the built helper-ctl with /dev/null as its standard input.
Result RunBinary(const std::vector<std::string>& args, const TempDir& t) {
  const std::string out_path = t.path + "/out", err_path = t.path + "/err";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
      _exit(98);
    std::vector<char*> argv = {const_cast<char*>(HELPER_CTL_BIN)};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(HELPER_CTL_BIN, argv.data());
    _exit(97);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  Result r;
  r.code = WEXITSTATUS(status);
  std::ifstream o(out_path), e(err_path);
  std::ostringstream os, es;
  os << o.rdbuf();
  es << e.rdbuf();
  r.out = os.str();
  r.err = es.str();
  return r;
}

TEST_CASE("purge without a terminal needs --yes", "[ctl]") {
  TempDir t;
  // Refused before any daemon is asked: there is none here.
  Result r = RunBinary({"purge", "--scope", "default", "c1", "--ctl-socket",
                        t.path + "/ctl.sock"},
                       t);
  CHECK(r.code == kExitUsage);
  CHECK(r.out.empty());
  CHECK(r.err ==
        "helper-ctl purge: refusing to purge without confirmation: the "
        "standard input is not a terminal; add --yes\n"
        "usage: helper-ctl purge --scope NAME [--ctl-socket PATH] [--yes] "
        "[--json] CLIENT\n");
  // With --yes it goes on, and finds no daemon.
  r = RunBinary({"purge", "--scope", "default", "--yes", "c1", "--ctl-socket",
                 t.path + "/ctl.sock"},
                t);
  CHECK(r.code == kExitNotRunning);
}

}  // namespace
}  // namespace nfsdh::ctl
