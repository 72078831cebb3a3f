// CacheChannelSim: nfsd's two ID-mapping cache channels, simulated for
// black-box tests of nfsd-helper --idmap.
//
// A real FUSE file system with the layout of /proc/net/rpc:
//   <dir>/nfs4.idtoname/channel and <dir>/nfs4.nametoid/channel,
// each behaving like a sunrpc cache channel (research/nfsdcld.md §3): one
// read() returns one pending upcall (or 0 bytes: none; it never blocks),
// poll() says POLLIN while an upcall is pending and is always writable, and
// each write() is one downcall, parsed as Linux 6.1 fs/nfsd/nfs4idmap.c
// parses it (idtoname_parse, nametoid_parse): a write that nfsd would refuse
// fails with EINVAL. A downcall answers the outstanding upcall with the same
// key (authname, type, id or name); one with no such upcall is accepted and
// recorded, as the kernel's cache takes it. An upcall read by a file that is
// closed without answering stays outstanding (the kernel does not ask
// again before its own timeout).
//
// The driver (Upcall/Await) plays nfsd threads asking for a mapping. Every
// method is thread-safe.
#ifndef TESTS_SIM_CACHE_CHANNEL_H_
#define TESTS_SIM_CACHE_CHANNEL_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace nfsdsim {

enum class IdmapCache { kIdToName = 0, kNameToId = 1 };

// A downcall nfsd accepted, decoded.
struct Downcall {
  std::string line;  // as written
  std::string authname;
  std::string type;  // "user" or "group"
  std::string key;   // the id (idtoname) or the name (nametoid)
  int64_t expiry = 0;
  // The answer: a name (idtoname) or an id (nametoid); nullopt for a
  // negative entry.
  std::optional<std::string> value;
  std::chrono::steady_clock::time_point at;
};

struct IdmapTicket {
  uint64_t id = 0;
  IdmapCache cache = IdmapCache::kIdToName;
  std::chrono::steady_clock::time_point queued;
};

struct CacheChannelStats {
  uint64_t upcalls = 0;    // queued by the driver
  uint64_t read = 0;       // delivered by read()
  uint64_t answered = 0;   // upcalls answered by a downcall
  uint64_t accepted = 0;   // downcalls accepted (answers and unsolicited)
  uint64_t rejected = 0;   // writes refused with EINVAL
  size_t pending = 0;      // not yet read
  size_t open_handles = 0;
};

class CacheChannelSim {
 public:
  CacheChannelSim();
  ~CacheChannelSim();  // Unmount()s
  CacheChannelSim(const CacheChannelSim&) = delete;
  CacheChannelSim& operator=(const CacheChannelSim&) = delete;

  // Mounts on `dir`, an existing empty directory.
  bool Mount(const std::string& dir, std::string* error = nullptr);
  void Unmount();
  std::string dir() const;
  std::string Path(IdmapCache c) const;  // <dir>/nfs4.xxx/channel

  // Queues the upcall "<authname> <type> <key>\n" (qword-encoded), as
  // idtoname_request/nametoid_request write it.
  IdmapTicket Upcall(IdmapCache c, const std::string& authname,
                     const std::string& type, const std::string& key);
  // Queues `line` exactly as given, as one upcall that no downcall answers:
  // what the kernel never sends (an upcall without its newline, say), to
  // see that the helper keeps it apart from the upcalls around it.
  void RawUpcall(IdmapCache c, const std::string& line);
  // Waits for the downcall answering `t`.
  std::optional<Downcall> Await(const IdmapTicket& t,
                                std::chrono::milliseconds timeout);

  bool WaitForOpen(std::chrono::milliseconds timeout);  // both channels
  CacheChannelStats Stats(IdmapCache c) const;
  std::set<pid_t> OpenPids(IdmapCache c) const;
  std::string LastRejection(IdmapCache c) const;

 private:
  struct Impl;
  friend struct CacheChannelOps;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nfsdsim

#endif  // TESTS_SIM_CACHE_CHANNEL_H_
