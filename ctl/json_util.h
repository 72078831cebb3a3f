// The JSON shapes helper-ctl's verbs share (man/helper-ctl.8, JSON): a
// scope's fields and a client record, as `dump` and `status` write them.
#ifndef CTL_JSON_UTIL_H_
#define CTL_JSON_UTIL_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "daemon/store/backend.h"

namespace nfsdh::ctl {

using Json = nlohmann::ordered_json;

// Serializes `j`, on one line or indented by `indent` spaces. Text from the
// database (scope names, paths) may hold any bytes: invalid UTF-8 is
// replaced rather than thrown on.
std::string DumpJson(const Json& j, int indent = -1);

// A number, or null.
Json OptInt(const std::optional<int64_t>& v);
// A UTC date string, or null.
Json OptTime(const std::optional<int64_t>& v);

// new_boot_time if set, else boot_time.
std::optional<int64_t> CurrentInstance(const store::ScopeRow& s);

// Every field of a scope row, with "_utc" twins, current_instance and
// in_grace; not its clients.
Json ScopeJson(const store::ScopeRow& s);
// One client record.
Json ClientJson(const store::ClientRow& c);

}  // namespace nfsdh::ctl

#endif  // CTL_JSON_UTIL_H_
