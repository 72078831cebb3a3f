#include "daemon/idmap/mapper.h"

// nfsidmap.h declares C functions without extern "C" of its own.
extern "C" {
#include <nfsidmap.h>
}

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "daemon/config/conf.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::idmap {
namespace {

std::atomic<bool> g_created{false};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

Status LoadIdmapdSettings(const std::string& path, bool must_exist,
                          IdmapdSettings* out,
                          std::vector<std::string>* warnings) {
  IdmapdSettings s;
  s.conf_path = path;
  config::Conf conf;
  Status st = config::LoadConf(path, must_exist, &conf);
  if (!st.ok()) return st;
  for (const config::Diagnostic& d : conf.diagnostics()) {
    warnings->push_back(d.ToString());
  }
  if (const config::Assignment* a =
          conf.Find("general", "cache-expiration")) {
    char* end = nullptr;
    errno = 0;
    long long v = strtoll(a->value.c_str(), &end, 10);
    if (errno != 0 || end == a->value.c_str() || *end != '\0' || v <= 0 ||
        v > 365LL * 24 * 3600) {
      return Status::Invalid(a->origin.ToString() +
                             ": [General] Cache-Expiration '" +
                             nfsdfs::EscapeForLog(a->value) +
                             "': give a number of seconds, 1 to 31536000");
    }
    s.cache_expiration = v;
  }
  if (const config::Assignment* a = conf.Find("mapping", "nobody-user"))
    s.nobody_user = a->value;
  if (const config::Assignment* a = conf.Find("mapping", "nobody-group"))
    s.nobody_group = a->value;
  for (const std::string* n : {&s.nobody_user, &s.nobody_group}) {
    if (n->size() >= kNameSize) {
      return Status::Invalid(path + ": [Mapping] nobody name '" +
                             nfsdfs::EscapeForLog(*n) +
                             "' is too long for nfsd (127 bytes at most)");
    }
  }
  if (const config::Assignment* a = conf.Find("translation", "method")) {
    s.methods.clear();
    std::string v = a->value;
    size_t pos = 0;
    while (pos <= v.size()) {
      size_t comma = v.find(',', pos);
      if (comma == std::string::npos) comma = v.size();
      std::string m = Trim(v.substr(pos, comma - pos));
      if (!m.empty()) s.methods.push_back(m);
      pos = comma + 1;
    }
    if (s.methods.empty()) s.methods = {"nsswitch"};
  }
  *out = std::move(s);
  return Status::Ok();
}

bool MethodsAreReentrant(const std::vector<std::string>& methods) {
  for (const std::string& m : methods) {
    if (!config::EqualsIgnoreCase(m, "nsswitch") &&
        !config::EqualsIgnoreCase(m, "static"))
      return false;
  }
  return true;
}

Status Mapper::Create(const IdmapdSettings& settings,
                      std::unique_ptr<Mapper>* out) {
  if (g_created.exchange(true)) {
    return Status::Invalid(
        "libnfsidmap was already initialised in this process");
  }
  std::unique_ptr<Mapper> m(new Mapper(settings));
  std::vector<char> path(settings.conf_path.begin(), settings.conf_path.end());
  path.push_back('\0');
  int rc = nfs4_init_name_mapping(path.data());
  if (rc != 0) {
    g_created = false;
    return Status::Invalid("libnfsidmap cannot set up the name mapping from " +
                           settings.conf_path + " (error " +
                           std::to_string(rc) +
                           "): check [Translation] Method and the Domain");
  }
  char domain[NFS4_MAX_DOMAIN_LEN] = "";
  rc = nfs4_get_default_domain(nullptr, domain, sizeof domain);
  if (rc != 0) {
    nfs4_term_name_mapping();
    g_created = false;
    return Status::Invalid("libnfsidmap finds no NFSv4 domain (error " +
                           std::to_string(rc) + "); set Domain in [General] "
                           "of " + settings.conf_path);
  }
  m->domain_ = domain;
  m->concurrent_ = MethodsAreReentrant(settings.methods);
  *out = std::move(m);
  return Status::Ok();
}

Mapper::~Mapper() {
  nfs4_term_name_mapping();
  g_created = false;
}

Mapping Mapper::Map(const Upcall& up) {
  if (concurrent_) return MapUnlocked(up);
  std::lock_guard<std::mutex> lock(mu_);
  return MapUnlocked(up);
}

Mapping Mapper::Failed(const Upcall& up, int error) const {
  Mapping m;
  m.error = error;
  if (up.direction == Direction::kIdToName)
    m.answer.name = up.type == IdType::kUser ? settings_.nobody_user
                                             : settings_.nobody_group;
  return m;
}

Mapping Mapper::MapUnlocked(const Upcall& up) {
  Mapping m;
  if (up.direction == Direction::kIdToName) {
    char name[kNameSize] = "";
    std::vector<char> domain(domain_.begin(), domain_.end());
    domain.push_back('\0');
    int rc = up.type == IdType::kUser
                 ? nfs4_uid_to_name(up.id, domain.data(), name, sizeof name)
                 : nfs4_gid_to_name(up.id, domain.data(), name, sizeof name);
    if (rc != 0 || name[0] == '\0') return Failed(up, rc);
    m.mapped = true;
    m.answer.name = name;
    return m;
  }
  std::vector<char> name(up.name.begin(), up.name.end());
  name.push_back('\0');
  int rc;
  if (up.type == IdType::kUser) {
    uid_t uid = 0;
    rc = nfs4_name_to_uid(name.data(), &uid);
    m.answer.id = static_cast<uint32_t>(uid);
  } else {
    gid_t gid = 0;
    rc = nfs4_name_to_gid(name.data(), &gid);
    m.answer.id = static_cast<uint32_t>(gid);
  }
  m.mapped = rc == 0;
  m.answer.has_id = m.mapped;
  m.error = rc;
  if (!m.mapped) m.answer.id = 0;
  return m;
}

}  // namespace nfsdh::idmap
