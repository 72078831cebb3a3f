// How helper-ctl shows stored values: client ids, principal hashes, minor
// versions and times. Shared by the table and the JSON output of `dump`;
// documented in man/helper-ctl.8 (OUTPUT).
#ifndef CTL_FORMAT_H_
#define CTL_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nfsdh::ctl {

// True if every byte of `id` is printable ASCII (0x20 space to 0x7e '~').
// An empty id is printable.
bool IsPrintable(std::string_view id);

// A client id for the table: a printable id in double quotes with '"' and
// '\' escaped by a backslash ("Linux NFSv4.1 host"), anything else as "0x"
// and lower-case hex (0x0a1b).
std::string IdCell(std::string_view id);

// A principal hash: lower-case hex, or "-" when there is none.
std::string PrinchashCell(std::string_view princhash);

// "4.0" for minor 0, "4.1+" for minor 1, "unknown" for -1 (a record imported
// from nfsdcld, which does not record it), "?<n>" for anything else.
std::string MinorName(int minor);

// "<seconds>  <UTC date>" ("1763771860  2025-11-22T00:37:40Z"), or "-".
std::string TimeCell(const std::optional<int64_t>& t);

// A client id typed by the operator, in any form IdCell shows one:
//   0x0a1b                hex (an even number of digits, at least two);
//   "say \"hi\""          a double-quoted text with \" and \\ escapes
//                         (how dump shows a printable id);
//   linux-client-1        any other word: the text itself.
// On error returns false and sets *error to a sentence.
bool ParseClientId(std::string_view arg, std::string* id, std::string* error);

}  // namespace nfsdh::ctl

#endif  // CTL_FORMAT_H_
