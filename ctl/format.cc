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
  if (minor == -1) return "unknown";
  return "?" + std::to_string(minor);
}

std::string TimeCell(const std::optional<int64_t>& t) {
  if (!t) return "-";
  return std::to_string(*t) + "  " + IsoTime(*t);
}

bool ParseClientId(std::string_view arg, std::string* id, std::string* error) {
  std::string out;
  if (arg.size() >= 2 &&
      (arg.substr(0, 2) == "0x" || arg.substr(0, 2) == "0X")) {
    std::string_view hex = arg.substr(2);
    if (hex.empty() || hex.size() % 2 != 0) {
      *error = "a hex client id needs an even number of digits after 0x";
      return false;
    }
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = digit(hex[i]), lo = digit(hex[i + 1]);
      if (hi < 0 || lo < 0) {
        *error = "'" + std::string(arg) +
                 "' is not hex (quote a text id that starts with 0x: "
                 "'\"" +
                 std::string(arg) + "\"')";
        return false;
      }
      out += static_cast<char>(hi * 16 + lo);
    }
  } else if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
    std::string_view body = arg.substr(1, arg.size() - 2);
    for (size_t i = 0; i < body.size(); ++i) {
      char c = body[i];
      if (c == '\\') {
        if (i + 1 == body.size() ||
            (body[i + 1] != '"' && body[i + 1] != '\\')) {
          *error =
              "in a quoted client id, a backslash may only precede \" "
              "or \\";
          return false;
        }
        c = body[++i];
      } else if (c == '"') {
        *error = "in a quoted client id, a double quote must be written \\\"";
        return false;
      }
      out += c;
    }
  } else {
    out = std::string(arg);
  }
  if (out.empty()) {
    *error = "the client id is empty";
    return false;
  }
  if (out.size() > 1024) {
    *error = "a client id is at most 1024 bytes; this one has " +
             std::to_string(out.size());
    return false;
  }
  *id = std::move(out);
  return true;
}

}  // namespace nfsdh::ctl
