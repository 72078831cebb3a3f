#include "daemon/config/conf.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "nfsdfs-proto/qword.h"

namespace nfsdh::config {
namespace {

// Includes nest at most this deep (nfs-utils has no limit, and recurses
// until it crashes on a cycle).
constexpr int kMaxIncludeDepth = 32;
// '$' references are followed at most this many times.
constexpr int kMaxExpansions = 16;

// The C locale's isspace and isblank, which nfs-utils uses.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

char LowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

std::string_view TrimTrailingBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view SkipBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  return s;
}

// What a file's bytes, read whole, and its identity.
struct FileData {
  std::string text;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Reads `path` whole. Returns 0 or the errno of the failure. Like nfs-utils,
// holds a shared flock(2) while reading, so that a file being rewritten by
// `nfsconf --set` (which holds an exclusive one) is never read half-written.
int ReadWholeFile(const std::string& path, FileData* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  // A file system without flock support is read anyway.
  while (flock(fd, LOCK_SH) != 0 && errno == EINTR) {
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return err;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  out->text = std::move(text);
  return 0;
}

// dirname(3) of `path`, as nfs-utils' relative_path uses it.
std::string LibcDirName(const std::string& path) {
  std::string copy = path;
  return dirname(copy.data());
}

std::string Quoted(std::string_view s) {
  return "'" + nfsdfs::EscapeForLog(s) + "'";
}

}  // namespace

std::string Origin::ToString() const {
  std::string out = nfsdfs::EscapeForLog(file);
  if (line > 0) out += ":" + std::to_string(line);
  return out;
}

std::string Diagnostic::ToString() const {
  return origin.ToString() + ": " + message;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

std::optional<bool> ParseBool(std::string_view v) {
  for (const char* t : {"1", "t", "true", "y", "yes", "on"}) {
    if (EqualsIgnoreCase(v, t)) return true;
  }
  for (const char* f : {"0", "f", "false", "n", "no", "off"}) {
    if (EqualsIgnoreCase(v, f)) return false;
  }
  return std::nullopt;
}

const Assignment* Conf::Find(std::string_view section,
                             std::string_view key) const {
  for (auto it = assignments_.rbegin(); it != assignments_.rend(); ++it) {
    if (!it->subsection && !it->value.empty() &&
        EqualsIgnoreCase(it->section, section) &&
        EqualsIgnoreCase(it->key, key)) {
      return &*it;
    }
  }
  return nullptr;
}

Status Conf::Expand(const Assignment& a, std::string* value,
                    const EnvFn& env) const {
  std::string v = a.value;
  for (int i = 0; !v.empty() && v[0] == '$'; ++i) {
    if (i == kMaxExpansions) {
      return Status::Invalid("more than " + std::to_string(kMaxExpansions) +
                             " '$' references in a row");
    }
    std::string name = v.substr(1);
    const char* e = env ? env(name) : std::getenv(name.c_str());
    if (e != nullptr && *e != '\0') {
      *value = e;  // nfs-utils takes the environment's value as it is
      return Status::Ok();
    }
    const Assignment* x = Find("environment", name);
    if (x == nullptr) {
      return Status::NotFound(nfsdfs::EscapeForLog(v) +
                              " is set neither in the environment nor in "
                              "[environment]");
    }
    v = x->value;
  }
  *value = v;
  return Status::Ok();
}

// Parses files into a Conf. One Reader per LoadConf or ParseConf call.
class Reader {
 public:
  explicit Reader(Conf* out) : out_(out) {}

  Status LoadMain(const std::string& path, bool must_exist) {
    FileData data;
    int err = ReadWholeFile(path, &data);
    if (err == ENOENT && !must_exist) return Status::Ok();
    if (err != 0) {
      return Status::FromErrno(
          "cannot read configuration file " + nfsdfs::EscapeForLog(path), err);
    }
    return ParseFile(path, data, State());
  }

  // The drop-in directory, as nfs-utils' conf_init_dir reads it.
  Status LoadDir(const std::string& dir) {
    struct dirent** names = nullptr;
    int n = scandir(dir.c_str(), &names, nullptr, versionsort);
    if (n < 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::FromErrno(
          "cannot read configuration directory " + nfsdfs::EscapeForLog(dir),
          errno);
    }
    Status s;
    for (int i = 0; i < n; ++i) {
      if (s.ok()) s = LoadDirEntry(dir, *names[i]);
      free(names[i]);
    }
    free(names);
    return s;
  }

  Status ParseText(std::string_view text, const std::string& name) {
    FileData data;
    data.text = std::string(text);
    // A text has no identity: it cannot be part of an include cycle.
    data.dev = static_cast<dev_t>(-1);
    data.ino = static_cast<ino_t>(-1);
    return ParseFile(name, data, State());
  }

 private:
  // The section that the lines being read belong to.
  struct State {
    std::optional<std::string> section;  // none: lines are ignored
    std::optional<std::string> subsection;
    // For diagnostics: the section a broken header seemed to open.
    std::string context;
    bool context_subsection = false;
    bool broken_header = false;
  };

  Status LoadDirEntry(const std::string& dir, const struct dirent& d) {
    switch (d.d_type) {
      case DT_UNKNOWN:
      case DT_REG:
      case DT_LNK:
        break;
      default:
        return Status::Ok();
    }
    std::string_view name = d.d_name;
    constexpr std::string_view kExt = ".conf";
    if (name.empty() || name[0] == '.' || name.size() <= kExt.size() ||
        name.substr(name.size() - kExt.size()) != kExt) {
      return Status::Ok();
    }
    std::string path = dir + "/" + std::string(name);
    FileData data;
    int err = ReadWholeFile(path, &data);
    if (err == ENOENT) {  // a dangling symlink, or removed meanwhile
      AddDiagnostic({path, 0}, State(),
                    "no such file (a dangling symbolic link?); skipped");
      return Status::Ok();
    }
    if (err != 0) {
      return Status::FromErrno(
          "cannot read configuration file " + nfsdfs::EscapeForLog(path), err);
    }
    return ParseFile(path, data, State());
  }

  Status ParseFile(const std::string& name, const FileData& data, State state) {
    out_->files_.push_back(name);
    stack_.emplace_back(data.dev, data.ino);
    Status s = ParseBuffer(name, data.text, &state);
    stack_.pop_back();
    return s;
  }

  // conf_parse: splits the text into logical lines. Like nfs-utils it stops
  // at a NUL byte, and ignores a last line that has no newline.
  Status ParseBuffer(const std::string& name, std::string text, State* st) {
    size_t nul = text.find('\0');
    int nul_line = 0;
    if (nul != std::string::npos) {
      std::string_view before(text.data(), nul);
      nul_line =
          1 + static_cast<int>(std::count(before.begin(), before.end(), '\n'));
      text.resize(nul);
    }
    int physical = 1;    // line number of text[i]
    int start_line = 1;  // where the current logical line started
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '\n') continue;
      ++physical;
      if (i > 0 && text[i - 1] == '\\') {  // an escaped newline joins lines
        text[i - 1] = ' ';
        text[i] = ' ';
        continue;
      }
      std::string_view line = text;
      Status s = ParseLine(line.substr(start, i - start),
                           Origin{name, start_line}, st);
      if (!s.ok()) return s;
      start = i + 1;
      start_line = physical;
    }
    if (nul != std::string::npos) {
      AddDiagnostic({name, nul_line}, *st,
                    "NUL byte: nfs-utils ignores the rest of the file");
    }
    if (start < text.size()) {
      LastLineWithoutNewline(name, start_line, text.substr(start), *st);
    }
    return Status::Ok();
  }

