// Least privilege: what the daemon checks about its state files before it
// trusts them, and the capabilities it gives up once its files are open.
//
// Rationale. nfsd-helper runs as root (uid 0) because the files it serves
// (the nfsdfs upcall files, the cld pipe) and its database are root's, mode
// 0600. Opening a file one owns needs no capability, so once the database,
// the channels and the control socket are open (and for re-opening a
// channel later) the daemon needs no capability at all: it drops every one,
// from the effective, permitted, inheritable and ambient sets and from the
// bounding set, so that nothing it executes (the HA callout is exec'd
// directly, never through a shell) regains any either. The systemd unit
// grants none in the first place (CapabilityBoundingSet= empty); then there
// is nothing left to drop.
//
// Capabilities belong to a thread, not to the process: capng_apply() (the
// capset system call) changes the calling thread's sets only, and a thread
// inherits its creator's sets when it is made. So the drop happens while the
// daemon has a single thread, and every other thread (the ID-mapping lookup
// workers) is started after it, with nothing to inherit.
//
// The records decide who may reclaim state, so the daemon refuses a database
// that another user could have written: a file not owned by the daemon's
// effective uid, or a state directory that group or others may write (see
// EnsurePrivateDir in daemon/util/fs.h).
#ifndef DAEMON_UTIL_PRIVILEGES_H_
#define DAEMON_UTIL_PRIVILEGES_H_

#include <sys/types.h>

#include <string>

#include "daemon/util/status.h"

namespace nfsdh {

// Fails with kPermission if the database `db` or its -wal/-shm companion
// exists and is not owned by `euid`, or if its directory exists and is owned
// by neither `euid` nor root or is writable by group or others. Missing files
// are fine (the store creates them 0600 in a 0700 directory).
Status CheckStateFiles(const std::string& db, uid_t euid);

// Drops every capability of the process (all sets, bounding set included).
// On success *dropped names what was held before ("" if nothing was), for
// the log. Fails only if capabilities that were held could not be dropped;
// a bounding set that cannot be changed (no CAP_SETPCAP) is reported in
// *dropped and not an error, since the permitted set is empty anyway.
// REQUIRES: the calling thread is the process's only one. If another thread
// exists, nothing is dropped and kInvalid says so: a partial drop would look
// like a done one in the log.
Status DropAllCapabilities(std::string* dropped);

}  // namespace nfsdh

#endif  // DAEMON_UTIL_PRIVILEGES_H_
