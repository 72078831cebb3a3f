// The control protocol as C++ sees it: the rpcgen-generated types and XDR
// routines of nfsdh_ctl.x, and a cast that libtirpc's calls need.
#ifndef CTL_PROTO_CTL_PROTO_H_
#define CTL_PROTO_CTL_PROTO_H_

#include <rpc/rpc.h>

#include "control-proto/nfsdh_ctl.h"

namespace nfsdh::ctl_proto {

// An XDR routine as the xdrproc_t libtirpc's calls take. xdr_void() has no
// parameters, so a direct cast draws -Wcast-function-type; a cast through
// void (*)() is the sanctioned way to pass any function pointer.
template <typename F>
xdrproc_t XdrProc(F* fn) {
  return reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)()>(fn));
}

}  // namespace nfsdh::ctl_proto

#endif  // CTL_PROTO_CTL_PROTO_H_