  // nfs-utils ignores the last line when the file does not end with a
  // newline. Says so, unless the line would not have changed anything.
  void LastLineWithoutNewline(const std::string& name, int line,
                              std::string_view text, const State& st) {
    while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
    if (text.empty() || text[0] == '#' || text[0] == ';') return;
    State context = st;
    if (text[0] == '[') {
      std::string_view h = SkipBlanks(text.substr(1));
      size_t end = h.find_first_of("]\"");
      context.context = Lower(TrimTrailingBlanks(h.substr(0, end)));
      context.context_subsection =
          end != std::string_view::npos && h[end] == '"';
    }
    AddDiagnostic({name, line}, context,
                  "no newline at the end of the file: nfs-utils ignores this "
                  "last line");
  }

  // conf_parse_line.
  Status ParseLine(std::string_view line, const Origin& origin, State* st) {
    while (!line.empty() && IsSpace(line.front())) line.remove_prefix(1);
    if (line.empty() || line[0] == '#' || line[0] == ';') return Status::Ok();
    if (line[0] == '[') {
      ParseHeader(line.substr(1), origin, st);
      return Status::Ok();
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      AddDiagnostic(origin, *st,
                    "neither a section header, an assignment nor a comment; "
                    "ignored");
      return Status::Ok();
    }
    if (!st->section) {
      AddDiagnostic(origin, *st,
                    st->broken_header
                        ? "assignment after a broken section header; ignored"
                        : "assignment before any section header; ignored");
      return Status::Ok();
    }
    std::string_view key = TrimTrailingBlanks(line.substr(0, eq));
    std::string_view val = SkipBlanks(line.substr(eq + 1));
    if (!val.empty() && (val[0] == '"' || val[0] == '\'')) {
      size_t close = val.find(val[0], 1);
      if (close == std::string_view::npos) {
        AddDiagnostic(origin, *st,
                      std::string("no closing ") + val[0] +
                          " in the value; the line is ignored");
        return Status::Ok();
      }
      val = val.substr(1, close - 1);
    } else {
      val = val.substr(0, val.find('#'));
      val = val.substr(0, val.find(';'));
      // As nfs-utils: trailing white space goes, but never the first byte.
      while (val.size() > 1 && IsSpace(val.back())) val.remove_suffix(1);
    }
    if (key.empty()) {
      AddDiagnostic(origin, *st, "no key before '='; ignored");
      return Status::Ok();
    }
    if (EqualsIgnoreCase(key, "include")) return Include(val, origin, *st);
    out_->assignments_.push_back(Assignment{origin, *st->section,
                                            st->subsection, std::string(key),
                                            std::string(val)});
    return Status::Ok();
  }

