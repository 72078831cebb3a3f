// message: the typed requests and replies of PROTOCOL.md §3, with strict
// parsing for both directions. The helper parses requests and encodes replies;
// the simulated kernel (and the kernel patch) encodes requests and parses
// replies. Every parser accepts only what PROTOCOL.md allows.
#ifndef NFSDFS_PROTO_MESSAGE_H_
#define NFSDFS_PROTO_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace nfsdfs {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxRequestLen = 4096;  // bytes, including the '\n'
inline constexpr size_t kMaxDowncallLen = 8191;  // bytes per write()
inline constexpr size_t kMaxClientIdLen = 1024;
inline constexpr size_t kPrincHashLen = 32;

// The four files of PROTOCOL.md §1.
enum class Channel { kAllowClient, kCreateClient, kExpireClient, kGraceDone };
// "allow_client", "create_client", ...
const char* ChannelFileName(Channel c);

enum class Minor { kV40, kV41 };
const char* MinorName(Minor m);  // "v40" / "v41"

struct StartRequest {  // allow_client
  uint64_t seq = 0;
  uint64_t version = 0;
  int64_t kernel_boot_time = 0;
};
struct CreateRequest {  // create_client
  uint64_t seq = 0;
  int64_t instance = 0;
  std::string client_id;  // 1..1024 bytes
  std::string princhash;  // empty or 32 bytes
  Minor minor = Minor::kV40;
};
struct ExpireRequest {  // expire_client
  uint64_t seq = 0;
  int64_t instance = 0;
  std::string client_id;
};
struct GraceDoneRequest {  // grace_done
  uint64_t seq = 0;
  int64_t instance = 0;
};

// Why a line was rejected. `seq` is set when the sequence number could be read,
// so the request can still be answered with -EINVAL.
struct ParseError {
  std::optional<uint64_t> seq;
  std::string reason;  // human-readable, already safe to log
};

template <typename T>
using Parsed = std::variant<T, ParseError>;

// Request parsers (helper side). `line` is what one read() returned,
// including the final '\n'.
Parsed<StartRequest> ParseStartRequest(std::string_view line);
Parsed<CreateRequest> ParseCreateRequest(std::string_view line);
Parsed<ExpireRequest> ParseExpireRequest(std::string_view line);
Parsed<GraceDoneRequest> ParseGraceDoneRequest(std::string_view line);

// Request encoders (kernel side). Each returns one line ending in '\n'.
std::string EncodeRequest(const StartRequest& r);
std::string EncodeRequest(const CreateRequest& r);
std::string EncodeRequest(const ExpireRequest& r);
std::string EncodeRequest(const GraceDoneRequest& r);

// Reply encoders (helper side). Each returns one line ending in '\n'.
std::string EncodeStatusReply(uint64_t seq, int status);  // "<seq> <status>\n"
std::string EncodeAllowClient(uint64_t seq, std::string_view client_id,
                              std::string_view princhash);
std::string EncodeAllowDone(uint64_t seq, int status, int64_t instance);

// Reply parsers (kernel side), one line at a time (split a downcall at '\n'
// first; `line` excludes or includes the '\n', both accepted).
struct StatusReply {
  uint64_t seq = 0;
  int status = 0;
};
struct AllowClientLine {
  uint64_t seq = 0;
  std::string client_id;
  std::string princhash;
};
struct AllowDoneLine {
  uint64_t seq = 0;
  int status = 0;
  int64_t instance = 0;
};
Parsed<StatusReply> ParseStatusReply(std::string_view line);
Parsed<std::variant<AllowClientLine, AllowDoneLine>> ParseAllowReply(
    std::string_view line);

// Reads the leading sequence number of any line, if it has a valid one.
std::optional<uint64_t> PeekSeq(std::string_view line);

}  // namespace nfsdfs

#endif  // NFSDFS_PROTO_MESSAGE_H_
