// What a scope name may be, for nfsd-helper (--scope, the scope key of
// nfs.conf) and helper-ctl (the verbs that name a scope) alike.
//
// The name is part of the lock file's name (daemon/store/scope_lock.h) and
// is shown in logs and tables, so it is kept to characters that need no
// quoting anywhere. Header-only, like common/defaults.h, so that helper-ctl
// need not include the daemon's option parsing.
#ifndef COMMON_SCOPE_NAME_H_
#define COMMON_SCOPE_NAME_H_

#include <string_view>

namespace nfsdh {

// What to tell whoever gave a name ValidScopeName refuses.
inline constexpr char kScopeNameRule[] =
    "use 1-64 characters of A-Z a-z 0-9 . _ -";

// A scope name: 1..64 characters of [A-Za-z0-9._-].
inline bool ValidScopeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace nfsdh

#endif  // COMMON_SCOPE_NAME_H_
