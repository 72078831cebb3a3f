// Fuzz target for ParseExpireRequest (expire_client, PROTOCOL.md §3.3):
// "<seq> <instance> <client-id>\n". See request_checks.h for the properties
// checked on each line. In addition an ExpireRequest built from the input
// (client ids of any bytes, 0..1032 long; any seq and instance) encodes to a
// line that parses back to it if its values are valid, and is rejected if
// not.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::CheckRequestParser<nfsdfs::ExpireRequest>(data, size);

  FuzzedDataProvider p(data, size);
  nfsdfs::ExpireRequest r;
  r.seq = fuzz::AnySeq(p);
  r.instance = fuzz::AnyInstance(p);
  r.client_id = fuzz::AnyClientId(p);
  fuzz::CheckEncoded(r);
  return 0;
}
