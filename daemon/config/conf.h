// A reader of nfs.conf(5), the configuration file nfs-utils' daemons share,
// that sees a file exactly as nfs-utils 2.6 (support/nfs/conffile.c) does:
//
//   - "[section]" or "[section "subsection"]" opens a section; section names
//     are case-insensitive (stored lower-cased), and text after ']' is ignored.
//   - "key = value" assigns; keys are case-insensitive. Blanks around the key,
//     the '=' and the value are dropped. A value in "double" or 'single'
//     quotes is taken verbatim up to the closing quote (text after it is
//     ignored); an unquoted value ends at the first '#' or ';'.
//   - A line whose first non-blank character is '#' or ';' is a comment.
//   - A backslash just before a newline joins the next line to this one.
//   - A later assignment of a key overrides an earlier one; an assignment
//     whose value is empty is ignored (it overrides nothing).
//   - "include = FILE" reads FILE in place, in the current section; a relative
//     FILE is relative to the directory of the file that includes it; "-FILE"
//     is silently skipped if it does not exist.
//   - A value that starts with '$' names an environment variable, or a key of
//     [environment] if the variable is unset or empty.
//   - After the file, the files "*.conf" of the directory FILE.d are read in
//     versionsort(3) order, so they override the file and later ones override
//     earlier ones.
//
// Lines nfs-utils warns about and skips are kept as Diagnostics, so that a
// caller can be stricter about the section it owns; the last line of a file
// is among them when it has no newline, because nfs-utils ignores it.
#ifndef DAEMON_CONFIG_CONF_H_
#define DAEMON_CONFIG_CONF_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/util/status.h"

namespace nfsdh::config {

// Where a line of configuration was read.
struct Origin {
  std::string file;  // as opened: the main file, FILE.d/NAME, or an include
  int line = 0;      // 1-based physical line where the logical line starts

  // "FILE:LINE" (or "FILE" when line is 0).
  std::string ToString() const;
};

// A section header, as read.
struct Header {
  Origin origin;
  std::string section;  // lower-cased
  std::optional<std::string> subsection;
};

// One "key = value" line, as read, with its quotes and comment removed.
struct Assignment {
  Origin origin;
  std::string section;  // lower-cased
  std::optional<std::string> subsection;
  std::string key;    // as written; compare with EqualsIgnoreCase
  std::string value;  // "" if empty (such an assignment changes nothing)
};

// A line that nfs-utils warns about and skips.
struct Diagnostic {
  Origin origin;
  // The section the line is in, or that a broken header seems to open
  // (lower-cased; "" if none). Lets a caller judge lines of its own section.
  std::string section;
  bool in_subsection = false;
  std::string message;

  // "FILE:LINE: message".
  std::string ToString() const;
};

// Looks up an environment variable; nullptr if unset. Replaceable in tests.
using EnvFn = std::function<const char*(const std::string& name)>;

// The configuration read from one nfs.conf and its drop-in directory.
class Conf {
 public:
  const std::vector<std::string>& files() const { return files_; }
  const std::vector<Header>& headers() const { return headers_; }
  // Every assignment in reading order, includes in place.
  const std::vector<Assignment>& assignments() const { return assignments_; }
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

  // The assignment in force for `key` in [section] (not in a subsection):
  // the last one with a non-empty value, as nfs-utils' conf_get_str finds it
  // before '$' expansion. nullptr if there is none.
  const Assignment* Find(std::string_view section, std::string_view key) const;

  // The value of `a` with a leading '$NAME' expanded as nfs-utils does: the
  // environment variable NAME if it is set and not empty, else key NAME of
  // [environment] (expanded in turn). kNotFound if neither is set.
  Status Expand(const Assignment& a, std::string* value,
                const EnvFn& env = nullptr) const;

 private:
  friend class Reader;
  std::vector<std::string> files_;
  std::vector<Header> headers_;
  std::vector<Assignment> assignments_;
  std::vector<Diagnostic> diagnostics_;
};

// Reads `path`, then the files "*.conf" of `path` + ".d", as nfs-utils'
// conf_init_file does. A missing `path` or directory is not an error (unless
// `must_exist`); one that exists but cannot be read is, and so is an include
// cycle. Everything else nfs-utils would skip becomes a Diagnostic.
Status LoadConf(const std::string& path, bool must_exist, Conf* out);

// Parses `text` as the contents of the file `name` (no drop-in directory;
// includes are read relative to the directory of `name`).
Status ParseConf(std::string_view text, const std::string& name, Conf* out);

// nfs-utils' conf_get_bool words, case-insensitively: 1 t true y yes on, and
// 0 f false n no off. nullopt for anything else.
std::optional<bool> ParseBool(std::string_view value);

// ASCII case-insensitive equality, as strcasecmp in the C locale.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace nfsdh::config

#endif  // DAEMON_CONFIG_CONF_H_
