// The Mapper against real libnfsidmap and real NSS "files" lookups: each test
// runs in a child process with a private mount namespace, where a test
// /etc/passwd, /etc/group and /etc/nsswitch.conf are bind-mounted over the
// system's. libnfsidmap initialises once per process, which the child also
// gives each test.
#include "daemon/idmap/mapper.h"

#include <catch2/catch.hpp>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace nfsdh::idmap {
namespace {

constexpr char kPasswdFile[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "alice:x:2001:3001::/home/alice:/bin/sh\n"
    "bob:x:2002:3002::/home/bob:/bin/sh\n"
    "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
    "nfsnobody:x:65533:65533::/nonexistent:/usr/sbin/nologin\n";
constexpr char kGroupFile[] =
    "root:x:0:\n"
    "staff:x:3001:\n"
    "bobs:x:3002:\n"
    "nogroup:x:65534:\n";

class FakeUsers {
 public:
  FakeUsers() {
    char t[] = "/tmp/nfsdh-idmap-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    dir_ = t;
    Write("passwd", kPasswdFile);
    Write("group", kGroupFile);
    Write("nsswitch.conf", "passwd: files\ngroup: files\n");
  }
  ~FakeUsers() {
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (system(cmd.c_str()) != 0) {
      // Left behind in /tmp.
    }
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream f(dir_ + "/" + name);
    f << text;
    return dir_ + "/" + name;
  }

  // Runs the upcalls through a Mapper made from idmapd.conf text `conf`, in
  // a child that sees the fake users. One line per upcall: "hit <answer>" or
  // "miss <answer>", where <answer> is the name or the id ("-" for none); or
  // one "error ..." line if the Mapper could not be made.
  std::vector<std::string> Map(const std::string& conf,
                               const std::vector<Upcall>& ups) {
    std::string conf_path = Write("idmapd.conf", conf);
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(p[0]);
      std::string out = Child(conf_path, ups);
      const char* b = out.data();
      size_t left = out.size();
      while (left > 0) {
        ssize_t n = write(p[1], b, left);
        if (n <= 0) _exit(1);
        b += n;
        left -= static_cast<size_t>(n);
      }
      _exit(0);
    }
    close(p[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) text.append(buf, n);
    close(p[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    std::vector<std::string> lines;
    size_t pos = 0, nl;
    while ((nl = text.find('\n', pos)) != std::string::npos) {
      lines.push_back(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return lines;
  }

 private:
  std::string Child(const std::string& conf_path,
                    const std::vector<Upcall>& ups) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return "error cannot make a private mount namespace\n";
    for (const char* f : {"passwd", "group", "nsswitch.conf"}) {
      std::string from = dir_ + "/" + f, to = std::string("/etc/") + f;
      if (mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0)
        return "error cannot bind-mount " + from + "\n";
    }
    IdmapdSettings s;
    std::vector<std::string> warnings;
    Status st = LoadIdmapdSettings(conf_path, true, &s, &warnings);
    if (!st.ok()) return "error " + st.ToString() + "\n";
    std::unique_ptr<Mapper> m;
    st = Mapper::Create(s, &m);
    if (!st.ok()) return "error " + st.ToString() + "\n";
    std::string out;
    for (const Upcall& up : ups) {
      Mapping r = m->Map(up);
      out += r.mapped ? "hit " : "miss ";
      if (up.direction == Direction::kIdToName)
        out += r.answer.name.empty() ? "-" : r.answer.name;
      else
        out += r.answer.has_id ? std::to_string(r.answer.id) : "-";
      out += "\n";
    }
    return out;
  }

  std::string dir_;
};

Upcall IdToName(IdType t, uint32_t id) {
  Upcall u;
  u.direction = Direction::kIdToName;
  u.authname = "*";
  u.type = t;
  u.id = id;
  return u;
}

Upcall NameToId(IdType t, const std::string& name) {
  Upcall u;
  u.direction = Direction::kNameToId;
  u.authname = "*";
  u.type = t;
  u.name = name;
  return u;
}

constexpr IdType kUser = IdType::kUser;
constexpr IdType kGroup = IdType::kGroup;

TEST_CASE("idmap: nsswitch maps users and groups both ways", "[idmap]") {
  FakeUsers fake;
  std::vector<std::string> got = fake.Map(
      "[General]\nDomain = test.example\n[Mapping]\nNobody-User = nobody\n"
      "Nobody-Group = nogroup\n",
      {IdToName(kUser, 2001), IdToName(kUser, 2002), IdToName(kGroup, 3001),
       NameToId(kUser, "alice@test.example"),
       NameToId(kUser, "bob@test.example"),
       NameToId(kGroup, "staff@test.example"),
       NameToId(kGroup, "bobs@test.example")});
  CHECK(got == std::vector<std::string>{
                   "hit alice@test.example", "hit bob@test.example",
                   "hit staff@test.example", "hit 2001", "hit 2002",
                   "hit 3001", "hit 3002"});
}

TEST_CASE("idmap: unknown ids get the nobody names, unknown names nothing",
          "[idmap]") {
  FakeUsers fake;
  std::vector<std::string> got = fake.Map(
      "[General]\nDomain = test.example\n[Mapping]\nNobody-User = nfsnobody\n"
      "Nobody-Group = nogroup\n",
      {IdToName(kUser, 4242), IdToName(kGroup, 4242),
       NameToId(kUser, "mallory@test.example"),
       NameToId(kGroup, "nosuch@test.example"),
       // Known user, other domain: not ours to map.
       NameToId(kUser, "alice@elsewhere.example"),
       NameToId(kUser, "2001")});
  CHECK(got == std::vector<std::string>{"miss nfsnobody", "miss nogroup",
                                        "miss -", "miss -", "miss -",
                                        "miss -"});
}

TEST_CASE("idmap: nobody names default as in rpc.idmapd", "[idmap]") {
  FakeUsers fake;
  std::vector<std::string> got =
      fake.Map("[General]\nDomain = test.example\n",
               {IdToName(kUser, 4242), IdToName(kGroup, 4242)});
  CHECK(got == std::vector<std::string>{"miss nobody", "miss nobody"});
}

TEST_CASE("idmap: the static method maps names of its [Static] table",
          "[idmap]") {
  FakeUsers fake;
  std::vector<std::string> got = fake.Map(
      "[General]\nDomain = test.example\n[Translation]\n"
      "Method = static,nsswitch\n[Static]\ncarol@test.example = alice\n",
      {NameToId(kUser, "carol@test.example"), IdToName(kUser, 2001),
       IdToName(kUser, 2002)});
  CHECK(got == std::vector<std::string>{"hit 2001", "hit carol@test.example",
                                        "hit bob@test.example"});
}

TEST_CASE("idmap: idmapd.conf values nfsd-helper cannot use are refused",
          "[idmap]") {
  FakeUsers fake;
  IdmapdSettings s;
  std::vector<std::string> w;
  std::string p = fake.Write("bad.conf", "[General]\nCache-Expiration = 0\n");
  CHECK_FALSE(LoadIdmapdSettings(p, true, &s, &w).ok());
  p = fake.Write("bad2.conf", "[Mapping]\nNobody-User = " +
                                  std::string(200, 'n') + "\n");
  CHECK_FALSE(LoadIdmapdSettings(p, true, &s, &w).ok());
  p = fake.Write("good.conf",
                 "[General]\nCache-Expiration = 42\n[Translation]\n"
                 "Method = umich_ldap, nsswitch\n");
  REQUIRE(LoadIdmapdSettings(p, true, &s, &w).ok());
  CHECK(s.cache_expiration == 42);
  CHECK(s.methods == std::vector<std::string>{"umich_ldap", "nsswitch"});
  CHECK_FALSE(MethodsAreReentrant(s.methods));
  CHECK(MethodsAreReentrant({"nsswitch", "Static"}));
  // Missing: the defaults, unless the file was asked for.
  REQUIRE(LoadIdmapdSettings(p + ".none", false, &s, &w).ok());
  CHECK(s.cache_expiration == kDefaultCacheTimeout);
  CHECK(s.nobody_user == "nobody");
  CHECK_FALSE(LoadIdmapdSettings(p + ".none", true, &s, &w).ok());
}

}  // namespace
}  // namespace nfsdh::idmap
