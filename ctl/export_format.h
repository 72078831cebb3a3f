// The export format of helper-ctl export/import (ctl/EXPORT-FORMAT.md):
// a scope's client records as JSON lines, version 1.
//
// Rationale. A scope may hold millions of records, so the file is one JSON
// object per line, written and read one record at a time (memory does not
// grow with the scope). The first line names the format and its version, so
// a reader refuses what it does not understand instead of guessing; the last
// line counts the records, so a file cut short (a full disk, a copy
// interrupted) is refused rather than imported in part; records come in
// strictly increasing id order, so a duplicate is found without remembering
// every id.
#ifndef CTL_EXPORT_FORMAT_H_
#define CTL_EXPORT_FORMAT_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <string>

#include "daemon/store/backend.h"
#include "daemon/util/status.h"

namespace nfsdh::ctl {

inline constexpr char kExportFormatName[] = "nfsd-helper-clients";
inline constexpr int kExportFormatVersion = 1;
// No line of a valid file is longer (a record line is about 2.2 kB).
inline constexpr size_t kExportMaxLine = 64 * 1024;

struct ExportHeader {
  std::string scope;     // the scope the records were exported from
  int64_t exported = 0;  // when (seconds since the epoch, UTC)
  std::string source;    // "daemon" or "database" (informational)
};

// The lines of a file, each ending in '\n'.
std::string ExportHeaderLine(const ExportHeader& h);
std::string ExportRecordLine(const store::ClientRow& c);
std::string ExportEndLine(int64_t count);

// Reads a file line by line. Every error is kInvalid with a message that
// starts with "line N: ".
class ExportReader {
 public:
  // `in` must outlive the reader.
  explicit ExportReader(std::istream* in) : in_(in) {}

  // Reads and checks the first line.
  Status ReadHeader(ExportHeader* out);
  // The next record into *out (id, princhash, minor); *end is set instead
  // once the end line was read and nothing follows it.
  Status Next(store::ClientRow* out, bool* end);
  int64_t line() const { return line_; }

 private:
  Status GetLine(std::string* out, bool* eof);
  Status Error(const std::string& what) const;

  std::istream* in_;
  int64_t line_ = 0;
  int64_t records_ = 0;
  std::optional<std::string> last_id_;
};

}  // namespace nfsdh::ctl

#endif  // CTL_EXPORT_FORMAT_H_
