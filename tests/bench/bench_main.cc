// nfsd-bench: nfsd-helper and Debian's nfsdcld side by side, under the same
// load from the simulated kernel, in the same run (README.md).
//
// Four targets are measured:
//   nfsdcld      /usr/sbin/nfsdcld on the simulated cld pipe (cld_pipe.h)
//   helper-cld   nfsd-helper --cld-pipe on the same kind of pipe
//   helper-4f    nfsd-helper on the four nfsdfs files (sim_kernel.h)
//   helper-etcd  helper-4f in cluster mode: its records in a three-member
//                etcd on loopback started by the benchmark (data under
//                --dir), when /usr/bin/etcd (etcd-server) is installed
// Each gets a fresh state directory under --dir (same file system for all,
// and for the raw fsync probe). Figures:
//   fsync        the device's raw rate: pwrite 4 KiB + fdatasync of one small
//                file, in a loop, at the start and at the end of the run
//   create       N driver threads (N = requests outstanding, like nfsd
//                threads) each sending one create after another for a fixed
//                time; creates/s, p50/p99 latency, and fsync+fdatasync calls
//                of the tracker counted by `perf stat -p` on the syscall
//                tracepoints during the phase
//   grace        databases with K recorded clients written directly in each
//                tool's own format (nfsdcld: schema v4, one rec- table; the
//                helper: daemon/store/FORMAT.md), the tracker started on
//                them, then the time nfsd waits for the allow list (cld:
//                GetVersion + GraceStart; 4f: allow_client start), and the
//                time of grace_done when none of the K reclaimed (every
//                record is forgotten: the worst case for both)
//   rss          VmHWM/VmRSS of each tracker at the largest K after start,
//                after `helper-ctl dump` (helper only) and after grace_done
//   failover     helper-etcd only: its daemon is killed (SIGKILL) after the
//                create phase; another node's helper on another simulated
//                nfsd takes the scope over: the time from the kill until it
//                serves, until its nfsd has the allow list, and until the
//                first reclaim is accepted; every create acknowledged before
//                the kill must be on that allow list
// The benchmark fails (exit 1) only when something does not work (an error
// status, a short allow list); figures never fail it.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/store/store.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/sim/sim_cld_pipe.h"
#include "tests/sim/process.h"
#include "tests/sim/sim_kernel.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nfsdsim::Process;
using nfsdsim::ProcessOptions;

double Secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Config {
  std::string helper = NFSDH_BENCH_HELPER;
  std::string ctl = NFSDH_BENCH_CTL;
  std::string nfsdcld = "/usr/sbin/nfsdcld";
  std::string dir;  // work directory (default: a new one under /var/tmp)
  std::string json;
  std::vector<int> levels = {1, 8, 64, 256};
  std::vector<int64_t> sizes = {10000, 100000, 1000000};
  double create_seconds = 5;
  double fsync_seconds = 2;
  bool keep = false;
  bool smoke = false;
  std::vector<std::string> targets = {"nfsdcld", "helper-cld", "helper-4f",
                                      "helper-etcd"};
  std::string etcd = "/usr/bin/etcd";
  std::string etcd_endpoints;  // of the members started for helper-etcd
  std::string etcd_cluster;    // a name of this run's own
  int lease_ttl = 10;          // seconds, of helper-etcd's nodes
};

bool failed = false;

void Fail(const std::string& what) {
  std::fprintf(stderr, "nfsd-bench: FAILED: %s\n", what.c_str());
  failed = true;
}

void Note(const std::string& what) {
  std::fprintf(stderr, "nfsd-bench: %s\n", what.c_str());
  std::fflush(stderr);
}

// ---- machine facts ----------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string LoadAvg() {
  std::string s = ReadFile("/proc/loadavg");
  std::istringstream in(s);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string CpuModel() {
  std::istringstream in(ReadFile("/proc/cpuinfo"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "?";
}

// The file system type and device of the mount holding `path`.
std::string FsOf(const std::string& path) {
  char real[PATH_MAX];
  if (!realpath(path.c_str(), real)) return "?";
  std::string p = real;
  std::istringstream in(ReadFile("/proc/mounts"));
  std::string dev, mnt, type, best = "?";
  size_t best_len = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    l >> dev >> mnt >> type;
    bool under =
        p == mnt || mnt == "/" ||
        (p.rfind(mnt, 0) == 0 && p.size() > mnt.size() && p[mnt.size()] == '/');
    if (under && mnt.size() >= best_len) {
      best_len = mnt.size();
      best = type + " on " + dev + " (" + mnt + ")";
    }
  }
  return best;
}

// VmHWM and VmRSS of `pid` in KiB (-1 if unknown).
std::pair<long, long> Memory(pid_t pid) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  long hwm = -1, rss = -1;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atol(line.c_str() + 6);
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atol(line.c_str() + 6);
  }
  return {hwm, rss};
}

// ---- the raw fsync rate
// -------------------------------------------------------

