// Fuzz target for ParseAllowReply (the "<seq> client <client-id> <princhash>"
// and "<seq> done <status> <instance>" replies to allow_client, PROTOCOL.md
// §3.1), the kernel side's parser of what the helper writes.
//
// Properties: nothing past the line is read; a rejection has a loggable
// reason and PeekSeq's seq; an accepted line obeys the framing rules and
// parses the same with or without its '\n', is not also a status reply, and
// re-encodes (EncodeAllowClient / EncodeAllowDone) to a line that parses to
// the same values and decodes to the same fields; a client line has a
// 1..1024-byte id and a 0- or 32-byte hash; a done line has status 0 with
// instance 1..2^63-1, or a negative errno with instance 0. In addition every
// line encoded from values built from the input parses back if the values
// are valid and is rejected if not.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>

#include "tests/fuzz/reply_checks.h"

namespace {

using fuzz::AllowLine;

void CheckEncoded(const std::string& enc, const AllowLine* expected) {
  const auto back = nfsdfs::ParseAllowReply(enc);
  const auto* v = std::get_if<AllowLine>(&back);
  if (expected == nullptr) {
    FUZZ_CHECK(v == nullptr, "invalid line accepted: " + fuzz::Show(enc));
    fuzz::CheckError(std::get<nfsdfs::ParseError>(back), enc);
    return;
  }
  fuzz::CheckFraming(enc, /*newline_required=*/true, nfsdfs::kMaxDowncallLen);
  FUZZ_CHECK(v != nullptr, "encoded " + fuzz::Show(enc) + " is rejected: " +
                               std::get<nfsdfs::ParseError>(back).reason);
  FUZZ_CHECK(fuzz::Eq(*v, *expected),
             "encoded " + fuzz::Show(enc) + " parses differently");
}

std::string Encode(const AllowLine& l) {
  if (const auto* c = std::get_if<nfsdfs::AllowClientLine>(&l)) {
    return nfsdfs::EncodeAllowClient(c->seq, c->client_id, c->princhash);
  }
  const auto& d = std::get<nfsdfs::AllowDoneLine>(l);
  return nfsdfs::EncodeAllowDone(d.seq, d.status, d.instance);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::ExactCopy exact(data, size);
  const fuzz::PaddedCopy padded(data, size);
  const std::string_view line = exact.view();

  const auto parsed = nfsdfs::ParseAllowReply(line);
  const auto eq = [](const AllowLine& a, const AllowLine& b) {
    return fuzz::Eq(a, b);
  };
  FUZZ_CHECK(
      fuzz::SameResult(parsed, nfsdfs::ParseAllowReply(padded.view()), eq),
      "line " + fuzz::Show(line) +
          " parses differently with bytes "
          "after it");
  if (const auto* err = std::get_if<nfsdfs::ParseError>(&parsed)) {
    fuzz::CheckError(*err, line);
  } else {
    const auto& r = std::get<AllowLine>(parsed);
    fuzz::CheckFraming(line, /*newline_required=*/false,
                       nfsdfs::kMaxDowncallLen);
    if (const auto* c = std::get_if<nfsdfs::AllowClientLine>(&r)) {
      FUZZ_CHECK(c->seq >= 1);
      FUZZ_CHECK(!c->client_id.empty() &&
                 c->client_id.size() <= nfsdfs::kMaxClientIdLen);
      FUZZ_CHECK(c->princhash.empty() ||
                 c->princhash.size() == nfsdfs::kPrincHashLen);
      FUZZ_CHECK(nfsdfs::PeekSeq(line) == c->seq &&
                 fuzz::ExpectedSeq(line) == c->seq);
    } else {
      const auto& d = std::get<nfsdfs::AllowDoneLine>(r);
      FUZZ_CHECK(d.seq >= 1);
      FUZZ_CHECK(fuzz::ValidStatus(d.status));
      FUZZ_CHECK(d.status == 0 ? d.instance >= 1 : d.instance == 0,
                 "status " + std::to_string(d.status) + " instance " +
                     std::to_string(d.instance));
      FUZZ_CHECK(nfsdfs::PeekSeq(line) == d.seq &&
                 fuzz::ExpectedSeq(line) == d.seq);
    }
    FUZZ_CHECK(std::holds_alternative<nfsdfs::ParseError>(
                   nfsdfs::ParseStatusReply(line)),
               "line " + fuzz::Show(line) + " is also a status reply");
    fuzz::CheckNewlineOptional(line, r, nfsdfs::ParseAllowReply);
    CheckEncoded(Encode(r), &r);
    fuzz::CheckSameFields(line, Encode(r), /*hash_field=*/3);
  }

  // Lines the helper could write, valid or not.
  FuzzedDataProvider p(data, size);
  const uint64_t seq = fuzz::AnySeq(p);
  if (p.ConsumeBool()) {
    nfsdfs::AllowClientLine c;
    c.seq = seq;
    c.princhash = fuzz::AnyPrincHash(p);
    c.client_id = fuzz::AnyClientId(p);
    const bool valid =
        seq >= 1 && fuzz::ValidClientId(c.client_id) &&
        (c.princhash.empty() || c.princhash.size() == nfsdfs::kPrincHashLen);
    const AllowLine l(c);
    CheckEncoded(Encode(l), valid ? &l : nullptr);
  } else {
    nfsdfs::AllowDoneLine d;
    d.seq = seq;
    d.status = fuzz::AnyStatus(p);
    d.instance = p.ConsumeBool() ? 0 : fuzz::AnyInstance(p);
    const bool valid = seq >= 1 && fuzz::ValidStatus(d.status) &&
                       (d.status == 0 ? d.instance >= 1 : d.instance == 0);
    const AllowLine l(d);
    CheckEncoded(Encode(l), valid ? &l : nullptr);
  }
  return 0;
}
