// The two ID-mapping cache channels of nfsd (/proc/net/rpc/nfs4.idtoname and
// nfs4.nametoid): what an upcall says and how its downcall is written.
//
// Both are sunrpc cache channels (research/nfsdcld.md §3) whose fields use the
// qword encoding of nfsdfs-proto/qword.h. Linux fs/nfsd/nfs4idmap.c asks
//   idtoname: <authname> <user|group> <id>\n
//   nametoid: <authname> <user|group> <name>\n
// and takes the answers
//   idtoname: <authname> <user|group> <id> <expiry> <name>\n
//   nametoid: <authname> <user|group> <name> <expiry> [<id>]\n
// where <expiry> is the wall-clock second the entry stops being valid. An
// empty <name>, or a nametoid answer without <id>, is a negative entry: for
// idtoname the kernel then sends the id as a number; for nametoid it answers
// NFS4ERR_BADOWNER. The kernel keeps both names below 128 bytes
// (IDMAP_NAMESZ) and rejects an answer with a longer one.
#ifndef DAEMON_IDMAP_UPCALL_H_
#define DAEMON_IDMAP_UPCALL_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace nfsdh::idmap {

// The kernel's IDMAP_NAMESZ: names and authnames are shorter than this.
inline constexpr size_t kNameSize = 128;

enum class Direction { kIdToName, kNameToId };
enum class IdType { kUser, kGroup };

const char* DirectionName(Direction d);  // "idtoname", "nametoid"
const char* IdTypeName(IdType t);        // "user", "group"

struct Upcall {
  Direction direction = Direction::kIdToName;
  std::string authname;  // the client's auth domain, echoed back
  IdType type = IdType::kUser;
  uint32_t id = 0;   // kIdToName
  std::string name;  // kNameToId
};

// Parses one upcall line (with its '\n') of channel `d`. Returns false with a
// reason in *error if the line is not what nfs4idmap.c sends: a field
// missing or left over, a type other than "user"/"group", an id that is not
// a decimal 32-bit number, an empty or too long name.
bool ParseUpcall(Direction d, std::string_view line, Upcall* out,
                 std::string* error);

// The answer to an upcall: for kIdToName a name ("" for a negative entry),
// for kNameToId an id (or none: a negative entry).
struct Answer {
  std::string name;
  bool has_id = false;
  uint32_t id = 0;
};

// The downcall line for `up` (ending in '\n'), valid until `expiry`.
std::string FormatDowncall(const Upcall& up, const Answer& a, int64_t expiry);

}  // namespace nfsdh::idmap

#endif  // DAEMON_IDMAP_UPCALL_H_
