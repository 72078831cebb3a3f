#include "nfsdfs-proto/qword.h"

#include <catch2/catch.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace nfsdfs {
namespace {

using namespace std::string_literals;

// Every byte value 0..255, in order.
std::string AllBytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

std::string Add(std::string_view text) {
  std::string out;
  QwordAdd(&out, text);
  return out;
}

std::string AddHex(std::string_view bytes) {
  std::string out;
  QwordAddHex(&out, bytes);
  return out;
}

TEST_CASE("QwordAdd matches the kernel for known strings", "[proto]") {
  CHECK(Add("a b\\c\n") == "a\\040b\\134c\\012 ");
  CHECK(Add("\t") == "\\011 ");
  CHECK(Add("v41") == "v41 ");
  CHECK(Add("") == " ");
  // Only the four listed characters are escaped; "\x" inside text stays text
  // because its backslash is escaped, so it can never look like a hex field.
  CHECK(Add("\\x41") == "\\134x41 ");
  CHECK(Add("\r\v\f\x7f\x80\xff") == "\r\v\f\x7f\x80\xff ");
}

TEST_CASE("QwordAdd copies every byte but the escaped ones raw", "[proto]") {
  std::string expected;
  for (int b = 0; b < 256; ++b) {
    switch (b) {
      case ' ':
        expected += "\\040";
        break;
      case '\t':
        expected += "\\011";
        break;
      case '\n':
        expected += "\\012";
        break;
      case '\\':
        expected += "\\134";
        break;
      case 0:
        // The kernel's C-string qword_add cannot see a NUL; we write \000
        // so that the field still decodes back to it.
        expected += "\\000";
        break;
      default:
        expected.push_back(static_cast<char>(b));
    }
  }
  expected += ' ';
  CHECK(Add(AllBytes()) == expected);
}

TEST_CASE("QwordAdd and QwordAddHex append to what is there", "[proto]") {
  std::string out = "17 ";
  QwordAdd(&out, "start");
  QwordAddHex(&out, "\x01\xfe");
  QwordAdd(&out, "1");
  CHECK(out == "17 start \\x01fe 1 ");
}

TEST_CASE("QwordAddHex writes lower-case pairs", "[proto]") {
  CHECK(AddHex("") == "\\x ");
  CHECK(AddHex("linux-client-1") == "\\x6c696e75782d636c69656e742d31 ");
  CHECK(AddHex("\x00\x0f\xab\xff"s) == "\\x000fabff ");
  const std::string all = AddHex(AllBytes());
  REQUIRE(all.size() == 2 + 512 + 1);
  CHECK(all.substr(0, 8) == "\\x000102");
  CHECK(all.substr(all.size() - 7) == "fdfeff ");
}

TEST_CASE("every byte value round-trips through both encodings", "[proto]") {
  for (int b = 0; b < 256; ++b) {
    INFO("byte " << b);
    const std::string one(1, static_cast<char>(b));
    const std::string framed = "a" + one + "b";
    for (const std::string& value : {one, framed}) {
      for (bool hex : {false, true}) {
        INFO((hex ? "hex" : "text"));
        std::string line = hex ? AddHex(value) : Add(value);
        line.back() = '\n';
        std::string_view in = line;
        std::string out;
        REQUIRE(QwordGet(&in, &out));
        CHECK(out == value);
        CHECK(in == "\n");
      }
    }
  }
}

TEST_CASE("a sequence of fields decodes field by field", "[proto]") {
  const std::string all = AllBytes();
  std::string line;
  QwordAdd(&line, all);
  QwordAddHex(&line, all);
  QwordAdd(&line, "");
  QwordAdd(&line, "last");
  line.back() = '\n';

  std::string_view in = line;
  std::string out;
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == all);
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == all);
  // An empty text field is just a space: qword_get skips it as part of the
  // separator and goes on to the next field.
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "last");
  CHECK(in == "\n");
  // At the '\n' there is an empty field, and the '\n' is not consumed.
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
  CHECK(in == "\n");
}

TEST_CASE("QwordGet skips any number of spaces around a field", "[proto]") {
  std::string_view in = "   abc    def\n";
  std::string out;
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "abc");
  CHECK(in == "def\n");
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "def");
  CHECK(in == "\n");

  // Only spaces separate: a tab is part of the field.
  in = "a\tb c";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "a\tb");
  CHECK(in == "c");

  in = "    ";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
  CHECK(in.empty());

  in = "";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
}

TEST_CASE("QwordGet stops text at a NUL and does not pass it", "[proto]") {
  const std::string line = "ab\0cd"s;
  std::string_view in = line;
  std::string out;
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "ab");
  CHECK(in == "\0cd"s);
}

