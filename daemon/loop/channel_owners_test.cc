#include "daemon/loop/channel_owners.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

namespace nfsdh::loop {
namespace {

struct Dir {
  std::string path;
  Dir() {
    char t[] = "/tmp/nfsdh-owners-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
    REQUIRE(mkdir((path + "/nfs4.idtoname").c_str(), 0700) == 0);
    REQUIRE(mkdir((path + "/other").c_str(), 0700) == 0);
  }
  ~Dir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (system(cmd.c_str()) != 0) {
      // Left behind in /tmp; nothing else to do.
    }
  }
};

// A child that holds `file` open until killed.
pid_t HoldOpen(const std::string& file) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Nothing the parent has open may stay open here.
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != p[1]) close(fd);
    }
    int fd = open(file.c_str(), O_RDWR);
    char c = fd >= 0 ? 'y' : 'n';
    if (write(p[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(p[1]);
  char c = 0;
  REQUIRE(read(p[0], &c, 1) == 1);
  close(p[0]);
  REQUIRE(c == 'y');
  return pid;
}

void Reap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// Reaps the child even when a REQUIRE fails.
struct Holder {
  pid_t pid;
  explicit Holder(const std::string& file) : pid(HoldOpen(file)) {}
  ~Holder() {
    if (pid > 0) Reap(pid);
  }
  void Release() {
    Reap(pid);
    pid = 0;
  }
};

TEST_CASE("idmap: another process holding the channel open is found",
          "[idmap]") {
  Dir d;
  std::string channel = d.path + "/nfs4.idtoname/channel";
  std::string decoy = d.path + "/other/channel";  // same base name
  for (const std::string& f : {channel, decoy}) {
    int fd = open(f.c_str(), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    close(fd);
  }
  CHECK(FindOtherOpeners(channel).empty());

  // Our own descriptor does not count.
  int mine = open(channel.c_str(), O_RDWR);
  REQUIRE(mine >= 0);
  CHECK(FindOtherOpeners(channel).empty());

  Holder decoy_holder(decoy);
  CHECK(FindOtherOpeners(channel).empty());

  Holder holder(channel);
  std::vector<Opener> found = FindOtherOpeners(channel);
  REQUIRE(found.size() == 1);
  CHECK(found[0].pid == holder.pid);
  CHECK(DescribeOpeners(found) ==
        "pid " + std::to_string(holder.pid) + " (" + found[0].comm + ")");
  CHECK_FALSE(found[0].comm.empty());

  holder.Release();
  CHECK(FindOtherOpeners(channel).empty());
  close(mine);
  // A path that does not exist has no openers.
  CHECK(FindOtherOpeners(d.path + "/nfs4.nametoid/channel").empty());
}

}  // namespace
}  // namespace nfsdh::loop