  // `h` follows the '['.
  void ParseHeader(std::string_view h, const Origin& origin, State* st) {
    st->section.reset();
    st->subsection.reset();
    h = SkipBlanks(h);
    size_t close = h.find(']');
    if (close == std::string_view::npos) {
      st->context = Lower(TrimTrailingBlanks(h.substr(0, h.find('"'))));
      st->context_subsection = false;
      st->broken_header = true;
      AddDiagnostic(origin, *st,
                    "no ']' closes the section header; lines up to the next "
                    "section header are ignored");
      return;
    }
    std::string_view name = TrimTrailingBlanks(h.substr(0, close));
    std::optional<std::string_view> arg;
    size_t quote = name.find('"');
    if (quote != std::string_view::npos) {
      arg = name.substr(quote + 1);
      name = TrimTrailingBlanks(name.substr(0, quote));
    }
    st->section = Lower(name);
    st->context = *st->section;
    st->context_subsection = false;
    st->broken_header = false;
    if (arg) {
      size_t end = arg->find('"');
      if (end == std::string_view::npos) {
        // nfs-utils keeps the section, without a subsection.
        AddDiagnostic(origin, *st,
                      "no closing '\"' for the subsection name; the lines "
                      "that follow belong to " +
                          Quoted("[" + *st->section + "]"));
      } else {
        st->subsection = std::string(arg->substr(0, end));
        st->context_subsection = true;
      }
    }
    out_->headers_.push_back(Header{origin, *st->section, st->subsection});
  }

  Status Include(std::string_view val, const Origin& origin, const State& st) {
    bool optional = !val.empty() && val[0] == '-';
    if (optional) val.remove_prefix(1);
    if (val.empty()) {
      if (!optional) AddDiagnostic(origin, st, "include names no file");
      return Status::Ok();
    }
    std::string path = val[0] == '/'
                           ? std::string(val)
                           : LibcDirName(origin.file) + "/" + std::string(val);
    FileData data;
    int err = ReadWholeFile(path, &data);
    if (err == ENOENT) {
      if (!optional) {
        AddDiagnostic(origin, st,
                      "cannot include " + Quoted(path) +
                          ": no such file (write include = -FILE for an "
                          "optional one)");
      }
      return Status::Ok();
    }
    if (err != 0) {
      return Status::FromErrno(
          origin.ToString() + ": cannot read included file " + Quoted(path),
          err);
    }
    for (const auto& [dev, ino] : stack_) {
      if (dev == data.dev && ino == data.ino) {
        return Status::Invalid(origin.ToString() + ": include cycle: " +
                               Quoted(path) + " is already being read");
      }
    }
    if (stack_.size() >= static_cast<size_t>(kMaxIncludeDepth)) {
      return Status::Invalid(origin.ToString() + ": includes nest more than " +
                             std::to_string(kMaxIncludeDepth) + " deep");
    }
    // The included file starts in the including line's section; its own
    // section headers do not change the including file's.
    return ParseFile(path, data, st);
  }

  void AddDiagnostic(const Origin& origin, const State& st,
                     std::string message) {
    out_->diagnostics_.push_back(Diagnostic{
        origin, st.context, st.context_subsection, std::move(message)});
  }

  Conf* out_;
  std::vector<std::pair<dev_t, ino_t>> stack_;  // files being read
};

Status LoadConf(const std::string& path, bool must_exist, Conf* out) {
  Conf conf;
  Reader r(&conf);
  Status s = r.LoadMain(path, must_exist);
  // nfs-utils reads the directory even without the file.
  if (s.ok()) s = r.LoadDir(path + ".d");
  if (!s.ok()) return s;
  *out = std::move(conf);
  return Status::Ok();
}

Status ParseConf(std::string_view text, const std::string& name, Conf* out) {
  Conf conf;
  Reader r(&conf);
  Status s = r.ParseText(text, name);
  if (!s.ok()) return s;
  *out = std::move(conf);
  return Status::Ok();
}

}  // namespace nfsdh::config
