// cld: the stock kernel's client-tracking upcall on <rpc_pipefs>/nfsd/cld
// (struct cld_msg v1 and cld_msg_v2, nfsdfs-proto/cld.h), mapped onto the
// same recovery engine and store as the four files.
//
// Rationale. A cld upcall names no server instance: each one applies to the
// scope's current instance (PROTOCOL.md §4). GraceStart streams the allowed
// clients as -EINPROGRESS downcalls and then starts a new instance exactly as
// allow_client does (a list not wholly written is answered -EIO and starts
// nothing) before its final status; Create stamps the client
// with the current instance; Remove deletes it; GraceDone ends the grace
// period of the instance in grace. Every downcall has the size, cm_xid and
// cm_cmd of its upcall (the kernel matches it by xid and checks its size).
// The batch rules hold: a status of 0 that promises a durable change is sent
// only after COMMIT, and becomes -EIO if the batch does not commit.
//
// Fail closed: a version-1 kernel cannot check a principal, so a client
// recorded with a principal hash is not on a version-1 allow list, and a
// per-client Check (kernels that do not slurp the list) refuses it.
#include "nfsdfs-proto/cld.h"

#include <cerrno>
#include <optional>

#include "daemon/channels/channel.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh {
namespace {

using nfsdfs::cld::Command;
using nfsdfs::cld::Message;

Message ReplyTo(const Message& req, int status) {
  Message m;
  m.vers = req.vers;
  m.cmd = req.cmd;
  m.xid = req.xid;
  m.status = static_cast<int16_t>(status);
  return m;
}

// Queues the reply to `req`. A status of 0 promises durability (the -EIO
// form is sent if the batch does not commit); another status promises
// nothing.
void Reply(Batch& b, int fd, const Message& req, int status,
           ChannelCounters* c) {
  std::string reply = nfsdfs::cld::Encode(ReplyTo(req, status));
  std::string on_failure =
      status == 0 ? nfsdfs::cld::Encode(ReplyTo(req, -EIO)) : reply;
  b.ReplyMessage(fd, req.xid, status, std::move(reply), std::move(on_failure),
                 c);
}

std::string ClientForLog(const std::string& id) {
  return nfsdfs::EscapeForLog(id.substr(0, 80)) + (id.size() > 80 ? "..." : "");
}

// Answers an upcall that does not decode: -EINVAL if its header (and so its
// xid) is readable, at the size the kernel sent; otherwise only a log line.
void Malformed(Batch& b, int fd, std::string_view msg,
               const nfsdfs::ParseError& err, ChannelCounters* c) {
  ++c->malformed;
  if (!err.seq) {
    LOG_ERROR(
        "cld: malformed upcall without a readable xid cannot be "
        "answered: %s",
        err.reason.c_str());
    return;
  }
  Message req;
  req.xid = static_cast<uint32_t>(*err.seq);
  req.cmd = static_cast<uint8_t>(msg[1]);
  // The kernel accepts a downcall only at the size of its messages, which is
  // the size of what it sent when that is a size it can send.
  uint8_t vers = static_cast<uint8_t>(msg[0]);
  if (msg.size() == nfsdfs::cld::MessageSize(1))
    req.vers = 1;
  else if (msg.size() == nfsdfs::cld::MessageSize(2))
    req.vers = 2;
  else
    req.vers = nfsdfs::cld::MessageSize(vers) ? vers : 1;
  LOG_WARNING("cld: malformed %s upcall %u refused with -EINVAL: %s",
              nfsdfs::cld::CommandName(req.cmd), req.xid, err.reason.c_str());
  std::string reply = nfsdfs::cld::Encode(ReplyTo(req, -EINVAL));
  b.ReplyMessage(fd, req.xid, -EINVAL, reply, reply, nullptr);
}

// Applies `plan`, a start of a server instance planned from the batch's
// scope row, to that row (the transaction is the batch's). Returns false
// after recording a storage failure in the batch.
bool StartInstance(Batch& b, const recovery::StartPlan& plan,
                   int64_t* purged) {
  Status s;
  *purged = 0;
  if (plan.purge_older_than)
    s = b.PurgeOlderThan(*plan.purge_older_than, purged);
  store::ScopeRow next = b.row();
  SetScopeState(plan.next, &next);
  next.kernel_boot_time.reset();  // cld does not tell it
  next.grace_started = b.now();
  if (s.ok()) s = b.store().PutScope(next);
  if (!s.ok()) {
    LOG_ERROR(
        "scope %s: cannot start a server instance, no client may "
        "reclaim: %s",
        b.scope().c_str(), s.ToString().c_str());
    b.Fail(s);
    return false;
  }
  b.row() = next;
  b.stats().clients -= *purged;
  return true;
}

// A kernel that did not announce its grace period (one that never sent
// GraceStart to this database, or a per-client Check kernel): starts the
// instance it evidently runs, without an allow list. Returns false after a
// storage failure.
bool AdoptInstance(Batch& b, const Message& req) {
  int64_t purged = 0;
  recovery::StartPlan plan =
      recovery::PlanStart(ToScopeState(b.row()), b.now());
  if (!StartInstance(b, plan, &purged)) return false;
  b.stats().start_seen = false;
  LOG_WARNING(
      "scope %s: cld %s %u arrived %s; started server instance %lld "
      "for it (%lld stale record(s) removed)",
      b.scope().c_str(), nfsdfs::cld::CommandName(req.cmd), req.xid,
      req.cmd == static_cast<uint8_t>(Command::kCheck)
          ? "outside a grace period known to this database"
          : "before any server instance was started",
      static_cast<long long>(plan.instance), static_cast<long long>(purged));
  return true;
}

void HandleGraceStart(Batch& b, int fd, const Message& req,
                      ChannelCounters* c) {
  b.NoteStartAttempt(false);
  if (b.failed()) {
    Reply(b, fd, req, -EIO, c);
    return;
  }
  recovery::ScopeState before = ToScopeState(b.row());
  recovery::StartPlan plan = recovery::PlanStart(before, b.now());
  // One downcall per allowed client, each one write of one message: the
  // records the start keeps, sent before it changes anything.
  int64_t allowed = 0, withheld = 0;
  bool delivered = true;
  Status s = b.store().ForEachClient(b.scope(), [&](const store::ClientRow& r) {
    if (plan.purge_older_than && r.instance < *plan.purge_older_than)
      return true;  // purged by StartInstance
    if (req.vers < 2 && !r.princhash.empty()) {
      ++withheld;
      return true;
    }
    Message m = ReplyTo(req, -EINPROGRESS);
    m.name = r.id;
    m.princhash = r.princhash;
    if (!b.WriteNow(fd, nfsdfs::cld::Encode(m))) {
      delivered = false;
      return false;
    }
    ++allowed;
    return true;
  });
  if (!s.ok()) {
    LOG_ERROR(
        "scope %s: cannot read the allow list, no client may "
        "reclaim: %s",
        b.scope().c_str(), s.ToString().c_str());
    b.Fail(s);
    Reply(b, fd, req, -EIO, c);
    return;
  }
  if (!delivered) {
    LOG_ERROR(
        "scope %s: the allow list for cld GraceStart %u was not wholly "
        "written to the pipe; answered -EIO so that the kernel does not "
        "take a part of the list for all of it, and nothing of the start "
        "is kept",
        b.scope().c_str(), req.xid);
    Reply(b, fd, req, -EIO, c);
    return;
  }
  int64_t purged = 0;
  if (!StartInstance(b, plan, &purged)) {
    Reply(b, fd, req, -EIO, c);
    return;
  }
  if (withheld > 0) {
    LOG_WARNING(
        "scope %s: %lld client(s) recorded with a principal hash are "
        "not allowed to reclaim: a version-1 cld kernel cannot check "
        "their principal",
        b.scope().c_str(), static_cast<long long>(withheld));
  }
  ScopeStats& st = b.stats();
  st.start_seen = true;
  st.start_instance = plan.instance;
  st.start_time = b.now();
  st.allowed = allowed;
  st.reclaimed = 0;
  LOG_NOTICE(
      "scope %s: server instance %lld starts its grace period (cld "
      "version %u)%s; %lld client(s) may reclaim, %lld stale "
      "record(s) removed",
      b.scope().c_str(), static_cast<long long>(plan.instance), req.vers,
      before.in_grace() ? "; the previous instance never ended its grace period"
                        : "",
      static_cast<long long>(allowed), static_cast<long long>(purged));
  b.NoteStartAttempt(true);
  Reply(b, fd, req, 0, c);
}

// Records (or refreshes) `id` in the current instance; for Check, only an
// existing record. Returns false after a storage failure.
bool Record(Batch& b, const std::string& id, const std::string& princhash,
            const std::optional<store::ClientRow>& before) {
  int64_t instance = *ToScopeState(b.row()).current();
  store::ClientRow row;
  row.scope = b.scope();
  row.id = id;
  row.princhash = princhash;
  row.minor = before ? before->minor : 0;  // cld does not tell it
  row.instance = instance;
  row.first_seen = row.last_seen = b.now();
  Status s = b.store().UpsertClient(row);
  if (!s.ok()) {
    b.Fail(s);
    return false;
  }
  if (!before) {
    ++b.stats().clients;
    b.NoteChange(true, id);
  } else if (before->instance < instance && b.stats().start_seen &&
             b.stats().start_instance == instance) {
    ++b.stats().reclaimed;
  }
  return true;
}

void HandleCreate(Batch& b, int fd, const Message& req, ChannelCounters* c) {
  if (!b.failed()) {
    bool ok =
        ToScopeState(b.row()).current().has_value() || AdoptInstance(b, req);
    std::optional<store::ClientRow> before;
    if (ok) {
      Status s = b.store().GetClient(b.scope(), req.name, &before);
      if (!s.ok()) b.Fail(s);
    }
    if (ok && !b.failed()) Record(b, req.name, req.princhash, before);
  }
  LOG_DEBUG("cld Create %u: client %s in %s", req.xid,
            ClientForLog(req.name).c_str(),
            DescribeInstance(ToScopeState(b.row()).current()).c_str());
  Reply(b, fd, req, 0, c);  // -EIO if the batch fails
}

void HandleRemove(Batch& b, int fd, const Message& req, ChannelCounters* c) {
  bool existed = false;
  if (!b.failed()) {
    Status s = b.store().DeleteClient(b.scope(), req.name, &existed);
    if (!s.ok())
      b.Fail(s);
    else if (existed) {
      --b.stats().clients;
      b.NoteChange(false, req.name);
    }
  }
  LOG_DEBUG("cld Remove %u: client %s %s", req.xid,
            ClientForLog(req.name).c_str(),
            existed ? "removed" : "was not recorded");
  Reply(b, fd, req, 0, c);
}

void HandleCheck(Batch& b, int fd, const Message& req, ChannelCounters* c) {
  if (b.failed() ||
      (!ToScopeState(b.row()).in_grace() && !AdoptInstance(b, req))) {
    Reply(b, fd, req, -EIO, c);
    return;
  }
  std::optional<store::ClientRow> before;
  Status s = b.store().GetClient(b.scope(), req.name, &before);
  if (!s.ok()) {
    b.Fail(s);
    Reply(b, fd, req, -EIO, c);
    return;
  }
  const char* refusal = nullptr;
  if (!before)
    refusal = "has no record that allows it to reclaim";
  else if (!before->princhash.empty())
    refusal = "is recorded with a principal hash that cld Check cannot verify";
  if (refusal) {
    LOG_INFO("cld Check %u: client %s %s; refused with -EACCES", req.xid,
             ClientForLog(req.name).c_str(), refusal);
    Reply(b, fd, req, -EACCES, c);
    return;
  }
  // Allowed: the client reclaims, so it is recorded in this instance.
  if (Record(b, req.name, before->princhash, before)) {
    LOG_DEBUG("cld Check %u: client %s may reclaim", req.xid,
              ClientForLog(req.name).c_str());
  }
  Reply(b, fd, req, 0, c);
}

void HandleGraceDone(Batch& b, int fd, const Message& req, ChannelCounters* c) {
  recovery::ScopeState st = ToScopeState(b.row());
  if (!st.in_grace()) {
    b.NoteGraceEndAttempt(0);  // of an instance whose start was missed?
    LOG_INFO(
        "cld GraceDone %u: scope %s is not in a grace period (%s); "
        "nothing to end",
        req.xid, b.scope().c_str(), DescribeInstance(st.current()).c_str());
    Reply(b, fd, req, 0, c);
    return;
  }
  // The kernel ends its grace period whatever we answer: if this batch
  // does not commit, the daemon records the end later (daemon.h).
  int64_t instance = *st.new_boot_time;
  b.NoteGraceEndAttempt(instance);
  if (b.failed() ||
      !EndGrace(b, instance, "cld GraceDone " + std::to_string(req.xid))) {
    Reply(b, fd, req, -EIO, c);
    return;
  }
  Reply(b, fd, req, 0, c);
}

}  // namespace

