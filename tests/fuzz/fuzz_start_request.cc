// Fuzz target for ParseStartRequest (allow_client, PROTOCOL.md §3.1):
// "<seq> start <version> <kernel-boot-time>\n". See request_checks.h for the
// properties checked on each line. In addition a StartRequest built from the
// input encodes (EncodeRequest) to a line that parses back to it if its
// values are valid, and is rejected if not (seq 0, negative boot time).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::CheckRequestParser<nfsdfs::StartRequest>(data, size);

  FuzzedDataProvider p(data, size);
  nfsdfs::StartRequest r;
  r.seq = fuzz::AnySeq(p);
  r.version = p.ConsumeBool() ? nfsdfs::kProtocolVersion
                              : p.ConsumeIntegral<uint64_t>();
  r.kernel_boot_time = fuzz::AnyInstance(p);
  fuzz::CheckEncoded(r);
  return 0;
}
