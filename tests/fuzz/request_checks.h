// Properties shared by the four request-parser targets (fuzz_*_request.cc):
// the parsers of the lines the kernel writes into the four nfsdfs files.
#ifndef TESTS_FUZZ_REQUEST_CHECKS_H_
#define TESTS_FUZZ_REQUEST_CHECKS_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "nfsdfs-proto/message.h"
#include "tests/fuzz/fuzz_util.h"

namespace fuzz {

inline bool Eq(const nfsdfs::StartRequest& a, const nfsdfs::StartRequest& b) {
  return a.seq == b.seq && a.version == b.version &&
         a.kernel_boot_time == b.kernel_boot_time;
}
inline bool Eq(const nfsdfs::CreateRequest& a, const nfsdfs::CreateRequest& b) {
  return a.seq == b.seq && a.instance == b.instance &&
         a.client_id == b.client_id && a.princhash == b.princhash &&
         a.minor == b.minor;
}
inline bool Eq(const nfsdfs::ExpireRequest& a, const nfsdfs::ExpireRequest& b) {
  return a.seq == b.seq && a.instance == b.instance &&
         a.client_id == b.client_id;
}
inline bool Eq(const nfsdfs::GraceDoneRequest& a,
               const nfsdfs::GraceDoneRequest& b) {
  return a.seq == b.seq && a.instance == b.instance;
}

inline nfsdfs::Parsed<nfsdfs::StartRequest> Parse(std::string_view l,
                                                  const nfsdfs::StartRequest*) {
  return nfsdfs::ParseStartRequest(l);
}
inline nfsdfs::Parsed<nfsdfs::CreateRequest> Parse(
    std::string_view l, const nfsdfs::CreateRequest*) {
  return nfsdfs::ParseCreateRequest(l);
}
inline nfsdfs::Parsed<nfsdfs::ExpireRequest> Parse(
    std::string_view l, const nfsdfs::ExpireRequest*) {
  return nfsdfs::ParseExpireRequest(l);
}
inline nfsdfs::Parsed<nfsdfs::GraceDoneRequest> Parse(
    std::string_view l, const nfsdfs::GraceDoneRequest*) {
  return nfsdfs::ParseGraceDoneRequest(l);
}

template <typename T>
nfsdfs::Parsed<T> ParseAs(std::string_view line) {
  return Parse(line, static_cast<const T*>(nullptr));
}

template <typename T>
bool SameParse(const nfsdfs::Parsed<T>& a, const nfsdfs::Parsed<T>& b) {
  return SameResult(a, b, [](const T& x, const T& y) { return Eq(x, y); });
}

// The value ranges of PROTOCOL.md §2 for the fields each request has.
inline void CheckValues(const nfsdfs::StartRequest& r) {
  FUZZ_CHECK(r.seq >= 1);
  FUZZ_CHECK(r.kernel_boot_time >= 0);
}
inline void CheckValues(const nfsdfs::CreateRequest& r) {
  FUZZ_CHECK(r.seq >= 1);
  FUZZ_CHECK(r.instance >= 1);
  FUZZ_CHECK(!r.client_id.empty() &&
             r.client_id.size() <= nfsdfs::kMaxClientIdLen);
  FUZZ_CHECK(r.princhash.empty() ||
             r.princhash.size() == nfsdfs::kPrincHashLen);
  FUZZ_CHECK(r.minor == nfsdfs::Minor::kV40 || r.minor == nfsdfs::Minor::kV41);
}
inline void CheckValues(const nfsdfs::ExpireRequest& r) {
  FUZZ_CHECK(r.seq >= 1);
  FUZZ_CHECK(r.instance >= 1);
  FUZZ_CHECK(!r.client_id.empty() &&
             r.client_id.size() <= nfsdfs::kMaxClientIdLen);
}
inline void CheckValues(const nfsdfs::GraceDoneRequest& r) {
  FUZZ_CHECK(r.seq >= 1);
  FUZZ_CHECK(r.instance >= 1);
}

// Which field of the request is a principal hash (-1: none).
template <typename T>
constexpr int HashField() {
  return std::is_same_v<T, nfsdfs::CreateRequest> ? 3 : -1;
}

// How many of the four request parsers accept `line`.
inline int Acceptors(std::string_view line) {
  return int{std::holds_alternative<nfsdfs::StartRequest>(
             nfsdfs::ParseStartRequest(line))} +
         int{std::holds_alternative<nfsdfs::CreateRequest>(
             nfsdfs::ParseCreateRequest(line))} +
         int{std::holds_alternative<nfsdfs::ExpireRequest>(
             nfsdfs::ParseExpireRequest(line))} +
         int{std::holds_alternative<nfsdfs::GraceDoneRequest>(
             nfsdfs::ParseGraceDoneRequest(line))};
}

// A value the kernel encoded (EncodeRequest) must come back whole, and the
// encoding must itself be a valid request line.
template <typename T>
void CheckEncodeParses(const T& value) {
  const std::string enc = nfsdfs::EncodeRequest(value);
  CheckFraming(enc, /*newline_required=*/true, nfsdfs::kMaxRequestLen);
  const auto back = ParseAs<T>(enc);
  const T* v = std::get_if<T>(&back);
  FUZZ_CHECK(v != nullptr, "encoded " + Show(enc) + " is rejected: " +
                               std::get<nfsdfs::ParseError>(back).reason);
  FUZZ_CHECK(Eq(*v, value), "encoded " + Show(enc) + " parses differently");
  FUZZ_CHECK(nfsdfs::EncodeRequest(*v) == enc);
  FUZZ_CHECK(nfsdfs::PeekSeq(enc) == value.seq);
  FUZZ_CHECK(Acceptors(enc) == 1, "encoded " + Show(enc));
}

// Every property of a request parser on one input line.
template <typename T>
void CheckRequestParser(const uint8_t* data, size_t size) {
  const ExactCopy exact(data, size);
  const PaddedCopy padded(data, size);
  const std::string_view line = exact.view();

  const auto parsed = ParseAs<T>(line);
  // Nothing past the line is read, or makes a difference.
  FUZZ_CHECK(SameParse(parsed, ParseAs<T>(padded.view())),
             "line " + Show(line) + " parses differently with bytes after it");
  FUZZ_CHECK(SameParse(parsed, ParseAs<T>(line)), "not deterministic");

  if (const auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    CheckError(*err, line);
    return;
  }
  const T& r = std::get<T>(parsed);
  CheckFraming(line, /*newline_required=*/true, nfsdfs::kMaxRequestLen);
  CheckValues(r);
  FUZZ_CHECK(nfsdfs::PeekSeq(line) == r.seq && ExpectedSeq(line) == r.seq,
             "line " + Show(line));
  // The four grammars differ in their field count: one parser at most.
  FUZZ_CHECK(Acceptors(line) == 1, "line " + Show(line));
  // Re-encoding gives a line that parses to the same values, and that holds
  // the same decoded fields as the line itself.
  CheckEncodeParses(r);
  CheckSameFields(line, nfsdfs::EncodeRequest(r), HashField<T>());
}

// Whether a value may travel, by PROTOCOL.md §2, worked out here rather than
// by the parser.
inline bool Valid(const nfsdfs::StartRequest& r) {
  return r.seq >= 1 && r.kernel_boot_time >= 0;
}
inline bool Valid(const nfsdfs::CreateRequest& r) {
  return r.seq >= 1 && r.instance >= 1 && ValidClientId(r.client_id) &&
         (r.princhash.empty() || r.princhash.size() == nfsdfs::kPrincHashLen);
}
inline bool Valid(const nfsdfs::ExpireRequest& r) {
  return r.seq >= 1 && r.instance >= 1 && ValidClientId(r.client_id);
}
inline bool Valid(const nfsdfs::GraceDoneRequest& r) {
  return r.seq >= 1 && r.instance >= 1;
}

// A valid value encodes to a line that parses back to it; an invalid one to
// a line that is rejected as a malformed request should be.
template <typename T>
void CheckEncoded(const T& value) {
  if (Valid(value)) {
    CheckEncodeParses(value);
    return;
  }
  const std::string enc = nfsdfs::EncodeRequest(value);
  const auto back = ParseAs<T>(enc);
  const auto* err = std::get_if<nfsdfs::ParseError>(&back);
  FUZZ_CHECK(err != nullptr, "invalid request accepted: " + Show(enc));
  CheckError(*err, enc);
}

}  // namespace fuzz

#endif  // TESTS_FUZZ_REQUEST_CHECKS_H_
