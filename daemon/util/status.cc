#include "daemon/util/status.h"

#include <cstring>

namespace nfsdh {

Status Status::FromErrno(const std::string& what, int err) {
  std::string m = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(std::move(m));
    case EACCES:
    case EPERM:
      return Permission(std::move(m));
    case EINVAL:
      return Invalid(std::move(m));
    default:
      return Io(std::move(m));
  }
}

int Status::ReplyErrno() const {
  switch (code_) {
    case Code::kOk:
      return 0;
    case Code::kInvalid:
      return -EINVAL;
    case Code::kStale:
      return -ESTALE;
    default:
      return -EIO;
  }
}

std::string Status::ToString() const {
  const char* kind = "OK";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kInvalid:
      kind = "invalid";
      break;
    case Code::kStale:
      kind = "stale instance";
      break;
    case Code::kIo:
      kind = "I/O error";
      break;
    case Code::kCorrupt:
      kind = "corrupt database";
      break;
    case Code::kNotFound:
      kind = "not found";
      break;
    case Code::kPermission:
      kind = "permission denied";
      break;
  }
  return std::string(kind) + ": " + message_;
}

}  // namespace nfsdh
