// framing.cpp: see framing.h. The length is checked as soon as its four
// bytes are in, before any payload is kept; a payload that fills the buffer
// exactly is moved out rather than copied (a large record is one frame).
#include "sandbox/base/framing.h"

#include <unistd.h>

#include <cerrno>

namespace bsandbox {
namespace {

uint32_t load_le32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

}  // namespace

void FrameReader::feed(std::string_view bytes) {
  if (error_) return;
  buffer_.append(bytes);
  if (buffer_.size() < 4) return;
  uint32_t n = load_le32(buffer_.data());
  if (n <= max_) return;
  error_ = "message of " + std::to_string(n) + " bytes is larger than the limit of " + std::to_string(max_);
  std::string().swap(buffer_);
}

Result<std::optional<std::string>> FrameReader::next() {
  if (error_) return fail(*error_);
  if (buffer_.size() < 4) return std::optional<std::string>();
  uint32_t n = load_le32(buffer_.data());
  if (buffer_.size() - 4 < n) return std::optional<std::string>();
  std::string payload;
  if (buffer_.size() == 4 + static_cast<size_t>(n)) {
    // The usual case, and the one a large record takes: no second copy.
    payload = std::move(buffer_);
    payload.erase(0, 4);
    buffer_.clear();
  } else {
    payload = buffer_.substr(4, n);
    buffer_.erase(0, 4 + static_cast<size_t>(n));
  }
  // The next frame's length is checked as soon as it is known.
  feed({});
  return std::optional<std::string>(std::move(payload));
}

std::string frame_header(uint32_t n) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

std::string frame(const google::protobuf::MessageLite& message) {
  std::string body = message.SerializeAsString();
  return frame_header(static_cast<uint32_t>(body.size())) + body;
}

Result<std::optional<std::string>> read_frame(int fd, uint32_t max_bytes) {
  auto read_exact = [fd](char* p, size_t len, bool* clean_eof) -> Result<void> {
    size_t got = 0;
    while (got < len) {
      ssize_t n = ::read(fd, p + got, len - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("reading from the socket", errno);
      if (n == 0) {
        if (clean_eof && got == 0) {
          *clean_eof = true;
          return {};
        }
        return fail("the connection closed in the middle of a message");
      }
      got += static_cast<size_t>(n);
    }
    return {};
  };
  char head[4];
  bool eof = false;
  if (auto r = read_exact(head, 4, &eof); !r) return tl::unexpected(r.error());
  if (eof) return std::optional<std::string>();
  uint32_t n = load_le32(head);
  if (n > max_bytes) return fail("message of " + std::to_string(n) + " bytes is larger than the limit");
  std::string payload(n, '\0');
  if (auto r = read_exact(payload.data(), n, nullptr); !r) return tl::unexpected(r.error());
  return std::optional<std::string>(std::move(payload));
}

}  // namespace bsandbox
