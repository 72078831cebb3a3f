// cld: the stock kernel's client-tracking upcall on <rpc_pipefs>/nfsd/cld
// (struct cld_msg v1 and cld_msg_v2, nfsdfs-proto/cld.h), mapped onto the
// same tracker verbs as the four files.
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
#include <cerrno>
#include <optional>

#include "daemon/channels/handlers.h"
#include "daemon/util/log.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::channels {
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
void Answer(Reply& reply, const Message& req, int status) {
  std::string r = nfsdfs::cld::Encode(ReplyTo(req, status));
  std::string on_failure =
      status == 0 ? nfsdfs::cld::Encode(ReplyTo(req, -EIO)) : r;
  reply.Send(status, std::move(r), std::move(on_failure));
}

std::string ClientForLog(const std::string& id) {
  return nfsdfs::EscapeForLog(id.substr(0, 80)) + (id.size() > 80 ? "..." : "");
}

// One downcall per allowed client, each one write of one message.
class CldAllowList : public tracker::AllowList {
 public:
  CldAllowList(Reply& reply, const Message& req)
      : reply_(reply), req_(req) {}
  Offer Add(const store::ClientRow& r) override {
    if (req_.vers < 2 && !r.princhash.empty()) return Offer::kWithheld;
    Message m = ReplyTo(req_, -EINPROGRESS);
    m.name = r.id;
    m.princhash = r.princhash;
    return reply_.WriteNow(nfsdfs::cld::Encode(m)) ? Offer::kAllowed
                                                   : Offer::kUndelivered;
  }

 private:
  Reply& reply_;
  const Message& req_;
};

// A kernel that did not announce its grace period (one that never sent
// GraceStart to this database, or a per-client Check kernel): starts the
// instance it evidently runs, without an allow list. Returns false after a
// storage failure.
bool AdoptInstance(tracker::Transaction& t, const Message& req) {
  tracker::Transaction::Started st;
  if (t.Start({std::nullopt, true}, nullptr, &st) !=
      tracker::Transaction::StartResult::kStarted)
    return false;
  LOG_WARNING(
      "scope %s: cld %s %u arrived %s; started server instance %lld "
      "for it (%lld stale record(s) removed)",
      t.scope().c_str(), nfsdfs::cld::CommandName(req.cmd), req.xid,
      req.cmd == static_cast<uint8_t>(Command::kCheck)
          ? "outside a grace period known to this database"
          : "before any server instance was started",
      static_cast<long long>(st.instance), static_cast<long long>(st.purged));
  return true;
}

void HandleGraceStart(tracker::Transaction& t, const Message& req,
                      Reply& reply) {
  // nfsd runs the instance whatever the answer: one that is not recorded
  // here is recorded later (tracker.h, pending steps).
  t.NoteStartAttempt(false);
  CldAllowList list(reply, req);
  tracker::Transaction::Started st;
  switch (t.Start({std::nullopt, false}, &list, &st)) {
    case tracker::Transaction::StartResult::kStarted:
      break;
    case tracker::Transaction::StartResult::kUndelivered:
      LOG_ERROR(
          "scope %s: the allow list for cld GraceStart %u was not wholly "
          "written to the pipe; answered -EIO so that the kernel does not "
          "take a part of the list for all of it, and nothing of the start "
          "is kept",
          t.scope().c_str(), req.xid);
      Answer(reply, req, -EIO);
      return;
    case tracker::Transaction::StartResult::kFailed:
      Answer(reply, req, -EIO);
      return;
  }
  if (st.withheld > 0) {
    LOG_WARNING(
        "scope %s: %lld client(s) recorded with a principal hash are "
        "not allowed to reclaim: a version-1 cld kernel cannot check "
        "their principal",
        t.scope().c_str(), static_cast<long long>(st.withheld));
  }
  LOG_NOTICE(
      "scope %s: server instance %lld starts its grace period (cld "
      "version %u)%s; %lld client(s) may reclaim, %lld stale "
      "record(s) removed",
      t.scope().c_str(), static_cast<long long>(st.instance), req.vers,
      st.restart_in_grace
          ? "; the previous instance never ended its grace period"
          : "",
      static_cast<long long>(st.allowed), static_cast<long long>(st.purged));
  t.NoteStartAttempt(true);
  Answer(reply, req, 0);
}

void HandleCreate(tracker::Transaction& t, const Message& req,
                  Reply& reply) {
  // A cld upcall names no instance: it applies to the current one.
  if (t.state().current() || AdoptInstance(t, req))
    t.Record(*t.state().current(), req.name, req.princhash, std::nullopt);
  LOG_DEBUG("cld Create %u: client %s in %s", req.xid,
            ClientForLog(req.name).c_str(),
            tracker::DescribeInstance(t.state().current()).c_str());
  Answer(reply, req, 0);  // -EIO if the batch fails
}

