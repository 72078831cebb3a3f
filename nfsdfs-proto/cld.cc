#include "nfsdfs-proto/cld.h"

#include <linux/nfsd/cld.h>

#include <algorithm>
#include <cstring>

namespace nfsdfs::cld {
namespace {

static_assert(sizeof(struct cld_msg) == 1034, "cld_msg layout");
static_assert(sizeof(struct cld_msg_v2) == 1067, "cld_msg_v2 layout");
static_assert(kMaxMessageSize == sizeof(struct cld_msg_v2), "max size");
static_assert(Cld_GetVersion == static_cast<int>(Command::kGetVersion),
              "command numbers");

std::variant<Message, ParseError> Decode(std::string_view b, bool upcall,
                                         size_t expected_size) {
  ParseError err;
  if (b.size() < sizeof(struct cld_msg_hdr)) {
    err.reason = "message of " + std::to_string(b.size()) +
                 " bytes is shorter than its header";
    return err;
  }
  struct cld_msg_hdr h;
  std::memcpy(&h, b.data(), sizeof h);
  err.seq = static_cast<uint64_t>(h.cm_xid);
  size_t want = MessageSize(h.cm_vers);
  if (want == 0) {
    err.reason = "unknown message version " + std::to_string(h.cm_vers);
    return err;
  }
  if (b.size() != want || (expected_size && b.size() != expected_size)) {
    err.reason = "version " + std::to_string(h.cm_vers) + " message of " +
                 std::to_string(b.size()) + " bytes, expected " +
                 std::to_string(expected_size ? expected_size : want);
    return err;
  }
  Message m;
  m.vers = h.cm_vers;
  m.cmd = h.cm_cmd;
  m.status = h.cm_status;
  m.xid = h.cm_xid;
  // Both versions share the layout of the header, cm_name, cm_version and
  // cm_gracetime at offset 8; only v2 has the principal hash after the name.
  struct cld_msg_v2 v2;
  std::memset(&v2, 0, sizeof v2);
  std::memcpy(&v2, b.data(), b.size());
  switch (static_cast<Command>(m.cmd)) {
    case Command::kCreate:
    case Command::kRemove:
    case Command::kCheck: {
      uint16_t len = v2.cm_u.cm_name.cn_len;
      if (len > sizeof v2.cm_u.cm_name.cn_id) {
        err.reason = "client id length " + std::to_string(len) +
                     " is over 1024";
        return err;
      }
      m.name.assign(reinterpret_cast<const char*>(v2.cm_u.cm_name.cn_id), len);
      if (m.vers >= 2 && m.cmd == static_cast<uint8_t>(Command::kCreate)) {
        uint8_t plen = v2.cm_u.cm_clntinfo.cc_princhash.cp_len;
        if (plen != 0 && plen != sizeof v2.cm_u.cm_clntinfo.cc_princhash.cp_data) {
          err.reason = "principal hash length " + std::to_string(plen) +
                       " is neither 0 nor 32";
          return err;
        }
        m.princhash.assign(reinterpret_cast<const char*>(
                               v2.cm_u.cm_clntinfo.cc_princhash.cp_data),
                           plen);
      }
      break;
    }
    case Command::kGraceDone: {
      int64_t t;
      std::memcpy(&t, b.data() + 8, sizeof t);
      m.gracetime = t;
      break;
    }
    case Command::kGetVersion:
      m.version = v2.cm_u.cm_version;
      break;
    case Command::kGraceStart:
      // A downcall of GraceStart with -EINPROGRESS carries a client; one
      // with another status carries nothing.
      if (!upcall) {
        uint16_t len = v2.cm_u.cm_name.cn_len;
        if (len > sizeof v2.cm_u.cm_name.cn_id) {
          err.reason = "client id length " + std::to_string(len) +
                       " is over 1024";
          return err;
        }
        m.name.assign(reinterpret_cast<const char*>(v2.cm_u.cm_name.cn_id),
                      len);
        if (m.vers >= 2) {
          uint8_t plen = v2.cm_u.cm_clntinfo.cc_princhash.cp_len;
          if (plen != 0 &&
              plen != sizeof v2.cm_u.cm_clntinfo.cc_princhash.cp_data) {
            err.reason = "principal hash length " + std::to_string(plen) +
                         " is neither 0 nor 32";
            return err;
          }
          m.princhash.assign(reinterpret_cast<const char*>(
                                 v2.cm_u.cm_clntinfo.cc_princhash.cp_data),
                             plen);
        }
      }
      break;
    default:
      break;  // unknown commands decode; the helper answers -EOPNOTSUPP
  }
  return m;
}

}  // namespace

const char* CommandName(uint8_t cmd) {
  switch (static_cast<Command>(cmd)) {
    case Command::kCreate:
      return "Create";
    case Command::kRemove:
      return "Remove";
    case Command::kCheck:
      return "Check";
    case Command::kGraceDone:
      return "GraceDone";
    case Command::kGraceStart:
      return "GraceStart";
    case Command::kGetVersion:
      return "GetVersion";
  }
  return "unknown";
}

size_t MessageSize(uint8_t version) {
  switch (version) {
    case 1:
      return sizeof(struct cld_msg);
    case 2:
      return sizeof(struct cld_msg_v2);
  }
  return 0;
}

std::variant<Message, ParseError> DecodeUpcall(std::string_view bytes) {
  return Decode(bytes, true, 0);
}

std::variant<Message, ParseError> DecodeDowncall(std::string_view bytes,
                                                 size_t expected_size) {
  return Decode(bytes, false, expected_size);
}

std::string Encode(const Message& m) {
  struct cld_msg_v2 v2;
  std::memset(&v2, 0, sizeof v2);
  v2.cm_vers = m.vers;
  v2.cm_cmd = m.cmd;
  v2.cm_status = m.status;
  v2.cm_xid = m.xid;
  switch (static_cast<Command>(m.cmd)) {
    case Command::kGetVersion:
      v2.cm_u.cm_version = m.version;
      break;
    case Command::kGraceDone:
      // Only v0-style kernels read it; at offset 8 in both versions.
      std::memcpy(reinterpret_cast<char*>(&v2) + 8, &m.gracetime,
                  sizeof m.gracetime);
      break;
    default: {
      size_t n = std::min(m.name.size(), sizeof v2.cm_u.cm_name.cn_id);
      v2.cm_u.cm_name.cn_len = static_cast<uint16_t>(n);
      std::memcpy(v2.cm_u.cm_name.cn_id, m.name.data(), n);
      if (m.vers >= 2) {
        size_t p = std::min(m.princhash.size(),
                            sizeof v2.cm_u.cm_clntinfo.cc_princhash.cp_data);
        v2.cm_u.cm_clntinfo.cc_princhash.cp_len = static_cast<uint8_t>(p);
        std::memcpy(v2.cm_u.cm_clntinfo.cc_princhash.cp_data,
                    m.princhash.data(), p);
      }
    }
  }
  size_t size = MessageSize(m.vers);
  if (size == 0) size = sizeof(struct cld_msg);
  return std::string(reinterpret_cast<const char*>(&v2), size);
}

}  // namespace nfsdfs::cld
