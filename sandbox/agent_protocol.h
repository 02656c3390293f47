// agent_protocol.h: frames, file descriptors and validation for bsandboxd's
// socket (agent.proto describes the messages).
//
// FrameReader is the decoder the agent runs on bytes from any local user: it
// never allocates more than the frame limit, and every way a frame can be
// wrong (too long, cut short, not a Request, a Request that makes no sense)
// is an Error naming what was wrong. It is what the fuzzer drives
// (tests/fuzz/agent_decoder_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/result.h"
#include "sandbox/traced_run.h"
#include "sandbox/unique_fd.h"
#include "agent.pb.h"

namespace bsandbox {

inline constexpr const char* kDefaultAgentSocket = "/run/bsandbox/agent.sock";
inline constexpr uint32_t kMaxRequestBytes = 4u << 20;
inline constexpr uint32_t kMaxReplyBytes = 1u << 30;

// Submit.fds bits.
enum : uint32_t { kFdStdin = 1, kFdStdout = 2, kFdStderr = 4 };

class FrameReader {
 public:
  explicit FrameReader(uint32_t max_bytes) : max_(max_bytes) {}
  // Appends bytes received.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole frame's payload, nothing if more bytes are needed, or an
  // error (the stream cannot be resynchronised after one).
  Result<std::optional<std::string>> next();
  // At end of stream: bytes of a frame that never completed.
  bool partial() const { return !buffer_.empty(); }

 private:
  uint32_t max_;
  std::string buffer_;
};

// Frames a message.
std::string frame(const google::protobuf::MessageLite& message);

// A request frame as the agent accepts it: parsed, and sensible given the
// number of descriptors that came with it.
Result<agent::Request> parse_request(std::string_view payload, size_t fds);

// Blocking I/O for the client and the job runner. send_frame attaches fds
// (SCM_RIGHTS) to the first byte. read_frame returns nothing at a clean end
// of stream (before any byte of a frame).
Result<void> send_frame(int fd, const google::protobuf::MessageLite& message, const std::vector<int>& fds = {});
Result<std::optional<std::string>> read_frame(int fd, uint32_t max_bytes);

// Non-blocking receive of bytes and descriptors (close-on-exec). Returns
// bytes read (0 at end of stream) or -errno.
ssize_t receive_with_fds(int fd, char* buf, size_t len, std::vector<UniqueFd>& fds);

// Finished <-> TracedRun (the record, problems, first accesses).
agent::Finished to_finished(const TracedRun& run, bool with_priors);
Result<TracedRun> from_finished(const agent::Finished& finished);

}  // namespace bsandbox
