#include "daemon/idmap/upcall.h"

#include "nfsdfs-proto/qword.h"

namespace nfsdh::idmap {

const char* DirectionName(Direction d) {
  return d == Direction::kIdToName ? "idtoname" : "nametoid";
}

const char* IdTypeName(IdType t) {
  return t == IdType::kUser ? "user" : "group";
}

namespace {

bool ParseId(const std::string& text, uint32_t* id) {
  if (text.empty() || text.size() > 10) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  *id = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

bool ParseUpcall(Direction d, std::string_view line, Upcall* out,
                 std::string* error) {
  if (line.empty() || line.back() != '\n') {
    *error = "the upcall does not end in a newline";
    return false;
  }
  line.remove_suffix(1);
  Upcall up;
  up.direction = d;
  std::string type, third;
  if (!nfsdfs::QwordGet(&line, &up.authname, kNameSize - 1) ||
      up.authname.empty()) {
    *error = "bad or missing authentication name";
    return false;
  }
  if (!nfsdfs::QwordGet(&line, &type) || (type != "user" && type != "group")) {
    *error = "the type is neither \"user\" nor \"group\"";
    return false;
  }
  up.type = type == "user" ? IdType::kUser : IdType::kGroup;
  if (!nfsdfs::QwordGet(&line, &third, kNameSize - 1) || third.empty()) {
    *error = d == Direction::kIdToName ? "bad or missing id"
                                       : "bad, missing or too long name";
    return false;
  }
  if (d == Direction::kIdToName) {
    if (!ParseId(third, &up.id)) {
      *error = "the id is not a decimal 32-bit number";
      return false;
    }
  } else {
    if (third.find('\0') != std::string::npos) {
      *error = "the name holds a NUL byte";
      return false;
    }
    up.name = std::move(third);
  }
  if (!line.empty()) {
    *error = "unexpected fields after the " +
             std::string(d == Direction::kIdToName ? "id" : "name");
    return false;
  }
  *out = std::move(up);
  return true;
}

std::string FormatDowncall(const Upcall& up, const Answer& a, int64_t expiry) {
  std::string out;
  nfsdfs::QwordAdd(&out, up.authname);
  nfsdfs::QwordAdd(&out, IdTypeName(up.type));
  if (up.direction == Direction::kIdToName) {
    nfsdfs::QwordAdd(&out, std::to_string(up.id));
    nfsdfs::QwordAdd(&out, std::to_string(expiry));
    // An empty name is written as nothing: the kernel reads a zero-length
    // field, which makes the entry negative.
    if (!a.name.empty()) nfsdfs::QwordAdd(&out, a.name);
  } else {
    nfsdfs::QwordAdd(&out, up.name);
    nfsdfs::QwordAdd(&out, std::to_string(expiry));
    if (a.has_id) nfsdfs::QwordAdd(&out, std::to_string(a.id));
  }
  out.back() = '\n';  // the space after the last field
  return out;
}

}  // namespace nfsdh::idmap
