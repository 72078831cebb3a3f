// cld: the binary messages of the stock kernel's nfsdcld upcall
// (<rpc_pipefs>/nfsd/cld; struct cld_msg and cld_msg_v2 of
// <linux/nfsd/cld.h>, packed, host byte order).
//
// One read() of the pipe returns one upcall, whose size follows from its
// cm_vers: 1034 bytes for version 1, 1067 for version 2. A downcall must be
// exactly the size of the upcall it answers (the kernel checks it against
// its msglen), and carries the upcall's cm_xid and cm_cmd.
#ifndef NFSDFS_PROTO_CLD_H_
#define NFSDFS_PROTO_CLD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "nfsdfs-proto/message.h"

namespace nfsdfs::cld {

// Commands of enum cld_command.
enum class Command : uint8_t {
  kCreate = 0,
  kRemove = 1,
  kCheck = 2,
  kGraceDone = 3,
  kGraceStart = 4,
  kGetVersion = 5,
};
const char* CommandName(uint8_t cmd);  // "Create", ..., "unknown"

size_t MessageSize(uint8_t version);  // 1034, 1067, or 0 if unknown
inline constexpr size_t kMaxMessageSize = 1067;
inline constexpr uint8_t kHighestVersion = 2;

// A decoded message. Which fields mean something depends on `cmd`:
// Create/Remove/Check carry `name` (and `princhash` for a v2 Create);
// GraceDone of a v0-style kernel carries `gracetime`; GetVersion replies
// carry `version`.
struct Message {
  uint8_t vers = 1;
  uint8_t cmd = 0;
  int16_t status = 0;
  uint32_t xid = 0;
  std::string name;       // client id, 0..1024 bytes
  std::string princhash;  // 0 or 32 bytes (v2)
  int64_t gracetime = 0;
  uint8_t version = 0;
};

// Decodes an upcall as the helper reads it. Rejects a length that does not
// match the size of the message's cm_vers, an unknown version, and a name
// or principal-hash length beyond its array; the error keeps the xid (as
// `seq`) when the header could be read, so the upcall can still be
// answered.
std::variant<Message, ParseError> DecodeUpcall(std::string_view bytes);

// Encodes a message at the size of its `vers`. Lengths beyond the arrays are
// truncated to them; callers validate first.
std::string Encode(const Message& m);

// Decodes a downcall as the kernel receives it (for the simulated kernel):
// the same checks, and `expected_size` must match.
std::variant<Message, ParseError> DecodeDowncall(std::string_view bytes,
                                                 size_t expected_size);

}  // namespace nfsdfs::cld

#endif  // NFSDFS_PROTO_CLD_H_
