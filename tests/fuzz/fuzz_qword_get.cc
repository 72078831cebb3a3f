// Fuzz target for QwordGet, the decoder of every field of every line the
// kernel writes (PROTOCOL.md §2), and its encoders QwordAdd and QwordAddHex.
//
// Properties, for any input and several max_len values:
//  - QwordGet reads nothing past the input: the input lives in a heap block of
//    exactly its size (AddressSanitizer), and the same input followed by other
//    bytes in memory decodes the same;
//  - it decodes exactly as the kernel's qword_get (net/sunrpc/cache.c), of
//    which Reference() below is a transcription working on a NUL-terminated
//    copy, as the kernel's own buffer is;
//  - on failure *in is unchanged; on success it moved forward within the
//    input, past no '\n' or NUL, to no space, and the field is no longer than
//    max_len nor than the bytes consumed;
//  - QwordAdd and QwordAddHex of the input (and of its two halves, one line
//    of two fields) decode back to the same bytes, consuming everything, and
//    fail with a max_len one byte too small;
//  - HexString and EscapeForLog produce what they promise.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nfsdfs-proto/qword.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using fuzz::Show;

struct Result {
  bool ok = false;
  size_t consumed = 0;
  std::string field;
  bool operator==(const Result& o) const {
    return ok == o.ok && consumed == o.consumed && field == o.field;
  }
};

std::string Describe(const Result& r) {
  return r.ok ? "ok, consumed " + std::to_string(r.consumed) + ", field " +
                    Show(r.field)
              : "fail";
}

