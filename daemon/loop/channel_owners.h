// Which other processes hold a file open: how nfsd-helper refuses to serve a
// cache channel that rpc.idmapd (or anything else) already serves, and how
// every reopening channel (reopening_channel.h) names a second reader.
//
// A sunrpc cache channel hands each upcall to whichever reader reads it
// first, and so do the four client-tracking files (PROTOCOL.md §1) and an
// rpc_pipefs pipe such as the cld pipe: two daemons on one file would split
// the requests between them silently. The kernel offers no lock on the
// file, so the check walks
// /proc/<pid>/fd/* of every process: a link whose target names a file called
// like `path` is stat()ed and compared with `path` by device and inode (so
// /proc/net/rpc/... and /proc/<pid>/net/rpc/... of one network namespace
// match, and another namespace's file does not). Other files are never
// stat()ed, so a hung FUSE mount elsewhere cannot stall the check.
//
// Limits: processes of other PID namespaces are not seen, and a process
// whose /proc/<pid>/fd cannot be read (without CAP_SYS_PTRACE, under
// hidepid) is counted in `unreadable` instead.
#ifndef DAEMON_LOOP_CHANNEL_OWNERS_H_
#define DAEMON_LOOP_CHANNEL_OWNERS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace nfsdh::loop {

struct Opener {
  pid_t pid = 0;
  std::string comm;  // /proc/<pid>/comm
};

// Processes other than this one with `path` open. `proc` is the procfs mount
// to walk (tests may pass another).
std::vector<Opener> FindOtherOpeners(const std::string& path,
                                     int* unreadable = nullptr,
                                     const std::string& proc = "/proc");

// "pid 123 (rpc.idmapd), pid 456 (x)".
std::string DescribeOpeners(const std::vector<Opener>& openers);

}  // namespace nfsdh::loop

#endif  // DAEMON_LOOP_CHANNEL_OWNERS_H_
