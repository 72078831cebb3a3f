// Command-line options of nfsd-helper (see man/nfsd-helper.8).
#ifndef DAEMON_OPTIONS_H_
#define DAEMON_OPTIONS_H_

#include <string>

#include "daemon/util/status.h"

namespace nfsdh {

inline constexpr char kDefaultNfsdfs[] = "/proc/fs/nfsd";
inline constexpr char kDefaultDb[] = "/var/lib/nfs/nfsd-helper/state.sqlite";
inline constexpr char kDefaultScope[] = "default";

struct Options {
  std::string nfsdfs = kDefaultNfsdfs;
  std::string db = kDefaultDb;
  std::string scope = kDefaultScope;
  bool foreground = false;
  bool debug = false;
  bool help = false;
  bool version = false;
};

// Parses argv. On error returns kInvalid with a message naming the option.
Status ParseOptions(int argc, char** argv, Options* out);
const char* UsageText();

// A scope name: 1..64 characters of [A-Za-z0-9._-].
bool ValidScopeName(const std::string& name);

}  // namespace nfsdh

#endif  // DAEMON_OPTIONS_H_
