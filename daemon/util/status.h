// Status: the result of an operation that can fail, with an errno-style code
// and a message that says what failed and why. Errors cross module boundaries
// as Status values, never as exceptions.
#ifndef DAEMON_UTIL_STATUS_H_
#define DAEMON_UTIL_STATUS_H_

#include <cerrno>
#include <string>
#include <utility>

namespace nfsdh {

class Status {
 public:
  // The kinds callers act on differently. Each maps to the errno the protocol
  // replies with (PROTOCOL.md §5).
  enum class Code {
    kOk = 0,
    kInvalid,     // bad input: -EINVAL
    kStale,       // unknown or old server instance: -ESTALE
    kIo,          // storage failed; nothing was made durable: -EIO
    kCorrupt,     // a database is damaged (of ours: see Store::Open)
    kNotFound,    // a file, scope or record that does not exist
    kPermission,  // access refused
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status Invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
  static Status Stale(std::string m) { return {Code::kStale, std::move(m)}; }
  static Status Io(std::string m) { return {Code::kIo, std::move(m)}; }
  static Status Corrupt(std::string m) { return {Code::kCorrupt, std::move(m)}; }
  static Status NotFound(std::string m) {
    return {Code::kNotFound, std::move(m)};
  }
  static Status Permission(std::string m) {
    return {Code::kPermission, std::move(m)};
  }
  // From a failed system call: "<what>: <strerror(err)>", coded by errno.
  static Status FromErrno(const std::string& what, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // The negative errno a protocol reply carries for this status.
  int ReplyErrno() const;
  // "OK" or "<kind>: <message>".
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace nfsdh

#endif  // DAEMON_UTIL_STATUS_H_
