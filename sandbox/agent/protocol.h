// protocol.h: frames, file descriptors and validation for bsandboxd's
// socket (agent.proto describes the messages).
//
// RequestReader is the decoder the agent runs on bytes from any local user:
// frames (base/framing.h, never more than one of at most its limit), then
// the descriptors: those of a request come with its first byte, exactly as
// many as it names. Every way a request can be wrong (too long, cut short,
// not a Request, a Request that makes no sense) is an Error naming what was
// wrong. It is what the fuzzer drives (tests/fuzz/agent_decoder_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/base/framing.h"
#include "sandbox/base/result.h"
#include "sandbox/run/run_result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/agent/agent.pb.h"

namespace bsandbox {

inline constexpr const char* kDefaultAgentSocket = "/run/bsandbox/agent.sock";
inline constexpr uint32_t kMaxRequestBytes = 4u << 20;
inline constexpr uint32_t kMaxReplyBytes = 1u << 30;  // bsandboxd --max-record is at most this
inline constexpr size_t kMaxRequestFds = 4;             // stdin, stdout, stderr, the working directory
// The most any count of one cache_report may say (2^48: a quarter of a PiB
// moved, or 281 trillion lookups, in one run); more is refused, so that
// even a flood of reports takes a long time to saturate a counter.
inline constexpr int64_t kMaxReportedCount = int64_t(1) << 48;

// Submit.fds bits.
enum : uint32_t { kFdStdin = 1, kFdStdout = 2, kFdStderr = 4 };

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

// A request frame as the agent accepts it: parsed, and sensible given the
// number of descriptors that came with it.
Result<agent::Request> parse_request(std::string_view payload, size_t fds);

// Blocking send for the client and the job runner: fds (SCM_RIGHTS) go
// with the first byte.
Result<void> send_frame(int fd, const google::protobuf::MessageLite& message, const std::vector<int>& fds = {});

// Non-blocking receive of bytes and descriptors (close-on-exec), at most
// kMaxRequestFds of them: the kernel closes the rest and an invalid entry
// says so. Returns bytes read (0 at end of stream) or -errno.
ssize_t receive_with_fds(int fd, char* buf, size_t len, std::vector<UniqueFd>& fds);

// Finished <-> TracedRun (the record, problems, first accesses), shipped
// as it is. The receiver names the agent's socket, the one fact of the
// record the job could not know (empty: none added).
agent::Finished to_finished(const TracedRun& run, bool with_priors);
Result<TracedRun> from_finished(const agent::Finished& finished, const std::string& agent_socket = "");

}  // namespace bsandbox
