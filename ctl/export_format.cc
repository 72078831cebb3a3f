#include "ctl/export_format.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

using OJson = nlohmann::ordered_json;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Unhex(const std::string& hex, std::string* out) {
  if (hex.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

// "2025-11-22T00:37:40Z" back to seconds; false if it is not one.
bool ParseIsoTime(const std::string& s, int64_t* out) {
  struct tm tm = {};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return false;
  *out = static_cast<int64_t>(timegm(&tm));
  return true;
}

}  // namespace

std::string ExportHeaderLine(const ExportHeader& h) {
  OJson j;
  j["format"] = kExportFormatName;
  j["version"] = kExportFormatVersion;
  j["scope"] = h.scope;
  j["exported"] = IsoTime(h.exported);
  j["source"] = h.source;
  return j.dump() + "\n";
}

std::string ExportRecordLine(const store::ClientRow& c) {
  OJson j;
  j["id"] = nfsdfs::HexString(c.id);
  j["princhash"] = c.princhash.empty() ? OJson(nullptr)
                                       : OJson(nfsdfs::HexString(c.princhash));
  // -1: not known (a record imported from nfsdcld).
  j["minor"] = c.minor < 0 ? OJson(nullptr) : OJson(c.minor);
  return j.dump() + "\n";
}

std::string ExportEndLine(int64_t count) {
  OJson j;
  j["end"] = true;
  j["clients"] = count;
  return j.dump() + "\n";
}

Status ExportReader::Error(const std::string& what) const {
  return Status::Invalid("line " + std::to_string(line_) + ": " + what);
}

Status ExportReader::GetLine(std::string* out, bool* eof) {
  out->clear();
  *eof = false;
  for (;;) {
    int c = in_->get();
    if (c == std::char_traits<char>::eof()) {
      if (in_->bad()) return Status::Io("cannot read the file");
      if (out->empty()) {
        *eof = true;
        return Status::Ok();
      }
      ++line_;
      return Error(
          "the last line does not end in a newline (the file is "
          "cut short)");
    }
    if (c == '\n') break;
    if (out->size() >= kExportMaxLine) {
      ++line_;
      return Error("longer than " + std::to_string(kExportMaxLine) +
                   " bytes: not an nfsd-helper export");
    }
    out->push_back(static_cast<char>(c));
  }
  ++line_;
  return Status::Ok();
}

Status ExportReader::ReadHeader(ExportHeader* out) {
  std::string text;
  bool eof = false;
  Status s = GetLine(&text, &eof);
  if (!s.ok()) return s;
  if (eof)
    return Status::Invalid("the file is empty: not an nfsd-helper export");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format"))
    return Error(
        "not an nfsd-helper export (the first line must be a JSON "
        "object with \"format\": \"" +
        std::string(kExportFormatName) + "\")");
  if (!j["format"].is_string() || j["format"] != kExportFormatName)
    return Error("not an nfsd-helper export: format " + j["format"].dump() +
                 ", expected \"" + kExportFormatName + "\"");
  if (!j.contains("version") || !j["version"].is_number_integer())
    return Error("the header has no integer \"version\"");
  if (j["version"] != kExportFormatVersion)
    return Error("unsupported export format version " + j["version"].dump() +
                 "; this helper-ctl reads version " +
                 std::to_string(kExportFormatVersion));
  if (!j.contains("scope") || !j["scope"].is_string() ||
      j["scope"].get<std::string>().empty())
    return Error("the header has no \"scope\" string");
  ExportHeader h;
  h.scope = j["scope"].get<std::string>();
  if (!j.contains("exported") || !j["exported"].is_string() ||
      !ParseIsoTime(j["exported"].get<std::string>(), &h.exported))
    return Error(
        "the header has no \"exported\" time "
        "(YYYY-MM-DDTHH:MM:SSZ)");
  if (j.contains("source") && j["source"].is_string())
    h.source = j["source"].get<std::string>();
  *out = h;
  return Status::Ok();
}

Status ExportReader::Next(store::ClientRow* out, bool* end) {
  *end = false;
  std::string text;
  bool eof = false;
  Status s = GetLine(&text, &eof);
  if (!s.ok()) return s;
  if (eof)
    return Status::Invalid("the file ends after " + std::to_string(records_) +
                           " record(s) without its end line (it is cut "
                           "short)");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("not a JSON object");
  if (j.contains("end")) {
    if (j["end"] != true || !j.contains("clients") ||
        !j["clients"].is_number_integer())
      return Error("a malformed end line");
    if (j["clients"] != records_)
      return Error("the end line counts " + j["clients"].dump() +
                   " record(s), the file has " + std::to_string(records_));
    s = GetLine(&text, &eof);
    if (!s.ok()) return s;
    if (!eof) return Error("text after the end line");
    *end = true;
    return Status::Ok();
  }
  if (!j.contains("id") || !j["id"].is_string())
    return Error("a record needs an \"id\" (hex string)");
  store::ClientRow c;
  if (!Unhex(j["id"].get<std::string>(), &c.id))
    return Error("\"id\" is not an even number of hex digits");
  if (c.id.empty() || c.id.size() > 1024)
    return Error("\"id\" must be 1 to 1024 bytes, not " +
                 std::to_string(c.id.size()));
  if (j.contains("princhash") && !j["princhash"].is_null()) {
    if (!j["princhash"].is_string() ||
        !Unhex(j["princhash"].get<std::string>(), &c.princhash))
      return Error("\"princhash\" must be hex digits or null");
    if (c.princhash.size() != 32)
      return Error("\"princhash\" must be 32 bytes, not " +
                   std::to_string(c.princhash.size()));
  }
  const bool minor_ok =
      j.contains("minor") &&
      (j["minor"].is_null() ||
       (j["minor"].is_number_integer() &&
        (j["minor"].get<int64_t>() == 0 || j["minor"].get<int64_t>() == 1)));
  if (!minor_ok)
    return Error(
        "\"minor\" must be 0 (NFSv4.0), 1 (NFSv4.1 and later) or null "
        "(not known)");
  c.minor = j["minor"].is_null() ? -1 : j["minor"].get<int>();
  if (last_id_ && !(*last_id_ < c.id))
    return Error(*last_id_ == c.id
                     ? "a second record of client " + nfsdfs::HexString(c.id)
                     : "records are not in increasing id order");
  last_id_ = c.id;
  ++records_;
  *out = std::move(c);
  return Status::Ok();
}

}  // namespace nfsdh::ctl
