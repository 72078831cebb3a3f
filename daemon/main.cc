// nfsd-helper: serves the Linux NFS server's client-tracking upcalls.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/config/helper_config.h"
#include "daemon/daemon.h"
#include "daemon/options.h"
#include "daemon/util/log.h"

namespace {

// Detaches from the terminal. The parent exits only once the child reports
// that it serves (its database open, helper-ctl's socket listening), with
// status 0, or with 1 if the child failed to start, so a failing start is
// seen by whoever ran us and a started one can be asked at once. Returns the
// write end of the report pipe in the child.
int Detach() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    perror("nfsd-helper: pipe");
    exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("nfsd-helper: fork");
    exit(1);
  }
  if (pid > 0) {
    close(p[1]);
    char c = 1;
    ssize_t n;
    do {
      n = read(p[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    _exit(n == 1 && c == 0 ? 0 : 1);
  }
  close(p[0]);
  setsid();
  if (chdir("/") != 0) {
    // "/" always exists; nothing to do but carry on.
  }
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    if (null > 2) close(null);
  }
  return p[1];
}

}  // namespace

int main(int argc, char** argv) {
  nfsdh::SetLogProgram("nfsd-helper");
  nfsdh::Options opts;
  nfsdh::Status s = nfsdh::ParseOptions(argc, argv, &opts);
  if (!s.ok()) {
    fprintf(stderr, "nfsd-helper: %s\nTry 'nfsd-helper --help'.\n",
            s.message().c_str());
    return 2;
  }
  if (opts.help) {
    fputs(nfsdh::UsageText(), stdout);
    return 0;
  }
  if (opts.version) {
    printf("nfsd-helper %s (nfsdfs protocol 1)\n", NFSD_HELPER_VERSION);
    return 0;
  }
  // The configuration file only fills in what the command line left out.
  // Its problems are reported before detaching, on the starter's terminal.
  nfsdh::config::ConfigReport config_report;
  s = nfsdh::config::LoadHelperConfig(&opts, &config_report);
  for (const std::string& w : config_report.warnings) {
    LOG_WARNING("%s", w.c_str());
  }
  if (!s.ok()) {
    for (const std::string& e : config_report.errors) {
      LOG_ERROR("%s", e.c_str());
    }
    LOG_ERROR("cannot start: %s", s.message().c_str());
    return 1;
  }
  nfsdh::SetLogDebug(opts.debug);
  for (const std::string& a : config_report.applied) {
    LOG_DEBUG("configuration: %s", a.c_str());
  }
  umask(077);

  // Relative paths name files under the starting directory, also once
  // detached (in "/").
  char cwd[PATH_MAX];
  s = nfsdh::MakePathsAbsolute(getcwd(cwd, sizeof cwd) ? cwd : "", &opts);
  if (!s.ok()) {
    LOG_ERROR("cannot start: %s", s.message().c_str());
    return 1;
  }

  int report = -1;
  if (!opts.foreground) {
    report = Detach();
    nfsdh::SetLogSyslog(true);
  }
  nfsdh::Daemon daemon(opts);
  daemon.set_ctl_socket(opts.ctl_socket);
  s = daemon.Init();
  if (!s.ok()) {
    LOG_ERROR("cannot start: %s", s.ToString().c_str());
    if (!opts.foreground) {
      fprintf(stderr, "nfsd-helper: cannot start: %s\n",
              s.ToString().c_str());
    }
    return 1;
  }
  bool serving = false;
  if (report >= 0) {
    daemon.set_on_serving([report, &serving] {
      serving = true;
      char ok = 0;
      if (write(report, &ok, 1) != 1) {
        // The parent is gone; nobody to tell.
      }
      close(report);
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, 2);
        close(null);
      }
    });
  }
  const int code = daemon.Run();
  if (code != 0 && report >= 0 && !serving) {
    fprintf(stderr, "nfsd-helper: cannot start; the system log says why\n");
  }
  return code;
}
