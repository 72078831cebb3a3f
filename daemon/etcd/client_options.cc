#include "daemon/etcd/client_options.h"

#include <fstream>
#include <string>

namespace nfsdh::etcd {

Status ClientOptionsFrom(const Options& o, ClientOptions* out) {
  out->endpoints.clear();
  std::string problem = SplitUrls(o.etcd_endpoints, &out->endpoints);
  if (!problem.empty())
    return Status::Invalid("etcd-endpoints '" + o.etcd_endpoints +
                           "': " + problem);
  if (o.etcd_cert.empty() != o.etcd_key.empty())
    return Status::Invalid(
        "etcd-cert and etcd-key go together: give both (a TLS client "
        "certificate and its key) or neither");
  if (o.etcd_user.empty() != o.etcd_password_file.empty())
    return Status::Invalid(
        "etcd-user and etcd-password-file go together: give both or neither");
  const bool tls = !o.etcd_cacert.empty() || !o.etcd_cert.empty();
  for (const std::string& e : out->endpoints) {
    if (tls && e.rfind("https://", 0) != 0)
      return Status::Invalid("etcd endpoint " + e +
                             " is not https://, but TLS options are given: "
                             "use https:// for every endpoint");
  }
  out->ca_file = o.etcd_cacert;
  out->cert_file = o.etcd_cert;
  out->key_file = o.etcd_key;
  out->user = o.etcd_user;
  out->password.clear();
  if (!o.etcd_password_file.empty()) {
    std::ifstream in(o.etcd_password_file);
    std::string password;
    if (!in || !std::getline(in, password))
      return Status::Invalid("etcd-password-file " + o.etcd_password_file +
                             ": cannot read a password from it");
    out->password = password;
  }
  return Status::Ok();
}

}  // namespace nfsdh::etcd
