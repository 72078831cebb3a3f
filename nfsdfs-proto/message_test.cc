#include "nfsdfs-proto/message.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "nfsdfs-proto/qword.h"

namespace nfsdfs {
namespace {

using namespace std::string_literals;
using Catch::Matchers::Contains;

constexpr uint64_t kSeqMax = 18446744073709551615u;
constexpr int64_t kInstanceMax = 9223372036854775807;

const std::string kId = "linux-client-1";
const std::string kIdHex = "\\x6c696e75782d636c69656e742d31";

std::string Bytes(size_t n, char first = 0) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(first + i));
  return s;
}

std::string Hex(std::string_view bytes) { return "\\x" + HexString(bytes); }

const std::string kHash = Bytes(32, 0x40);
const std::string kHashHex = Hex(kHash);

// The parsed value, failing the test with the reason if there is none.
template <typename T>
T Ok(const Parsed<T>& p) {
  if (const auto* e = std::get_if<ParseError>(&p)) {
    FAIL("unexpected parse error: " << e->reason);
  }
  return std::get<T>(p);
}

// The error, failing the test if the line was accepted.
template <typename T>
ParseError Err(const Parsed<T>& p) {
  if (!std::holds_alternative<ParseError>(p)) {
    FAIL("malformed line was accepted");
  }
  return std::get<ParseError>(p);
}

// A reason must be fit for a log line whatever the input held.
void CheckLoggable(const std::string& reason) {
  CHECK_FALSE(reason.empty());
  for (char c : reason) {
    INFO("byte " << static_cast<int>(static_cast<unsigned char>(c)));
    REQUIRE((c >= 0x20 && c < 0x7f));
  }
}

// --- names ---------------------------------------------------------------

TEST_CASE("channel file and minor version names", "[proto]") {
  CHECK(std::string(ChannelFileName(Channel::kAllowClient)) == "allow_client");
  CHECK(std::string(ChannelFileName(Channel::kCreateClient)) ==
        "create_client");
  CHECK(std::string(ChannelFileName(Channel::kExpireClient)) ==
        "expire_client");
  CHECK(std::string(ChannelFileName(Channel::kGraceDone)) == "grace_done");
  CHECK(std::string(MinorName(Minor::kV40)) == "v40");
  CHECK(std::string(MinorName(Minor::kV41)) == "v41");
}

// --- PeekSeq -------------------------------------------------------------

TEST_CASE("PeekSeq reads a valid leading seq only", "[proto]") {
  CHECK(PeekSeq("17 start 1 0\n") == std::optional<uint64_t>(17));
  CHECK(PeekSeq("17\n") == std::optional<uint64_t>(17));
  CHECK(PeekSeq("17") == std::optional<uint64_t>(17));
  // The rest of the line may be anything.
  CHECK(PeekSeq("17  garbage \x01\n\n") == std::optional<uint64_t>(17));
  CHECK(PeekSeq("18446744073709551615 0\n") ==
        std::optional<uint64_t>(kSeqMax));
  // Fields are decoded as qword_get does before they are read as numbers.
  CHECK(PeekSeq("\\x3137 0\n") == std::optional<uint64_t>(17));

  CHECK_FALSE(PeekSeq("").has_value());
  CHECK_FALSE(PeekSeq("\n").has_value());
  CHECK_FALSE(PeekSeq(" 17 0\n").has_value());
  CHECK_FALSE(PeekSeq("0 0\n").has_value());
  CHECK_FALSE(PeekSeq("017 0\n").has_value());
  CHECK_FALSE(PeekSeq("+17 0\n").has_value());
  CHECK_FALSE(PeekSeq("-17 0\n").has_value());
  CHECK_FALSE(PeekSeq("18446744073709551616 0\n").has_value());
  CHECK_FALSE(PeekSeq("99999999999999999999 0\n").has_value());
  CHECK_FALSE(PeekSeq("17a 0\n").has_value());
  CHECK_FALSE(PeekSeq("17\t0\n").has_value());
  CHECK_FALSE(PeekSeq("1\0007 0\n"s).has_value());
  CHECK_FALSE(PeekSeq("\\x313 0\n").has_value());
}

// --- allow_client request ------------------------------------------------

