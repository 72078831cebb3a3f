// EtcdCluster: a real etcd cluster on loopback for the tests and the
// benchmark (Debian's etcd-server, /usr/bin/etcd unless NFSDH_ETCD names
// another binary).
//
// Each member is an etcd process with its own data directory under a
// temporary directory and its own client and peer ports (free loopback
// ports below the kernel's ephemeral range). The tests kill, stop
// (SIGSTOP: a member cut off, whose connections hang rather than fail),
// resume and restart members to make the faults the cluster mode must
// survive. The destructor kills every member and removes the directory.
#ifndef TESTS_ETCD_ETCD_CLUSTER_H_
#define TESTS_ETCD_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace nfsdh::etcdtest {

class EtcdCluster {
 public:
  // Starts `members` members and waits until every one answers /health
  // (at most 30 s). Throws std::runtime_error, saying why (with the end of
  // the member's log), if it cannot; so does every other method that
  // fails. Needs no test framework: the benchmark uses it too.
  // The data directories go in a new directory under `parent` (what etcd
  // fsyncs is measured there by the benchmark).
  explicit EtcdCluster(int members = 3, const std::string& parent = "/tmp");
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "http://127.0.0.1:PORT" of member i, or of all of them.
  std::string endpoint(int i) const;
  std::vector<std::string> endpoints() const;
  // All of them as --etcd-endpoints takes them: comma separated.
  std::string endpoint_list() const;
  const std::string& dir() const { return dir_; }

  void Kill(int i);    // SIGKILL, and reaped
  void Pause(int i);   // SIGSTOP
  void Resume(int i);  // SIGCONT
  // Starts member i again on its data directory (after Kill), and waits
  // until it answers /health when `wait_healthy` (it cannot alone).
  void Restart(int i, bool wait_healthy = true);
  bool running(int i) const { return members_[i].pid > 0; }

  // Whether member i answers /health with "true" within `timeout_ms`.
  bool Healthy(int i, int timeout_ms = 2000) const;
  // The index of the member that is the leader, as the members report it
  // (-1: none found within `timeout_ms`).
  int Leader(int timeout_ms = 10000) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };
  void Start(int i, const std::string& state);
  void WaitHealthy(int i, std::chrono::steady_clock::time_point deadline,
                   const char* what) const;
  void Cleanup();
  std::string InitialCluster() const;

  std::string binary_;
  std::string dir_;
  std::string token_;
  std::vector<Member> members_;
};

// The options that make an nfsd-helper (or helper-ctl cluster) a node
// `node` of cluster "test" on `etcd`, with a lease of `lease_ttl` seconds.
std::vector<std::string> HelperClusterArgs(const EtcdCluster& etcd,
                                           const std::string& node,
                                           int lease_ttl);

// One HTTP POST to an etcd member's JSON gateway with curl(1)-free code:
// the body of the answer, or "" if it did not answer within `timeout_ms`.
std::string PostForTest(const std::string& url, const std::string& body,
                        int timeout_ms);

}  // namespace nfsdh::etcdtest

#endif  // TESTS_ETCD_ETCD_CLUSTER_H_
