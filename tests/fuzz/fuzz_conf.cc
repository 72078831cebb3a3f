// Fuzz target for the nfs.conf reader (daemon/config/conf.h): ParseConf of
// any text. Besides "no crash" it checks that every assignment and header
// has a lower-cased section, a non-empty key, a line within the text, and
// that Find returns the last non-empty assignment of its key, and that
// every diagnostic renders. Includes are looked up relative to a directory
// that does not exist, so the input alone decides the outcome.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config/conf.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // Absolute includes would read the fuzzing machine's files.
  if (text.find("include") != std::string::npos &&
      text.find('/') != std::string::npos)
    return 0;
  nfsdh::config::Conf conf;
  nfsdh::Status s = nfsdh::config::ParseConf(
      text, "/nonexistent-nfsdh-fuzz/nfs.conf", &conf);
  if (!s.ok()) {
    FUZZ_CHECK(!s.ToString().empty());
    return 0;
  }
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  for (const auto& a : conf.assignments()) {
    FUZZ_CHECK(a.origin.line >= 1 &&
               static_cast<size_t>(a.origin.line) <= lines);
    FUZZ_CHECK(!a.key.empty());
    for (char c : a.section) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
    if (a.subsection || a.value.empty()) continue;
    const auto* found = conf.Find(a.section, a.key);
    FUZZ_CHECK(found != nullptr);
    FUZZ_CHECK(nfsdh::config::EqualsIgnoreCase(found->key, a.key));
    FUZZ_CHECK(!found->value.empty());
  }
  // Find gives the last non-empty assignment of a key.
  for (const auto& a : conf.assignments()) {
    const auto* found = conf.Find(a.section, a.key);
    if (!found) continue;
    const nfsdh::config::Assignment* last = nullptr;
    for (const auto& b : conf.assignments())
      if (!b.subsection && b.section == a.section && !b.value.empty() &&
          nfsdh::config::EqualsIgnoreCase(b.key, a.key))
        last = &b;
    FUZZ_CHECK(found == last);
  }
  for (const auto& h : conf.headers())
    for (char c : h.section) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  for (const auto& d : conf.diagnostics())
    FUZZ_CHECK(!d.ToString().empty());
  return 0;
}