TEST_CASE("start request: valid lines", "[proto]") {
  StartRequest r = Ok(ParseStartRequest("17 start 1 1763771853\n"));
  CHECK(r.seq == 17);
  CHECK(r.version == 1);
  CHECK(r.kernel_boot_time == 1763771853);

  // Any version parses; whether it is supported is the daemon's business.
  r = Ok(ParseStartRequest("1 start 0 0\n"));
  CHECK(r.seq == 1);
  CHECK(r.version == 0);
  CHECK(r.kernel_boot_time == 0);
  r = Ok(ParseStartRequest(
      "18446744073709551615 start 18446744073709551615 9223372036854775807\n"));
  CHECK(r.seq == kSeqMax);
  CHECK(r.version == kSeqMax);
  CHECK(r.kernel_boot_time == kInstanceMax);
}

TEST_CASE("start request: each field invalid in turn", "[proto]") {
  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"0 start 1 0\n", std::nullopt, "seq \"0\" is out of range"},
      {"017 start 1 0\n", std::nullopt, "leading zero"},
      {"18446744073709551616 start 1 0\n", std::nullopt, "out of range"},
      {"-1 start 1 0\n", std::nullopt, "not an unsigned decimal"},
      {"+1 start 1 0\n", std::nullopt, "not an unsigned decimal"},
      {"x start 1 0\n", std::nullopt, "seq"},
      {"17 begin 1 0\n", 17, "expected \"start\""},
      {"17 START 1 0\n", 17, "expected \"start\""},
      {"17 done 1 0\n", 17, "expected \"start\""},
      {"17 start 01 0\n", 17, "version \"01\" has a leading zero"},
      {"17 start -1 0\n", 17, "version"},
      {"17 start 18446744073709551616 0\n", 17, "version"},
      {"17 start 1 -1\n", 17, "kernel boot time"},
      {"17 start 1 00\n", 17, "leading zero"},
      {"17 start 1 9223372036854775808\n", 17,
       "kernel boot time \"9223372036854775808\" is out of range "
       "0..9223372036854775807"},
      {"17 start 1 1.5\n", 17, "kernel boot time"},
      {"17 start 1 0\r\n", 17, "kernel boot time"},
      {"17 start 1\n", 17, "expected 4 fields"},
      {"17 start 1 0 0\n", 17, "got 5"},
      {"17\n", 17, "got 1"},
      {"17 start 1 0", 17, "does not end in a newline"},
      {"17 start 1 0 \n", 17, "ends with a space"},
      {" 17 start 1 0\n", std::nullopt, "starts with a space"},
      {"17  start 1 0\n", 17, "double space at offset 2"},
      {"17 start  1 0\n", 17, "double space"},
      {"17 start 1 0\n\n", 17, "newline at offset 12"},
      {"17 start\n1 0\n", 17, "newline"},
      {"17 start 1 0\0\n"s, 17, "NUL byte at offset 12"},
      {"17 st\0art 1 0\n"s, 17, "NUL"},
      {"\n", std::nullopt, "empty"},
      {"", std::nullopt, "newline"},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseStartRequest(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

// --- create_client request -----------------------------------------------

TEST_CASE("create request: valid lines", "[proto]") {
  CreateRequest r =
      Ok(ParseCreateRequest("18 1763771860 " + kIdHex + " - v41\n"));
  CHECK(r.seq == 18);
  CHECK(r.instance == 1763771860);
  CHECK(r.client_id == kId);
  CHECK(r.princhash.empty());
  CHECK(r.minor == Minor::kV41);

  r = Ok(ParseCreateRequest("18 1 " + kIdHex + " " + kHashHex + " v40\n"));
  CHECK(r.instance == 1);
  CHECK(r.princhash == kHash);
  CHECK(r.minor == Minor::kV40);

  // An empty "\x" is an empty principal hash too.
  r = Ok(ParseCreateRequest("18 1 " + kIdHex + " \\x v40\n"));
  CHECK(r.princhash.empty());

  // Upper-case hex digits are accepted.
  r = Ok(ParseCreateRequest("18 9223372036854775807 \\xABCDEF - v41\n"));
  CHECK(r.instance == kInstanceMax);
  CHECK(r.client_id == "\xab\xcd\xef");

  // Client ids are binary: every byte value survives.
  const std::string all = Bytes(256);
  r = Ok(ParseCreateRequest("18 1 " + Hex(all) + " - v41\n"));
  CHECK(r.client_id == all);
}

TEST_CASE("create request: client id length limits", "[proto]") {
  const std::string id1024 = Bytes(1024, 7);
  CreateRequest r = Ok(ParseCreateRequest("18 1 " + Hex(id1024) + " - v41\n"));
  CHECK(r.client_id == id1024);

  r = Ok(ParseCreateRequest("18 1 \\x00 - v41\n"));
  CHECK(r.client_id == "\0"s);

  ParseError e =
      Err(ParseCreateRequest("18 1 " + Hex(Bytes(1025)) + " - v41\n"));
  CHECK(e.seq == std::optional<uint64_t>(18));
  CHECK(e.reason == "client id is 1025 bytes, at most 1024 allowed");

  e = Err(ParseCreateRequest("18 1 \\x - v41\n"));
  CHECK(e.seq == std::optional<uint64_t>(18));
  CHECK_THAT(e.reason, Contains("client id is 0 bytes"));
}

TEST_CASE("create request: principal hash must be 0 or 32 bytes", "[proto]") {
  for (size_t n : {1u, 31u, 33u, 64u}) {
    INFO(n << " bytes");
    const ParseError e = Err(
        ParseCreateRequest("18 1 " + kIdHex + " " + Hex(Bytes(n)) + " v41\n"));
    CHECK(e.seq == std::optional<uint64_t>(18));
    CHECK_THAT(e.reason,
               Contains("principal hash is " + std::to_string(n) + " bytes"));
  }
  // "-" is a token, not a one-byte text field: anything else is decoded and
  // measured.
  for (std::string_view bad : {"--", "\\055", "x"}) {
    INFO(std::string(bad));
    const ParseError e = Err(ParseCreateRequest("18 1 " + kIdHex + " " +
                                                std::string(bad) + " v41\n"));
    CHECK_THAT(e.reason, Contains("principal hash"));
  }
}

TEST_CASE("create request: each field invalid in turn", "[proto]") {
  const std::string tail = " " + kIdHex + " - v41\n";
  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"0 1" + tail, std::nullopt, "seq"},
      {"18446744073709551616 1" + tail, std::nullopt, "out of range"},
      {"18 0" + tail, 18, "instance \"0\" is out of range 1.."},
      {"18 9223372036854775808" + tail, 18,
       "instance \"9223372036854775808\" is out of range "
       "1..9223372036854775807"},
      {"18 01" + tail, 18, "instance \"01\" has a leading zero"},
      {"18 -1" + tail, 18, "instance"},
      {"18 1 \\x6c6 - v41\n", 18, "client id \"\\\\x6c6\" is not a valid"},
      {"18 1 \\x6g - v41\n", 18, "client id"},
      {"18 1 " + kIdHex + " \\x4 v41\n", 18, "principal hash"},
      {"18 1 " + kIdHex + " - v42\n", 18, "minor version \"v42\""},
      {"18 1 " + kIdHex + " - V41\n", 18, "minor version"},
      {"18 1 " + kIdHex + " - v4\n", 18, "minor version"},
      {"18 1 " + kIdHex + " - v410\n", 18, "minor version"},
      {"18 1 " + kIdHex + " -\n", 18, "expected 5 fields"},
      {"18 1 " + kIdHex + " - v41 x\n", 18, "got 6"},
      {"18 1 " + kIdHex + " - v41", 18, "newline"},
      {"18 1 " + kIdHex + " - v41 \n", 18, "ends with a space"},
      {"18 1 " + kIdHex + "  - v41\n", 18, "double space"},
      {"18 1 \\x6c\0006c - v41\n"s, 18, "NUL"},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseCreateRequest(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("request lines may be at most 4096 bytes", "[proto]") {
  // A 1024-byte client id written as text, 1020 bytes of it as octal escapes,
  // brings a valid line to exactly 4096 bytes.
  std::string id_field;
  for (int i = 0; i < 1020; ++i) id_field += "\\101";
  id_field += "AAAA";
  const std::string line = "12 1 " + id_field + " - v40\n";
  REQUIRE(line.size() == 4096);
  CreateRequest r = Ok(ParseCreateRequest(line));
  CHECK(r.client_id == std::string(1024, 'A'));

  const ParseError e = Err(ParseCreateRequest("1" + line));
  CHECK(e.seq == std::optional<uint64_t>(112));
  CHECK(e.reason == "line is 4097 bytes, at most 4096 allowed");

  // Length is checked first, for every request type.
  const std::string long_tail(4097, 'x');
  CHECK(Err(ParseStartRequest("5 " + long_tail)).seq ==
        std::optional<uint64_t>(5));
  CHECK_THAT(Err(ParseExpireRequest("5 " + long_tail)).reason,
             Contains("at most 4096"));
  CHECK_THAT(Err(ParseGraceDoneRequest("5 " + long_tail)).reason,
             Contains("at most 4096"));
}

TEST_CASE("reasons quote input safely and briefly", "[proto]") {
  ParseError e =
      Err(ParseCreateRequest("18 1 " + kIdHex + " - v4\x01\xff\\\"\n"));
  CheckLoggable(e.reason);
  CHECK_THAT(e.reason, Contains("v4\\x01\\xff\\\\\""));

  // A long bad field is cut, not copied whole into the log.
  const std::string junk(3000, '\x80');
  e = Err(ParseCreateRequest("18 1 " + kIdHex + " - " + junk + "\n"));
  CheckLoggable(e.reason);
  CHECK(e.reason.size() < 400);
  CHECK_THAT(e.reason, Contains("3000 bytes"));
}

// --- expire_client and grace_done requests -------------------------------

TEST_CASE("expire request", "[proto]") {
  ExpireRequest r = Ok(ParseExpireRequest("20 1763771860 " + kIdHex + "\n"));
  CHECK(r.seq == 20);
  CHECK(r.instance == 1763771860);
  CHECK(r.client_id == kId);

  r = Ok(ParseExpireRequest("20 1 " + Hex(Bytes(1024)) + "\n"));
  CHECK(r.client_id.size() == 1024);

  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"0 1 " + kIdHex + "\n", std::nullopt, "seq"},
      {"020 1 " + kIdHex + "\n", std::nullopt, "leading zero"},
      {"20 0 " + kIdHex + "\n", 20, "instance"},
      {"20 9223372036854775808 " + kIdHex + "\n", 20, "instance"},
      {"20 1 \\x\n", 20, "client id is 0 bytes"},
      {"20 1 " + Hex(Bytes(1025)) + "\n", 20,
       "client id is 1025 bytes, at most 1024 allowed"},
      {"20 1 \\x123\n", 20, "client id"},
      {"20 1 " + kIdHex + " -\n", 20, "expected 3 fields"},
      {"20 1\n", 20, "got 2"},
      {"20 1 " + kIdHex, 20, "newline"},
      {"20 1 " + kIdHex + " \n", 20, "ends with a space"},
      {"20  1 " + kIdHex + "\n", 20, "double space"},
      {"20 1 " + kIdHex + "\0\n"s, 20, "NUL"},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseExpireRequest(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("grace_done request", "[proto]") {
  GraceDoneRequest r = Ok(ParseGraceDoneRequest("19 1763771860\n"));
  CHECK(r.seq == 19);
  CHECK(r.instance == 1763771860);
  r = Ok(ParseGraceDoneRequest("18446744073709551615 9223372036854775807\n"));
  CHECK(r.seq == kSeqMax);
  CHECK(r.instance == kInstanceMax);

  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"0 1\n", std::nullopt, "seq"},
      {"18446744073709551616 1\n", std::nullopt, "out of range"},
      {"19 0\n", 19, "instance \"0\" is out of range"},
      {"19 9223372036854775808\n", 19, "instance"},
      {"19 18446744073709551616\n", 19, "instance"},
      {"19 00\n", 19, "leading zero"},
      {"19 1 2\n", 19, "expected 2 fields (<seq> <instance>), got 3"},
      {"19\n", 19, "got 1"},
      {"19 1", 19, "does not end in a newline"},
      {"19 1 \n", 19, "ends with a space"},
      {"19  1\n", 19, "double space"},
      {"19 1\n\n", 19, "newline at offset 4"},
      {"19 1\0\n"s, 19, "NUL"},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseGraceDoneRequest(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("a request for one channel does not parse as another", "[proto]") {
  // Field counts tell them apart; the daemon relies on this to reject a line
  // that reached the wrong channel.
  const std::string start = "17 start 1 0\n";
  const std::string create = "18 1 " + kIdHex + " - v41\n";
  const std::string expire = "20 1 " + kIdHex + "\n";
  const std::string grace = "19 1\n";
  CHECK(std::holds_alternative<ParseError>(ParseStartRequest(create)));
  CHECK(std::holds_alternative<ParseError>(ParseStartRequest(grace)));
  CHECK(std::holds_alternative<ParseError>(ParseCreateRequest(start)));
  CHECK(std::holds_alternative<ParseError>(ParseCreateRequest(expire)));
  CHECK(std::holds_alternative<ParseError>(ParseExpireRequest(create)));
  CHECK(std::holds_alternative<ParseError>(ParseExpireRequest(grace)));
  CHECK(std::holds_alternative<ParseError>(ParseGraceDoneRequest(start)));
  CHECK(std::holds_alternative<ParseError>(ParseGraceDoneRequest(expire)));
}

// --- request encoders ----------------------------------------------------

TEST_CASE("request encoders write the protocol's example lines", "[proto]") {
  CHECK(EncodeRequest(StartRequest{17, 1, 1763771853}) ==
        "17 start 1 1763771853\n");
  CHECK(EncodeRequest(CreateRequest{18, 1763771860, kId, "", Minor::kV41}) ==
        "18 1763771860 " + kIdHex + " - v41\n");
  CHECK(EncodeRequest(CreateRequest{18, 5, kId, kHash, Minor::kV40}) ==
        "18 5 " + kIdHex + " " + kHashHex + " v40\n");
  CHECK(EncodeRequest(ExpireRequest{20, 1763771860, kId}) ==
        "20 1763771860 " + kIdHex + "\n");
  CHECK(EncodeRequest(GraceDoneRequest{19, 1763771860}) == "19 1763771860\n");
}

TEST_CASE("requests round-trip through encoder and parser", "[proto]") {
  const std::string all = Bytes(256);
  const std::string big = Bytes(1024, 3);

  for (const StartRequest& in :
       {StartRequest{1, 0, 0}, StartRequest{kSeqMax, kSeqMax, kInstanceMax}}) {
    const StartRequest out = Ok(ParseStartRequest(EncodeRequest(in)));
    CHECK(out.seq == in.seq);
    CHECK(out.version == in.version);
    CHECK(out.kernel_boot_time == in.kernel_boot_time);
  }
  for (const CreateRequest& in :
       {CreateRequest{1, 1, "x", "", Minor::kV40},
        CreateRequest{kSeqMax, kInstanceMax, all, kHash, Minor::kV41},
        CreateRequest{7, 8, big, "", Minor::kV41}}) {
    const std::string line = EncodeRequest(in);
    CHECK(line.size() <= kMaxRequestLen);
    const CreateRequest out = Ok(ParseCreateRequest(line));
    CHECK(out.seq == in.seq);
    CHECK(out.instance == in.instance);
    CHECK(out.client_id == in.client_id);
    CHECK(out.princhash == in.princhash);
    CHECK(out.minor == in.minor);
  }
  for (const ExpireRequest& in : {ExpireRequest{1, 1, "\n \\"},
                                  ExpireRequest{kSeqMax, kInstanceMax, big}}) {
    const ExpireRequest out = Ok(ParseExpireRequest(EncodeRequest(in)));
    CHECK(out.seq == in.seq);
    CHECK(out.instance == in.instance);
    CHECK(out.client_id == in.client_id);
  }
  const GraceDoneRequest g =
      Ok(ParseGraceDoneRequest(EncodeRequest(GraceDoneRequest{3, 4})));
  CHECK(g.seq == 3);
  CHECK(g.instance == 4);
}

// --- replies -------------------------------------------------------------

TEST_CASE("reply encoders", "[proto]") {
  CHECK(EncodeStatusReply(19, 0) == "19 0\n");
  CHECK(EncodeStatusReply(19, -22) == "19 -22\n");
  CHECK(EncodeStatusReply(kSeqMax, -116) == "18446744073709551615 -116\n");
  CHECK(EncodeAllowClient(17, kId, "") == "17 client " + kIdHex + " -\n");
  CHECK(EncodeAllowClient(17, kId, kHash) ==
        "17 client " + kIdHex + " " + kHashHex + "\n");
  CHECK(EncodeAllowDone(17, 0, 1763771860) == "17 done 0 1763771860\n");
  CHECK(EncodeAllowDone(17, -93, 0) == "17 done -93 0\n");
}

TEST_CASE("status reply parsing", "[proto]") {
  StatusReply r = Ok(ParseStatusReply("19 0\n"));
  CHECK(r.seq == 19);
  CHECK(r.status == 0);
  // The kernel splits a downcall at '\n'; the line may come without it.
  r = Ok(ParseStatusReply("19 -22"));
  CHECK(r.seq == 19);
  CHECK(r.status == -22);
  r = Ok(ParseStatusReply("18446744073709551615 -4095\n"));
  CHECK(r.seq == kSeqMax);
  CHECK(r.status == -4095);
  r = Ok(ParseStatusReply("1 -1"));
  CHECK(r.status == -1);

  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"19 -0\n", 19, "status \"-0\" is not 0 or -1..-4095"},
      {"19 +1\n", 19, "status \"+1\""},
      {"19 1\n", 19, "status"},
      {"19 22\n", 19, "status"},
      {"19 -4096\n", 19, "status \"-4096\""},
      {"19 -022\n", 19, "status"},
      {"19 00\n", 19, "status"},
      {"19 -\n", 19, "status"},
      {"19 --22\n", 19, "status"},
      {"19 -99999999999999999999\n", 19, "status"},
      {"0 0\n", std::nullopt, "seq"},
      {"019 0\n", std::nullopt, "leading zero"},
      {"19 0 \n", 19, "ends with a space"},
      {"19 0 ", 19, "ends with a space"},
      {" 19 0\n", std::nullopt, "starts with a space"},
      {"19  0\n", 19, "double space"},
      {"19 0\n\n", 19, "newline"},
      {"19\n", 19, "expected 2 fields"},
      {"19 0 0\n", 19, "got 3"},
      {"19 0\0"s, 19, "NUL"},
      {"", std::nullopt, "empty"},
      {"\n", std::nullopt, "empty"},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseStatusReply(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("allow reply parsing: client lines", "[proto]") {
  auto v = Ok(ParseAllowReply("17 client " + kIdHex + " -\n"));
  REQUIRE(std::holds_alternative<AllowClientLine>(v));
  AllowClientLine c = std::get<AllowClientLine>(v);
  CHECK(c.seq == 17);
  CHECK(c.client_id == kId);
  CHECK(c.princhash.empty());

  v = Ok(ParseAllowReply("17 client " + kIdHex + " " + kHashHex));
  REQUIRE(std::holds_alternative<AllowClientLine>(v));
  CHECK(std::get<AllowClientLine>(v).princhash == kHash);

  struct Case {
    std::string line;
    std::string reason;
  };
  const Case cases[] = {
      {"17 client \\x -\n", "client id is 0 bytes"},
      {"17 client " + Hex(Bytes(1025)) + " -\n",
       "client id is 1025 bytes, at most 1024 allowed"},
      {"17 client " + kIdHex + " " + Hex(Bytes(31)) + "\n",
       "principal hash is 31 bytes"},
      {"17 client " + kIdHex + " " + Hex(Bytes(33)) + "\n",
       "principal hash is 33 bytes"},
      {"17 client " + kIdHex + "\n", "expected 4 fields"},
      {"17 client " + kIdHex + " - v41\n", "got 5"},
      {"17 clients " + kIdHex + " -\n", "expected \"client\" or \"done\""},
      {"17 CLIENT " + kIdHex + " -\n", "expected \"client\" or \"done\""},
  };
  for (const Case& k : cases) {
    INFO(EscapeForLog(k.line));
    const ParseError e = Err(ParseAllowReply(k.line));
    CHECK(e.seq == std::optional<uint64_t>(17));
    CHECK_THAT(e.reason, Contains(k.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("allow reply parsing: done lines", "[proto]") {
  auto v = Ok(ParseAllowReply("17 done 0 1763771860\n"));
  REQUIRE(std::holds_alternative<AllowDoneLine>(v));
  AllowDoneLine d = std::get<AllowDoneLine>(v);
  CHECK(d.seq == 17);
  CHECK(d.status == 0);
  CHECK(d.instance == 1763771860);

  for (int status : {-5, -22, -93, -4095}) {
    INFO(status);
    v = Ok(ParseAllowReply("17 done " + std::to_string(status) + " 0"));
    REQUIRE(std::holds_alternative<AllowDoneLine>(v));
    d = std::get<AllowDoneLine>(v);
    CHECK(d.status == status);
    CHECK(d.instance == 0);
  }

  v = Ok(ParseAllowReply("17 done 0 9223372036854775807\n"));
  CHECK(std::get<AllowDoneLine>(v).instance == kInstanceMax);

  struct Case {
    std::string line;
    std::optional<uint64_t> seq;
    std::string reason;
  };
  const Case cases[] = {
      {"17 done 0 0\n", 17, "instance is 0 with status 0"},
      {"17 done -5 1763771860\n", 17,
       "instance is 1763771860 with status -5, must be 0"},
      {"17 done -0 0\n", 17, "status \"-0\""},
      {"17 done +1 1\n", 17, "status"},
      {"17 done -4096 0\n", 17, "status"},
      {"17 done 0 9223372036854775808\n", 17, "instance"},
      {"17 done 0 01\n", 17, "leading zero"},
      {"17 done 0\n", 17, "expected 4 fields"},
      {"17 done 0 1 1\n", 17, "got 5"},
      {"17 done 0 1 \n", 17, "ends with a space"},
      {"17 done  0 1\n", 17, "double space"},
      {"17 done 0 1\n\n", 17, "newline"},
      {"0 done 0 1\n", std::nullopt, "seq"},
      {"17 finished 0 1\n", 17, "expected \"client\" or \"done\""},
  };
  for (const Case& c : cases) {
    INFO(EscapeForLog(c.line));
    const ParseError e = Err(ParseAllowReply(c.line));
    CHECK(e.seq == c.seq);
    CHECK_THAT(e.reason, Contains(c.reason));
    CheckLoggable(e.reason);
  }
}

TEST_CASE("replies round-trip through encoder and parser", "[proto]") {
  for (int status : {0, -5, -22, -93, -116, -4095}) {
    INFO(status);
    const StatusReply r =
        Ok(ParseStatusReply(EncodeStatusReply(kSeqMax, status)));
    CHECK(r.seq == kSeqMax);
    CHECK(r.status == status);
  }

  const std::string all = Bytes(256);
  for (const std::string& hash : {std::string(), kHash}) {
    const auto v = Ok(ParseAllowReply(EncodeAllowClient(17, all, hash)));
    REQUIRE(std::holds_alternative<AllowClientLine>(v));
    const AllowClientLine& c = std::get<AllowClientLine>(v);
    CHECK(c.seq == 17);
    CHECK(c.client_id == all);
    CHECK(c.princhash == hash);
  }
  const std::string big = Bytes(1024, 9);
  const auto big_line = EncodeAllowClient(kSeqMax, big, kHash);
  const auto v = Ok(ParseAllowReply(big_line));
  CHECK(std::get<AllowClientLine>(v).client_id == big);

  for (const AllowDoneLine& in :
       {AllowDoneLine{17, 0, 1}, AllowDoneLine{kSeqMax, 0, kInstanceMax},
        AllowDoneLine{18, -93, 0}}) {
    const auto w =
        Ok(ParseAllowReply(EncodeAllowDone(in.seq, in.status, in.instance)));
    REQUIRE(std::holds_alternative<AllowDoneLine>(w));
    const AllowDoneLine& d = std::get<AllowDoneLine>(w);
    CHECK(d.seq == in.seq);
    CHECK(d.status == in.status);
    CHECK(d.instance == in.instance);
  }
}

}  // namespace
}  // namespace nfsdfs

namespace nfsdfs {
namespace {

// Found by fuzz_status_reply: the status field was decoded twice, so an
// escaped backslash or space turned garbage into a valid status.
TEST_CASE("a status is decoded once, never twice", "[proto]") {
  for (const char* line : {"1 -1\\040\n", "1 -\\134061\n",
                           "7 -\\134062\\0632\n"}) {
    INFO(line);
    CHECK(std::holds_alternative<ParseError>(ParseStatusReply(line)));
  }
  CHECK(std::holds_alternative<ParseError>(
      ParseAllowReply("7 done -\\134062\\0632 0\n")));
  // An escaped digit is still that digit (PROTOCOL.md §2).
  auto ok = ParseStatusReply("1 -\\0622\n");
  REQUIRE(std::holds_alternative<StatusReply>(ok));
  CHECK(std::get<StatusReply>(ok).status == -22);
}

}  // namespace
}  // namespace nfsdfs
