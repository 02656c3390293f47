// framing.h: length-prefixed messages, the one framing of bsandbox's sockets
// (bsandboxd's, and a traced run's tracer service).
//
// A frame is a 4-byte little-endian length and that many bytes of payload
// (a serialized protobuf message). Every reader has a limit: a length over it
// is an error before any of the payload is held, so a peer cannot make the
// reader buffer more than one frame of at most that size.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/base/result.h"

namespace bsandbox {

// An incremental decoder, for bytes that arrive in pieces (a non-blocking
// server). It never holds more than one frame of at most its limit and the
// piece that completed it.
class FrameReader {
 public:
  explicit FrameReader(uint32_t max_bytes) : max_(max_bytes) {}
  // Appends bytes received. Once a frame says it is longer than the limit,
  // what it held is dropped and nothing more is kept: the error is final.
  void feed(std::string_view bytes);
  // The next whole frame's payload, nothing if more bytes are needed, or an
  // error (the stream cannot be resynchronised after one).
  Result<std::optional<std::string>> next();
  // At end of stream: bytes of a frame that never completed.
  bool partial() const { return !buffer_.empty(); }
  size_t buffered() const { return buffer_.size(); }

 private:
  uint32_t max_;
  std::string buffer_;
  std::optional<std::string> error_;
};

// Frames a message.
std::string frame(const google::protobuf::MessageLite& message);
// The 4-byte length that precedes a payload of n bytes.
std::string frame_header(uint32_t n);

// Blocking: the next frame's payload, nothing at a clean end of stream
// (before any byte of a frame), an error for a cut-short or too long one.
Result<std::optional<std::string>> read_frame(int fd, uint32_t max_bytes);

}  // namespace bsandbox
