#include "daemon/util/log.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <string>

namespace nfsdh {
namespace {

TEST_CASE("FATAL logs at level critical with its file and line, and aborts",
          "[log]") {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Not Catch2's handler: the default action of SIGABRT, without a core.
    signal(SIGABRT, SIG_DFL);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    unsetenv("JOURNAL_STREAM");
    dup2(p[1], 2);
    close(p[0]);
    FATAL("an invariant broke: %d", 42);
  }
  close(p[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(p[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO(out);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(out.find("critical: ") != std::string::npos);
  CHECK(out.find("daemon/util/log_test.cc:") != std::string::npos);
  CHECK(out.find("an invariant broke: 42; aborting") != std::string::npos);
}

}  // namespace
}  // namespace nfsdh
