// Fuzz target for ParseGraceDoneRequest (grace_done, PROTOCOL.md §3.4):
// "<seq> <instance>\n". See request_checks.h for the properties checked on
// each line. In addition a GraceDoneRequest built from the input encodes to
// a line that parses back to it if its values are valid, and is rejected if
// not (seq 0, instance 0 or negative).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::CheckRequestParser<nfsdfs::GraceDoneRequest>(data, size);

  FuzzedDataProvider p(data, size);
  nfsdfs::GraceDoneRequest r;
  r.seq = fuzz::AnySeq(p);
  r.instance = fuzz::AnyInstance(p);
  fuzz::CheckEncoded(r);
  return 0;
}
