#include "nfsdfs-proto/cld.h"

#include <linux/nfsd/cld.h>

#include <catch2/catch.hpp>
#include <cstring>

namespace nfsdfs::cld {
namespace {

Message Get(const std::variant<Message, ParseError>& v) {
  if (auto* e = std::get_if<ParseError>(&v)) FAIL(e->reason);
  return std::get<Message>(v);
}

ParseError Err(const std::variant<Message, ParseError>& v) {
  REQUIRE(std::holds_alternative<ParseError>(v));
  return std::get<ParseError>(v);
}

TEST_CASE("cld: message sizes follow cm_vers", "[proto][cld]") {
  CHECK(MessageSize(1) == 1034);
  CHECK(MessageSize(2) == 1067);
  CHECK(MessageSize(0) == 0);
  CHECK(MessageSize(3) == 0);
}

TEST_CASE("cld: a v2 Create with a principal hash, byte for byte",
          "[proto][cld]") {
  struct cld_msg_v2 k;
  std::memset(&k, 0, sizeof k);
  k.cm_vers = 2;
  k.cm_cmd = Cld_Create;
  k.cm_xid = 0xdeadbeef;
  const char id[] = "Linux NFSv4.1 host";
  k.cm_u.cm_clntinfo.cc_name.cn_len = sizeof id - 1;
  std::memcpy(k.cm_u.cm_clntinfo.cc_name.cn_id, id, sizeof id - 1);
  k.cm_u.cm_clntinfo.cc_princhash.cp_len = 32;
  std::memset(k.cm_u.cm_clntinfo.cc_princhash.cp_data, 0xab, 32);
  std::string wire(reinterpret_cast<char*>(&k), sizeof k);
  Message m = Get(DecodeUpcall(wire));
  CHECK(m.vers == 2);
  CHECK(m.cmd == static_cast<uint8_t>(Command::kCreate));
  CHECK(m.xid == 0xdeadbeef);
  CHECK(m.name == "Linux NFSv4.1 host");
  CHECK(m.princhash == std::string(32, '\xab'));
  // Encoding the same message gives the kernel's bytes back.
  CHECK(Encode(m) == wire);
}

TEST_CASE("cld: v1 messages have no principal hash", "[proto][cld]") {
  struct cld_msg k;
  std::memset(&k, 0, sizeof k);
  k.cm_vers = 1;
  k.cm_cmd = Cld_Create;
  k.cm_xid = 7;
  k.cm_u.cm_name.cn_len = 1024;
  std::memset(k.cm_u.cm_name.cn_id, 'z', 1024);
  std::string wire(reinterpret_cast<char*>(&k), sizeof k);
  Message m = Get(DecodeUpcall(wire));
  CHECK(m.name == std::string(1024, 'z'));
  CHECK(m.princhash.empty());
  Message reply = m;
  reply.status = 0;
  CHECK(Encode(reply).size() == 1034);
}

TEST_CASE("cld: malformed upcalls keep their xid for the reply",
          "[proto][cld]") {
  struct cld_msg_v2 k;
  std::memset(&k, 0, sizeof k);
  k.cm_vers = 2;
  k.cm_cmd = Cld_Create;
  k.cm_xid = 99;
  std::string wire(reinterpret_cast<char*>(&k), sizeof k);

  SECTION("name longer than its array") {
    uint16_t len = 1025;
    std::memcpy(&wire[8], &len, 2);
    auto e = Err(DecodeUpcall(wire));
    CHECK(e.seq == 99u);
    CHECK_THAT(e.reason, Catch::Contains("1025"));
  }
  SECTION("principal hash of 31 bytes") {
    wire[1034] = 31;
    CHECK_THAT(Err(DecodeUpcall(wire)).reason, Catch::Contains("31"));
  }
  SECTION("v2 header on a v1-sized message") {
    CHECK_THAT(Err(DecodeUpcall(wire.substr(0, 1034))).reason,
               Catch::Contains("expected 1067"));
  }
  SECTION("unknown version") {
    wire[0] = 3;
    CHECK_THAT(Err(DecodeUpcall(wire)).reason,
               Catch::Contains("unknown message version 3"));
  }
  SECTION("shorter than a header: no xid") {
    auto e = Err(DecodeUpcall(wire.substr(0, 7)));
    CHECK_FALSE(e.seq.has_value());
  }
}

TEST_CASE("cld: GetVersion and GraceDone round trips", "[proto][cld]") {
  Message gv;
  gv.vers = 1;
  gv.cmd = static_cast<uint8_t>(Command::kGetVersion);
  gv.xid = 1;
  gv.version = 2;
  std::string w = Encode(gv);
  REQUIRE(w.size() == 1034);
  struct cld_msg k;
  std::memcpy(&k, w.data(), sizeof k);
  CHECK(k.cm_u.cm_version == 2);
  CHECK(Get(DecodeDowncall(w, 1034)).version == 2);
  CHECK(std::holds_alternative<ParseError>(DecodeDowncall(w, 1067)));

  Message gd;
  gd.vers = 1;
  gd.cmd = static_cast<uint8_t>(Command::kGraceDone);
  gd.gracetime = 1763771853;
  w = Encode(gd);
  std::memcpy(&k, w.data(), sizeof k);
  CHECK(k.cm_u.cm_gracetime == 1763771853);
  CHECK(Get(DecodeUpcall(w)).gracetime == 1763771853);
}

TEST_CASE("cld: a GraceStart downcall carries one allowed client",
          "[proto][cld]") {
  Message c;
  c.vers = 2;
  c.cmd = static_cast<uint8_t>(Command::kGraceStart);
  c.status = -EINPROGRESS;
  c.xid = 5;
  c.name = std::string("\0\1binary", 8);
  c.princhash = std::string(32, '\x11');
  Message back = Get(DecodeDowncall(Encode(c), 1067));
  CHECK(back.status == -EINPROGRESS);
  CHECK(back.name == c.name);
  CHECK(back.princhash == c.princhash);
  // The GraceStart upcall itself carries no client.
  CHECK(Get(DecodeUpcall(Encode(c))).name.empty());
  CHECK(std::string(CommandName(4)) == "GraceStart");
  CHECK(std::string(CommandName(77)) == "unknown");
}

}  // namespace
}  // namespace nfsdfs::cld
