#include "nfsdfs-proto/qword.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace nfsdfs {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// The kernel's input buffer is NUL-terminated, so qword_get may look one or
// more bytes past the end of a field and see '\0'. A string_view has no such
// terminator; this reads as the kernel would.
char At(std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; }

// hex_to_bin(): 0-9, a-f and A-F; -1 for anything else.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsOctalDigit(char c) { return c >= '0' && c <= '7'; }

void AppendOctal(std::string* out, unsigned char c) {
  out->push_back('\\');
  out->push_back(static_cast<char>('0' + ((c >> 6) & 7)));
  out->push_back(static_cast<char>('0' + ((c >> 3) & 7)));
  out->push_back(static_cast<char>('0' + (c & 7)));
}

void AppendHexByte(std::string* out, unsigned char c) {
  out->push_back(kHexDigits[c >> 4]);
  out->push_back(kHexDigits[c & 0xf]);
}

}  // namespace

void QwordAdd(std::string* out, std::string_view text) {
  out->reserve(out->size() + text.size() + 1);
  for (char c : text) {
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\\':
      // The kernel's qword_add takes a C string and so can never see a NUL
      // byte; copying one raw would end the field early for every decoder
      // (qword_get stops at NUL) and make the line malformed. \000 is what
      // qword_get decodes back to a NUL, so the encoding stays reversible
      // while every NUL-free input is encoded byte for byte as the kernel
      // does.
      case '\0':
        AppendOctal(out, static_cast<unsigned char>(c));
        break;
      default:
        out->push_back(c);
    }
  }
  out->push_back(' ');
}

void QwordAddHex(std::string* out, std::string_view bytes) {
  out->reserve(out->size() + 2 * bytes.size() + 3);
  out->append("\\x");
  for (char c : bytes) AppendHexByte(out, static_cast<unsigned char>(c));
  out->push_back(' ');
}

bool QwordGet(std::string_view* in, std::string* out, size_t max_len) {
  const std::string_view s = *in;
  size_t pos = 0;
  std::string field;

  while (At(s, pos) == ' ') ++pos;

  if (At(s, pos) == '\\' && At(s, pos + 1) == 'x') {
    pos += 2;
    // Pairs until the first non-pair; an unpaired digit is left in place and
    // then fails the terminator check below, exactly as in the kernel.
    while (field.size() < max_len) {
      const int high = HexValue(At(s, pos));
      if (high < 0) break;
      const int low = HexValue(At(s, pos + 1));
      if (low < 0) break;
      field.push_back(static_cast<char>((high << 4) | low));
      pos += 2;
    }
  } else {
    while (field.size() < max_len) {
      const char c = At(s, pos);
      if (c == ' ' || c == '\n' || c == '\0') break;
      // Only \[0-3][0-7][0-7] is an escape (a first digit above 3 would not
      // fit in a byte); any other backslash is an ordinary byte.
      if (c == '\\' && IsOctalDigit(At(s, pos + 1)) && At(s, pos + 1) <= '3' &&
          IsOctalDigit(At(s, pos + 2)) && IsOctalDigit(At(s, pos + 3))) {
        // Digits checked above: each value is 0..7.
        const unsigned d1 = static_cast<unsigned>(At(s, pos + 1) - '0');
        const unsigned d2 = static_cast<unsigned>(At(s, pos + 2) - '0');
        const unsigned d3 = static_cast<unsigned>(At(s, pos + 3) - '0');
        field.push_back(static_cast<char>((d1 << 6) | (d2 << 3) | d3));
        pos += 4;
      } else {
        field.push_back(c);
        ++pos;
      }
    }
  }

  // This check is also what makes a field longer than max_len fail: the loop
  // stopped on a field byte, which is not a terminator. End of input counts
  // as the kernel's terminating NUL.
  const char next = At(s, pos);
  if (next != ' ' && next != '\n' && next != '\0') return false;
  while (At(s, pos) == ' ') ++pos;

  in->remove_prefix(pos);
  *out = std::move(field);
  return true;
}

std::string HexString(std::string_view bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (char c : bytes) AppendHexByte(&out, static_cast<unsigned char>(c));
  return out;
}

std::string EscapeForLog(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out.append("\\\\");
    } else if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      out.append("\\x");
      AppendHexByte(&out, u);
    }
  }
  return out;
}

}  // namespace nfsdfs
