#include "tests/scenario/harness.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>

#include "daemon/store/store.h"

namespace scenario {

TempDir::TempDir() {
  char tmpl[] = "/tmp/nfsdh-scenario-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::system(("rm -rf '" + path_ + "'").c_str()) != 0) {
    // Best effort: a leftover temporary directory is harmless.
  }
}

Node::Node(std::string mount_dir, std::string db, std::string scope)
    : mount_dir_(std::move(mount_dir)),
      db_(std::move(db)),
      scope_(std::move(scope)) {
  nfsdsim::SimOptions opts;
  opts.request_timeout = kStepTimeout;
  kernel_ = std::make_unique<nfsdsim::SimKernel>(opts);
  REQUIRE(mkdir(mount_dir_.c_str(), 0700) == 0);
  std::string err;
  INFO(err);
  REQUIRE(kernel_->Mount(mount_dir_, &err));
}

Node::~Node() {
  if (helper_ && helper_->IsRunning()) helper_->Kill9();
  helper_.reset();
  kernel_->Unmount();
}

void Node::CollectLog() {
  if (!helper_) return;
  // The capture thread may still be reading what the dead helper wrote.
  if (!helper_->IsRunning()) helper_->WaitForStderrEnd(kStepTimeout);
  past_logs_ += helper_->Stderr();
}

std::string Node::Log() const {
  return past_logs_ + (helper_ ? helper_->Stderr() : std::string());
}

bool Node::WaitForLog(const std::string& needle) {
  if (past_logs_.find(needle) != std::string::npos) return true;
  return helper_ && helper_->WaitForStderr(needle, kStepTimeout);
}