double FsyncRate(const std::string& dir, double seconds) {
  std::string path = dir + "/fsync-probe";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    Fail("open " + path + ": " + std::strerror(errno));
    return 0;
  }
  char buf[4096];
  std::memset(buf, 'x', sizeof buf);
  for (int i = 0; i < 16; ++i) {
    if (pwrite(fd, buf, sizeof buf, i * 4096) != sizeof buf) break;
  }
  fsync(fd);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(seconds));
  uint64_t n = 0;
  while (Clock::now() < end) {
    buf[0] = static_cast<char>(n);
    if (pwrite(fd, buf, sizeof buf, (n % 16) * 4096) != sizeof buf ||
        fdatasync(fd) != 0) {
      Fail(std::string("fsync probe: ") + std::strerror(errno));
      break;
    }
    ++n;
  }
  double rate = n / Secs(Clock::now() - start);
  close(fd);
  unlink(path.c_str());
  return rate;
}

// ---- counting a process's fsyncs --------------------------------------------

// `perf stat` attached to a pid, counting the fsync and fdatasync syscall
// tracepoints until Stop().
class FsyncCounter {
 public:
  bool Start(pid_t pid) {
    if (access("/usr/bin/perf", X_OK) != 0) return false;
    perf_ = std::make_unique<Process>();
    std::string err;
    if (!perf_->Start({"/usr/bin/perf", "stat", "-x,", "-e",
                       "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                       "-p", std::to_string(pid)},
                      {}, &err)) {
      perf_.reset();
      return false;
    }
    // perf prints nothing when attached; give it time to open its events.
    std::this_thread::sleep_for(500ms);
    return perf_->IsRunning();
  }
  // The count, or -1 if perf could not count.
  int64_t Stop() {
    if (!perf_) return -1;
    perf_->Signal(SIGINT);
    if (!perf_->Wait(10s)) return -1;
    perf_->WaitForStderrEnd(5s);
    std::istringstream in(perf_->Stderr());
    std::string line;
    int64_t total = 0;
    int found = 0;
    while (std::getline(in, line)) {
      if (line.find("syscalls:sys_enter_f") == std::string::npos) continue;
      if (!std::isdigit(static_cast<unsigned char>(line[0]))) return -1;
      total += std::atoll(line.c_str());
      ++found;
    }
    perf_.reset();
    return found == 2 ? total : -1;
  }

 private:
  std::unique_ptr<Process> perf_;
};

// ---- populating databases directly
// -------------------------------------------

std::string ClientId(const std::string& tag, int64_t i) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "Linux NFSv4.2 %s-%08" PRId64 ".example.net",
                tag.c_str(), i);
  return buf;
}

constexpr int64_t kOldBoot = 1700000000;

bool Exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Fail(std::string(sql) + ": " + (msg ? msg : "?"));
    sqlite3_free(msg);
    return false;
  }
  return true;
}

bool InsertMany(sqlite3* db, const char* sql, int64_t n,
                const std::function<void(sqlite3_stmt*, int64_t)>& bind) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    Fail(std::string("prepare ") + sql + ": " + sqlite3_errmsg(db));
    return false;
  }
  for (int64_t i = 0; i < n; ++i) {
    bind(st, i);
    if (sqlite3_step(st) != SQLITE_DONE) {
      Fail(std::string("insert: ") + sqlite3_errmsg(db));
      sqlite3_finalize(st);
      return false;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return true;
}

// The helper's database (FORMAT.md, made by the daemon's own Store): scope
// `default` whose last instance `kOldBoot` ended its grace period, and `n`
// NFSv4.1 records of that instance without a principal.
bool MakeHelperDb(const std::string& path, int64_t n) {
  {
    std::unique_ptr<nfsdh::store::Store> store;
    auto s = nfsdh::store::Store::Open(
        path, nfsdh::store::Store::Mode::kReadWrite, &store);
    if (!s.ok()) {
      Fail("create " + path + ": " + s.ToString());
      return false;
    }
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    Fail("open " + path);
    return false;
  }
  bool ok = Exec(db, "PRAGMA synchronous=OFF; BEGIN");
  if (ok) {
    std::string sql =
        "INSERT INTO scopes (name, boot_time, max_instance, grace_started, "
        "grace_ended) VALUES ('default', " +
        std::to_string(kOldBoot) + ", " + std::to_string(kOldBoot) + ", " +
        std::to_string(kOldBoot) + ", " + std::to_string(kOldBoot) + ")";
    ok = Exec(db, sql.c_str());
  }
  if (ok) {
    ok = InsertMany(
        db,
        "INSERT INTO v4clients (scope, id, princhash, minor, instance, "
        "first_seen, last_seen) VALUES ('default', ?, NULL, 1, ?, ?, ?)",
        n, [](sqlite3_stmt* st, int64_t i) {
          std::string id = ClientId("rec", i);
          sqlite3_bind_blob(st, 1, id.data(), static_cast<int>(id.size()),
                            SQLITE_TRANSIENT);
          sqlite3_bind_int64(st, 2, kOldBoot);
          sqlite3_bind_int64(st, 3, kOldBoot);
          sqlite3_bind_int64(st, 4, kOldBoot);
        });
  }
  if (ok) ok = Exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(db);
  return ok;
}

// nfsdcld's database, schema version 4 (the statements nfsdcld itself runs,
// research: nfsdcld.md): current epoch 2 not in grace, its table holding `n`
// records without a principal. No legacy directory to import (first_time 0).
bool MakeNfsdcldDb(const std::string& path, int64_t n) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    Fail("open " + path);
    return false;
  }
  chmod(path.c_str(), 0600);
  bool ok = Exec(db,
                 "PRAGMA synchronous=OFF; BEGIN;"
                 "CREATE TABLE parameters (key TEXT PRIMARY KEY, value TEXT);"
                 "CREATE TABLE grace (current INTEGER , recovery INTEGER);"
                 "INSERT INTO grace VALUES (2, 0);"
                 "CREATE TABLE \"rec-0000000000000002\" "
                 "(id BLOB PRIMARY KEY, princhash BLOB);"
                 "INSERT INTO parameters VALUES ('version', '4');"
                 "INSERT INTO parameters VALUES ('first_time', '0');");
  if (ok) {
    ok = InsertMany(db, "INSERT INTO \"rec-0000000000000002\" VALUES (?, NULL)",
                    n, [](sqlite3_stmt* st, int64_t i) {
                      std::string id = ClientId("rec", i);
                      sqlite3_bind_blob(st, 1, id.data(),
                                        static_cast<int>(id.size()),
                                        SQLITE_TRANSIENT);
                    });
  }
  if (ok) ok = Exec(db, "COMMIT");
  sqlite3_close(db);
  return ok;
}

