// helper-ctl dump: shows every scope of an nfsd-helper database and its client
// records, as an aligned table or as one JSON document.
//
// The database is opened read-only (Store::Mode::kReadOnly), so dump is safe
// while the daemon runs: in WAL mode a reader neither blocks the writer nor
// sees its uncommitted changes. Clients are streamed with
// Store::ForEachClient and written as they are read, in both formats, so a
// scope with millions of records costs no memory.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>

#include "ctl/args.h"
#include "ctl/dispatch.h"
#include "ctl/format.h"
#include "ctl/verbs.h"
#include "daemon/options.h"
#include "daemon/store/store.h"
#include "daemon/util/fs.h"
#include "nfsdfs-proto/qword.h"

namespace nfsdh::ctl {
namespace {

using store::ClientRow;
using store::ScopeRow;
using store::Store;
using Json = nlohmann::ordered_json;

// Text from the database (scope names, paths) may hold any bytes: invalid
// UTF-8 is replaced rather than thrown on.
std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json OptInt(const std::optional<int64_t>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json OptTime(const std::optional<int64_t>& v) {
  return v ? Json(IsoTime(*v)) : Json(nullptr);
}

std::optional<int64_t> CurrentInstance(const ScopeRow& s) {
  return s.new_boot_time ? s.new_boot_time : s.boot_time;
}

// Says what went wrong with the database at `db`, in words an operator can
// act on. Returns kExitError.
int ReportError(const std::string& db, const Status& s, std::ostream& err) {
  const std::string shown = nfsdfs::EscapeForLog(db);
  err << kProgram << ": ";
  switch (s.code()) {
    case Status::Code::kNotFound:
      err << "no database at " << shown
          << ": is nfsd-helper configured to use another --db?\n";
      break;
    case Status::Code::kPermission:
      err << "permission denied: " << s.message() << "\n"
          << kProgram << ": the database is readable by root only; run "
          << kProgram << " as root\n";
      break;
    case Status::Code::kCorrupt:
      err << "the database " << shown << " is corrupt: " << s.message() << "\n"
          << kProgram << ": nfsd-helper sets a corrupt database aside (renames"
          << " it to " << shown << ".corrupt-DATE) and starts an empty one"
          << " the next time it starts\n";
      break;
    case Status::Code::kInvalid:
      // "... is not an nfsd-helper database", "... has schema version 99".
      err << s.message() << "\n";
      break;
    default: {
      // SQLite says only "unable to open database file" or "attempt to
      // write a readonly database"; find out why.
      struct stat st;
      const std::string dir = DirName(db);
      if (stat(db.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        err << shown << " is a directory, not a database\n";
      } else if (stat((db + "-shm").c_str(), &st) != 0 && errno == ENOENT &&
                 access(dir.c_str(), W_OK) != 0) {
        // No process has the database open, and SQLite cannot create the
        // shared-memory index a reader of a WAL database needs.
        err << "cannot read " << shown << ": SQLite needs to create "
            << nfsdfs::EscapeForLog(db) << "-shm to read a database in WAL "
            << "mode, and " << nfsdfs::EscapeForLog(dir)
            << " is not writable; run " << kProgram
            << " as root, or copy the database to a writable directory\n";
      } else {
        err << "cannot read " << shown << ": " << s.ToString() << "\n";
      }
    }
  }
  return kExitError;
}

// --- the table ---

constexpr int kKeyWidth = 18;

void KeyLine(std::ostream& out, const char* key, const std::string& value) {
  std::string k = key;
  out << "  " << k << std::string(kKeyWidth - k.size(), ' ') << value << "\n";
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

constexpr size_t kTimeWidth = 20;       // 2025-11-22T00:37:40Z
constexpr size_t kPrinchashWidth = 64;  // 32 bytes of hex

Status TableScope(Store& store, const ScopeRow& scope, std::ostream& out) {
  int64_t count = 0;
  Status s = store.CountClients(scope.name, &count);
  if (!s.ok()) return s;

  out << "scope " << nfsdfs::EscapeForLog(scope.name) << "\n";
  KeyLine(out, "boot_time", TimeCell(scope.boot_time));
  KeyLine(out, "new_boot_time", TimeCell(scope.new_boot_time));
  KeyLine(out, "old_boot_time", TimeCell(scope.old_boot_time));
  KeyLine(out, "max_instance", std::to_string(scope.max_instance));
  KeyLine(out, "kernel_boot_time", TimeCell(scope.kernel_boot_time));
  std::string grace;
  if (scope.new_boot_time) {
    grace = scope.grace_started ? "open since " + IsoTime(*scope.grace_started)
                                : "open (start time unknown)";
  } else {
    grace = scope.grace_ended
                ? "closed, last ended " + IsoTime(*scope.grace_ended)
                : "closed, none has ended yet";
  }
  KeyLine(out, "grace", grace);
  KeyLine(out, "grace_started", TimeCell(scope.grace_started));
  KeyLine(out, "grace_ended", TimeCell(scope.grace_ended));
  KeyLine(out, "clients", std::to_string(count));

  // Every column but the last (the id) has a width known before the first
  // row: instances are at most max_instance, times and hashes are fixed.
  const size_t iw =
      std::max<size_t>(8, std::to_string(scope.max_instance).size());
  bool any = false;
  s = store.ForEachClient(scope.name, [&](const ClientRow& c) {
    if (!any) {
      out << "\n  " << PadLeft("INSTANCE", iw) << "  " << Pad("MINOR", 5)
          << "  " << Pad("FIRST_SEEN", kTimeWidth) << "  "
          << Pad("LAST_SEEN", kTimeWidth) << "  "
          << Pad("PRINCHASH", kPrinchashWidth) << "  ID\n";
      any = true;
    }
    out << "  " << PadLeft(std::to_string(c.instance), iw) << "  "
        << Pad(MinorName(c.minor), 5) << "  "
        << Pad(IsoTime(c.first_seen), kTimeWidth) << "  "
        << Pad(IsoTime(c.last_seen), kTimeWidth) << "  "
        << Pad(PrinchashCell(c.princhash), kPrinchashWidth) << "  "
        << IdCell(c.id) << "\n";
    return static_cast<bool>(out);
  });
  return s;
}

Status Table(Store& store, const std::string& db, const std::string& schema,
             const std::vector<ScopeRow>& scopes, std::ostream& out) {
  out << "database " << nfsdfs::EscapeForLog(db) << " (schema version "
      << schema << ")\n";
  if (scopes.empty())
    out << "no scopes: nfsd-helper has not started a server instance with "
           "this database yet\n";
  for (const ScopeRow& scope : scopes) {
    out << "\n";
    Status s = TableScope(store, scope, out);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// --- JSON ---
//
// Written as it is read: the scope fields and each client are serialized by
// nlohmann::json, the surrounding structure here, one client per line.

Json ClientJson(const ClientRow& c) {
  Json j;
  j["id_hex"] = nfsdfs::HexString(c.id);
  j["id_text"] = IsPrintable(c.id) ? Json(c.id) : Json(nullptr);
  j["princhash_hex"] = c.princhash.empty()
                           ? Json(nullptr)
                           : Json(nfsdfs::HexString(c.princhash));
  j["minor"] = c.minor;
  j["minor_version"] = MinorName(c.minor);
  j["instance"] = c.instance;
  j["first_seen"] = c.first_seen;
  j["first_seen_utc"] = IsoTime(c.first_seen);
  j["last_seen"] = c.last_seen;
  j["last_seen_utc"] = IsoTime(c.last_seen);
  return j;
}

Json ScopeFields(const ScopeRow& s) {
  Json j;
  j["name"] = s.name;
  j["boot_time"] = OptInt(s.boot_time);
  j["boot_time_utc"] = OptTime(s.boot_time);
  j["new_boot_time"] = OptInt(s.new_boot_time);
  j["new_boot_time_utc"] = OptTime(s.new_boot_time);
  j["old_boot_time"] = OptInt(s.old_boot_time);
  j["old_boot_time_utc"] = OptTime(s.old_boot_time);
  j["max_instance"] = s.max_instance;
  j["current_instance"] = OptInt(CurrentInstance(s));
  j["in_grace"] = s.new_boot_time.has_value();
  j["kernel_boot_time"] = OptInt(s.kernel_boot_time);
  j["kernel_boot_time_utc"] = OptTime(s.kernel_boot_time);
  j["grace_started"] = OptInt(s.grace_started);
  j["grace_started_utc"] = OptTime(s.grace_started);
  j["grace_ended"] = OptInt(s.grace_ended);
  j["grace_ended_utc"] = OptTime(s.grace_ended);
  return j;
}

Status JsonScope(Store& store, const ScopeRow& scope, std::ostream& out) {
  out << "    {";
  const Json fields = ScopeFields(scope);
  for (const auto& [key, value] : fields.items())
    out << "\n      " << Dump(key) << ": " << Dump(value) << ",";
  out << "\n      \"clients\": [";
  int64_t n = 0;
  Status s = store.ForEachClient(scope.name, [&](const ClientRow& c) {
    out << (n++ ? ",\n        " : "\n        ") << Dump(ClientJson(c));
    return static_cast<bool>(out);
  });
  if (!s.ok()) return s;
  // Counted from the rows written, so it always matches the array.
  out << (n ? "\n      ]" : "]") << ",\n      \"client_count\": " << n
      << "\n    }";
  return Status::Ok();
}

Status JsonDocument(Store& store, const std::string& db, int64_t schema,
                    const std::vector<ScopeRow>& scopes, std::ostream& out) {
  out << "{\n  \"database\": " << Dump(db)
      << ",\n  \"schema_version\": " << schema << ",\n  \"scopes\": [";
  for (size_t i = 0; i < scopes.size(); ++i) {
    out << (i ? ",\n" : "\n");
    Status s = JsonScope(store, scopes[i], out);
    if (!s.ok()) return s;
  }
  out << (scopes.empty() ? "]" : "\n  ]") << "\n}\n";
  return Status::Ok();
}

// --- the verb ---

int RunDump(const std::vector<std::string>& args, std::ostream& out,
            std::ostream& err) {
  ParsedArgs parsed;
  std::string error;
  if (!ParseArgs(args,
                 {{"--db", "PATH"}, {"--scope", "NAME"}, {"--json", nullptr}},
                 &parsed, &error))
    return UsageError(kDumpVerb, error, err);
  if (!parsed.operands.empty())
    return UsageError(kDumpVerb,
                      "unexpected argument '" + parsed.operands[0] + "'", err);
  const std::string db =
      parsed.has("--db") ? parsed.values["--db"] : std::string(kDefaultDb);

  std::unique_ptr<Store> store;
  Status s = Store::Open(db, Store::Mode::kReadOnly, &store);
  if (!s.ok()) return ReportError(db, s, err);

  // One snapshot for the whole dump, so that counts and rows agree even while
  // the daemon writes.
  s = store->BeginRead();
  if (!s.ok()) return ReportError(db, s, err);

  std::string schema;
  s = store->Pragma("user_version", &schema);
  if (!s.ok()) return ReportError(db, s, err);

  std::vector<ScopeRow> scopes;
  if (parsed.has("--scope")) {
    const std::string& name = parsed.values["--scope"];
    std::optional<ScopeRow> row;
    s = store->GetScope(name, &row);
    if (!s.ok()) return ReportError(db, s, err);
    if (!row) {
      std::vector<ScopeRow> all;
      s = store->ListScopes(&all);
      if (!s.ok()) return ReportError(db, s, err);
      std::vector<std::string> names;
      for (const ScopeRow& r : all) names.push_back(r.name);
      err << kProgram << ": no scope '" << nfsdfs::EscapeForLog(name) << "' in "
          << nfsdfs::EscapeForLog(db);
      if (auto near = Nearest(name, names)) {
        err << "; did you mean '" << nfsdfs::EscapeForLog(*near) << "'?\n";
      } else if (names.empty()) {
        err << "; it has no scopes yet\n";
      } else {
        err << "; its scopes are:";
        for (const std::string& n : names)
          err << " " << nfsdfs::EscapeForLog(n);
        err << "\n";
      }
      return kExitError;
    }
    scopes.push_back(std::move(*row));
  } else {
    s = store->ListScopes(&scopes);
    if (!s.ok()) return ReportError(db, s, err);
  }

  try {
    s = parsed.has("--json")
            ? JsonDocument(*store, db, std::stoll(schema), scopes, out)
            : Table(*store, db, schema, scopes, out);
  } catch (const std::exception& e) {  // nlohmann::json reports by throwing
    err << kProgram << ": cannot format the output: " << e.what() << "\n";
    return kExitError;
  }
  out.flush();
  if (!out) {
    err << kProgram << ": cannot write the output\n";
    return kExitError;
  }
  if (!s.ok()) return ReportError(db, s, err);
  return kExitOk;
}

}  // namespace

const Verb kDumpVerb = {
    "dump",
    "show the scopes and client records of an nfsd-helper database",
    "[--db PATH] [--scope NAME] [--json]",
    "  --db PATH     the database to read (default "
    "/var/lib/nfs/nfsd-helper/state.sqlite);\n"
    "                it is opened read-only, which is safe while nfsd-helper "
    "runs\n"
    "  --scope NAME  show this scope only (default: every scope)\n"
    "  --json        write one JSON document instead of a table\n"
    "\n"
    "Client ids made only of printable ASCII are shown in double quotes, with\n"
    "'\"' and '\\' escaped by a backslash; other ids in hex after \"0x\".\n"
    "Times are seconds since the epoch and UTC dates; \"-\" marks an unset "
    "value.\n",
    RunDump,
};

}  // namespace nfsdh::ctl
