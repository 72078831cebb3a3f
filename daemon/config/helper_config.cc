#include "daemon/config/helper_config.h"

#include <string_view>

#include "nfsdfs-proto/qword.h"

namespace nfsdh::config {
namespace {

enum class Kind { kPath, kScope, kBool, kSeconds };

// A key of [nfsd-helper] and the option it sets.
struct Key {
  const char* name;
  const char* flag;  // the command-line option that wins over it
  Kind kind;
  std::string Options::*text;  // kPath, kScope, kSeconds
  bool Options::*on;           // kBool
  bool GivenOptions::*given;
};

const Key kKeys[] = {
    {"nfsdfs", "--nfsdfs", Kind::kPath, &Options::nfsdfs, nullptr,
     &GivenOptions::nfsdfs},
    {"db", "--db", Kind::kPath, &Options::db, nullptr, &GivenOptions::db},
    {"scope", "--scope", Kind::kScope, &Options::scope, nullptr,
     &GivenOptions::scope},
    {"foreground", "--foreground", Kind::kBool, nullptr, &Options::foreground,
     &GivenOptions::foreground},
    {"debug", "--debug", Kind::kBool, nullptr, &Options::debug,
     &GivenOptions::debug},
    {"ctl-socket", "--ctl-socket", Kind::kPath, &Options::ctl_socket, nullptr,
     &GivenOptions::ctl_socket},
    {"cld-pipe", "--cld-pipe", Kind::kPath, &Options::cld_pipe, nullptr,
     &GivenOptions::cld_pipe},
    {"nfsdcld-db", "--nfsdcld-db", Kind::kPath, &Options::nfsdcld_db, nullptr,
     &GivenOptions::nfsdcld_db},
    {"nfsdcltrack-db", "--nfsdcltrack-db", Kind::kPath,
     &Options::nfsdcltrack_db, nullptr, &GivenOptions::nfsdcltrack_db},
    {"idmap", "--idmap", Kind::kBool, nullptr, &Options::idmap,
     &GivenOptions::idmap},
    {"idmap-conf", "--idmap-conf", Kind::kPath, &Options::idmap_conf, nullptr,
     &GivenOptions::idmap_conf},
    {"idmap-cache-timeout", "--idmap-cache-timeout", Kind::kSeconds,
     &Options::idmap_cache_timeout, nullptr,
     &GivenOptions::idmap_cache_timeout},
    {"idmap-rpc-dir", "--idmap-rpc-dir", Kind::kPath, &Options::idmap_rpc_dir,
     nullptr, &GivenOptions::idmap_rpc_dir},
    {"ha-callout", "--ha-callout", Kind::kPath, &Options::ha_callout, nullptr,
     &GivenOptions::ha_callout},
    {"ha-callout-timeout", "--ha-callout-timeout", Kind::kSeconds,
     &Options::ha_callout_timeout, nullptr, &GivenOptions::ha_callout_timeout},
};
constexpr char kKnownKeys[] =
    "nfsdfs, db, scope, foreground, debug, ctl-socket, cld-pipe, idmap, idmap-conf, "
    "idmap-cache-timeout, idmap-rpc-dir, nfsdcld-db, nfsdcltrack-db, "
    "ha-callout, ha-callout-timeout";

bool InHelperSection(std::string_view section, bool in_subsection) {
  return !in_subsection && EqualsIgnoreCase(section, kHelperSection);
}

bool InHelperSection(const Assignment& a) {
  return InHelperSection(a.section, a.subsection.has_value());
}

const Key* FindKey(std::string_view name) {
  for (const Key& k : kKeys) {
    if (EqualsIgnoreCase(name, k.name)) return &k;
  }
  return nullptr;
}

std::string Quoted(std::string_view s) {
  return "'" + nfsdfs::EscapeForLog(s) + "'";
}

// What is wrong with `value` for `key`, or "" if it is good.
std::string Problem(const Key& key, const std::string& value) {
  switch (key.kind) {
    case Kind::kPath:
      return "";  // any non-empty path, as on the command line
    case Kind::kScope:
      return ValidScopeName(value) ? ""
                                   : "use 1-64 characters of A-Z a-z 0-9 . _ -";
    case Kind::kBool:
      return ParseBool(value) ? ""
                              : "not a boolean: use 1, t, true, y, yes or on, "
                                "or 0, f, false, n, no or off";
    case Kind::kSeconds: {
      int64_t seconds;
      return ParseSeconds(value, &seconds)
                 ? ""
                 : "give a number of seconds, 1 to 31536000";
    }
  }
  return "";
}

const char* WhatToGive(Kind kind) {
  switch (kind) {
    case Kind::kPath:
      return "a path";
    case Kind::kScope:
      return "a scope name";
    case Kind::kBool:
      return "a boolean";
    case Kind::kSeconds:
      return "a number of seconds";
  }
  return "a value";
}

// Checks the assignment of `key` in force and applies it to *opts unless the
// command line gave the option.
void ApplyKey(const Conf& conf, const Key& key, const Assignment& last,
              const EnvFn& env, Options* opts, ConfigReport* report) {
  const bool given = opts->given.*key.given;
  std::string where = last.origin.ToString() + ": [" + kHelperSection + "] " +
                      nfsdfs::EscapeForLog(last.key);
  std::string value, problem;
  if (last.value.empty()) {
    // nfs-utils ignores an empty assignment; refuse it rather than let a
    // line that looks like it resets the option do nothing.
    problem = std::string("empty value: give ") + WhatToGive(key.kind) +
              ", or remove the line for the default";
  } else {
    where += " " + Quoted(last.value);
    Status s = conf.Expand(last, &value, env);
    if (!s.ok()) {
      problem = s.message();
    } else {
      if (value != last.value) where += " (" + Quoted(value) + ")";
      problem = Problem(key, value);
    }
  }
  if (!problem.empty()) {
    if (given) {
      report->warnings.push_back(where + ": " + problem + " (not used: " +
                                 key.flag + " is on the command line)");
    } else {
      report->errors.push_back(where + ": " + problem);
    }
    return;
  }
  if (given) return;
  if (key.kind == Kind::kBool) {
    opts->*key.on = *ParseBool(value);
  } else {
    opts->*key.text = value;
  }
  opts->configured.*key.given = true;
  report->applied.push_back(std::string(key.name) + " = " + Quoted(value) +
                            " (" + last.origin.ToString() + ")");
}

// The last assignment of `key` in section `section` (not a subsection).
const Assignment* LastIn(const Conf& conf, std::string_view section,
                         std::string_view key) {
  const Assignment* last = nullptr;
  for (const Assignment& a : conf.assignments()) {
    if (!a.subsection && EqualsIgnoreCase(a.section, section) &&
        EqualsIgnoreCase(a.key, key))
      last = &a;
  }
  return last;
}

// Where nfs-utils' own settings move a default of ours: the cld pipe lives
// in [general] pipefs-directory (Debian sets /run/rpc_pipefs), and
// nfsdcld's database in [nfsdcld] storagedir. nfsdcld reads both; a helper
// that replaces it must look where it looked. Keys of [nfsd-helper] and the
// command line win over these.
struct SharedDefault {
  const char* section;
  const char* key;
  const char* suffix;  // appended to the directory
  std::string Options::*text;
  bool GivenOptions::*given;
  const char* ours;  // the key of [nfsd-helper] it stands in for
};

const SharedDefault kSharedDefaults[] = {
    {"general", "pipefs-directory", "/nfsd/cld", &Options::cld_pipe,
     &GivenOptions::cld_pipe, "cld-pipe"},
    {"nfsdcld", "storagedir", "/main.sqlite", &Options::nfsdcld_db,
     &GivenOptions::nfsdcld_db, "nfsdcld-db"},
};

void ApplySharedDefaults(const Conf& conf, Options* opts,
                         ConfigReport* report, const EnvFn& env) {
  for (const SharedDefault& d : kSharedDefaults) {
    if (opts->given.*d.given || opts->configured.*d.given) continue;
    const Assignment* a = LastIn(conf, d.section, d.key);
    if (a == nullptr || a->value.empty()) continue;  // nfs-utils ignores it
    std::string where = a->origin.ToString() + ": [" + d.section + "] " +
                        d.key + " " + Quoted(a->value);
    std::string dir;
    Status s = conf.Expand(*a, &dir, env);
    if (!s.ok() || dir.empty()) {
      // Not ours to refuse: nfsdcld would fail on it in its own way.
      report->warnings.push_back(
          where + ": " + (s.ok() ? std::string("empty") : s.message()) +
          "; nfsd-helper keeps its default " + d.ours + " " +
          Quoted(opts->*d.text));
      continue;
    }
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    opts->*d.text = dir + d.suffix;
    report->applied.push_back(std::string(d.ours) + " = " +
                              Quoted(opts->*d.text) + " (" +
                              a->origin.ToString() + ": [" + d.section +
                              "] " + d.key + ")");
  }
}

}  // namespace

std::vector<std::string> KnownKeys() {
  std::vector<std::string> out;
  for (const Key& k : kKeys) out.push_back(k.name);
  return out;
}

void ApplyHelperSection(const Conf& conf, Options* opts, ConfigReport* report,
                        const EnvFn& env) {
  for (const Diagnostic& d : conf.diagnostics()) {
    if (InHelperSection(d.section, d.in_subsection)) {
      report->errors.push_back(d.ToString());
    } else {
      report->warnings.push_back(d.ToString());
    }
  }
  for (const Header& h : conf.headers()) {
    if (h.subsection && EqualsIgnoreCase(h.section, kHelperSection)) {
      report->warnings.push_back(h.origin.ToString() + ": [" + kHelperSection +
                                 " \"" + nfsdfs::EscapeForLog(*h.subsection) +
                                 "\"]: nfsd-helper reads only [" +
                                 kHelperSection + "]; this section is ignored");
    }
  }
  for (const Assignment& a : conf.assignments()) {
    if (InHelperSection(a) && FindKey(a.key) == nullptr) {
      report->warnings.push_back(a.origin.ToString() + ": [" + kHelperSection +
                                 "] unknown key " + Quoted(a.key) +
                                 " ignored; known keys: " + kKnownKeys);
    }
  }
  for (const Key& key : kKeys) {
    // The last assignment decides, even an empty one (see ApplyKey).
    const Assignment* last = nullptr;
    for (const Assignment& a : conf.assignments()) {
      if (InHelperSection(a) && EqualsIgnoreCase(a.key, key.name)) last = &a;
    }
    if (last != nullptr) ApplyKey(conf, key, *last, env, opts, report);
  }
  ApplySharedDefaults(conf, opts, report, env);
}

Status LoadHelperConfig(Options* opts, ConfigReport* report, const EnvFn& env) {
  Conf conf;
  Status s = LoadConf(opts->config, opts->given.config, &conf);
  if (!s.ok()) return s;
  ApplyHelperSection(conf, opts, report, env);
  size_t n = report->errors.size();
  if (n == 0) return Status::Ok();
  return Status::Invalid(std::to_string(n) + (n == 1 ? " error" : " errors") +
                         " in the configuration (" +
                         nfsdfs::EscapeForLog(opts->config) + ")");
}

}  // namespace nfsdh::config