// ---- the trackers
// -------------------------------------------------------------

// One tracker daemon and the simulated kernel it serves.
class Target {
 public:
  Target(const Config& cfg, std::string name, std::string dir)
      : cfg_(cfg), name_(std::move(name)), dir_(std::move(dir)) {}
  ~Target() { Stop(); }

  const std::string& name() const { return name_; }
  bool cld() const { return name_ != "helper-4f" && !etcd(); }
  bool etcd() const { return name_ == "helper-etcd"; }
  // The node name of a helper-etcd target.
  void set_node(std::string node) { node_ = std::move(node); }
  bool helper() const { return name_ != "nfsdcld"; }
  std::string state_dir() const { return dir_ + "/state"; }
  std::string db_path() const {
    return state_dir() + (helper() ? "/state.sqlite" : "/main.sqlite");
  }
  std::string sock() const { return dir_ + "/ctl.sock"; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }

  // Creates the directories and mounts the simulated kernel.
  bool Prepare() {
    mkdir(dir_.c_str(), 0700);
    mkdir(state_dir().c_str(), 0700);
    std::string mnt = dir_ + "/mnt";
    mkdir(mnt.c_str(), 0700);
    std::string err;
    if (cld()) {
      nfsdsim::CldPipeOptions o;
      o.upcall_timeout = 1200s;
      o.open_wait = 10s;
      pipe_ = std::make_unique<nfsdsim::CldPipe>(o);
      if (!pipe_->Mount(mnt, &err))
        return Fail(name_ + ": mount: " + err), false;
    } else {
      nfsdsim::SimOptions o;
      o.request_timeout = 1200s;
      sim_ = std::make_unique<nfsdsim::SimKernel>(o);
      if (!sim_->Mount(mnt, &err))
        return Fail(name_ + ": mount: " + err), false;
    }
    std::ofstream(dir_ + "/nfs.conf") << "";
    return true;
  }

  bool Populate(int64_t n) {
    return helper() ? MakeHelperDb(db_path(), n) : MakeNfsdcldDb(db_path(), n);
  }

