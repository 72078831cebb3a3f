// Shared by the libFuzzer targets in this directory: a check that stops the
// run with a message (libFuzzer saves the input as a crash artifact), and the
// properties every parser must have whatever the input.
#ifndef TESTS_FUZZ_FUZZ_UTIL_H_
#define TESTS_FUZZ_FUZZ_UTIL_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nfsdfs-proto/message.h"
#include "nfsdfs-proto/qword.h"

namespace fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const char* what,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: property violated: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// FUZZ_CHECK(cond) or FUZZ_CHECK(cond, "detail " + string).
#define FUZZ_CHECK(cond, ...)                                               \
  do {                                                                      \
    if (!(cond))                                                            \
      ::fuzz::Fail(__FILE__, __LINE__, #cond, ::fuzz::Detail(__VA_ARGS__)); \
  } while (0)

inline std::string Detail() { return {}; }
inline std::string Detail(const std::string& s) { return s; }

// For messages: the bytes escaped and cut short.
inline std::string Show(std::string_view bytes) {
  return "\"" + nfsdfs::EscapeForLog(bytes.substr(0, 200)) + "\"" +
         (bytes.size() > 200 ? "..." : "");
}

// The input in a heap block of exactly its size, so that AddressSanitizer
// catches a read of even one byte past its end.
class ExactCopy {
 public:
  ExactCopy(const uint8_t* data, size_t size)
      : buf_(new char[size == 0 ? 1 : size]), size_(size) {
    if (size != 0) std::memcpy(buf_.get(), data, size);
  }
  // An empty input is the end of a 1-byte block (ASan lets a program read
  // the one byte it gives a 0-byte new[]; the byte after it is poisoned).
  std::string_view view() const {
    return {size_ == 0 ? buf_.get() + 1 : buf_.get(), size_};
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t size_;
};

// The input followed, inside the same block, by bytes that would change the
// result if a parser looked at them: the view handed out ends before them.
// A parser must give the same answer for it as for an ExactCopy.
class PaddedCopy {
 public:
  PaddedCopy(const uint8_t* data, size_t size)
      : buf_(reinterpret_cast<const char*>(data), size) {
    buf_.append("7\\x41a\\0101 z\n");
  }
  std::string_view view() const {
    return std::string_view(buf_).substr(0, buf_.size() - kPad);
  }

 private:
  static constexpr size_t kPad = sizeof("7\\x41a\\0101 z\n") - 1;
  std::string buf_;
};

// "Already safe to log": printable ASCII only, and of bounded length however
// long the line was.
inline bool SafeToLog(const std::string& s) {
  if (s.empty() || s.size() > 1024) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// The sequence number of a line if it can be read (PROTOCOL.md §5), worked
// out independently of message.cc: the first field (up to the first space or
// '\n'), with no NUL in it, decoded as qword_get does, is a strict decimal
// number 1..2^64-1, compared as a string so nothing can overflow.
inline std::optional<uint64_t> ExpectedSeq(std::string_view line) {
  std::string_view first = line.substr(0, line.find_first_of(" \n"));
  if (first.find('\0') != std::string_view::npos) return std::nullopt;
  std::string text;
  if (!nfsdfs::QwordGet(&first, &text) || !first.empty()) return std::nullopt;
  if (text.empty() || text.size() > 20 || text[0] == '0') return std::nullopt;
  if (text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  if (text.size() == 20 && text > "18446744073709551615") return std::nullopt;
  return std::stoull(text);
}

// Properties of every rejection: a reason that is safe to log, and the seq
// the line has, if it can be read, so that the helper answers -EINVAL to the
// right request (or to none); the same as PeekSeq.
inline void CheckError(const nfsdfs::ParseError& e, std::string_view line) {
  FUZZ_CHECK(SafeToLog(e.reason), "reason " + Show(e.reason));
  FUZZ_CHECK(e.seq == ExpectedSeq(line), "line " + Show(line));
  FUZZ_CHECK(e.seq == nfsdfs::PeekSeq(line), "line " + Show(line));
}

// Same variant alternative, and equal values or equal rejections.
template <typename T, typename Eq>
bool SameResult(const nfsdfs::Parsed<T>& a, const nfsdfs::Parsed<T>& b, Eq eq) {
  if (a.index() != b.index()) return false;
  if (const T* x = std::get_if<T>(&a)) return eq(*x, std::get<T>(b));
  const auto& ea = std::get<nfsdfs::ParseError>(a);
  const auto& eb = std::get<nfsdfs::ParseError>(b);
  return ea.seq == eb.seq && ea.reason == eb.reason;
}

// The framing rules of PROTOCOL.md §2 that any accepted line obeys: no NUL,
// no newline but a final one, no leading, trailing or double space.
inline void CheckFraming(std::string_view line, bool newline_required,
                         size_t max_len) {
  FUZZ_CHECK(line.size() <= max_len, "line " + Show(line));
  FUZZ_CHECK(line.find('\0') == std::string_view::npos);
  std::string_view body = line;
  if (newline_required) FUZZ_CHECK(!body.empty() && body.back() == '\n');
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
  FUZZ_CHECK(!body.empty());
  FUZZ_CHECK(body.find('\n') == std::string_view::npos);
  FUZZ_CHECK(body.front() != ' ' && body.back() != ' ');
  FUZZ_CHECK(body.find("  ") == std::string_view::npos);
}

// The fields of a line as the kernel sees them: split at single spaces after
// the final '\n' is dropped, each decoded by QwordGet. A field that does not
// decode stays as it is, prefixed with "?" (no accepted line has one).
// `hash_field` is the index of a principal hash, if the line has one: its
// absence is "-" or an empty "\x", both shown as "".
inline std::vector<std::string> DecodedFields(std::string_view line,
                                              int hash_field = -1) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t sp = line.find(' ', start);
    const std::string_view token = line.substr(start, sp - start);
    std::string_view rest = token;
    std::string field;
    if (static_cast<int>(out.size()) == hash_field && token == "-") {
      field.clear();
    } else if (!nfsdfs::QwordGet(&rest, &field) || !rest.empty()) {
      field = "?" + std::string(token);
    }
    out.push_back(std::move(field));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  return out;
}

// An accepted line holds, field by field, the same values as the line its
// parsed values encode to. This is stronger than "parses to the same values":
// a number that overflowed, lost a leading zero or a sign on the way in, or
// a field that was cut short, shows here.
inline void CheckSameFields(std::string_view line, std::string_view encoded,
                            int hash_field = -1) {
  const auto a = DecodedFields(line, hash_field);
  const auto b = DecodedFields(encoded, hash_field);
  if (a == b) return;
  std::string detail = "line " + Show(line) + " holds other values than " +
                       Show(encoded) + ", its re-encoding:";
  for (size_t i = 0; i < a.size() || i < b.size(); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    detail += " field " + std::to_string(i + 1) + " " +
              Show(i < a.size() ? a[i] : "(none)") + " vs " +
              Show(i < b.size() ? b[i] : "(none)") + ";";
  }
  Fail(__FILE__, __LINE__, "CheckSameFields", detail);
}

// Values for the encoders, built from the input: mostly valid, often at or
// just past a limit, sometimes anything.
inline uint64_t AnySeq(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange(0, 7)) {
    case 0:
      return 0;  // invalid
    case 1:
      return std::numeric_limits<uint64_t>::max();
    default:
      return p.ConsumeIntegral<uint64_t>();
  }
}
inline int64_t AnyInstance(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange(0, 7)) {
    case 0:
      return p.PickValueInArray<int64_t>({0, -1, 1,
                                          std::numeric_limits<int64_t>::max(),
                                          std::numeric_limits<int64_t>::min()});
    case 1:
      return p.ConsumeIntegral<int64_t>();  // half of them negative
    default:
      return p.ConsumeIntegralInRange<int64_t>(
          1, std::numeric_limits<int64_t>::max());
  }
}
// `usual` bytes, or a length at or around the limits 0, 1 and `limit`, or any
// length up to limit + 8. Bytes past the end of the input are a pattern.
inline std::string AnyBytes(FuzzedDataProvider& p, size_t usual, size_t limit) {
  size_t n = usual;
  switch (p.ConsumeIntegralInRange(0, 3)) {
    case 0:
      n = p.PickValueInArray<size_t>({0, 1, limit - 1, limit, limit + 1});
      break;
    case 1:
      n = p.ConsumeIntegralInRange<size_t>(0, limit + 8);
      break;
    default:
      break;
  }
  std::string s = p.ConsumeBytesAsString(n);
  for (size_t i = s.size(); i < n; ++i) s.push_back(static_cast<char>(i * 37));
  return s;
}
inline std::string AnyClientId(FuzzedDataProvider& p) {
  return AnyBytes(p, p.ConsumeIntegralInRange<size_t>(1, 64),
                  nfsdfs::kMaxClientIdLen);
}
inline std::string AnyPrincHash(FuzzedDataProvider& p) {
  return p.ConsumeBool()
             ? std::string()
             : AnyBytes(p, nfsdfs::kPrincHashLen, nfsdfs::kPrincHashLen);
}

// A client id may be 1..1024 bytes (PROTOCOL.md §2).
inline bool ValidClientId(const std::string& id) {
  return !id.empty() && id.size() <= nfsdfs::kMaxClientIdLen;
}

// A status for an encoder: mostly valid, often at or just past the limits
// of -1..-4095, sometimes any int at all.
inline int AnyStatus(FuzzedDataProvider& p) {
  switch (p.ConsumeIntegralInRange(0, 4)) {
    case 0:
      return 0;
    case 1:
      return -p.ConsumeIntegralInRange(1, 4095);
    case 2:
      return p.PickValueInArray({-1, -4095, -4096, 1, 4095, 4096});
    case 3:
      return p.ConsumeIntegral<int>();
    default:
      return -22;
  }
}

}  // namespace fuzz

#endif  // TESTS_FUZZ_FUZZ_UTIL_H_
