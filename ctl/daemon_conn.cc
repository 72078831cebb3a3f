#include "ctl/daemon_conn.h"

#include <sstream>

#include "common/defaults.h"
#include "ctl/dispatch.h"
#include "ctl/verbs.h"
#include "daemon/config/helper_config.h"

namespace nfsdh::ctl {

int LoadCtlDefaults(const ParsedArgs& parsed, CtlDefaults* out,
                    std::ostream& err) {
  Options opts;
  auto given = [&parsed](const char* name) -> const std::string* {
    auto it = parsed.values.find(name);
    return it == parsed.values.end() ? nullptr : &it->second;
  };
  if (const std::string* v = given("--db")) {
    opts.db = *v;
    opts.given.db = true;
  }
  if (const std::string* v = given(kCtlSocketOption.name)) {
    opts.ctl_socket = *v;
    opts.given.ctl_socket = true;
  }
  if (const std::string* v = given(kConfigOption.name)) {
    opts.config = *v;
    opts.given.config = true;
  }
  // The etcd options (`helper-ctl cluster`): given on the command line
  // they win over nfs.conf, as they do for the daemon.
  struct EtcdOption {
    const char* name;
    std::string Options::*value;
    bool GivenOptions::*given;
  };
  static const EtcdOption kEtcd[] = {
      {"--etcd-endpoints", &Options::etcd_endpoints,
       &GivenOptions::etcd_endpoints},
      {"--cluster", &Options::cluster, &GivenOptions::cluster},
      {"--etcd-cacert", &Options::etcd_cacert, &GivenOptions::etcd_cacert},
      {"--etcd-cert", &Options::etcd_cert, &GivenOptions::etcd_cert},
      {"--etcd-key", &Options::etcd_key, &GivenOptions::etcd_key},
      {"--etcd-user", &Options::etcd_user, &GivenOptions::etcd_user},
      {"--etcd-password-file", &Options::etcd_password_file,
       &GivenOptions::etcd_password_file},
  };
  for (const EtcdOption& o : kEtcd) {
    if (const std::string* v = given(o.name)) {
      opts.*o.value = *v;
      opts.given.*o.given = true;
    }
  }
  const Options before = opts;
  config::ConfigReport report;
  Status s = config::LoadHelperConfig(&opts, &report);
  for (const std::string& e : report.errors)
    err << kProgram << ": warning: " << e << " (ignored)\n";
  if (!s.ok() && report.errors.empty()) {
    // The file itself could not be read.
    if (opts.given.config) {
      err << kProgram << ": " << s.message() << "\n";
      return kExitError;
    }
    err << kProgram << ": warning: " << s.message()
        << "; using the built-in defaults\n";
    opts = before;
  }
  out->db = opts.db;
  out->ctl_socket = opts.ctl_socket;
  out->nfsdfs = opts.nfsdfs;
  out->options = opts;
  return kExitOk;
}

std::string CtlSocket(const ParsedArgs& parsed) {
  auto it = parsed.values.find(kCtlSocketOption.name);
  if (it != parsed.values.end()) return it->second;
  CtlDefaults d;
  std::ostringstream quiet;
  if (LoadCtlDefaults(parsed, &d, quiet) != kExitOk)
    return kDefaultCtlSocket;
  return d.ctl_socket;
}

int ConnectOrReport(const std::string& socket,
                    std::unique_ptr<ControlClient>* out, std::ostream& err) {
  Status s = ControlClient::Connect(socket, out);
  if (s.ok()) s = (*out)->Ping();
  if (s.ok()) return kExitOk;
  out->reset();
  if (s.code() == Status::Code::kNotFound) {
    err << kProgram << ": nfsd-helper is not running: nothing answers on "
        << socket << "\n";
    return kExitNotRunning;
  }
  return ReportCallError(s, err);
}

int ReportCallError(const Status& s, std::ostream& err) {
  if (s.code() == Status::Code::kPermission) {
    err << kProgram << ": permission denied: " << s.message() << "\n"
        << kProgram << ": only root may use nfsd-helper's control socket; "
        << "run " << kProgram << " as root\n";
  } else {
    err << kProgram << ": " << s.message() << "\n";
  }
  return kExitError;
}

}  // namespace nfsdh::ctl
