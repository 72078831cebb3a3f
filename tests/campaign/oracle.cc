#include "tests/campaign/oracle.h"

namespace nfsdh::campaign {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kMustAllow:
      return "must allow";
    case Verdict::kMustNotAllow:
      return "must not allow";
    case Verdict::kMay:
      return "may allow";
  }
  return "?";
}

void Oracle::Create(const std::string& id, bool acked) {
  Client& c = clients_[id];
  std::string i = std::to_string(current_);
  if (acked) {
    c.must = current_;
    c.why += "acked create in instance " + i + "; ";
  } else {
    // A record that existed keeps a stamp at least as old as before.
    c.why += "uncertain create in instance " + i + "; ";
  }
  c.may = current_;
}

void Oracle::Expire(const std::string& id, bool acked) {
  Client& c = clients_[id];
  std::string i = std::to_string(current_);
  c.must.reset();
  if (acked) {
    c.may.reset();
    c.why += "acked expire in instance " + i + "; ";
  } else {
    c.why += "uncertain expire in instance " + i + "; ";
  }
}

void Oracle::GraceCompleted(bool certain) {
  for (auto& [id, c] : clients_) {
    bool touched = false;
    if (c.must && *c.must < current_) {
      c.must.reset();
      touched = true;
    }
    if (certain && c.may && *c.may < current_) {
      c.may.reset();
      touched = true;
    }
    if (touched)
      c.why += std::string(certain ? "missed the grace period"
                                   : "may have missed the grace period") +
               " of instance " + std::to_string(current_) + "; ";
  }
}

Verdict Oracle::Classify(const std::string& id) const {
  auto it = clients_.find(id);
  if (it == clients_.end() || !it->second.may) return Verdict::kMustNotAllow;
  if (it->second.must) return Verdict::kMustAllow;
  return Verdict::kMay;
}

std::string Oracle::Explain(const std::string& id) const {
  auto it = clients_.find(id);
  std::string why = it == clients_.end() ? "" : it->second.why;
  if (why.empty()) why = "never created; ";
  return why + "now " + VerdictName(Classify(id));
}

}  // namespace nfsdh::campaign
