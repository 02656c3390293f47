// agent_protocol.h: frames, file descriptors and validation for bsandboxd's
// socket (agent.proto describes the messages).
//
// FrameReader is the decoder the agent runs on bytes from any local user: it
// never holds more than one frame of at most its limit (and the piece that
// completed it), and every way a frame can be wrong (too long, cut short,
// not a Request, a Request that makes no sense) is an Error naming what was
// wrong. RequestReader adds the descriptors: those of a request come with
// its first byte, exactly as many as it names. Both are what the fuzzer drives
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
inline constexpr uint32_t kMaxReplyBytes = 1u << 30;  // bsandboxd --max-record is at most this
inline constexpr size_t kMaxRequestFds = 4;             // stdin, stdout, stderr, the working directory

// Submit.fds bits.
enum : uint32_t { kFdStdin = 1, kFdStdout = 2, kFdStderr = 4 };

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

// The one request of a connection, as recvmsg delivers it: pieces of bytes,
// each with the descriptors that came with it. send_frame attaches a
// request's descriptors to its first byte; descriptors with any later piece,
// more than a request may carry, or a second request are refused, and every
// descriptor of a refused request is closed at once: a client cannot make
// the agent hold more than kMaxRequestFds of them.
class RequestReader {
 public:
  explicit RequestReader(uint32_t max_bytes = kMaxRequestBytes) : frames_(max_bytes) {}
  // A piece received and its descriptors (an invalid one marks descriptors
  // the kernel dropped for want of room: MSG_CTRUNC).
  Result<void> feed(std::string_view bytes, std::vector<UniqueFd> fds);
  // The request once whole, parsed and checked against its descriptors.
  Result<std::optional<agent::Request>> next();
  // The descriptors of the request next() returned, in the order sent.
  std::vector<UniqueFd> take_fds() { return std::move(fds_); }
  // Bytes held of a request not yet whole.
  size_t buffered() const { return frames_.buffered(); }
  // Some of a request came, not all of it.
  bool partial() const { return started_ && !done_; }

 private:
  FrameReader frames_;
  std::vector<UniqueFd> fds_;
  bool started_ = false, done_ = false, failed_ = false;
};

// Frames a message.
std::string frame(const google::protobuf::MessageLite& message);
// The 4-byte length that precedes a payload of n bytes.
std::string frame_header(uint32_t n);

// A request frame as the agent accepts it: parsed, and sensible given the
// number of descriptors that came with it.
Result<agent::Request> parse_request(std::string_view payload, size_t fds);

// Blocking I/O for the client and the job runner. send_frame attaches fds
// (SCM_RIGHTS) to the first byte. read_frame returns nothing at a clean end
// of stream (before any byte of a frame).
Result<void> send_frame(int fd, const google::protobuf::MessageLite& message, const std::vector<int>& fds = {});
Result<std::optional<std::string>> read_frame(int fd, uint32_t max_bytes);

// Non-blocking receive of bytes and descriptors (close-on-exec), at most
// kMaxRequestFds of them: the kernel closes the rest and an invalid entry
// says so. Returns bytes read (0 at end of stream) or -errno.
ssize_t receive_with_fds(int fd, char* buf, size_t len, std::vector<UniqueFd>& fds);

// Finished <-> TracedRun (the record, problems, first accesses).
agent::Finished to_finished(const TracedRun& run, bool with_priors);
Result<TracedRun> from_finished(const agent::Finished& finished);

}  // namespace bsandbox
