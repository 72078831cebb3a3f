#include "daemon/idmap/upcall.h"

#include <catch2/catch.hpp>

namespace nfsdh::idmap {
namespace {

TEST_CASE("idmap: idtoname upcalls parse as nfs4idmap.c writes them",
          "[idmap]") {
  Upcall up;
  std::string err;
  REQUIRE(ParseUpcall(Direction::kIdToName, "* user 1000\n", &up, &err));
  CHECK(up.authname == "*");
  CHECK(up.type == IdType::kUser);
  CHECK(up.id == 1000);
  REQUIRE(ParseUpcall(Direction::kIdToName, "nfs\\040client group 4294967295\n",
                      &up, &err));
  CHECK(up.authname == "nfs client");
  CHECK(up.type == IdType::kGroup);
  CHECK(up.id == 4294967295u);
}

TEST_CASE("idmap: nametoid upcalls parse, escapes decoded", "[idmap]") {
  Upcall up;
  std::string err;
  REQUIRE(ParseUpcall(Direction::kNameToId,
                      "127.0.0.1 group we\\040are\\134x@dom\n", &up, &err));
  CHECK(up.authname == "127.0.0.1");
  CHECK(up.type == IdType::kGroup);
  CHECK(up.name == "we are\\x@dom");
}

TEST_CASE("idmap: malformed upcalls are refused with a reason", "[idmap]") {
  Upcall up;
  std::string err;
  const char* bad_idtoname[] = {
      "* user 1000",           // no newline
      "* user\n",              // no id
      "* owner 1000\n",        // bad type
      "* user 12a\n",          // not a number
      "* user 4294967296\n",   // beyond 32 bits
      "* user -1\n",           // negative
      "* user 1 2\n",          // a field too many
      "\n",                    // nothing
  };
  for (const char* line : bad_idtoname) {
    INFO(line);
    err.clear();
    CHECK_FALSE(ParseUpcall(Direction::kIdToName, line, &up, &err));
    CHECK_FALSE(err.empty());
  }
  std::string long_name = "* user " + std::string(kNameSize, 'a') + "\n";
  CHECK_FALSE(ParseUpcall(Direction::kNameToId, long_name, &up, &err));
  std::string ok_name = "* user " + std::string(kNameSize - 1, 'a') + "\n";
  CHECK(ParseUpcall(Direction::kNameToId, ok_name, &up, &err));
  CHECK_FALSE(ParseUpcall(Direction::kNameToId, "* user a\\000b\n", &up, &err));
}

TEST_CASE("idmap: downcalls carry the expiry and negative entries",
          "[idmap]") {
  Upcall up;
  std::string err;
  REQUIRE(ParseUpcall(Direction::kIdToName, "* user 1000\n", &up, &err));
  Answer a;
  a.name = "alice@example.org";
  CHECK(FormatDowncall(up, a, 1700000600) ==
        "* user 1000 1700000600 alice@example.org\n");
  a.name = "";
  CHECK(FormatDowncall(up, a, 1700000600) == "* user 1000 1700000600\n");

  REQUIRE(ParseUpcall(Direction::kNameToId, "c\\040d group g\\040h@x\n", &up,
                      &err));
  Answer b;
  b.has_id = true;
  b.id = 4242;
  CHECK(FormatDowncall(up, b, 99) == "c\\040d group g\\040h@x 99 4242\n");
  b.has_id = false;
  CHECK(FormatDowncall(up, b, 99) == "c\\040d group g\\040h@x 99\n");
}

}  // namespace
}  // namespace nfsdh::idmap
