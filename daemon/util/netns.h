// Network namespaces: whether the helper runs in the initial one.
//
// Rationale. nfsd keeps one NFSv4 server per network namespace, and a scope
// is the set of records one such server may reclaim from. Two helpers in two
// namespaces that both fell back on the default scope of one database would
// share their records: a client of one server could reclaim state in the
// other. So a helper that runs outside the initial network namespace and was
// given no scope (command line or nfs.conf) refuses to start (daemon.cc)
// rather than guess one.
#ifndef DAEMON_UTIL_NETNS_H_
#define DAEMON_UTIL_NETNS_H_

#include <string>

namespace nfsdh {

enum class NetnsVerdict {
  kInitial,     // the same namespace as pid 1
  kOther,       // another one
  kCannotTell,  // a link could not be read (no /proc, or pid 1 is not ours
                // to look at: a helper without CAP_SYS_PTRACE)
};

// Compares the links `proc`/self/ns/net and `proc`/1/ns/net ("net:[N]").
// *detail says what was compared ("net:[X], pid 1 in net:[Y]") or why it
// cannot tell.
NetnsVerdict CompareWithInitialNetns(const std::string& proc,
                                     std::string* detail);

}  // namespace nfsdh

#endif  // DAEMON_UTIL_NETNS_H_
