#include "daemon/config/helper_config.h"

#include <string_view>

#include "nfsdfs-proto/qword.h"

namespace nfsdh::config {
namespace {

// The keys of [nfsd-helper] are the options of daemon/options.h's table
// that have one (ConfKey::kSameName), named as the long option.
bool IsKey(const OptionDef& d) { return d.conf == ConfKey::kSameName; }

// "nfsdfs, cld-pipe, ...": the keys, for the warning about an unknown one.
std::string KnownKeyList() {
  std::string out;
  for (const std::string& k : KnownKeys()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

bool InHelperSection(std::string_view section, bool in_subsection) {
  return !in_subsection && EqualsIgnoreCase(section, kHelperSection);
}

bool InHelperSection(const Assignment& a) {
  return InHelperSection(a.section, a.subsection.has_value());
}

const OptionDef* FindKey(std::string_view name) {
  for (const OptionDef& d : OptionTable()) {
    if (IsKey(d) && EqualsIgnoreCase(name, d.name)) return &d;
  }
  return nullptr;
}

std::string Quoted(std::string_view s) {
  return "'" + nfsdfs::EscapeForLog(s) + "'";
}

// What is wrong with `value` for `key`, or "" if it is good: the command
// line's check, except that a flag is a boolean here.
std::string Problem(const OptionDef& key, const std::string& value) {
  if (key.kind == OptionKind::kFlag)
    return ParseBool(value) ? ""
                            : "not a boolean: use 1, t, true, y, yes or on, "
                              "or 0, f, false, n, no or off";
  return OptionValueProblem(key, value);
}

const char* WhatToGive(OptionKind kind) {
  switch (kind) {
    case OptionKind::kPath:
    case OptionKind::kPathOrNone:
      return "a path";
    case OptionKind::kAbsolutePath:
      return "an absolute path";
    case OptionKind::kScope:
      return "a scope name";
    case OptionKind::kName:
      return "a name";
    case OptionKind::kUrls:
      return "a list of URLs";
    case OptionKind::kFlag:
      return "a boolean";
    case OptionKind::kSeconds:
      return "a number of seconds";
  }
  return "a value";
}

// Checks the assignment of `key` in force and applies it to *opts unless the
// command line gave the option.
void ApplyKey(const Conf& conf, const OptionDef& key, const Assignment& last,
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
      report->warnings.push_back(where + ": " + problem + " (not used: --" +
                                 key.name + " is on the command line)");
    } else {
      report->errors.push_back(where + ": " + problem);
    }
    return;
  }
  if (given) return;
  if (key.kind == OptionKind::kFlag) {
    opts->*key.flag = *ParseBool(value);
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
  for (const OptionDef& d : OptionTable())
    if (IsKey(d)) out.push_back(d.name);
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
                                 " ignored; known keys: " + KnownKeyList());
    }
  }
  for (const OptionDef& key : OptionTable()) {
    if (!IsKey(key)) continue;
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
