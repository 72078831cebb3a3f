// The etcd client's options from nfsd-helper's (the etcd-* keys of
// nfsd-helper(8), on the command line or in nfs.conf), checked as one: the
// daemon in cluster mode and `helper-ctl cluster` reach etcd the same way.
#ifndef DAEMON_ETCD_CLIENT_OPTIONS_H_
#define DAEMON_ETCD_CLIENT_OPTIONS_H_

#include "daemon/etcd/client.h"
#include "daemon/options.h"
#include "daemon/util/status.h"

namespace nfsdh::etcd {

// Fills *out from `o`: the endpoints, TLS files and etcd user (its password
// read from etcd_password_file). kInvalid, in an operator's words, for
// endpoints that are no URLs, a certificate without its key (or a user
// without a password file, or the other way round), TLS options with an
// endpoint that is not https://, and a password file that cannot be read.
// Timeouts are left as ClientOptions has them.
Status ClientOptionsFrom(const Options& o, ClientOptions* out);

}  // namespace nfsdh::etcd

#endif  // DAEMON_ETCD_CLIENT_OPTIONS_H_
