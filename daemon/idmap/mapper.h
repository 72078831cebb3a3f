// Mapper: answers ID-mapping upcalls with libnfsidmap, configured from
// idmapd.conf(5) as rpc.idmapd is.
//
// libnfsidmap keeps its configuration in process-wide state: nfs4_init_name_
// mapping() runs once per process, so there is at most one Mapper. Map() may
// block for as long as the name service takes (NSS to LDAP or SSSD), which is
// why the IdmapService calls it on worker threads. The "nsswitch" and
// "static" translation methods only read state set up at initialisation and
// use the reentrant getpw*_r/getgr*_r calls, so Map() runs concurrently with
// them; with any other method (umich_ldap keeps one LDAP connection, plugins
// are unknown) calls are serialised.
//
// Answers follow rpc.idmapd: an id without a name is answered with the
// Nobody-User or Nobody-Group name of [Mapping] (a positive entry, so the
// client shows "nobody"); a name without an id gets a negative entry, so that
// a chown to an unknown owner fails with NFS4ERR_BADOWNER instead of giving
// the file to nobody.
#ifndef DAEMON_IDMAP_MAPPER_H_
#define DAEMON_IDMAP_MAPPER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/idmap/upcall.h"
#include "daemon/util/status.h"

namespace nfsdh::idmap {

inline constexpr char kDefaultIdmapdConf[] = "/etc/idmapd.conf";
inline constexpr int64_t kDefaultCacheTimeout = 600;  // rpc.idmapd's
inline constexpr char kDefaultNobody[] = "nobody";

// What nfsd-helper itself reads of idmapd.conf (libnfsidmap reads the rest).
struct IdmapdSettings {
  std::string conf_path;
  int64_t cache_expiration = kDefaultCacheTimeout;  // [General]
  std::string nobody_user = kDefaultNobody;         // [Mapping] Nobody-User
  std::string nobody_group = kDefaultNobody;        // [Mapping] Nobody-Group
  std::vector<std::string> methods = {"nsswitch"};  // [Translation] Method
};

// Reads `path`. A missing file is no error unless `must_exist` (libnfsidmap
// then works with its defaults); a value nfsd-helper cannot use is an error.
Status LoadIdmapdSettings(const std::string& path, bool must_exist,
                          IdmapdSettings* out,
                          std::vector<std::string>* warnings);

// True if every method is one whose lookups may run concurrently.
bool MethodsAreReentrant(const std::vector<std::string>& methods);

struct Mapping {
  Answer answer;
  bool mapped = false;  // false: answered nobody / a negative entry
  int error = 0;        // libnfsidmap's return value when !mapped
};

class Mapper {
 public:
  // Initialises libnfsidmap with settings.conf_path. Fails if it cannot, or
  // if a Mapper was made before in this process.
  static Status Create(const IdmapdSettings& settings,
                       std::unique_ptr<Mapper>* out);
  ~Mapper();
  Mapper(const Mapper&) = delete;
  Mapper& operator=(const Mapper&) = delete;

  // The answer to `up`. Thread-safe; may block.
  Mapping Map(const Upcall& up);
  // The answer to `up` when its lookup failed with `error`: the nobody name
  // (idtoname) or a negative entry (nametoid). Thread-safe; never blocks.
  Mapping Failed(const Upcall& up, int error) const;

  const std::string& domain() const { return domain_; }
  bool concurrent() const { return concurrent_; }

 private:
  explicit Mapper(const IdmapdSettings& s) : settings_(s) {}
  Mapping MapUnlocked(const Upcall& up);

  IdmapdSettings settings_;
  std::string domain_;
  bool concurrent_ = true;
  std::mutex mu_;  // held around libnfsidmap calls unless concurrent_
};

}  // namespace nfsdh::idmap

#endif  // DAEMON_IDMAP_MAPPER_H_