std::optional<int64_t> AdoptUnrecordedStart(Batch& b) {
  int64_t purged = 0;
  recovery::StartPlan plan =
      recovery::PlanStart(ToScopeState(b.row()), b.now());
  if (!StartInstance(b, plan, &purged)) return std::nullopt;
  b.stats().start_seen = false;
  LOG_WARNING(
      "scope %s: started server instance %lld for the nfsd instance whose "
      "GraceStart was not recorded (%lld stale record(s) removed); its "
      "clients reclaim through Check",
      b.scope().c_str(), static_cast<long long>(plan.instance),
      static_cast<long long>(purged));
  return plan.instance;
}

void HandleCldMessage(Batch& b, int fd, std::string_view msg,
                      ChannelCounters* counters) {
  ++counters->requests;
  auto decoded = nfsdfs::cld::DecodeUpcall(msg);
  if (auto* err = std::get_if<nfsdfs::ParseError>(&decoded)) {
    Malformed(b, fd, msg, *err, counters);
    return;
  }
  const Message& req = std::get<Message>(decoded);
  LOG_DEBUG("cld: %s upcall %u, version %u", nfsdfs::cld::CommandName(req.cmd),
            req.xid, req.vers);
  auto cmd = static_cast<Command>(req.cmd);
  bool names_client = cmd == Command::kCreate || cmd == Command::kRemove ||
                      cmd == Command::kCheck;
  if (names_client && req.name.empty()) {
    nfsdfs::ParseError err;
    err.seq = req.xid;
    err.reason = "empty client id";
    Malformed(b, fd, msg, err, counters);
    return;
  }
  switch (cmd) {
    case Command::kGetVersion: {
      // Every kernel that asks knows version 2 and clamps the answer to
      // what it speaks; the reply has the size of the upcall.
      Message m = ReplyTo(req, 0);
      m.version = nfsdfs::cld::kHighestVersion;
      std::string reply = nfsdfs::cld::Encode(m);
      b.ReplyMessage(fd, req.xid, 0, reply, reply, counters);
      return;
    }
    case Command::kGraceStart:
      HandleGraceStart(b, fd, req, counters);
      return;
    case Command::kCreate:
      HandleCreate(b, fd, req, counters);
      return;
    case Command::kRemove:
      HandleRemove(b, fd, req, counters);
      return;
    case Command::kCheck:
      HandleCheck(b, fd, req, counters);
      return;
    case Command::kGraceDone:
      HandleGraceDone(b, fd, req, counters);
      return;
  }
  LOG_WARNING(
      "cld: unknown command %u in upcall %u refused with "
      "-EOPNOTSUPP",
      req.cmd, req.xid);
  Reply(b, fd, req, -EOPNOTSUPP, counters);
}

}  // namespace nfsdh
