#include "daemon/channels/cld_pipe.h"

#include <unistd.h>

#include <cerrno>

#include "nfsdfs-proto/cld.h"

namespace nfsdh {
namespace {

// One byte more than the largest message, so that an oversized one shows as
// such (and is refused by the handler).
constexpr size_t kReadBuffer = nfsdfs::cld::kMaxMessageSize + 1;

loop::ReopeningChannel::Options PipeOptions(std::string path) {
  loop::ReopeningChannel::Options o;
  o.path = std::move(path);
  o.framing = loop::Framer::Kind::kMessage;
  o.read_buffer = kReadBuffer;
  o.appearance = loop::ReopeningChannel::Appearance::kInotify;
  o.log_prefix = "cld: ";
  o.missing_hint = " (nfsd creates it when it starts)";
  o.missing_dir_hint = " (is rpc_pipefs mounted?)";
  o.log_open_close = true;
  return o;
}

}  // namespace

CldRead ReadCldMessages(int fd, std::vector<std::string>* out, size_t max,
                        int* error) {
  char buf[kReadBuffer];
  if (error) *error = 0;
  while (out->size() < max) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out->emplace_back(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return CldRead::kDrained;  // an empty pipe reads 0 bytes
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return CldRead::kDrained;
    if (error) *error = errno;  // EPIPE: the kernel removed the pipe
    return CldRead::kClosed;
  }
  return CldRead::kDrained;
}

CldPipe::CldPipe(loop::Loop& loop, std::string path,
                 std::function<void()> on_readable,
                 std::function<void()> on_change)
    : pipe_(loop, PipeOptions(std::move(path)), std::move(on_readable),
            std::move(on_change)) {}

void CldPipe::Drain(std::vector<std::string>* out, size_t max) {
  loop::Message m;
  while (out->size() < max &&
         pipe_.Read(&m) == loop::ReopeningChannel::ReadResult::kMessage)
    out->push_back(std::move(m.data));
}

}  // namespace nfsdh
