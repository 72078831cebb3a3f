#include "ctl/json_util.h"

#include "ctl/format.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json OptInt(const std::optional<int64_t>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json OptTime(const std::optional<int64_t>& v) {
  return v ? Json(IsoTime(*v)) : Json(nullptr);
}

std::optional<int64_t> CurrentInstance(const store::ScopeRow& s) {
  return s.new_boot_time ? s.new_boot_time : s.boot_time;
}

Json ScopeJson(const store::ScopeRow& s) {
  Json j;
  j["name"] = s.name;
  j["boot_time"] = OptInt(s.boot_time);
  j["boot_time_utc"] = OptTime(s.boot_time);
  j["new_boot_time"] = OptInt(s.new_boot_time);
  j["new_boot_time_utc"] = OptTime(s.new_boot_time);
  j["old_boot_time"] = OptInt(s.old_boot_time);
  j["old_boot_time_utc"] = OptTime(s.old_boot_time);
  j["max_instance"] = s.max_instance;
  j["current_instance"] = OptInt(CurrentInstance(s));
  j["in_grace"] = s.new_boot_time.has_value();
  j["kernel_boot_time"] = OptInt(s.kernel_boot_time);
  j["kernel_boot_time_utc"] = OptTime(s.kernel_boot_time);
  j["grace_started"] = OptInt(s.grace_started);
  j["grace_started_utc"] = OptTime(s.grace_started);
  j["grace_ended"] = OptInt(s.grace_ended);
  j["grace_ended_utc"] = OptTime(s.grace_ended);
  return j;
}

Json ClientJson(const store::ClientRow& c) {
  Json j;
  j["id_hex"] = nfsdfs::HexString(c.id);
  j["id_text"] = IsPrintable(c.id) ? Json(c.id) : Json(nullptr);
  j["princhash_hex"] = c.princhash.empty()
                           ? Json(nullptr)
                           : Json(nfsdfs::HexString(c.princhash));
  j["minor"] = c.minor;
  j["minor_version"] = MinorName(c.minor);
  j["instance"] = c.instance;
  j["first_seen"] = c.first_seen;
  j["first_seen_utc"] = IsoTime(c.first_seen);
  j["last_seen"] = c.last_seen;
  j["last_seen_utc"] = IsoTime(c.last_seen);
  return j;
}

}  // namespace nfsdh::ctl
