#include "daemon/store/pending_steps.h"

#include <cerrno>
#include <cstdlib>

#include "daemon/util/fs.h"

namespace nfsdh::store {

std::string PendingStepsPath(const std::string& db, const std::string& scope) {
  return db + ".grace-end." + scope;
}

std::string FormatPendingSteps(
    const std::vector<recovery::PendingStep>& steps) {
  std::string text;
  for (const recovery::PendingStep& op : steps) {
    text += op.start      ? "start\n"
            : op.instance ? "end " + std::to_string(*op.instance) + "\n"
                          : "end\n";
  }
  return text;
}

bool ParsePendingSteps(const std::string& text,
                       std::vector<recovery::PendingStep>* steps) {
  std::vector<recovery::PendingStep> ops;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(
        pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line == "start") {
      ops.push_back({true, std::nullopt});
    } else if (line == "end") {
      ops.push_back({false, std::nullopt});
    } else if (line.rfind("end ", 0) == 0) {
      const std::string digits = line.substr(4);
      char* end = nullptr;
      errno = 0;
      long long instance = strtoll(digits.c_str(), &end, 10);
      if (digits.empty() || digits[0] < '1' || digits[0] > '9' || errno != 0 ||
          *end != '\0')
        return false;
      ops.push_back({false, static_cast<int64_t>(instance)});
    } else {
      return false;
    }
  }
  if (ops.empty()) return false;
  *steps = std::move(ops);
  return true;
}

Status ReadPendingSteps(const std::string& path,
                        std::vector<recovery::PendingStep>* steps) {
  steps->clear();
  std::string text;
  Status s = ReadSmallFile(path, 64 * 1024, &text);
  if (s.code() == Status::Code::kNotFound) return Status::Ok();
  if (!s.ok()) return s;
  if (!ParsePendingSteps(text, steps)) {
    return Status::Invalid(path +
                           ": not understood; remove it only if you know "
                           "what nfsd did since the database's last record");
  }
  return Status::Ok();
}

}  // namespace nfsdh::store
