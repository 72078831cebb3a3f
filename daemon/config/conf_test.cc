// The nfs.conf(5) reader: syntax, drop-in directory, include, '$' values.
// Expected behaviour is nfs-utils 2.6's (support/nfs/conffile.c); when this was
// written, the values read from 2,000 random files were compared with those
// of `nfsconf --dump` of nfs-utils 2.6.2 (Debian 12): all equal.
#include "daemon/config/conf.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace nfsdh::config {
namespace {

constexpr char kName[] = "/etc/nfs.conf";

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nfsdh-conf-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  // Writes `text` to path/rel, creating its directory.
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

Conf Parse(std::string_view text) {
  Conf c;
  Status s = ParseConf(text, kName, &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

Conf Load(const std::string& path, bool must_exist = false) {
  Conf c;
  Status s = LoadConf(path, must_exist, &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return c;
}

// The value in force, or "<unset>".
std::string Get(const Conf& c, const std::string& section,
                const std::string& key) {
  const Assignment* a = c.Find(section, key);
  return a ? a->value : "<unset>";
}

std::vector<std::string> Diagnostics(const Conf& c) {
  std::vector<std::string> out;
  for (const Diagnostic& d : c.diagnostics()) out.push_back(d.ToString());
  return out;
}

using Lines = std::vector<std::string>;

TEST_CASE("comments, blank lines and blanks around keys and values go",
          "[config]") {
  Conf c = Parse(
      "# a comment\n"
      "; also a comment\n"
      "   # an indented comment\n"
      "\n"
      "  \t \n"
      "[nfsd-helper]\n"
      "\tdb\t=\t/var/db   \n"
      "  nfsdfs=/proc/fs/nfsd\n"
      "scope = a # a comment after the value\n"
      "debug = yes;no space needed before ; or #\n"
      "foreground = x#y\n");
  CHECK(Get(c, "nfsd-helper", "db") == "/var/db");
  CHECK(Get(c, "nfsd-helper", "nfsdfs") == "/proc/fs/nfsd");
  CHECK(Get(c, "nfsd-helper", "scope") == "a");
  CHECK(Get(c, "nfsd-helper", "debug") == "yes");
  CHECK(Get(c, "nfsd-helper", "foreground") == "x");
  CHECK(Diagnostics(c).empty());
  CHECK(c.Find("nfsd-helper", "db")->origin.line == 7);
}

TEST_CASE("quoted values are taken verbatim up to the closing quote",
          "[config]") {
  Conf c = Parse(
      "[s]\n"
      "a = \"  spaced # not a comment ; \"\n"
      "b = '/p;q'  text after the quote is ignored\n"
      "c = \"no closing quote\n"
      "d = \"\"\n"
      "e = 'it\"s'\n");
  CHECK(Get(c, "s", "a") == "  spaced # not a comment ; ");
  CHECK(Get(c, "s", "b") == "/p;q");
  CHECK(Get(c, "s", "c") == "<unset>");
  CHECK(Get(c, "s", "d") == "<unset>");  // empty: ignored
  CHECK(Get(c, "s", "e") == "it\"s");
  CHECK(Diagnostics(c) ==
        Lines{"/etc/nfs.conf:4: no closing \" in the value; the line is "
              "ignored"});
  // The empty assignment is kept for callers, with its value empty.
  REQUIRE(c.assignments().size() == 4);
  CHECK(c.assignments()[2].key == "d");
  CHECK(c.assignments()[2].value.empty());
}

TEST_CASE("a backslash before the newline continues the line", "[config]") {
  Conf c = Parse(
      "[s]\n"
      "a = one \\\n"
      "  two\n"
      "# a comment \\\n"
      "hidden = 1\n"
      "b = 2\n"
      "not an assignment\n");
  // The backslash and the newline both become spaces.
  CHECK(Get(c, "s", "a") == "one     two");
  CHECK(Get(c, "s", "hidden") == "<unset>");
  CHECK(Get(c, "s", "b") == "2");
  // Line numbers are physical (nfs-utils counts logical lines).
  CHECK(c.Find("s", "b")->origin.line == 6);
  CHECK(Diagnostics(c) ==
        Lines{"/etc/nfs.conf:7: neither a section header, an assignment nor "
              "a comment; ignored"});
}

TEST_CASE(
    "the last assignment wins: names are case-insensitive and empty "
    "assignments change nothing",
    "[config]") {
  Conf c = Parse(
      "[NFSD-Helper]\n"
      "db = /a\n"
      "DB = /b\n"
      "[nfsd-helper]\n"
      "Db = /c\n"
      "db =\n"
      "db = \"\"\n"
      "db = # only a comment\n");
  const Assignment* a = c.Find("nfsd-helper", "db");
  REQUIRE(a != nullptr);
  CHECK(a->value == "/c");
  CHECK(a->key == "Db");
  CHECK(a->section == "nfsd-helper");
  CHECK(a->origin.ToString() == "/etc/nfs.conf:5");
  CHECK(c.Find("NFSD-HELPER", "DB") == a);
  CHECK(c.assignments().size() == 6);
  CHECK(Diagnostics(c).empty());
}

TEST_CASE("section headers: blanks, trailing text, subsections, broken ones",
          "[config]") {
  Conf c = Parse(
      "[  gssd  ] text after the bracket is ignored\n"
      "a = 1\n"
      "[nfsd-helper \"sub\"]\n"
      "db = /sub\n"
      "[ nfsd-helper   \"x y\" ]\n"
      "[nfsd-helper\n"
      "db = /broken\n"
      "[nfsd-helper \"open]\n"
      "scope = s\n");
  CHECK(Get(c, "gssd", "a") == "1");
  // Lines of a subsection are not lines of the section.
  CHECK(Get(c, "nfsd-helper", "db") == "<unset>");
  // nfs-utils keeps the section of a header whose subsection is unclosed.
  CHECK(Get(c, "nfsd-helper", "scope") == "s");
  REQUIRE(c.headers().size() == 4);
  CHECK(c.headers()[0].section == "gssd");
  CHECK(!c.headers()[0].subsection);
  CHECK(c.headers()[1].subsection == std::optional<std::string>("sub"));
  CHECK(c.headers()[2].subsection == std::optional<std::string>("x y"));
  CHECK(!c.headers()[3].subsection);
  REQUIRE(c.assignments().size() == 3);
  CHECK(c.assignments()[1].subsection == std::optional<std::string>("sub"));
  CHECK(Diagnostics(c) ==
        Lines{"/etc/nfs.conf:6: no ']' closes the section header; lines up "
              "to the next section header are ignored",
              "/etc/nfs.conf:7: assignment after a broken section header; "
              "ignored",
              "/etc/nfs.conf:8: no closing '\"' for the subsection name; the "
              "lines that follow belong to '[nfsd-helper]'"});
  // Each diagnostic knows which section it concerns.
  for (const Diagnostic& d : c.diagnostics()) {
    CHECK(d.section == "nfsd-helper");
    CHECK(!d.in_subsection);
  }
}

TEST_CASE(
    "lines outside sections and malformed lines are skipped and "
    "reported",
    "[config]") {
  Conf c = Parse(
      "include = x.conf\n"
      "db = /early\n"
      "[s]\n"
      "just words\n"
      "= value\n");
  CHECK(c.assignments().empty());
  CHECK(Diagnostics(c) ==
        Lines{"/etc/nfs.conf:1: assignment before any section header; "
              "ignored",
              "/etc/nfs.conf:2: assignment before any section header; "
              "ignored",
              "/etc/nfs.conf:4: neither a section header, an assignment nor "
              "a comment; ignored",
              "/etc/nfs.conf:5: no key before '='; ignored"});
  CHECK(c.diagnostics()[0].section.empty());
  CHECK(c.diagnostics()[2].section == "s");
}

TEST_CASE("a last line without a newline is ignored, as nfs-utils does",
          "[config]") {
  Conf c = Parse("[nfsd-helper]\ndb = /x");
  CHECK(Get(c, "nfsd-helper", "db") == "<unset>");
  CHECK(Diagnostics(c) ==
        Lines{"/etc/nfs.conf:2: no newline at the end of the file: nfs-utils "
              "ignores this last line"});
  CHECK(c.diagnostics()[0].section == "nfsd-helper");

  // Nothing is lost if the last line is a comment or blanks.
  CHECK(Parse("[s]\na = 1\n# the end").diagnostics().empty());
  CHECK(Parse("[s]\na = 1\n  ").diagnostics().empty());
  // A header there concerns the section it opens.
  Conf h = Parse("[nfsd-helper]\ndb = /x\n[gssd]");
  REQUIRE(h.diagnostics().size() == 1);
  CHECK(h.diagnostics()[0].section == "gssd");
  CHECK(!h.diagnostics()[0].in_subsection);
  Conf sub = Parse("[nfsd-helper]\n[nfsd-helper \"x\"]");
  REQUIRE(sub.diagnostics().size() == 1);
  CHECK(sub.diagnostics()[0].section == "nfsd-helper");
  CHECK(sub.diagnostics()[0].in_subsection);
}

TEST_CASE("CRLF line ends and NUL bytes", "[config]") {
  Conf c = Parse("[nfsd-helper]\r\ndb = /x\r\nscope = \"q\"\r\n");
  CHECK(Get(c, "nfsd-helper", "db") == "/x");
  CHECK(Get(c, "nfsd-helper", "scope") == "q");
  CHECK(c.diagnostics().empty());

  Conf n = Parse(std::string_view("[s]\na = 1\nb = 2\0c = 3\n", 22));
  CHECK(Get(n, "s", "a") == "1");
  CHECK(Get(n, "s", "b") == "<unset>");  // its line has no newline any more
  CHECK(Get(n, "s", "c") == "<unset>");
  CHECK(Diagnostics(n) ==
        Lines{"/etc/nfs.conf:3: NUL byte: nfs-utils ignores the rest of the "
              "file",
              "/etc/nfs.conf:3: no newline at the end of the file: nfs-utils "
              "ignores this last line"});
}

TEST_CASE("$NAME values come from the environment, then [environment]",
          "[config]") {
  Conf c = Parse(
      "[environment]\n"
      "SRV = /srv\n"
      "CHAIN = $SRV\n"
      "LOOP = $LOOP\n"
      "EMPTY_IN_ENV = /from-section\n"
      "[nfsd-helper]\n"
      "db = $DB_PATH\n"
      "nfsdfs = $CHAIN\n"
      "scope = $NOWHERE\n"
      "debug = $LOOP\n"
      "foreground = $EMPTY_IN_ENV\n"
      "plain = a$b\n");
  std::map<std::string, std::string> env = {{"DB_PATH", "/from-env"},
                                            {"EMPTY_IN_ENV", ""}};
  EnvFn fn = [&env](const std::string& n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto expand = [&](const char* key, std::string* v) {
    const Assignment* a = c.Find("nfsd-helper", key);
    REQUIRE(a != nullptr);
    return c.Expand(*a, v, fn);
  };
  std::string v;
  REQUIRE(expand("db", &v).ok());
  CHECK(v == "/from-env");
  REQUIRE(expand("nfsdfs", &v).ok());
  CHECK(v == "/srv");
  REQUIRE(expand("foreground", &v).ok());
  CHECK(v == "/from-section");
  REQUIRE(expand("plain", &v).ok());
  CHECK(v == "a$b");
  Status s = expand("scope", &v);
  CHECK(s.code() == Status::Code::kNotFound);
  CHECK(s.message() ==
        "$NOWHERE is set neither in the environment nor in [environment]");
  s = expand("debug", &v);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message() == "more than 16 '$' references in a row");
}

TEST_CASE("booleans are read as nfs-utils' conf_get_bool reads them",
          "[config]") {
  for (const char* t : {"1", "t", "T", "true", "TRUE", "True", "y", "Y", "yes",
                        "YES", "Yes", "on", "ON", "On"}) {
    INFO(t);
    CHECK(ParseBool(t) == std::optional<bool>(true));
  }
  for (const char* f : {"0", "f", "F", "false", "FALSE", "False", "n", "N",
                        "no", "NO", "No", "off", "OFF", "Off"}) {
    INFO(f);
    CHECK(ParseBool(f) == std::optional<bool>(false));
  }
  for (const char* bad :
       {"", "2", "01", "yes please", "enable", "all", " yes", "nope", "o"}) {
    INFO(bad);
    CHECK(!ParseBool(bad));
  }
}

TEST_CASE("nfs.conf.d/*.conf override nfs.conf, in versionsort order",
          "[config]") {
  TempDir t;
  std::string main = t.Write("nfs.conf",
                             "[nfsd-helper]\n"
                             "scope = main\n"
                             "db = /main\n"
                             "nfsdfs = /main\n"
                             "debug = 1\n");
  t.Write("nfs.conf.d/10-b.conf", "[nfsd-helper]\nscope = ten\n");
  t.Write("nfs.conf.d/9-a.conf", "[nfsd-helper]\nscope = nine\ndb = /nine\n");
  t.Write("nfs.conf.d/2.conf", "[nfsd-helper]\nnfsdfs = /two\n");
  // None of these is read: a dot file, the wrong extension, a name that is
  // only the extension, a directory.
  t.Write("nfs.conf.d/.hidden.conf", "[nfsd-helper]\nscope = hidden\n");
  t.Write("nfs.conf.d/99.conf.bak", "[nfsd-helper]\nscope = bak\n");
  t.Write("nfs.conf.d/README", "[nfsd-helper]\nscope = readme\n");
  t.Write("nfs.conf.d/.conf", "[nfsd-helper]\nscope = dot\n");
  t.Write("nfs.conf.d/dir.conf/x.conf", "[nfsd-helper]\nscope = dir\n");
  // Each file starts outside any section.
  t.Write("nfs.conf.d/50.conf", "debug = 0\n");

  Conf c = Load(main);
  CHECK(Get(c, "nfsd-helper", "scope") == "ten");
  CHECK(Get(c, "nfsd-helper", "db") == "/nine");
  CHECK(Get(c, "nfsd-helper", "nfsdfs") == "/two");
  CHECK(Get(c, "nfsd-helper", "debug") == "1");
  std::string d = t.path + "/nfs.conf.d/";
  CHECK(c.files() == Lines{main, d + "2.conf", d + "9-a.conf", d + "10-b.conf",
                           d + "50.conf"});
  CHECK(Diagnostics(c) == Lines{d + "50.conf:1: assignment before any "
                                    "section header; ignored"});
}

TEST_CASE("a missing nfs.conf is no error, and its directory is still read",
          "[config]") {
  TempDir t;
  t.Write("nfs.conf.d/a.conf", "[nfsd-helper]\ndb = /dropin\n");
  Conf c = Load(t.path + "/nfs.conf");
  CHECK(Get(c, "nfsd-helper", "db") == "/dropin");
  CHECK(Load(t.path + "/other.conf").assignments().empty());

  // Unless the caller needs it to exist.
  Status s = LoadConf(t.path + "/nfs.conf", true, &c);
  CHECK(s.code() == Status::Code::kNotFound);
  CHECK(s.message() == "cannot read configuration file " + t.path +
                           "/nfs.conf: No such file or directory");
}

TEST_CASE("an nfs.conf or nfs.conf.d that cannot be read is an error",
          "[config]") {
  TempDir t;
  Conf c;
  REQUIRE(mkdir((t.path + "/dir.conf").c_str(), 0755) == 0);
  Status s = LoadConf(t.path + "/dir.conf", false, &c);
  CHECK(!s.ok());
  CHECK(s.message() == "cannot read configuration file " + t.path +
                           "/dir.conf: Is a directory");

  std::string main = t.Write("nfs.conf", "[s]\na = 1\n");
  t.Write("nfs.conf.d", "not a directory\n");
  s = LoadConf(main, false, &c);
  CHECK(!s.ok());
  CHECK(s.message() == "cannot read configuration directory " + t.path +
                           "/nfs.conf.d: Not a directory");
}

TEST_CASE(
    "a dangling symbolic link in nfs.conf.d is skipped with a "
    "diagnostic",
    "[config]") {
  TempDir t;
  std::string main = t.Write("nfs.conf", "[s]\na = 1\n");
  t.Write("nfs.conf.d/b.conf", "[s]\na = 2\n");
  REQUIRE(symlink("/nonexistent/x", (t.path + "/nfs.conf.d/a.conf").c_str()) ==
          0);
  Conf c = Load(main);
  CHECK(Get(c, "s", "a") == "2");
  CHECK(Diagnostics(c) ==
        Lines{t.path + "/nfs.conf.d/a.conf: no such file (a dangling "
                       "symbolic link?); skipped"});
}

TEST_CASE("include reads a file in place, relative to the including file",
          "[config]") {
  TempDir t;
  std::string main = t.Write("nfs.conf",
                             "[nfsd-helper]\n"
                             "scope = before\n"
                             "include = inc/more.conf\n"
                             "db = /after\n"
                             "include = -inc/optional-missing.conf\n"
                             "INCLUDE = inc/missing.conf\n");
  t.Write("inc/more.conf",
          "scope = included\n"  // in the including line's section
          "db = /included\n"
          "include = deeper.conf\n"  // relative to inc/
          "[gssd]\n"
          "x = 1\n");
  t.Write("inc/deeper.conf", "nfsdfs = /deeper\n");
  Conf c = Load(main);
  CHECK(Get(c, "nfsd-helper", "scope") == "included");
  CHECK(Get(c, "nfsd-helper", "db") == "/after");  // [gssd] did not leak
  CHECK(Get(c, "nfsd-helper", "nfsdfs") == "/deeper");
  CHECK(Get(c, "gssd", "x") == "1");
  CHECK(c.Find("nfsd-helper", "nfsdfs")->origin.ToString() ==
        t.path + "/inc/deeper.conf:1");
  CHECK(c.files() ==
        Lines{main, t.path + "/inc/more.conf", t.path + "/inc/deeper.conf"});
  CHECK(Diagnostics(c) ==
        Lines{main + ":6: cannot include '" + t.path +
              "/inc/missing.conf': no such file (write include = -FILE for "
              "an optional one)"});
  CHECK(c.diagnostics()[0].section == "nfsd-helper");
}

TEST_CASE("an include cycle, or an include that cannot be read, is an error",
          "[config]") {
  TempDir t;
  std::string a = t.Write("a.conf", "[s]\ninclude = b.conf\n");
  t.Write("b.conf", "[s]\nx = 1\ninclude = ./a.conf\n");
  Conf c;
  Status s = LoadConf(a, false, &c);
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message() == t.path + "/b.conf:3: include cycle: '" + t.path +
                           "/./a.conf' is already being read");

  std::string self = t.Write("self.conf", "[s]\ninclude = self.conf\n");
  s = LoadConf(self, false, &c);
  CHECK(s.message() ==
        self + ":2: include cycle: '" + self + "' is already being read");

  REQUIRE(mkdir((t.path + "/d").c_str(), 0755) == 0);
  std::string dir = t.Write("dir.conf", "[s]\ninclude = -d\n");
  s = LoadConf(dir, false, &c);
  CHECK(s.message() == dir + ":2: cannot read included file '" + t.path +
                           "/d': Is a directory");

  // The same file twice, one after the other, is no cycle.
  std::string twice =
      t.Write("twice.conf", "[s]\ninclude = c.conf\ninclude = c.conf\n");
  t.Write("c.conf", "y = 2\n");
  CHECK(Load(twice).assignments().size() == 2);
}

TEST_CASE("file names and values are escaped in messages", "[config]") {
  Conf c;
  REQUIRE(ParseConf("[s]\nno\x01 assignment\n", "/tmp/odd\nname", &c).ok());
  CHECK(Diagnostics(c) ==
        Lines{"/tmp/odd\\x0aname:2: neither a section header, an assignment "
              "nor a comment; ignored"});
}

}  // namespace
}  // namespace nfsdh::config
