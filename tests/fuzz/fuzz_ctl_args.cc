// Fuzz target for the control protocol's server-side decoding
// (control-proto/nfsdh_ctl.x): the arguments of every procedure the daemon
// decodes (CTL_DUMP, CTL_PURGE, CTL_IMPORT; CTL_STATUS and CTL_END_GRACE
// take none) from raw bytes, with libtirpc's xdrmem decoder as svc_getargs
// uses it. Besides "no crash, no leak" (every decoded argument is freed
// with xdr_free, as svc_freeargs does) it checks the bounds the .x file
// promises, and that an accepted argument re-encodes and decodes back to
// the same encoding.
#include <rpc/rpc.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "control-proto/nfsdh_ctl.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

template <typename T>
std::string Encode(xdrproc_t proc, T* v) {
  std::string buf(256 * 1024, '\0');
  XDR x;
  xdrmem_create(&x, buf.data(), static_cast<u_int>(buf.size()), XDR_ENCODE);
  FUZZ_CHECK(proc(&x, v));
  buf.resize(xdr_getpos(&x));
  xdr_destroy(&x);
  return buf;
}

template <typename T, typename Check>
void Try(xdrproc_t proc, const char* data, size_t size, Check check) {
  T v;
  std::memset(&v, 0, sizeof v);
  XDR x;
  xdrmem_create(&x, const_cast<char*>(data), static_cast<u_int>(size),
                XDR_DECODE);
  bool ok = proc(&x, &v);
  u_int used = xdr_getpos(&x);
  xdr_destroy(&x);
  if (ok) {
    FUZZ_CHECK(used <= size);
    check(v);
    std::string once = Encode(proc, &v);
    // Not always equal: a string with a NUL decodes as the C string before
    // it (libtirpc), and padding is not checked.
    FUZZ_CHECK(once.size() <= used);
    T w;
    std::memset(&w, 0, sizeof w);
    XDR y;
    xdrmem_create(&y, once.data(), static_cast<u_int>(once.size()),
                  XDR_DECODE);
    FUZZ_CHECK(proc(&y, &w));
    xdr_destroy(&y);
    FUZZ_CHECK(Encode(proc, &w) == once);
    xdr_free(proc, reinterpret_cast<char*>(&w));
  }
  // Freed whether or not the decoding finished, as svc_freeargs does.
  xdr_free(proc, reinterpret_cast<char*>(&v));
}

void CheckScope(const ctl_scope& s) {
  FUZZ_CHECK(s == nullptr || std::strlen(s) <= CTL_MAX_SCOPE);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: ASan sees any read past the record.
  std::unique_ptr<char[]> buf(new char[size ? size : 1]);
  if (size) std::memcpy(buf.get(), data, size);
  const char* p = buf.get();

  Try<ctl_dump_args>(reinterpret_cast<xdrproc_t>(xdr_ctl_dump_args), p, size,
                     [](const ctl_dump_args& a) {
                       CheckScope(a.scope);
                       FUZZ_CHECK(a.after.ctl_client_id_len <= CTL_MAX_ID);
                     });
  Try<ctl_purge_args>(reinterpret_cast<xdrproc_t>(xdr_ctl_purge_args), p,
                      size, [](const ctl_purge_args& a) {
                        CheckScope(a.scope);
                        FUZZ_CHECK(a.id.ctl_client_id_len <= CTL_MAX_ID);
                      });
  Try<ctl_import_args>(
      reinterpret_cast<xdrproc_t>(xdr_ctl_import_args), p, size,
      [](const ctl_import_args& a) {
        CheckScope(a.scope);
        FUZZ_CHECK(a.records.records_len <= CTL_MAX_PAGE);
        for (u_int i = 0; i < a.records.records_len; ++i) {
          const auto& r = a.records.records_val[i];
          FUZZ_CHECK(r.id.ctl_client_id_len <= CTL_MAX_ID);
          FUZZ_CHECK(r.princhash.princhash_len <= CTL_HASH_LEN);
        }
      });
  return 0;
}
