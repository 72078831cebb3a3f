#include "tests/fault/powerloss.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "daemon/store/store.h"
#include "tests/fault/fault_vfs.h"
#include "tests/fault/plain_db.h"

extern char** environ;

namespace nfsdh::powerloss {
namespace {

using faulttest::DbState;
using faulttest::Rec;
using faulttest::TupleOf;

constexpr char kScope[] = "default";
constexpr int kIds = 48;  // the pool of client ids the transactions touch
constexpr size_t kMaxFailures = 10;
constexpr std::chrono::seconds kReadyTimeout{20};
constexpr int64_t kStartupWindowUs = 5000;

// Ids of varied length (up to ~250 bytes) with every byte value, so that
// the records split and merge B-tree pages.
std::string IdOf(int idx) {
  std::string id = "client-" + std::to_string(idx) + "-";
  int pad = (idx * 37) % 240;
  for (int i = 0; i < pad; ++i)
    id.push_back(static_cast<char>((idx * 7 + i * 13) & 0xff));
  return id;
}

// A principal hash that differs per writing transaction, so a refresh that
// was lost is told apart from one that was not.
std::string HashOf(int idx, uint64_t txn) {
  std::string h(32, '\0');
  uint64_t x = (static_cast<uint64_t>(idx) << 40) ^ txn ^ 0x9e3779b97f4a7c15;
  for (size_t i = 0; i < h.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    h[i] = static_cast<char>(x & 0xff);
  }
  return h;
}

// One operation of a transaction, as the child announces it.
struct TxOp {
  char kind = 'U';  // U upsert, D delete, P purge older than, S put scope
  int idx = 0;
  int64_t instance = 0;
  int minor = 0;
  bool hashed = false;
  store::ScopeRow scope;
};

struct Txn {
  uint64_t id = 0;  // also the timestamp its upserts write
  std::vector<TxOp> ops;
};

std::string OptText(const std::optional<int64_t>& v) {
  return v ? std::to_string(*v) : "n";
}

std::optional<int64_t> ParseOpt(const std::string& s) {
  if (s == "n") return std::nullopt;
  return std::stoll(s);
}

std::string Encode(const Txn& t) {
  std::string s = "I " + std::to_string(t.id);
  for (const TxOp& op : t.ops) {
    switch (op.kind) {
      case 'U':
        s += " U," + std::to_string(op.idx) + "," +
             std::to_string(op.instance) + "," + std::to_string(op.minor) +
             "," + (op.hashed ? "1" : "0");
        break;
      case 'D':
        s += " D," + std::to_string(op.idx);
        break;
      case 'P':
        s += " P," + std::to_string(op.instance);
        break;
      case 'S': {
        const store::ScopeRow& r = op.scope;
        s += " S," + OptText(r.boot_time) + "," + OptText(r.new_boot_time) +
             "," + OptText(r.old_boot_time) + "," +
             std::to_string(r.max_instance) + "," +
             OptText(r.kernel_boot_time) + "," + OptText(r.grace_started) +
             "," + OptText(r.grace_ended);
        break;
      }
    }
  }
  return s;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool Decode(const std::string& line, Txn* t) {
  try {
    std::vector<std::string> words = Split(line, ' ');
    if (words.size() < 2 || words[0] != "I") return false;
    t->id = std::stoull(words[1]);
    t->ops.clear();
    for (size_t i = 2; i < words.size(); ++i) {
      std::vector<std::string> f = Split(words[i], ',');
      TxOp op;
      op.kind = f[0].empty() ? '?' : f[0][0];
      if (op.kind == 'U' && f.size() == 5) {
        op.idx = std::stoi(f[1]);
        op.instance = std::stoll(f[2]);
        op.minor = std::stoi(f[3]);
        op.hashed = f[4] == "1";
      } else if (op.kind == 'D' && f.size() == 2) {
        op.idx = std::stoi(f[1]);
      } else if (op.kind == 'P' && f.size() == 2) {
        op.instance = std::stoll(f[1]);
      } else if (op.kind == 'S' && f.size() == 8) {
        op.scope.name = kScope;
        op.scope.boot_time = ParseOpt(f[1]);
        op.scope.new_boot_time = ParseOpt(f[2]);
        op.scope.old_boot_time = ParseOpt(f[3]);
        op.scope.max_instance = std::stoll(f[4]);
        op.scope.kernel_boot_time = ParseOpt(f[5]);
        op.scope.grace_started = ParseOpt(f[6]);
        op.scope.grace_ended = ParseOpt(f[7]);
      } else {
        return false;
      }
      t->ops.push_back(op);
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ---- the model -------------------------------------------------------------

// Applies a transaction exactly as the Store does (UpsertClient keeps
// first_seen; PurgeOlderThan deletes instance < x).
void Apply(const Txn& t, DbState* s) {
  int64_t ts = static_cast<int64_t>(t.id);
  for (const TxOp& op : t.ops) {
    switch (op.kind) {
      case 'U': {
        Rec& r = s->clients[IdOf(op.idx)];
        bool fresh = r.first_seen == 0;
        r.princhash = op.hashed ? HashOf(op.idx, t.id) : "";
        r.minor = op.minor;
        r.instance = op.instance;
        r.last_seen = ts;
        if (fresh) r.first_seen = ts;
        break;
      }
      case 'D':
        s->clients.erase(IdOf(op.idx));
        break;
      case 'P':
        for (auto it = s->clients.begin(); it != s->clients.end();) {
          if (it->second.instance < op.instance)
            it = s->clients.erase(it);
          else
            ++it;
        }
        break;
      case 'S':
        s->scope = TupleOf(op.scope);
        break;
    }
  }
}

// ---- the child -------------------------------------------------------------

void Say(const std::string& line) {
  std::string l = line + "\n";
  size_t off = 0;
  while (off < l.size()) {
    ssize_t n = write(STDOUT_FILENO, l.data() + off, l.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(5);  // an ack it cannot write must not count
    off += n;
  }
}

TxOp Upsert(std::mt19937_64& rng, int64_t instance) {
  TxOp op;
  op.kind = 'U';
  op.idx = static_cast<int>(rng() % kIds);
  op.instance = instance;
  op.minor = static_cast<int>(rng() % 2);
  op.hashed = rng() % 3 != 0;
  return op;
}

TxOp Delete(std::mt19937_64& rng) {
  TxOp op;
  op.kind = 'D';
  op.idx = static_cast<int>(rng() % kIds);
  return op;
}

// A transaction of one of the shapes the daemon writes: creates, expires,
// a start (new instance, purge, scope row, a few reclaims), a grace end
// (purge, scope row), or a large batch (a reclaim storm).
Txn Generate(std::mt19937_64& rng, uint64_t id, int64_t* instance,
             store::ScopeRow* row) {
  Txn t;
  t.id = id;
  int64_t ts = static_cast<int64_t>(id);
  int r = static_cast<int>(rng() % 100);
  if (r < 45) {
    int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) t.ops.push_back(Upsert(rng, *instance));
  } else if (r < 65) {
    int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) t.ops.push_back(Delete(rng));
  } else if (r < 75) {
    *instance += 1 + static_cast<int64_t>(rng() % 3);
    row->new_boot_time = *instance;
    row->max_instance = *instance;
    row->kernel_boot_time = ts;
    row->grace_started = ts;
    TxOp purge;
    purge.kind = 'P';
    purge.instance = *instance - 4;
    t.ops.push_back(purge);
    TxOp put;
    put.kind = 'S';
    put.scope = *row;
    t.ops.push_back(put);
    int n = static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) t.ops.push_back(Upsert(rng, *instance));
  } else if (r < 85) {
    row->old_boot_time = row->boot_time;
    row->boot_time = *instance;
    row->new_boot_time.reset();
    row->grace_ended = ts;
    TxOp purge;
    purge.kind = 'P';
    purge.instance = *instance;
    t.ops.push_back(purge);
    TxOp put;
    put.kind = 'S';
    put.scope = *row;
    t.ops.push_back(put);
  } else {
    int n = 8 + static_cast<int>(rng() % 23);
    for (int i = 0; i < n; ++i) t.ops.push_back(Upsert(rng, *instance));
    int d = static_cast<int>(rng() % 6);
    for (int i = 0; i < d; ++i) t.ops.push_back(Delete(rng));
  }
  return t;
}

Status ApplyToStore(const Txn& t, store::Store* st) {
  int64_t ts = static_cast<int64_t>(t.id);
  for (const TxOp& op : t.ops) {
    Status s;
    switch (op.kind) {
      case 'U': {
        store::ClientRow row;
        row.scope = kScope;
        row.id = IdOf(op.idx);
        row.princhash = op.hashed ? HashOf(op.idx, t.id) : "";
        row.minor = op.minor;
        row.instance = op.instance;
        row.first_seen = row.last_seen = ts;
        s = st->UpsertClient(row);
        break;
      }
      case 'D':
        s = st->DeleteClient(kScope, IdOf(op.idx), nullptr);
        break;
      case 'P':
        s = st->PurgeOlderThan(kScope, op.instance, nullptr);
        break;
      case 'S':
        s = st->PutScope(op.scope);
        break;
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// ---- the parent ------------------------------------------------------------

// One child run: started, left alone for `delay` (counted from its "R"
// line if `after_ready`, else from its start), killed. Returns its output
// (complete lines only) and whether the cut killed it (otherwise it ended
// by itself, which it does only when the store failed it). False if it
// could not be run at all.
//
// The child writes to a regular file, not a pipe, and the parent does not
// read while it waits: a pipe can fill and block the child, and a reader
// woken by every line preempts the child right after its writes, which
// would bunch the cuts there instead of spreading them over its work.
bool RunChild(const Options& o, const std::string& db, uint64_t seed,
              uint64_t txn_base, std::chrono::microseconds delay,
              bool after_ready, std::string* out, bool* killed,
              std::string* error) {
  const std::string out_path = o.dir + "/child-output.txt";
  int fd = open(out_path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "open " + out_path + ": " + strerror(errno);
    return false;
  }
  std::vector<std::string> args = {o.child_bin,  "--child",
                                   "--db",       db,
                                   "--seed",     std::to_string(seed),
                                   "--txn-base", std::to_string(txn_base)};
  if (o.lying_sync) args.push_back("--lying-sync");
  if (!o.checkpoints) args.push_back("--no-checkpoints");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, o.child_bin.c_str(), &fa, nullptr, argv.data(),
                       environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd);
  if (rc != 0) {
    *error = "cannot start " + o.child_bin + ": " + strerror(rc);
    return false;
  }
  using Clock = std::chrono::steady_clock;
  int status = 0;
  bool reaped = false;
  auto exited = [&] {
    if (!reaped) reaped = waitpid(pid, &status, WNOHANG) == pid;
    return reaped;
  };
  auto start = Clock::now();
  if (after_ready) {
    // Timer-driven polling for the first line, out of step with the child.
    int in = open(out_path.c_str(), O_RDONLY | O_CLOEXEC);
    char head[2] = {0, 0};
    while (in >= 0 && Clock::now() < start + kReadyTimeout && !exited()) {
      if (pread(in, head, 2, 0) == 2) break;  // "R\n", or an "X" error
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (in >= 0) close(in);
    start = Clock::now();
  }
  auto deadline = start + delay;
  while (Clock::now() < deadline && !exited()) {
    auto step = std::min<Clock::duration>(deadline - Clock::now(),
                                          std::chrono::milliseconds(2));
    std::this_thread::sleep_for(step);
  }
  if (!reaped) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  *killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  int in = open(out_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    *error = "open " + out_path + ": " + strerror(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, n);
  }
  close(in);
  size_t last = out->rfind('\n');
  out->resize(last == std::string::npos ? 0 : last + 1);
  return true;
}

void Note(Figures* f, const std::string& what) {
  if (f->failures.size() < kMaxFailures) f->failures.push_back(what);
}

}  // namespace

std::string FormatFigures(const Figures& f) {
  std::ostringstream o;
  o << "cuts " << f.cuts << " (" << f.cuts_before_first_ack
    << " before the child's first ack), transactions attempted "
    << f.txns_attempted << ", acknowledged " << f.txns_acked
    << ", acked changes checked " << f.acked_changes_checked << ", lost acks "
    << f.lost_acks << ", integrity failures " << f.integrity_failures
    << ", phantom records " << f.phantom_records << ", unexplained states "
    << f.unexplained_states << ", store failures in the child "
    << f.child_failures << ", in-flight transactions found durable "
    << f.inflight_durable << ", explicit checkpoints " << f.checkpoints;
  return o.str();
}

bool Run(const Options& o, Figures* fig, std::string* error) {
  const std::string db = o.dir + "/state.sqlite";
  std::mt19937_64 rng(o.seed);
  DbState model;  // what the database holds at the start of the next cut
  // (id, timestamp) of every upsert ever announced: a record carrying any
  // other pair was never even attempted.
  std::set<std::pair<std::string, int64_t>> attempted;
  uint64_t txn_base = 1;
  for (int cut = 0; cut < o.cuts; ++cut) {
    bool after_ready = o.startup_cut_every <= 0 ||
                       rng() % static_cast<uint64_t>(o.startup_cut_every) != 0;
    // A startup cut falls in the first few milliseconds: exec, open,
    // recovery of what the last cut left, and the first transactions.
    int64_t lo = after_ready ? o.min_delay_us : 0;
    int64_t hi = after_ready ? o.max_delay_us : kStartupWindowUs;
    auto delay = std::chrono::microseconds(
        lo + static_cast<int64_t>(rng() % std::max<int64_t>(1, hi - lo)));
    std::string out;
    bool killed = false;
    if (!RunChild(o, db, o.seed * 1000003 + cut, txn_base, delay, after_ready,
                  &out, &killed, error))
      return false;
    ++fig->cuts;
    std::string child_error;

    std::vector<Txn> intents;
    size_t acks = 0;
    for (const std::string& line : Split(out, '\n')) {
      if (line.empty() || line == "R") continue;
      if (line[0] == 'I') {
        Txn t;
        if (!Decode(line, &t) || acks != intents.size()) {
          *error = "cut " + std::to_string(cut) + ": bad intent: " + line;
          return false;
        }
        for (const TxOp& op : t.ops)
          if (op.kind == 'U')
            attempted.insert({IdOf(op.idx), static_cast<int64_t>(t.id)});
        intents.push_back(std::move(t));
      } else if (line[0] == 'A') {
        if (acks >= intents.size() ||
            line != "A " + std::to_string(intents[acks].id)) {
          *error = "cut " + std::to_string(cut) + ": unexpected ack: " + line;
          return false;
        }
        ++acks;
      } else if (line[0] == 'C') {
        if (line.size() > 4 && line.compare(line.size() - 4, 4, " ran") == 0)
          ++fig->checkpoints;
      } else if (line[0] == 'X') {
        child_error = line.substr(std::min<size_t>(2, line.size()));
      } else {
        *error = "cut " + std::to_string(cut) + ": child says: " + line;
        return false;
      }
    }
    if (!killed) {
      // The store failed the child by itself (it refused to open the file
      // the last cut left, or a transaction failed): a verdict on the
      // store, not a harness failure. The database is not judged further.
      ++fig->child_failures;
      Note(fig, "cut " + std::to_string(cut) + ": the child failed before " +
                    "the cut: " +
                    (child_error.empty() ? "(no message)" : child_error));
      break;
    }
    fig->txns_attempted += intents.size();
    fig->txns_acked += acks;
    if (acks == 0) ++fig->cuts_before_first_ack;
    if (!intents.empty()) txn_base = intents.back().id + 1;

    // states[j]: the database after the first j acknowledged transactions.
    std::vector<DbState> states = {model};
    for (size_t j = 0; j < acks; ++j) {
      states.push_back(states.back());
      Apply(intents[j], &states.back());
      fig->acked_changes_checked += intents[j].ops.size();
    }
    std::optional<DbState> inflight;
    if (intents.size() > acks) {
      inflight = states.back();
      Apply(intents[acks], &*inflight);
    }

    // A fresh file may hold a hot rollback journal from the switch to WAL,
    // which only a read-write connection can roll back.
    bool fresh = model.clients.empty() && !model.scope;
    faulttest::PlainView snap =
        faulttest::ReadPlain(db, kScope, fresh || cut % 4 == 3);
    std::string where =
        "cut " + std::to_string(cut) + " (" + std::to_string(acks) + " acked)";
    if (!snap.error.empty()) {
      ++fig->integrity_failures;
      Note(fig, where + ": cannot read the database: " + snap.error);
      continue;  // the model stays; the next cut will tell more
    }
    if (!snap.ok()) {
      ++fig->integrity_failures;
      Note(fig, where + ": integrity_check: " + snap.integrity);
    }
    for (const auto& [id, r] : snap.state.clients) {
      if (!attempted.count({id, r.first_seen}) ||
          !attempted.count({id, r.last_seen})) {
        ++fig->phantom_records;
        Note(fig, where + ": a record no transaction wrote (first_seen " +
                      std::to_string(r.first_seen) + ", last_seen " +
                      std::to_string(r.last_seen) + ")");
      }
    }
    const DbState& found = snap.state;
    bool verdict_ok = false;
    if (found == states.back()) {
      verdict_ok = true;
    } else if (inflight && found == *inflight) {
      verdict_ok = true;
      ++fig->inflight_durable;
    } else {
      size_t j = states.size() - 1;
      while (j > 0 && !(found == states[j - 1])) --j;
      if (j > 0) {
        fig->lost_acks += acks - (j - 1);
        Note(fig, where + ": the database holds only the first " +
                      std::to_string(j - 1) + " acknowledged transactions");
      } else {
        ++fig->unexplained_states;
        Note(fig, where + ": the database matches no acknowledged prefix (" +
                      std::to_string(found.clients.size()) + " records, " +
                      std::to_string(states.back().clients.size()) +
                      " expected)");
      }
    }
    if (o.verbose) {
      std::fprintf(stderr,
                   "cut %d: %.1f ms after its %s, %zu attempted, %zu "
                   "acked%s, %s\n",
                   cut, delay.count() / 1000.0, after_ready ? "open" : "start",
                   intents.size(), acks,
                   inflight ? (found == *inflight ? ", in flight durable"
                                                  : ", in flight lost")
                            : "",
                   verdict_ok ? "ok" : "FAILED");
    }
    // Judge the next cut from what is really there.
    model = found;
  }
  return true;
}

int ChildMain(int argc, char** argv) {
  std::string db;
  uint64_t seed = 1, txn_base = 1;
  bool lying = false, checkpoints = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--child") continue;
    if (a == "--lying-sync") {
      lying = true;
    } else if (a == "--no-checkpoints") {
      checkpoints = false;
    } else if (i + 1 < argc && a == "--db") {
      db = argv[++i];
    } else if (i + 1 < argc && a == "--seed") {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "--txn-base") {
      txn_base = std::strtoull(argv[++i], nullptr, 10);
    } else {
      Say("X unknown argument " + a);
      return 2;
    }
  }
  // Never outlive the parent, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 2;
  if (faultvfs::Install(true) != SQLITE_OK) {
    Say("X cannot install the fault VFS");
    return 3;
  }
  faultvfs::SetPowerLoss(true);
  faultvfs::SetLyingSync(lying);

  std::unique_ptr<store::Store> st;
  Status s = store::Store::Open(db, store::Store::Mode::kReadWrite, &st);
  if (!s.ok()) {
    Say("X open: " + s.ToString());
    return 3;
  }
  Say("R");
  std::optional<store::ScopeRow> row;
  s = st->GetScope(kScope, &row);
  if (!s.ok()) {
    Say("X read scope: " + s.ToString());
    return 3;
  }
  store::ScopeRow cur;
  if (row) {
    cur = *row;
  } else {
    cur.name = kScope;
  }
  int64_t instance = cur.max_instance;
  std::mt19937_64 rng(seed);
  sqlite3* ckpt = nullptr;
  for (uint64_t id = txn_base;; ++id) {
    Txn t = Generate(rng, id, &instance, &cur);
    Say(Encode(t));
    s = st->Begin();
    if (s.ok()) s = ApplyToStore(t, st.get());
    if (s.ok()) {
      s = st->Commit();
    } else {
      st->Rollback();
    }
    if (!s.ok()) {
      Say("X transaction " + std::to_string(id) + ": " + s.ToString());
      return 4;
    }
    Say("A " + std::to_string(id));
    if (checkpoints && rng() % 16 == 0) {
      static const int kModes[] = {
          SQLITE_CHECKPOINT_PASSIVE, SQLITE_CHECKPOINT_FULL,
          SQLITE_CHECKPOINT_RESTART, SQLITE_CHECKPOINT_TRUNCATE};
      int mode = kModes[rng() % 4];
      // The connection learns that the file is in WAL mode only when it
      // first reads it; until then a checkpoint does nothing.
      if (!ckpt && (sqlite3_open_v2(db.c_str(), &ckpt, SQLITE_OPEN_READWRITE,
                                    nullptr) != SQLITE_OK ||
                    sqlite3_exec(ckpt, "SELECT count(*) FROM sqlite_schema",
                                 nullptr, nullptr, nullptr) != SQLITE_OK)) {
        Say("X checkpoint connection: " + std::string(sqlite3_errmsg(ckpt)));
        return 4;
      }
      int log_frames = -1, done_frames = -1;
      int rc = sqlite3_wal_checkpoint_v2(ckpt, nullptr, mode, &log_frames,
                                         &done_frames);
      // "ran" only if it found the WAL and was not busy: the figures count
      // checkpoints that really copied and reset something.
      Say("C " + std::to_string(mode) + " " + std::to_string(rc) + " " +
          std::to_string(done_frames) +
          (rc == SQLITE_OK && log_frames >= 0 ? " ran" : " skipped"));
    }
  }
}

}  // namespace nfsdh::powerloss