  // Starts the daemon and waits until it serves: the helper has made its
  // control socket (and, on the four files, opened them); nfsdcld watches
  // the pipe directory with inotify.
  bool StartDaemon() {
    std::vector<std::string> argv;
    std::string mnt = dir_ + "/mnt";
    if (!helper()) {
      argv = {cfg_.nfsdcld, "-F", "-p", mnt, "-s", state_dir()};
    } else {
      unlink(sock().c_str());
      argv = {cfg_.helper,
              "-F",
              "--db",
              db_path(),
              "--nfsdfs",
              cld() ? "none" : mnt,
              "--cld-pipe",
              cld() ? mnt + "/nfsd/cld" : "none",
              "--ctl-socket",
              sock(),
              "--config",
              dir_ + "/nfs.conf",
              "--nfsdcld-db",
              "none",
              "--nfsdcltrack-db",
              "none"};
      if (etcd()) {
        for (std::string a :
             {std::string("--etcd-endpoints"), cfg_.etcd_endpoints,
              std::string("--cluster"), cfg_.etcd_cluster,
              std::string("--node"), node_, std::string("--etcd-lease-ttl"),
              std::to_string(cfg_.lease_ttl)})
          argv.push_back(std::move(a));
      }
    }
    proc_ = std::make_unique<Process>();
    ProcessOptions po;
    po.stderr_path = dir_ + "/daemon.log";
    std::string err;
    const auto t0 = Clock::now();
    if (!proc_->Start(argv, po, &err)) return Fail(name_ + ": " + err), false;
    const auto deadline = t0 + 600s;
    while (Clock::now() < deadline) {
      if (!proc_->IsRunning()) {
        proc_->WaitForStderrEnd(5s);
        Fail(name_ + " exited: " + proc_->Stderr());
        return false;
      }
      if (Ready()) {
        ready_seconds_ = Secs(Clock::now() - t0);
        return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    Fail(name_ + ": not ready: " + proc_->Stderr());
    return false;
  }
  double ready_seconds() const { return ready_seconds_; }

  // The daemon dies at once (a node's crash).
  void Kill9() {
    if (proc_ && proc_->IsRunning()) proc_->Kill9();
  }

  // One reclaim of `id` (no principal) on the four files: accepted?
  bool Reclaim(const std::string& id) {
    return !cld() && sim_->Reclaim(id, "") == nfsdsim::ReclaimResult::kAllowed;
  }

  void Stop() {
    if (proc_ && proc_->IsRunning()) {
      proc_->Signal(SIGTERM);
      if (!proc_->Wait(30s)) proc_->Kill9();
    }
    proc_.reset();
    if (pipe_) pipe_->Unmount();
    if (sim_) sim_->Unmount();
    pipe_.reset();
    sim_.reset();
  }

  // nfsd starts: returns the allow list's size, or -1.
  int64_t StartNfsd() {
    if (cld()) {
      auto r = pipe_->StartNfsd(kOldBoot + 100);
      if (!r.ok() || !r.grace_start.ok()) {
        Fail(name_ + ": GraceStart failed (status " +
             std::to_string(r.grace_start.status) + ")");
        return -1;
      }
      return static_cast<int64_t>(r.reclaim.size());
    }
    auto r = sim_->StartInstance(kOldBoot + 100);
    if (!r.ok()) {
      Fail(name_ + ": start failed (status " + std::to_string(r.status) + ")");
      return -1;
    }
    return static_cast<int64_t>(r.allow.size());
  }

  bool GraceDone() {
    int status;
    if (cld()) {
      auto r = pipe_->GraceDone();
      status = r.sent ? r.status : -1;
    } else {
      status = sim_->EndGrace().status;
    }
    if (status != 0) Fail(name_ + ": grace_done: " + std::to_string(status));
    return status == 0;
  }

  bool Create(const std::string& id) {
    int status;
    if (cld()) {
      auto r = pipe_->Create(id, "");
      status = r.sent ? r.status : -1;
    } else {
      status = sim_->EstablishState(id, "", nfsdfs::Minor::kV41).status;
    }
    return status == 0;
  }

 private:
  bool Ready() {
    if (helper()) {
      struct stat st;
      if (stat(sock().c_str(), &st) != 0) return false;
      return cld() || sim_->WaitForOpen(0ms);
    }
    // nfsdcld: an inotify descriptor among its open files.
    std::string fds = "/proc/" + std::to_string(proc_->pid()) + "/fd";
    DIR* d = opendir(fds.c_str());
    if (!d) return false;
    bool found = false;
    while (dirent* e = readdir(d)) {
      char target[256];
      std::string p = fds + "/" + e->d_name;
      ssize_t n = readlink(p.c_str(), target, sizeof target - 1);
      if (n > 0) {
        target[n] = 0;
        if (std::strstr(target, "inotify")) found = true;
      }
    }
    closedir(d);
    if (found) std::this_thread::sleep_for(100ms);
    return found;
  }

  const Config& cfg_;
  std::string name_;
  std::string dir_;
  std::unique_ptr<nfsdsim::CldPipe> pipe_;
  std::unique_ptr<nfsdsim::SimKernel> sim_;
  std::unique_ptr<Process> proc_;
  double ready_seconds_ = 0;
  std::string node_ = "bench-a";
};

// ---- the figures
// -----------------------------------------------------------------

struct CreateRow {
  std::string target;
  int outstanding = 0;
  uint64_t creates = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double rate = 0;
  double p50_ms = 0, p99_ms = 0;
  int64_t fsyncs = -1;
};

struct GraceRow {
  std::string target;
  int64_t clients = 0;
  double ready_s = 0;
  double allow_s = 0;
  double grace_done_s = 0;
};

struct RssRow {
  std::string target;
  int64_t clients = 0;
  std::string stage;
  long hwm_kib = 0, rss_kib = 0;
  double seconds = 0;  // of the stage, where it has one (dump)
};

struct FailoverRow {
  int64_t acknowledged = 0;  // creates answered 0 before the kill
  int64_t allowed = -1;      // on the new node's allow list
  double serving_s = 0;      // kill -> the new node's helper serves
  double allow_s = 0;        // kill -> its nfsd has the allow list
  double reclaim_s = 0;      // kill -> first reclaim accepted
};

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

CreateRow RunCreates(Target& t, int outstanding, double seconds) {
  CreateRow row;
  row.target = t.name();
  row.outstanding = outstanding;
  FsyncCounter counter;
  // helper-etcd's fsyncs are etcd's, in other processes: not counted.
  bool counting = !t.etcd() && counter.Start(t.pid());
  std::atomic<uint64_t> next{0}, errors{0};
  std::vector<std::vector<double>> lat(outstanding);
  const std::string tag = "c" + std::to_string(outstanding);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < outstanding; ++i) {
    threads.emplace_back([&, i] {
      while (Clock::now() < end) {
        std::string id = ClientId(tag, next++);
        const auto t0 = Clock::now();
        bool ok = t.Create(id);
        lat[i].push_back(Secs(Clock::now() - t0) * 1e3);
        if (!ok) errors++;
      }
    });
  }
  for (auto& th : threads) th.join();
  row.seconds = Secs(Clock::now() - start);
  if (counting) row.fsyncs = counter.Stop();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  row.creates = all.size();
  row.errors = errors;
  row.rate = row.creates / row.seconds;
  row.p50_ms = Percentile(all, 0.50);
  row.p99_ms = Percentile(all, 0.99);
  if (row.errors) {
    Fail(t.name() + ": " + std::to_string(row.errors) + " of " +
         std::to_string(row.creates) + " creates failed");
  }
  return row;
}

// helper-etcd's node dies; another node takes the scope over (README.md,
// failover). `first_id` was acknowledged before the kill.
FailoverRow RunFailover(const Config& cfg, Target& a, int64_t acknowledged,
                        const std::string& first_id) {
  FailoverRow row;
  row.acknowledged = acknowledged;
  Target b(cfg, a.name(), cfg.dir + "/failover-" + a.name());
  b.set_node("bench-b");
  if (!b.Prepare()) return row;
  const auto t0 = Clock::now();
  a.Kill9();
  if (!b.StartDaemon()) return row;
  row.serving_s = Secs(Clock::now() - t0);
  row.allowed = b.StartNfsd();
  row.allow_s = Secs(Clock::now() - t0);
  if (row.allowed < acknowledged) {
    Fail(a.name() + ": the new node allows " + std::to_string(row.allowed) +
         " clients, but " + std::to_string(acknowledged) +
         " creates were acknowledged before the kill");
  }
  if (b.Reclaim(first_id)) {
    row.reclaim_s = Secs(Clock::now() - t0);
  } else {
    Fail(a.name() + ": the new node refused the reclaim of " + first_id);
  }
  b.Stop();
  return row;
}

// `helper-ctl dump` of the live daemon, its output counted and thrown away.
// Returns the number of lines printed, or -1.
int64_t Dump(const Config& cfg, Target& t, const std::string& dir) {
  Process p;
  std::string err;
  const std::string err_path = dir + "/dump.err";
  if (!p.Start(
          {"/bin/sh", "-c", "\"$0\" dump --ctl-socket \"$1\" 2>\"$2\" | wc -l",
           cfg.ctl, t.sock(), err_path},
          {}, &err)) {
    Fail("helper-ctl: " + err);
    return -1;
  }
  auto st = p.Wait(1200s);
  p.WaitForStderrEnd(5s);
  const std::string note = ReadFile(err_path);
  if (!st || !st->success()) {
    Fail("helper-ctl dump: " + p.Stderr() + note);
    return -1;
  }
  // It must have asked the daemon, not read the file itself.
  if (note.find("read from the database") != std::string::npos) {
    Fail("helper-ctl dump did not ask the daemon: " + note);
    return -1;
  }
  return std::atoll(p.Stderr().c_str());
}

std::string Json(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o + "\"";
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string x;
  while (std::getline(in, x, ',')) out.push_back(x);
  return out;
}

void Usage() {
  std::fprintf(
      stderr,
      "usage: nfsd-bench [--smoke] [--dir DIR] [--json PATH] [--keep]\n"
      "                  [--helper BIN] [--ctl BIN] [--nfsdcld BIN]\n"
      "                  [--targets nfsdcld,helper-cld,helper-4f,helper-etcd]\n"
      "                  [--etcd BIN] [--lease-ttl S]\n"
      "                  [--levels 1,8,64,256] [--sizes 10000,100000,1000000]\n"
      "                  [--seconds S] [--fsync-seconds S]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else if (a == "--smoke") {
      cfg.smoke = true;
      cfg.levels = {1, 8};
      cfg.sizes = {100, 1000};
      cfg.create_seconds = 0.5;
      cfg.fsync_seconds = 0.3;
      cfg.lease_ttl = 2;
    } else if (a == "--dir") {
      cfg.dir = val();
    } else if (a == "--json") {
      cfg.json = val();
    } else if (a == "--keep") {
      cfg.keep = true;
    } else if (a == "--helper") {
      cfg.helper = val();
    } else if (a == "--ctl") {
      cfg.ctl = val();
    } else if (a == "--nfsdcld") {
      cfg.nfsdcld = val();
    } else if (a == "--targets") {
      cfg.targets = Split(val());
    } else if (a == "--levels") {
      cfg.levels.clear();
      for (auto& x : Split(val())) cfg.levels.push_back(std::atoi(x.c_str()));
    } else if (a == "--sizes") {
      cfg.sizes.clear();
      for (auto& x : Split(val())) cfg.sizes.push_back(std::atoll(x.c_str()));
    } else if (a == "--seconds") {
      cfg.create_seconds = std::atof(val().c_str());
    } else if (a == "--fsync-seconds") {
      cfg.fsync_seconds = std::atof(val().c_str());
    } else if (a == "--etcd") {
      cfg.etcd = val();
    } else if (a == "--lease-ttl") {
      cfg.lease_ttl = std::atoi(val().c_str());
    } else {
      Usage();
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  bool own_dir = cfg.dir.empty();
  if (own_dir) {
    char tmpl[] = "/var/tmp/nfsd-bench.XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    cfg.dir = tmpl;
  } else {
    mkdir(cfg.dir.c_str(), 0700);
  }
  if (access(cfg.nfsdcld.c_str(), X_OK) != 0) {
    Note(cfg.nfsdcld + " is not installed: its rows are left out");
    cfg.targets.erase(
        std::remove(cfg.targets.begin(), cfg.targets.end(), "nfsdcld"),
        cfg.targets.end());
  }

  auto drop = [&](const char* target) {
    cfg.targets.erase(
        std::remove(cfg.targets.begin(), cfg.targets.end(), target),
        cfg.targets.end());
  };
  auto wanted = [&](const char* target) {
    return std::find(cfg.targets.begin(), cfg.targets.end(), target) !=
           cfg.targets.end();
  };
  std::unique_ptr<nfsdh::etcdtest::EtcdCluster> etcd;
  if (wanted("helper-etcd") && access(cfg.etcd.c_str(), X_OK) != 0) {
    Note(cfg.etcd + " is not installed (etcd-server): helper-etcd is left out");
    drop("helper-etcd");
  } else if (wanted("helper-etcd")) {
    // Three members on loopback, their data on the measured file system.
    setenv("NFSDH_ETCD", cfg.etcd.c_str(), 1);
    try {
      etcd = std::make_unique<nfsdh::etcdtest::EtcdCluster>(3, cfg.dir);
      cfg.etcd_endpoints = etcd->endpoint_list();
      cfg.etcd_cluster = "bench-" + std::to_string(getpid());
      Note("etcd: three members at " + cfg.etcd_endpoints);
    } catch (const std::exception& e) {
      Fail(std::string("etcd: ") + e.what());
      drop("helper-etcd");
    }
  }

  const std::string load_before = LoadAvg();
  const std::string fs = FsOf(cfg.dir);
  Note("work directory " + cfg.dir + " (" + fs + "), load " + load_before);
  const double fsync_before = FsyncRate(cfg.dir, cfg.fsync_seconds);

  // Creates.
  std::vector<CreateRow> creates;
  std::optional<FailoverRow> failover;
  for (const auto& name : cfg.targets) {
    Target t(cfg, name, cfg.dir + "/create-" + name);
    if (!t.Prepare() || !t.StartDaemon() || t.StartNfsd() != 0) continue;
    int64_t acknowledged = 0;
    for (int n : cfg.levels) {
      Note("create: " + name + ", " + std::to_string(n) + " outstanding");
      creates.push_back(RunCreates(t, n, cfg.create_seconds));
      acknowledged += creates.back().creates - creates.back().errors;
    }
    if (t.etcd() && !cfg.levels.empty()) {
      Note("failover: " + name + ", lease " + std::to_string(cfg.lease_ttl) +
           " s");
      failover = RunFailover(cfg, t, acknowledged,
                             ClientId("c" + std::to_string(cfg.levels[0]), 0));
    }
    t.Stop();
  }
  etcd.reset();  // not used further: no load beside the other figures

  // Grace start, grace_done and memory at each size.
  std::vector<GraceRow> graces;
  std::vector<RssRow> rss;
  const int64_t largest =
      cfg.sizes.empty() ? 0
                        : *std::max_element(cfg.sizes.begin(), cfg.sizes.end());
  if (wanted("helper-etcd"))
    Note("grace: helper-etcd is not measured (its records would have to be "
         "written into etcd first)");
  for (int64_t k : cfg.sizes) {
    for (const auto& name : cfg.targets) {
      if (name == "helper-etcd") continue;
      Note("grace: " + name + ", " + std::to_string(k) + " clients");
      Target t(cfg, name, cfg.dir + "/grace-" + name + "-" + std::to_string(k));
      if (!t.Prepare() || !t.Populate(k) || !t.StartDaemon()) continue;
      GraceRow g;
      g.target = name;
      g.clients = k;
      g.ready_s = t.ready_seconds();
      auto t0 = Clock::now();
      int64_t allowed = t.StartNfsd();
      g.allow_s = Secs(Clock::now() - t0);
      if (allowed != k) {
        Fail(name + ": allow list of " + std::to_string(allowed) + ", not " +
             std::to_string(k));
        continue;
      }
      auto mem = [&](const std::string& stage, double secs) {
        auto m = Memory(t.pid());
        rss.push_back({name, k, stage, m.first, m.second, secs});
      };
      if (k == largest) {
        mem("after start", g.allow_s);
        if (t.helper()) {
          t0 = Clock::now();
          int64_t lines = Dump(cfg, t, cfg.dir);
          double secs = Secs(Clock::now() - t0);
          if (lines < k) {
            Fail(name + ": dump printed " + std::to_string(lines) +
                 " lines for " + std::to_string(k) + " records");
          }
          mem("after helper-ctl dump", secs);
        }
      }
      t0 = Clock::now();
      if (!t.GraceDone()) continue;
      g.grace_done_s = Secs(Clock::now() - t0);
      if (k == largest) mem("after grace_done", g.grace_done_s);
      graces.push_back(g);
      t.Stop();
      if (!cfg.keep) {
        unlink(t.db_path().c_str());
        unlink((t.db_path() + "-wal").c_str());
        unlink((t.db_path() + "-shm").c_str());
      }
    }
  }

  const double fsync_after = FsyncRate(cfg.dir, cfg.fsync_seconds);
  const std::string load_after = LoadAvg();

  // The table.
  std::printf("\nmachine: %u CPUs, %s; %s\n",
              std::thread::hardware_concurrency(), CpuModel().c_str(),
              fs.c_str());
  std::printf("load average: %s (start), %s (end)\n", load_before.c_str(),
              load_after.c_str());
  std::printf("raw pwrite+fdatasync: %.0f/s (start), %.0f/s (end)\n\n",
              fsync_before, fsync_after);
  std::printf("%-11s %5s %9s %9s %9s %8s %9s\n", "create", "outst", "creates/s",
              "p50 ms", "p99 ms", "fsyncs", "per fsync");
  for (const auto& r : creates) {
    char per[32] = "n/a", fs_s[32] = "n/a";
    if (r.fsyncs >= 0) {
      std::snprintf(fs_s, sizeof fs_s, "%" PRId64, r.fsyncs);
      if (r.fsyncs > 0)
        std::snprintf(per, sizeof per, "%.2f",
                      static_cast<double>(r.creates) / r.fsyncs);
    }
    std::printf("%-11s %5d %9.0f %9.2f %9.2f %8s %9s\n", r.target.c_str(),
                r.outstanding, r.rate, r.p50_ms, r.p99_ms, fs_s, per);
  }
  std::printf("\n%-11s %8s %9s %11s %13s\n", "grace", "clients", "ready s",
              "allow list s", "grace_done s");
  for (const auto& g : graces) {
    std::printf("%-11s %8" PRId64 " %9.3f %11.3f %13.3f\n", g.target.c_str(),
                g.clients, g.ready_s, g.allow_s, g.grace_done_s);
  }
  std::printf("\n%-11s %8s %-22s %10s %10s\n", "memory", "clients", "stage",
              "VmHWM MiB", "VmRSS MiB");
  for (const auto& r : rss) {
    std::printf("%-11s %8" PRId64 " %-22s %10.1f %10.1f\n", r.target.c_str(),
                r.clients, r.stage.c_str(), r.hwm_kib / 1024.0,
                r.rss_kib / 1024.0);
  }

  if (failover) {
    std::printf("\n%-11s %8s %6s %8s %10s %12s %11s\n", "failover",
                "lease s", "acked", "allowed", "serving s", "allow list s",
                "reclaim s");
    std::printf("%-11s %8d %6" PRId64 " %8" PRId64 " %10.3f %12.3f %11.3f\n",
                "helper-etcd", cfg.lease_ttl, failover->acknowledged,
                failover->allowed, failover->serving_s, failover->allow_s,
                failover->reclaim_s);
  }

  // The targets of the issue, judged on this run's figures.
  auto rate_of = [&](const std::string& t, int n) -> double {
    for (const auto& r : creates)
      if (r.target == t && r.outstanding == n) return r.rate;
    return -1;
  };
  auto grace_of = [&](const std::string& t, int64_t k) -> const GraceRow* {
    for (const auto& g : graces)
      if (g.target == t && g.clients == k) return &g;
    return nullptr;
  };
  std::vector<std::pair<std::string, int>> verdicts;  // 1 met, 0 not, -1 n/a
  auto judge = [&](const std::string& what, double have, bool ok) {
    verdicts.push_back({what, have < 0 ? -1 : ok ? 1 : 0});
  };
  for (const char* h : {"helper-cld", "helper-4f"}) {
    double d64 = rate_of("nfsdcld", 64), h64 = rate_of(h, 64);
    judge(std::string(h) + ": creates/s at 64 outstanding >= 20x nfsdcld's",
          d64 < 0 || h64 < 0 ? -1 : h64, h64 >= 20 * d64);
    double d1 = rate_of("nfsdcld", 1), h1 = rate_of(h, 1);
    judge(std::string(h) + ": creates/s at 1 outstanding >= nfsdcld's",
          d1 < 0 || h1 < 0 ? -1 : h1, h1 >= d1);
    const GraceRow* g100k = grace_of(h, 100000);
    judge(std::string(h) + ": allow list of 100,000 clients < 1 s",
          g100k ? g100k->allow_s : -1, g100k && g100k->allow_s < 1);
    const GraceRow* g1m = grace_of(h, 1000000);
    judge(std::string(h) + ": grace_done on 1,000,000 records < 2 s",
          g1m ? g1m->grace_done_s : -1, g1m && g1m->grace_done_s < 2);
    long peak = -1;
    for (const auto& r : rss)
      if (r.target == h && r.clients == 1000000)
        peak = std::max(peak, r.hwm_kib);
    judge(std::string(h) + ": VmHWM at 1,000,000 records < 64 MiB", peak,
          peak >= 0 && peak < 64 * 1024);
  }
  std::printf("\ntargets:\n");
  for (const auto& v : verdicts) {
    std::printf("  %-4s %s\n",
                v.second == 1   ? "met"
                : v.second == 0 ? "NOT"
                                : "n/a",
                v.first.c_str());
  }

  if (!cfg.json.empty()) {
    std::ofstream j(cfg.json);
    j << "{\n  \"machine\": {\"nproc\": " << std::thread::hardware_concurrency()
      << ", \"cpu\": " << Json(CpuModel()) << ", \"fs\": " << Json(fs)
      << ", \"load_start\": " << Json(load_before)
      << ", \"load_end\": " << Json(load_after) << "},\n";
    j << "  \"smoke\": " << (cfg.smoke ? "true" : "false") << ",\n";
    j << "  \"fsync_per_s\": {\"start\": " << fsync_before
      << ", \"end\": " << fsync_after << "},\n  \"create\": [";
    for (size_t i = 0; i < creates.size(); ++i) {
      const auto& r = creates[i];
      j << (i ? "," : "") << "\n    {\"target\": " << Json(r.target)
        << ", \"outstanding\": " << r.outstanding
        << ", \"creates\": " << r.creates << ", \"errors\": " << r.errors
        << ", \"seconds\": " << r.seconds << ", \"per_s\": " << r.rate
        << ", \"p50_ms\": " << r.p50_ms << ", \"p99_ms\": " << r.p99_ms
        << ", \"fsyncs\": " << r.fsyncs << "}";
    }
    j << "\n  ],\n  \"grace\": [";
    for (size_t i = 0; i < graces.size(); ++i) {
      const auto& g = graces[i];
      j << (i ? "," : "") << "\n    {\"target\": " << Json(g.target)
        << ", \"clients\": " << g.clients << ", \"ready_s\": " << g.ready_s
        << ", \"allow_s\": " << g.allow_s
        << ", \"grace_done_s\": " << g.grace_done_s << "}";
    }
    j << "\n  ],\n  \"memory\": [";
    for (size_t i = 0; i < rss.size(); ++i) {
      const auto& r = rss[i];
      j << (i ? "," : "") << "\n    {\"target\": " << Json(r.target)
        << ", \"clients\": " << r.clients << ", \"stage\": " << Json(r.stage)
        << ", \"vmhwm_kib\": " << r.hwm_kib << ", \"vmrss_kib\": " << r.rss_kib
        << "}";
    }
    j << "\n  ],\n  \"failover\": ";
    if (failover) {
      j << "{\"target\": \"helper-etcd\", \"lease_ttl_s\": " << cfg.lease_ttl
        << ", \"acknowledged\": " << failover->acknowledged
        << ", \"allowed\": " << failover->allowed
        << ", \"serving_s\": " << failover->serving_s
        << ", \"allow_s\": " << failover->allow_s
        << ", \"reclaim_s\": " << failover->reclaim_s << "}";
    } else {
      j << "null";
    }
    j << ",\n  \"targets\": [";
    for (size_t i = 0; i < verdicts.size(); ++i) {
      j << (i ? "," : "") << "\n    {\"what\": " << Json(verdicts[i].first)
        << ", \"met\": "
        << (verdicts[i].second == 1   ? "true"
            : verdicts[i].second == 0 ? "false"
                                      : "null")
        << "}";
    }
    j << "\n  ]\n}\n";
    std::printf("\nJSON: %s\n", cfg.json.c_str());
  }
  if (own_dir && !cfg.keep && !failed) {
    Process rm;
    rm.Start({"/bin/rm", "-rf", cfg.dir});
    rm.Wait(120s);
  }
  return failed ? 1 : 0;
}
