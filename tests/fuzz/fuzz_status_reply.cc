// Fuzz target for ParseStatusReply (the "<seq> <status>" reply to
// create_client, expire_client and grace_done, PROTOCOL.md §3.2-3.4), the
// kernel side's parser of what the helper writes.
//
// Properties: nothing past the line is read; a rejection has a loggable
// reason and PeekSeq's seq; an accepted line obeys the framing rules, has
// seq >= 1 and status 0 or -1..-4095, parses the same with or without its
// '\n', is not also an allow_client reply, and re-encodes
// (EncodeStatusReply) to a line that parses to the same values and decodes
// to the same fields. In addition EncodeStatusReply of any valid (seq,
// status) from the input parses back, and of an invalid status is rejected.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>

#include "tests/fuzz/reply_checks.h"

namespace {

void CheckEncoded(uint64_t seq, int status) {
  const std::string enc = nfsdfs::EncodeStatusReply(seq, status);
  const auto back = nfsdfs::ParseStatusReply(enc);
  const auto* v = std::get_if<nfsdfs::StatusReply>(&back);
  if (seq == 0 || !fuzz::ValidStatus(status)) {
    FUZZ_CHECK(v == nullptr, "invalid status accepted: " + fuzz::Show(enc));
    fuzz::CheckError(std::get<nfsdfs::ParseError>(back), enc);
    return;
  }
  fuzz::CheckFraming(enc, /*newline_required=*/true, nfsdfs::kMaxDowncallLen);
  FUZZ_CHECK(v != nullptr, "encoded " + fuzz::Show(enc) + " is rejected: " +
                               std::get<nfsdfs::ParseError>(back).reason);
  FUZZ_CHECK(v->seq == seq && v->status == status,
             "encoded " + fuzz::Show(enc) + " parses differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ExactCopy exact(data, size);
  const fuzz::PaddedCopy padded(data, size);
  const std::string_view line = exact.view();

  const auto parsed = nfsdfs::ParseStatusReply(line);
  const auto eq = [](const nfsdfs::StatusReply& a,
                     const nfsdfs::StatusReply& b) { return fuzz::Eq(a, b); };
  FUZZ_CHECK(
      fuzz::SameResult(parsed, nfsdfs::ParseStatusReply(padded.view()), eq),
      "line " + fuzz::Show(line) +
          " parses differently with bytes "
          "after it");
  if (const auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    fuzz::CheckError(*err, line);
  } else {
    const auto& r = std::get<nfsdfs::StatusReply>(parsed);
    fuzz::CheckFraming(line, /*newline_required=*/false,
                       nfsdfs::kMaxDowncallLen);
    FUZZ_CHECK(r.seq >= 1);
    FUZZ_CHECK(fuzz::ValidStatus(r.status),
               "status " + std::to_string(r.status));
    FUZZ_CHECK(nfsdfs::PeekSeq(line) == r.seq &&
               fuzz::ExpectedSeq(line) == r.seq);
    FUZZ_CHECK(std::holds_alternative<nfsdfs::ParseError>(
                   nfsdfs::ParseAllowReply(line)),
               "line " + fuzz::Show(line) + " is also an allow_client reply");
    fuzz::CheckNewlineOptional(line, r, nfsdfs::ParseStatusReply);
    CheckEncoded(r.seq, r.status);
    fuzz::CheckSameFields(line, nfsdfs::EncodeStatusReply(r.seq, r.status));
  }

  FuzzedDataProvider p(data, size);
  const uint64_t seq = fuzz::AnySeq(p);
  const int status = fuzz::AnyStatus(p);
  CheckEncoded(seq, status);
  return 0;
}