void Node::StartHelper(const std::map<std::string, std::string>& env,
                       const std::vector<std::string>& extra_args) {
  if (helper_) REQUIRE_FALSE(helper_->IsRunning());
  CollectLog();
  helper_ = std::make_unique<nfsdsim::Process>();
  nfsdsim::ProcessOptions po;
  po.env = env;
  std::string err;
  std::vector<std::string> argv = {
      NFSD_HELPER_BIN, "--foreground", "--debug", "--nfsdfs",
      mount_dir_,      "--db",         db_,       "--scope",
      scope_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // Never the host's cld pipe: these nodes are four-file kernels.
  if (std::find(extra_args.begin(), extra_args.end(), "--cld-pipe") ==
      extra_args.end()) {
    argv.push_back("--cld-pipe");
    argv.push_back("none");
  }
  // Never the host's nfsdcld or nfsdcltrack database: tests that import
  // name theirs.
  if (std::find(extra_args.begin(), extra_args.end(), "--nfsdcld-db") ==
      extra_args.end()) {
    for (const char* opt : {"--nfsdcld-db", "--nfsdcltrack-db"}) {
      argv.push_back(opt);
      argv.push_back("none");
    }
  }
  // Each node's helper gets its own control socket, never the host's.
  if (std::find(extra_args.begin(), extra_args.end(), "--ctl-socket") ==
      extra_args.end()) {
    argv.push_back("--ctl-socket");
    argv.push_back(mount_dir_ + ".ctl.sock");
  }
  bool started = helper_->Start(argv, po, &err);
  INFO(err);
  REQUIRE(started);
  for (auto c : nfsdsim::kAllChannels) {
    bool open = kernel_->WaitForStats(
        c, [](const nfsdsim::ChannelStats& s) { return s.open_handles > 0; },
        kStepTimeout);
    INFO(helper_->Stderr());
    REQUIRE(open);
  }
}

void Node::StopHelper() {
  REQUIRE(helper_);
  REQUIRE(helper_->Signal(SIGTERM));
  auto st = helper_->Wait(kStepTimeout);
  INFO(helper_->Stderr());
  REQUIRE(st);
  CHECK(st->success());
  REQUIRE(kernel_->WaitForAllClosed(kStepTimeout));
}

void Node::KillHelper() {
  REQUIRE(helper_);
  helper_->Kill9();
  REQUIRE(helper_->Wait(kStepTimeout));
  REQUIRE(kernel_->WaitForAllClosed(kStepTimeout));
}

nfsdsim::ExitStatus Node::WaitHelperDeath() {
  REQUIRE(helper_);
  auto st = helper_->Wait(kStepTimeout);
  INFO(helper_->Stderr());
  REQUIRE(st);
  REQUIRE(kernel_->WaitForAllClosed(kStepTimeout));
  return *st;
}

bool Node::HelperRunning() { return helper_ && helper_->IsRunning(); }

void DamageTable(const std::string& db, const std::string& table) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_busy_timeout(h, 10000);
  REQUIRE(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", 0, 0, 0) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h,
                             "SELECT rootpage, (SELECT page_size FROM "
                             "pragma_page_size) FROM sqlite_schema WHERE "
                             "name = ?",
                             -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t page = sqlite3_column_int64(st, 0);
  int64_t size = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  sqlite3_close(h);
  REQUIRE(page > 1);
  int fd = open(db.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::string junk(static_cast<size_t>(size), '\xee');
  CHECK(pwrite(fd, junk.data(), junk.size(), (page - 1) * size) ==
        static_cast<ssize_t>(junk.size()));
  close(fd);
}

std::set<std::string> RecordedIds(const std::string& db,
                                  const std::string& scope) {
  std::unique_ptr<nfsdh::store::Store> st;
  nfsdh::Status s =
      nfsdh::store::Store::Open(db, nfsdh::store::Store::Mode::kReadOnly, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::set<std::string> ids;
  REQUIRE(st->ForEachClient(scope, [&](const nfsdh::store::ClientRow& c) {
               ids.insert(c.id);
               return true;
             }).ok());
  return ids;
}

std::optional<nfsdh::store::ScopeRow> ScopeOf(const std::string& db,
                                              const std::string& scope) {
  std::unique_ptr<nfsdh::store::Store> st;
  nfsdh::Status s =
      nfsdh::store::Store::Open(db, nfsdh::store::Store::Mode::kReadOnly, &st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::optional<nfsdh::store::ScopeRow> row;
  REQUIRE(st->GetScope(scope, &row).ok());
  return row;
}

nfsdsim::Ticket SubmitCreate(nfsdsim::SimKernel& k, int64_t instance,
                             const std::string& id, Minor minor) {
  auto t = k.SubmitWithSeq(nfsdfs::Channel::kCreateClient, [&](uint64_t seq) {
    nfsdfs::CreateRequest r;
    r.seq = seq;
    r.instance = instance;
    r.client_id = id;
    r.minor = minor;
    return nfsdfs::EncodeRequest(r);
  });
  REQUIRE(t.ok());
  return t;
}

std::string Hash(const std::string& tag) {
  std::string h(32, '\0');
  for (size_t i = 0; i < h.size(); ++i)
    h[i] = static_cast<char>(tag[i % tag.size()] + static_cast<char>(i));
  return h;
}

std::set<std::string> Ids(const std::map<std::string, std::string>& allow) {
  std::set<std::string> ids;
  for (const auto& [id, h] : allow) ids.insert(id);
  return ids;
}

std::string ExpectNoStart(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NFSD_HELPER_BIN, "--foreground",
                                   "--cld-pipe",    "none",
                                   "--nfsdcld-db",  "none",
                                   "--nfsdcltrack-db", "none"};
  argv.insert(argv.end(), args.begin(), args.end());
  nfsdsim::Process p;
  REQUIRE(p.Start(argv));
  auto st = p.Wait(kStepTimeout);
  // A helper that serves instead of refusing is killed by ~Process.
  REQUIRE(st);
  REQUIRE(p.WaitForStderrEnd(kStepTimeout));
  INFO(p.Stderr());
  CHECK(st->exited);
  CHECK(st->code == 1);
  CHECK(p.Stderr().find("cannot start") != std::string::npos);
  return p.Stderr();
}


}  // namespace scenario