int HexToBin(char c) {  // lib/hexdump.c hex_to_bin()
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(c | 0x20);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool IsODigit(char c) { return c >= '0' && c <= '7'; }

// qword_get() of net/sunrpc/cache.c, line for line, on a C string; bufsize is
// max_len + 1 there. `max_len` may be huge, hence size_t and `len < max_len`.
Result Reference(const std::string& input, size_t max_len) {
  const char* const start = input.c_str();
  const char* bp = start;
  std::string dest;
  size_t len = 0;

  while (*bp == ' ') bp++;

  if (bp[0] == '\\' && bp[1] == 'x') {
    bp += 2;
    while (len < max_len) {
      const int h = HexToBin(bp[0]);
      if (h < 0) break;
      const int l = HexToBin(bp[1]);
      if (l < 0) break;
      dest.push_back(static_cast<char>((h << 4) | l));
      bp += 2;
      len++;
    }
  } else {
    while (*bp != ' ' && *bp != '\n' && *bp && len < max_len) {
      if (*bp == '\\' && IsODigit(bp[1]) && (bp[1] <= '3') && IsODigit(bp[2]) &&
          IsODigit(bp[3])) {
        int byte = (*++bp - '0');
        bp++;
        byte = (byte << 3) | (*bp++ - '0');
        byte = (byte << 3) | (*bp++ - '0');
        dest.push_back(static_cast<char>(byte));
        len++;
      } else {
        dest.push_back(*bp++);
        len++;
      }
    }
  }

  if (*bp != ' ' && *bp != '\n' && *bp != '\0') return Result{};
  while (*bp == ' ') bp++;
  return Result{true, static_cast<size_t>(bp - start), dest};
}

Result Get(std::string_view input, size_t max_len) {
  std::string_view in = input;
  std::string out = "untouched";
  Result r;
  r.ok = nfsdfs::QwordGet(&in, &out, max_len);
  if (!r.ok) {
    FUZZ_CHECK(in.data() == input.data() && in.size() == input.size(),
               "failed QwordGet moved *in on " + Show(input));
    return r;
  }
  // *in is a suffix of the input (compared as numbers: a broken QwordGet
  // could leave a pointer outside the input, and pointer arithmetic on it
  // would be undefined).
  const auto at = reinterpret_cast<uintptr_t>(in.data());
  const auto begin = reinterpret_cast<uintptr_t>(input.data());
  FUZZ_CHECK(
      in.size() <= input.size() && at == begin + (input.size() - in.size()),
      "QwordGet left *in outside the input " + Show(input));
  r.consumed = input.size() - in.size();
  r.field = std::move(out);
  return r;
}

void CheckDecode(std::string_view exact, std::string_view padded,
                 size_t max_len) {
  const Result r = Get(exact, max_len);
  const Result p = Get(padded, max_len);
  FUZZ_CHECK(r == p, "input " + Show(exact) + ": " + Describe(r) +
                         " but with bytes after it: " + Describe(p));

  // The input up to its first NUL is what the kernel's C string holds; at a
  // NUL both stop.
  const Result ref = Reference(std::string(exact), max_len);
  FUZZ_CHECK(r == ref, "input " + Show(exact) + " max_len " +
                           std::to_string(max_len) + ": " + Describe(r) +
                           ", kernel: " + Describe(ref));
  if (!r.ok) return;

  FUZZ_CHECK(r.field.size() <= max_len);
  FUZZ_CHECK(r.field.size() <= r.consumed);
  const std::string_view taken = exact.substr(0, r.consumed);
  FUZZ_CHECK(taken.find('\n') == std::string_view::npos);
  FUZZ_CHECK(taken.find('\0') == std::string_view::npos);
  const std::string_view rest = exact.substr(r.consumed);
  FUZZ_CHECK(rest.empty() || rest[0] != ' ');
  // Decoding the rest again is where the next field starts: it never moves
  // backwards and never loops on the same bytes.
  if (!rest.empty() && rest[0] != '\n' && rest[0] != '\0') {
    FUZZ_CHECK(r.consumed > 0);
  }
}

// Encode with `add`, then decode: the bytes must come back whole.
template <typename Add>
void CheckRoundTrip(std::string_view bytes, Add add, const char* name) {
  std::string line;
  add(&line, bytes);
  FUZZ_CHECK(!line.empty() && line.back() == ' ');
  // One field: no separator or terminator inside it.
  const std::string_view body =
      std::string_view(line).substr(0, line.size() - 1);
  FUZZ_CHECK(body.find_first_of(std::string_view(" \n\t\0", 4)) ==
                 std::string_view::npos,
             std::string(name) + " of " + Show(bytes) + " is " + Show(line));

  fuzz::ExactCopy copy(reinterpret_cast<const uint8_t*>(line.data()),
                       line.size());
  const Result r = Get(copy.view(), bytes.size());
  FUZZ_CHECK(r.ok && r.field == bytes && r.consumed == line.size(),
             std::string(name) + " of " + Show(bytes) + " is " + Show(line) +
                 ", decoded: " + Describe(r));
  if (!bytes.empty()) {
    const Result short_buf = Get(copy.view(), bytes.size() - 1);
    FUZZ_CHECK(!short_buf.ok, std::string(name) + " of " + Show(bytes) +
                                  " decoded into a buffer one byte short: " +
                                  Describe(short_buf));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ExactCopy exact(data, size);
  const fuzz::PaddedCopy padded(data, size);
  const std::string_view in = exact.view();

  // The helper's default (no limit), the kernel's usual page-sized buffers,
  // and small limits that cut fields short.
  for (size_t max_len : {static_cast<size_t>(-1) - 1, size_t{4095}, size_t{0},
                         size_t{1}, size_t{2}, size_t{3}, size / 2}) {
    CheckDecode(in, padded.view(), max_len);
  }

  // Decoding a whole line field by field, as the parsers' callers would, ends
  // at the end of the input, a '\n', a NUL or a field that does not decode.
  std::string_view rest = in;
  std::string field;
  size_t fields = 0;
  while (!rest.empty() && rest[0] != '\n' && rest[0] != '\0') {
    const size_t before = rest.size();
    if (!nfsdfs::QwordGet(&rest, &field)) break;
    FUZZ_CHECK(rest.size() < before, "no progress on " + Show(in));
    FUZZ_CHECK(++fields <= size);
  }

  CheckRoundTrip(in, nfsdfs::QwordAdd, "QwordAdd");
  CheckRoundTrip(in, nfsdfs::QwordAddHex, "QwordAddHex");

  // Two fields in one line, as in every request: text then hex, and hex then
  // text. An empty text field is only a lone space, which the decoder skips
  // like the kernel does, so it cannot be the first of two.
  const std::string_view a = in.substr(0, size / 2);
  const std::string_view b = in.substr(size / 2);
  for (bool text_first : {true, false}) {
    if (text_first && a.empty()) continue;
    std::string line;
    if (text_first) {
      nfsdfs::QwordAdd(&line, a);
      nfsdfs::QwordAddHex(&line, b);
    } else {
      nfsdfs::QwordAddHex(&line, a);
      nfsdfs::QwordAdd(&line, b);
    }
    line.back() = '\n';
    std::string_view l = line;
    std::string f1, f2;
    FUZZ_CHECK(nfsdfs::QwordGet(&l, &f1) && nfsdfs::QwordGet(&l, &f2) &&
                   f1 == a && f2 == b && l == "\n",
               "line " + Show(line) + " of " + Show(a) + " and " + Show(b));
  }

  const std::string hex = nfsdfs::HexString(in);
  FUZZ_CHECK(hex.size() == 2 * size);
  FUZZ_CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
  const std::string escaped = nfsdfs::EscapeForLog(in);
  FUZZ_CHECK(escaped.size() <= 4 * size && escaped.size() >= size);
  for (char c : escaped) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u < 0x7f, "EscapeForLog gave " + Show(escaped));
  }
  return 0;
}
