// Fuzz target for the cld message codec (nfsdfs-proto/cld.h): DecodeUpcall
// of any bytes, and DecodeDowncall at the size the input claims. Besides "no
// crash, no read past the input" it checks that an accepted message has its
// lengths within its arrays, that a rejection has a short printable reason,
// and that Encode of an accepted message decodes back to the same fields at
// the same size.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <variant>

#include "nfsdfs-proto/cld.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using nfsdfs::cld::Message;

void CheckSame(const Message& a, const Message& b) {
  FUZZ_CHECK(a.vers == b.vers);
  FUZZ_CHECK(a.cmd == b.cmd);
  FUZZ_CHECK(a.xid == b.xid);
  FUZZ_CHECK(a.status == b.status);
  // The union member that the command gives meaning to.
  switch (static_cast<nfsdfs::cld::Command>(a.cmd)) {
    case nfsdfs::cld::Command::kCreate:
    case nfsdfs::cld::Command::kRemove:
    case nfsdfs::cld::Command::kCheck:
      FUZZ_CHECK(a.name == b.name);
      if (a.vers >= 2 && a.cmd == 0) FUZZ_CHECK(a.princhash == b.princhash);
      break;
    case nfsdfs::cld::Command::kGraceDone:
      FUZZ_CHECK(a.gracetime == b.gracetime);
      break;
    case nfsdfs::cld::Command::kGetVersion:
      FUZZ_CHECK(a.version == b.version);
      break;
    default:
      break;
  }
}

void CheckAccepted(const Message& m, size_t size) {
  FUZZ_CHECK(nfsdfs::cld::MessageSize(m.vers) == size);
  FUZZ_CHECK(m.name.size() <= 1024);
  FUZZ_CHECK(m.princhash.size() <= 32);
  std::string again = nfsdfs::cld::Encode(m);
  FUZZ_CHECK(again.size() == size);
  auto d = nfsdfs::cld::DecodeUpcall(again);
  FUZZ_CHECK(std::holds_alternative<Message>(d));
  CheckSame(m, std::get<Message>(d));
  auto dd = nfsdfs::cld::DecodeDowncall(again, size);
  FUZZ_CHECK(std::holds_alternative<Message>(dd));
  CheckSame(m, std::get<Message>(dd));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: ASan sees any read past the message.
  std::unique_ptr<char[]> buf(new char[size ? size : 1]);
  if (size) std::memcpy(buf.get(), data, size);
  std::string_view bytes(buf.get(), size);

  auto up = nfsdfs::cld::DecodeUpcall(bytes);
  if (auto* m = std::get_if<Message>(&up)) {
    CheckAccepted(*m, size);
  } else {
    const auto& e = std::get<nfsdfs::ParseError>(up);
    FUZZ_CHECK(!e.reason.empty() && e.reason.size() < 4096);
    for (char c : e.reason) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
  }
  // A downcall checked against the size of the upcall it answers: the
  // claimed size is the first byte's version's, or any other.
  size_t expected =
      size && data[0] % 2 ? nfsdfs::cld::MessageSize(data[0] & 3) : size;
  auto down = nfsdfs::cld::DecodeDowncall(bytes, expected);
  if (auto* m = std::get_if<Message>(&down)) {
    FUZZ_CHECK(size == expected);
    CheckAccepted(*m, size);
  }
  return 0;
}
