#include "daemon/control/procedure.h"

#include <cstring>

namespace nfsdh::control {

const Procedure* const kProcedures[] = {
    &kStatusProcedure,
    &kDumpProcedure,
    &kPurgeProcedure,
    &kEndGraceProcedure,
    &kImportProcedure,
};
const size_t kProcedureCount = sizeof(kProcedures) / sizeof(kProcedures[0]);

const Procedure* FindProcedure(rpcproc_t number) {
  for (const Procedure* p : kProcedures)
    if (p->number == number) return p;
  return nullptr;
}

char* XdrArena::Str(std::string s, size_t max) {
  if (s.size() > max) s.resize(max);
  // An XDR string ends at its first NUL; none may hide the rest.
  for (char& c : s)
    if (c == '\0') c = '?';
  strings_.push_back(std::move(s));
  return strings_.back().data();
}

ctl_opt XdrOpt(const std::optional<int64_t>& v) {
  ctl_opt o;
  o.present = v.has_value();
  o.value = v.value_or(0);
  return o;
}

void FillScope(const store::ScopeRow& row, XdrArena* arena,
               ctl_scope_info* out) {
  out->name = arena->Str(row.name, CTL_MAX_SCOPE);
  out->boot_time = XdrOpt(row.boot_time);
  out->new_boot_time = XdrOpt(row.new_boot_time);
  out->old_boot_time = XdrOpt(row.old_boot_time);
  out->max_instance = row.max_instance;
  out->kernel_boot_time = XdrOpt(row.kernel_boot_time);
  out->grace_started = XdrOpt(row.grace_started);
  out->grace_ended = XdrOpt(row.grace_ended);
}

void FillClient(const store::ClientRow& c, ctl_client* out) {
  // The XDR encoder only reads through these pointers.
  out->id.ctl_client_id_len = static_cast<u_int>(c.id.size());
  out->id.ctl_client_id_val = const_cast<char*>(c.id.data());
  out->princhash.princhash_len = static_cast<u_int>(c.princhash.size());
  out->princhash.princhash_val = const_cast<char*>(c.princhash.data());
  out->minor = c.minor;
  out->instance = c.instance;
  out->first_seen = c.first_seen;
  out->last_seen = c.last_seen;
}

bool ValidScope(const char* name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > CTL_MAX_SCOPE) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace nfsdh::control