TEST_CASE("QwordGet decodes hex fields", "[proto]") {
  std::string out;
  std::string_view in = "\\xABcd09 rest";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "\xab\xcd\x09");
  CHECK(in == "rest");

  // "\x" alone is an empty field.
  in = "\\x next";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
  CHECK(in == "next");
  in = "\\x";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
  CHECK(in.empty());
  in = "\\x\n";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out.empty());
  CHECK(in == "\n");

  // Only lower-case "\x" starts a hex field.
  in = "\\X41";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "\\X41");
  // And only at the start of a field.
  in = "a\\x41";
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "a\\x41");
}

TEST_CASE("QwordGet rejects a hex field that stops before a terminator",
          "[proto]") {
  std::string out = "untouched";
  for (std::string_view bad :
       {"\\xabc def", "\\xabc", "\\xabc\n", "\\x6", "\\x61g", "\\x6g1", "\\x-1",
        "\\x61\\x62", "\\x61\t"}) {
    INFO(std::string(bad));
    std::string_view in = bad;
    CHECK_FALSE(QwordGet(&in, &out));
    // A failed call leaves the input where it was.
    CHECK(in.data() == bad.data());
    CHECK(in.size() == bad.size());
  }
}

TEST_CASE("QwordGet decodes only \\[0-3][0-7][0-7] as octal", "[proto]") {
  struct Case {
    std::string_view in;
    std::string want;
  };
  // Not escapes, copied as they are: a first digit above 3 (would not fit
  // in a byte), an 8, a non-digit, an escape cut short by the end of input,
  // and lone backslashes. An escape takes exactly three digits and its
  // result is not decoded again.
  const Case cases[] = {
      {"\\040", " "},     {"a\\040b\\134c\\012", "a b\\c\n"},
      {"\\000", "\0"s},   {"\\377", "\xff"},
      {"\\400", "\\400"}, {"\\378", "\\378"},
      {"\\3a7", "\\3a7"}, {"\\12", "\\12"},
      {"\\1", "\\1"},     {"\\", "\\"},
      {"a\\", "a\\"},     {"\\\\", "\\\\"},
      {"\\1011", "A1"},   {"\\134040", "\\040"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.in));
    std::string_view in = c.in;
    std::string out;
    REQUIRE(QwordGet(&in, &out));
    CHECK(out == c.want);
    CHECK(in.empty());
  }
}

TEST_CASE("QwordGet: an escape cut by the end of a field is literal",
          "[proto]") {
  std::string_view in = "\\01 x";
  std::string out;
  REQUIRE(QwordGet(&in, &out));
  CHECK(out == "\\01");
  CHECK(in == "x");
}

TEST_CASE("QwordGet enforces max_len like the kernel's bufsize - 1",
          "[proto]") {
  std::string out;
  std::string_view in;

  in = "abc";
  REQUIRE(QwordGet(&in, &out, 3));
  CHECK(out == "abc");
  in = "abc def";
  REQUIRE(QwordGet(&in, &out, 3));
  CHECK(out == "abc");
  CHECK(in == "def");
  in = "abc";
  CHECK_FALSE(QwordGet(&in, &out, 2));
  CHECK(in == "abc");

  in = "\\x616263 ";
  REQUIRE(QwordGet(&in, &out, 3));
  CHECK(out == "abc");
  in = "\\x616263";
  CHECK_FALSE(QwordGet(&in, &out, 2));
  // At the limit an unpaired digit after the last pair still fails.
  in = "\\x6162636";
  CHECK_FALSE(QwordGet(&in, &out, 3));

  // An octal escape is one byte.
  in = "\\101\\102";
  REQUIRE(QwordGet(&in, &out, 2));
  CHECK(out == "AB");
  in = "\\101\\102";
  CHECK_FALSE(QwordGet(&in, &out, 1));

  in = "";
  REQUIRE(QwordGet(&in, &out, 0));
  CHECK(out.empty());
  in = "\\x";
  REQUIRE(QwordGet(&in, &out, 0));
  in = "a";
  CHECK_FALSE(QwordGet(&in, &out, 0));
  in = "\\x61";
  CHECK_FALSE(QwordGet(&in, &out, 0));
}

TEST_CASE("HexString is bare lower-case hex", "[proto]") {
  CHECK(HexString("").empty());
  CHECK(HexString("\x00\xff\x10\xAB"s) == "00ff10ab");
  CHECK(HexString(AllBytes()).size() == 512);
}

TEST_CASE("EscapeForLog leaves only printable ASCII", "[proto]") {
  CHECK(EscapeForLog("a b~") == "a b~");
  CHECK(EscapeForLog("a\\b") == "a\\\\b");
  CHECK(EscapeForLog("\n\t\x7f\x80\xff\0"s) ==
        "\\x0a\\x09\\x7f\\x80\\xff\\x00");
  const std::string all = AllBytes();
  const std::string escaped = EscapeForLog(all);
  CHECK(escaped.size() <= 4 * all.size());
  for (char c : escaped) {
    INFO(static_cast<int>(static_cast<unsigned char>(c)));
    CHECK((c >= 0x20 && c < 0x7f));
  }
}

}  // namespace
}  // namespace nfsdfs
