// qword: the field encoding of sunrpc cache channels, as the kernel does it.
//
// QwordAdd and QwordAddHex produce exactly what the kernel's qword_add and
// qword_addhex produce (including the separating space after each field);
// QwordGet decodes exactly as the kernel's qword_get does. See PROTOCOL.md §2.
#ifndef NFSDFS_PROTO_QWORD_H_
#define NFSDFS_PROTO_QWORD_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace nfsdfs {

// Appends `text` with space, tab, newline and backslash written as \ooo, then
// one space. A NUL byte, which the kernel's C-string qword_add can never see,
// is written as \000 so that every byte string round-trips.
void QwordAdd(std::string* out, std::string_view text);

// Appends "\x", two lower-case hex digits per byte of `bytes`, then one space.
void QwordAddHex(std::string* out, std::string_view bytes);

// Decodes one field from the front of *in, as qword_get does: leading spaces
// are skipped; "\x" starts a hex field (pairs of hex digits until a non-pair);
// otherwise text up to a space, '\n' or NUL with "\[0-3][0-7][0-7]" decoded.
// At most `max_len` bytes are decoded (the kernel's bufsize - 1).
// On success returns true, stores the field in *out, and advances *in past the
// field and any spaces after it (not past a '\n'). Returns false, leaving *in
// unchanged, if the field is not followed by a space, '\n', NUL or the end of
// input, or is longer than `max_len`.
bool QwordGet(std::string_view* in, std::string* out,
              size_t max_len = static_cast<size_t>(-1) - 1);

// Returns `bytes` as lower-case hex with no prefix ("" for "").
std::string HexString(std::string_view bytes);

// Returns `bytes` escaped for a log line: printable ASCII as is, backslash as
// "\\", anything else as \xNN. Never longer than 4 * bytes.size().
std::string EscapeForLog(std::string_view bytes);

}  // namespace nfsdfs

#endif  // NFSDFS_PROTO_QWORD_H_