void HandleRemove(tracker::Transaction& t, const Message& req,
                  Reply& reply) {
  bool existed = false;
  t.Remove(req.name, &existed);
  LOG_DEBUG("cld Remove %u: client %s %s", req.xid,
            ClientForLog(req.name).c_str(),
            existed ? "removed" : "was not recorded");
  Answer(reply, req, 0);
}

void HandleCheck(tracker::Transaction& t, const Message& req,
                 Reply& reply) {
  std::optional<store::ClientRow> before;
  if (t.failed() || (!t.state().in_grace() && !AdoptInstance(t, req)) ||
      !t.Lookup(req.name, &before)) {
    Answer(reply, req, -EIO);
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
    Answer(reply, req, -EACCES);
    return;
  }
  // Allowed: the client reclaims, so it is recorded in this instance.
  if (t.Record(*t.state().current(), req.name, before->princhash,
               std::nullopt)) {
    LOG_DEBUG("cld Check %u: client %s may reclaim", req.xid,
              ClientForLog(req.name).c_str());
  }
  Answer(reply, req, 0);
}

void HandleGraceDone(tracker::Transaction& t, const Message& req,
                     Reply& reply) {
  recovery::ScopeState st = t.state();
  if (!st.in_grace()) {
    t.NoteGraceEndAttempt(0);  // of an instance whose start was missed?
    LOG_INFO(
        "cld GraceDone %u: scope %s is not in a grace period (%s); "
        "nothing to end",
        req.xid, t.scope().c_str(),
        tracker::DescribeInstance(st.current()).c_str());
    Answer(reply, req, 0);
    return;
  }
  // The kernel ends its grace period whatever we answer: if this batch
  // does not commit, the tracker records the end later.
  int64_t instance = *st.new_boot_time;
  t.NoteGraceEndAttempt(instance);
  bool ended =
      t.EndGrace(instance, "cld GraceDone " + std::to_string(req.xid));
  Answer(reply, req, ended ? 0 : -EIO);
}

}  // namespace

nfsdfs::Parsed<Message> ParseCldUpcall(std::string_view msg) {
  auto decoded = nfsdfs::cld::DecodeUpcall(msg);
  if (auto* m = std::get_if<Message>(&decoded)) {
    auto cmd = static_cast<Command>(m->cmd);
    bool names_client = cmd == Command::kCreate || cmd == Command::kRemove ||
                        cmd == Command::kCheck;
    if (names_client && m->name.empty()) {
      nfsdfs::ParseError err;
      err.seq = m->xid;
      err.reason = "empty client id";
      return err;
    }
  }
  return decoded;
}

std::string EncodeCldRefusal(std::string_view msg, uint64_t seq, int status) {
  Message req;
  req.xid = static_cast<uint32_t>(seq);
  req.cmd = msg.size() > 1 ? static_cast<uint8_t>(msg[1]) : 0;
  // The kernel accepts a downcall only at the size of its messages, which is
  // the size of what it sent when that is a size it can send.
  uint8_t vers = msg.empty() ? 1 : static_cast<uint8_t>(msg[0]);
  if (msg.size() == nfsdfs::cld::MessageSize(1))
    req.vers = 1;
  else if (msg.size() == nfsdfs::cld::MessageSize(2))
    req.vers = 2;
  else
    req.vers = nfsdfs::cld::MessageSize(vers) ? vers : 1;
  return nfsdfs::cld::Encode(ReplyTo(req, status));
}

void HandleCld(tracker::Transaction& t, const Message& req,
               Reply& reply) {
  LOG_DEBUG("cld: %s upcall %u, version %u", nfsdfs::cld::CommandName(req.cmd),
            req.xid, req.vers);
  switch (static_cast<Command>(req.cmd)) {
    case Command::kGetVersion: {
      // Every kernel that asks knows version 2 and clamps the answer to
      // what it speaks; the reply has the size of the upcall.
      Message m = ReplyTo(req, 0);
      m.version = nfsdfs::cld::kHighestVersion;
      std::string r = nfsdfs::cld::Encode(m);
      reply.Send(0, r, r);
      return;
    }
    case Command::kGraceStart:
      HandleGraceStart(t, req, reply);
      return;
    case Command::kCreate:
      HandleCreate(t, req, reply);
      return;
    case Command::kRemove:
      HandleRemove(t, req, reply);
      return;
    case Command::kCheck:
      HandleCheck(t, req, reply);
      return;
    case Command::kGraceDone:
      HandleGraceDone(t, req, reply);
      return;
  }
  LOG_WARNING(
      "cld: unknown command %u in upcall %u refused with "
      "-EOPNOTSUPP",
      req.cmd, req.xid);
  Answer(reply, req, -EOPNOTSUPP);
}

}  // namespace nfsdh::channels
