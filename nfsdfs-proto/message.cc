#include "nfsdfs-proto/message.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nfsdfs-proto/qword.h"

namespace nfsdfs {
namespace {

constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMaxI63 =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Linux errno values are below 4096 (MAX_ERRNO).
constexpr uint64_t kMaxErrno = 4095;
// Bytes of input quoted in a reason. A line may be 4 KiB of hex; quoting all
// of it (four times longer once escaped) would drown the log.
constexpr size_t kMaxQuoted = 64;

// `bytes` in double quotes, escaped for the log and cut to kMaxQuoted bytes.
std::string Quote(std::string_view bytes) {
  std::string q = "\"";
  q += EscapeForLog(bytes.substr(0, kMaxQuoted));
  q += '"';
  if (bytes.size() > kMaxQuoted) {
    q += "... (" + std::to_string(bytes.size()) + " bytes)";
  }
  return q;
}

// Checks the framing rules of PROTOCOL.md §2 that do not depend on the line
// type and splits the line at its single spaces. A request must end in '\n';
// a reply line may come with or without it (the kernel splits a downcall at
// '\n' first).
bool SplitLine(std::string_view line, bool newline_required, size_t max_len,
               std::vector<std::string_view>* fields, std::string* reason) {
  if (line.size() > max_len) {
    *reason = "line is " + std::to_string(line.size()) + " bytes, at most " +
              std::to_string(max_len) + " allowed";
    return false;
  }
  if (size_t nul = line.find('\0'); nul != std::string_view::npos) {
    *reason = "line contains a NUL byte at offset " + std::to_string(nul);
    return false;
  }
  std::string_view body = line;
  if (!body.empty() && body.back() == '\n') {
    body.remove_suffix(1);
  } else if (newline_required) {
    *reason = "line does not end in a newline";
    return false;
  }
  if (size_t nl = body.find('\n'); nl != std::string_view::npos) {
    *reason = "line contains a newline at offset " + std::to_string(nl) +
              " before its end";
    return false;
  }
  if (body.empty()) {
    *reason = "line is empty";
    return false;
  }
  if (body.front() == ' ') {
    *reason = "line starts with a space";
    return false;
  }
  if (body.back() == ' ') {
    *reason = "line ends with a space";
    return false;
  }
  if (size_t dbl = body.find("  "); dbl != std::string_view::npos) {
    *reason = "double space at offset " + std::to_string(dbl);
    return false;
  }
  fields->clear();
  size_t start = 0;
  for (;;) {
    const size_t sp = body.find(' ', start);
    fields->push_back(body.substr(start, sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  return true;
}

bool SplitRequest(std::string_view line, std::vector<std::string_view>* fields,
                  std::string* reason) {
  return SplitLine(line, /*newline_required=*/true, kMaxRequestLen, fields,
                   reason);
}

// No reply line can be longer than the write() that carries it.
bool SplitReply(std::string_view line, std::vector<std::string_view>* fields,
                std::string* reason) {
  return SplitLine(line, /*newline_required=*/false, kMaxDowncallLen, fields,
                   reason);
}

bool CheckFieldCount(const std::vector<std::string_view>& fields,
                     size_t expected, const char* grammar,
                     std::string* reason) {
  if (fields.size() == expected) return true;
  *reason = "expected " + std::to_string(expected) + " fields (" + grammar +
            "), got " + std::to_string(fields.size());
  return false;
}

// Decodes one field as qword_get does. The field holds no space, newline or
// NUL (SplitLine saw to that), so the only way to fail is a "\x" field with
// an odd digit count or a non-hex character.
bool DecodeField(std::string_view token, const char* name, std::string* out,
                 std::string* reason) {
  std::string_view rest = token;
  if (QwordGet(&rest, out) && rest.empty()) return true;
  *reason =
      std::string(name) + " " + Quote(token) + " is not a valid \\x hex string";
  return false;
}

// Strict unsigned decimal: digits only, no sign, no leading zero, no
// overflow, and within [min, max].
bool ParseNumber(std::string_view token, const char* name, uint64_t min,
                 uint64_t max, uint64_t* value, std::string* reason) {
  std::string text;
  if (!DecodeField(token, name, &text, reason)) return false;
  if (text.empty()) {
    *reason = std::string(name) + " is empty";
    return false;
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      *reason = std::string(name) + " " + Quote(token) +
                " is not an unsigned decimal number";
      return false;
    }
  }
  if (text.size() > 1 && text[0] == '0') {
    *reason = std::string(name) + " " + Quote(token) + " has a leading zero";
    return false;
  }
  const std::string range =
      " is out of range " + std::to_string(min) + ".." + std::to_string(max);
  uint64_t v = 0;
  for (char c : text) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (kMaxU64 - digit) / 10) {
      *reason = std::string(name) + " " + Quote(token) + range;
      return false;
    }
    v = v * 10 + digit;
  }
  if (v < min || v > max) {
    *reason = std::string(name) + " " + Quote(token) + range;
    return false;
  }
  *value = v;
  return true;
}

bool ParseSeq(std::string_view token, uint64_t* seq, std::string* reason) {
  return ParseNumber(token, "seq", 1, kMaxU64, seq, reason);
}

bool ParseInt63(std::string_view token, const char* name, uint64_t min,
                int64_t* value, std::string* reason) {
  uint64_t v = 0;
  if (!ParseNumber(token, name, min, kMaxI63, &v, reason)) return false;
  *value = static_cast<int64_t>(v);
  return true;
}

bool ParseInstance(std::string_view token, int64_t* instance,
                   std::string* reason) {
  return ParseInt63(token, "instance", 1, instance, reason);
}

// "0", or '-' and an errno 1..4095 written as a strict decimal number.
bool ParseStatus(std::string_view token, int* status, std::string* reason) {
  std::string text;
  if (!DecodeField(token, "status", &text, reason)) return false;
  if (text == "0") {
    *status = 0;
    return true;
  }
  std::string ignored;
  uint64_t errno_value = 0;
  // ParseNumber decodes its token again: the decoded digits must be plain
  // digits, or a field such as "-\134061" would be decoded twice into -1.
  if (text.size() < 2 || text[0] != '-' ||
      text.find_first_not_of("0123456789", 1) != std::string::npos ||
      !ParseNumber(std::string_view(text).substr(1), "errno", 1, kMaxErrno,
                   &errno_value, &ignored)) {
    *reason = "status " + Quote(token) + " is not 0 or -1..-" +
              std::to_string(kMaxErrno);
    return false;
  }
  *status = -static_cast<int>(errno_value);
  return true;
}

// A literal word of the grammar ("start", "client", "done").
bool ExpectWord(std::string_view token, std::string_view word, size_t position,
                std::string* reason) {
  std::string text;
  if (DecodeField(token, "field", &text, reason) && text == word) return true;
  *reason = "field " + std::to_string(position) + " is " + Quote(token) +
            ", expected \"" + std::string(word) + "\"";
  return false;
}

bool ParseClientId(std::string_view token, std::string* id,
                   std::string* reason) {
  if (!DecodeField(token, "client id", id, reason)) return false;
  if (id->empty()) {
    *reason = "client id is 0 bytes, at least 1 required";
    return false;
  }
  if (id->size() > kMaxClientIdLen) {
    *reason = "client id is " + std::to_string(id->size()) +
              " bytes, at most " + std::to_string(kMaxClientIdLen) + " allowed";
    return false;
  }
  return true;
}

bool ParsePrincHash(std::string_view token, std::string* hash,
                    std::string* reason) {
  if (token == "-") {
    hash->clear();
    return true;
  }
  if (!DecodeField(token, "principal hash", hash, reason)) return false;
  if (!hash->empty() && hash->size() != kPrincHashLen) {
    *reason = "principal hash is " + std::to_string(hash->size()) +
              " bytes, must be 0 or " + std::to_string(kPrincHashLen);
    return false;
  }
  return true;
}

bool ParseMinor(std::string_view token, Minor* minor, std::string* reason) {
  std::string text;
  if (!DecodeField(token, "minor version", &text, reason)) return false;
  if (text == "v40") {
    *minor = Minor::kV40;
  } else if (text == "v41") {
    *minor = Minor::kV41;
  } else {
    *reason = "minor version " + Quote(token) + " is not \"v40\" or \"v41\"";
    return false;
  }
  return true;
}

// A principal hash travels as "-" when there is none: an empty "\x" field is
// legal too, but "-" is what the protocol text shows and is easier to read.
void AddPrincHash(std::string* out, std::string_view hash) {
  if (hash.empty()) {
    QwordAdd(out, "-");
  } else {
    QwordAddHex(out, hash);
  }
}

// Every qword ends in a space; the last one of a line ends in '\n' instead.
std::string EndLine(std::string out) {
  out.back() = '\n';
  return out;
}

}  // namespace

const char* ChannelFileName(Channel c) {
  switch (c) {
    case Channel::kAllowClient:
      return "allow_client";
    case Channel::kCreateClient:
      return "create_client";
    case Channel::kExpireClient:
      return "expire_client";
    case Channel::kGraceDone:
      return "grace_done";
  }
  return "";  // Not reached for a valid enumerator.
}

const char* MinorName(Minor m) {
  switch (m) {
    case Minor::kV40:
      return "v40";
    case Minor::kV41:
      return "v41";
  }
  return "";  // Not reached for a valid enumerator.
}

std::optional<uint64_t> PeekSeq(std::string_view line) {
  // The first field ends at the first space or newline. Framing errors later
  // in the line do not matter: the kernel matches replies by seq alone, so a
  // readable seq is enough to answer a malformed request with -EINVAL.
  const std::string_view first = line.substr(0, line.find_first_of(" \n"));
  if (first.find('\0') != std::string_view::npos) return std::nullopt;
  uint64_t seq = 0;
  std::string ignored;
  if (!ParseSeq(first, &seq, &ignored)) return std::nullopt;
  return seq;
}

Parsed<StartRequest> ParseStartRequest(std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  StartRequest r;
  uint64_t boot_time = 0;
  if (!SplitRequest(line, &f, &err.reason) ||
      !CheckFieldCount(f, 4, "<seq> start <version> <kernel-boot-time>",
                       &err.reason) ||
      !ParseSeq(f[0], &r.seq, &err.reason) ||
      !ExpectWord(f[1], "start", 2, &err.reason) ||
      !ParseNumber(f[2], "version", 0, kMaxU64, &r.version, &err.reason) ||
      !ParseNumber(f[3], "kernel boot time", 0, kMaxI63, &boot_time,
                   &err.reason)) {
    return err;
  }
  r.kernel_boot_time = static_cast<int64_t>(boot_time);
  return r;
}

Parsed<CreateRequest> ParseCreateRequest(std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  CreateRequest r;
  if (!SplitRequest(line, &f, &err.reason) ||
      !CheckFieldCount(f, 5, "<seq> <instance> <client-id> <princhash> <minor>",
                       &err.reason) ||
      !ParseSeq(f[0], &r.seq, &err.reason) ||
      !ParseInstance(f[1], &r.instance, &err.reason) ||
      !ParseClientId(f[2], &r.client_id, &err.reason) ||
      !ParsePrincHash(f[3], &r.princhash, &err.reason) ||
      !ParseMinor(f[4], &r.minor, &err.reason)) {
    return err;
  }
  return r;
}

Parsed<ExpireRequest> ParseExpireRequest(std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  ExpireRequest r;
  if (!SplitRequest(line, &f, &err.reason) ||
      !CheckFieldCount(f, 3, "<seq> <instance> <client-id>", &err.reason) ||
      !ParseSeq(f[0], &r.seq, &err.reason) ||
      !ParseInstance(f[1], &r.instance, &err.reason) ||
      !ParseClientId(f[2], &r.client_id, &err.reason)) {
    return err;
  }
  return r;
}

Parsed<GraceDoneRequest> ParseGraceDoneRequest(std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  GraceDoneRequest r;
  if (!SplitRequest(line, &f, &err.reason) ||
      !CheckFieldCount(f, 2, "<seq> <instance>", &err.reason) ||
      !ParseSeq(f[0], &r.seq, &err.reason) ||
      !ParseInstance(f[1], &r.instance, &err.reason)) {
    return err;
  }
  return r;
}

std::string EncodeRequest(const StartRequest& r) {
  std::string out;
  QwordAdd(&out, std::to_string(r.seq));
  QwordAdd(&out, "start");
  QwordAdd(&out, std::to_string(r.version));
  QwordAdd(&out, std::to_string(r.kernel_boot_time));
  return EndLine(std::move(out));
}

std::string EncodeRequest(const CreateRequest& r) {
  std::string out;
  QwordAdd(&out, std::to_string(r.seq));
  QwordAdd(&out, std::to_string(r.instance));
  QwordAddHex(&out, r.client_id);
  AddPrincHash(&out, r.princhash);
  QwordAdd(&out, MinorName(r.minor));
  return EndLine(std::move(out));
}

std::string EncodeRequest(const ExpireRequest& r) {
  std::string out;
  QwordAdd(&out, std::to_string(r.seq));
  QwordAdd(&out, std::to_string(r.instance));
  QwordAddHex(&out, r.client_id);
  return EndLine(std::move(out));
}

std::string EncodeRequest(const GraceDoneRequest& r) {
  std::string out;
  QwordAdd(&out, std::to_string(r.seq));
  QwordAdd(&out, std::to_string(r.instance));
  return EndLine(std::move(out));
}

std::string EncodeStatusReply(uint64_t seq, int status) {
  std::string out;
  QwordAdd(&out, std::to_string(seq));
  QwordAdd(&out, std::to_string(status));
  return EndLine(std::move(out));
}

std::string EncodeAllowClient(uint64_t seq, std::string_view client_id,
                              std::string_view princhash) {
  std::string out;
  QwordAdd(&out, std::to_string(seq));
  QwordAdd(&out, "client");
  QwordAddHex(&out, client_id);
  AddPrincHash(&out, princhash);
  return EndLine(std::move(out));
}

std::string EncodeAllowDone(uint64_t seq, int status, int64_t instance) {
  std::string out;
  QwordAdd(&out, std::to_string(seq));
  QwordAdd(&out, "done");
  QwordAdd(&out, std::to_string(status));
  QwordAdd(&out, std::to_string(instance));
  return EndLine(std::move(out));
}

Parsed<StatusReply> ParseStatusReply(std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  StatusReply r;
  if (!SplitReply(line, &f, &err.reason) ||
      !CheckFieldCount(f, 2, "<seq> <status>", &err.reason) ||
      !ParseSeq(f[0], &r.seq, &err.reason) ||
      !ParseStatus(f[1], &r.status, &err.reason)) {
    return err;
  }
  return r;
}

Parsed<std::variant<AllowClientLine, AllowDoneLine>> ParseAllowReply(
    std::string_view line) {
  ParseError err;
  err.seq = PeekSeq(line);
  std::vector<std::string_view> f;
  uint64_t seq = 0;
  if (!SplitReply(line, &f, &err.reason) ||
      !CheckFieldCount(f, 4,
                       "<seq> client <client-id> <princhash> or "
                       "<seq> done <status> <instance>",
                       &err.reason) ||
      !ParseSeq(f[0], &seq, &err.reason)) {
    return err;
  }
  std::string word;
  std::string ignored;
  if (!DecodeField(f[1], "field", &word, &ignored) ||
      (word != "client" && word != "done")) {
    err.reason =
        "field 2 is " + Quote(f[1]) + ", expected \"client\" or \"done\"";
    return err;
  }

  if (word == "client") {
    AllowClientLine c;
    c.seq = seq;
    if (!ParseClientId(f[2], &c.client_id, &err.reason) ||
        !ParsePrincHash(f[3], &c.princhash, &err.reason)) {
      return err;
    }
    return std::variant<AllowClientLine, AllowDoneLine>(std::move(c));
  }

  AllowDoneLine d;
  d.seq = seq;
  if (!ParseStatus(f[2], &d.status, &err.reason) ||
      !ParseInt63(f[3], "instance", 0, &d.instance, &err.reason)) {
    return err;
  }
  // §3.1: a successful start names the new instance (never 0); a failed one
  // names none, so anything but 0 there means the helper is confused.
  if (d.status == 0 && d.instance == 0) {
    err.reason =
        "instance is 0 with status 0, must be 1.." + std::to_string(kMaxI63);
    return err;
  }
  if (d.status != 0 && d.instance != 0) {
    err.reason = "instance is " + std::to_string(d.instance) + " with status " +
                 std::to_string(d.status) + ", must be 0";
    return err;
  }
  return std::variant<AllowClientLine, AllowDoneLine>(d);
}

}  // namespace nfsdfs
