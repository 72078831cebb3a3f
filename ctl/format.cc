#include "ctl/format.h"

#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {

bool IsPrintable(std::string_view id) {
  for (unsigned char c : id)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

std::string IdCell(std::string_view id) {
  if (!IsPrintable(id)) return "0x" + nfsdfs::HexString(id);
  std::string cell = "\"";
  for (char c : id) {
    if (c == '"' || c == '\\') cell += '\\';
    cell += c;
  }
  return cell + "\"";
}

std::string PrinchashCell(std::string_view princhash) {
  return princhash.empty() ? "-" : nfsdfs::HexString(princhash);
}

std::string MinorName(int minor) {
  if (minor == 0) return "4.0";
  if (minor == 1) return "4.1+";
  return "?" + std::to_string(minor);
}

std::string TimeCell(const std::optional<int64_t>& t) {
  if (!t) return "-";
  return std::to_string(*t) + "  " + IsoTime(*t);
}

}  // namespace nfsdh::ctl
