// Helpers shared by the two reply-parser targets (fuzz_status_reply.cc,
// fuzz_allow_reply.cc): the parsers of the lines the helper writes, which the
// simulated kernel (and the kernel patch) must take apart safely.
#ifndef TESTS_FUZZ_REPLY_CHECKS_H_
#define TESTS_FUZZ_REPLY_CHECKS_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "nfsdfs-proto/message.h"
#include "tests/fuzz/fuzz_util.h"

namespace fuzz {

inline bool Eq(const nfsdfs::StatusReply& a, const nfsdfs::StatusReply& b) {
  return a.seq == b.seq && a.status == b.status;
}
inline bool Eq(const nfsdfs::AllowClientLine& a,
               const nfsdfs::AllowClientLine& b) {
  return a.seq == b.seq && a.client_id == b.client_id &&
         a.princhash == b.princhash;
}
inline bool Eq(const nfsdfs::AllowDoneLine& a, const nfsdfs::AllowDoneLine& b) {
  return a.seq == b.seq && a.status == b.status && a.instance == b.instance;
}
using AllowLine = std::variant<nfsdfs::AllowClientLine, nfsdfs::AllowDoneLine>;
inline bool Eq(const AllowLine& a, const AllowLine& b) {
  if (a.index() != b.index()) return false;
  if (const auto* c = std::get_if<nfsdfs::AllowClientLine>(&a)) {
    return Eq(*c, std::get<nfsdfs::AllowClientLine>(b));
  }
  return Eq(std::get<nfsdfs::AllowDoneLine>(a),
            std::get<nfsdfs::AllowDoneLine>(b));
}

inline bool ValidStatus(int status) {
  return status == 0 || (status <= -1 && status >= -4095);
}

// A reply line is accepted with or without its final '\n' (the kernel splits
// a downcall at '\n' first): an accepted line must parse the same the other
// way, as long as it still fits in one write().
template <typename T, typename Parse>
void CheckNewlineOptional(std::string_view line, const T& value, Parse parse) {
  std::string other(line);
  if (!other.empty() && other.back() == '\n') {
    other.pop_back();
  } else if (other.size() < nfsdfs::kMaxDowncallLen) {
    other.push_back('\n');
  } else {
    return;
  }
  const auto again = parse(other);
  const T* v = std::get_if<T>(&again);
  FUZZ_CHECK(v != nullptr && Eq(*v, value),
             "line " + Show(line) + " is accepted but " + Show(other) +
                 " is not, or differently");
}

}  // namespace fuzz

#endif  // TESTS_FUZZ_REPLY_CHECKS_H_
