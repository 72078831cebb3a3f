// Fuzz target for ParseCreateRequest (create_client, PROTOCOL.md §3.2):
// "<seq> <instance> <client-id> <princhash> <minor>\n". See request_checks.h
// for the properties checked on each line. In addition a CreateRequest built
// from the input (client ids of any bytes, 0..1032 long; hashes of 0, 32 or
// other lengths; any seq and instance) encodes to a line that parses back to
// it if its values are valid, and is rejected if not.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::CheckRequestParser<nfsdfs::CreateRequest>(data, size);

  FuzzedDataProvider p(data, size);
  nfsdfs::CreateRequest r;
  r.seq = fuzz::AnySeq(p);
  r.instance = fuzz::AnyInstance(p);
  r.minor = p.ConsumeBool() ? nfsdfs::Minor::kV41 : nfsdfs::Minor::kV40;
  r.princhash = fuzz::AnyPrincHash(p);
  r.client_id = fuzz::AnyClientId(p);
  fuzz::CheckEncoded(r);
  return 0;
}
