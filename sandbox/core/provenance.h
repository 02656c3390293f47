// provenance.h: the provenance record (../shared/spec/provenance-v1.md) as
// data, and its two encodings: JSON (the documented, stable face) and
// protobuf-lite (compact, for `--record` and `bsandbox show`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/core/event.h"
#include "sandbox/core/ops.h"
#include "sandbox/base/result.h"

namespace bsandbox {

inline constexpr std::string_view kSchema = "bsandbox.provenance/v1";

struct FileEntry {
  std::string path;
  OpSet ops = 0;
  friend bool operator==(const FileEntry&, const FileEntry&) = default;
};

// A socket a process reached out to or listened on: where what it read
// came from other than files. address: "inet:127.0.0.1:80",
// "inet6:[::1]:80", "unix:/run/x.sock", "unix:@abstract", "netlink",
// "family N".
enum class SocketOp : uint8_t { kConnect = 1, kBind = 2, kSend = 3 };
std::string_view socket_op_name(SocketOp op);

struct SocketEntry {
  SocketOp op = SocketOp::kConnect;
  std::string address;
  friend bool operator==(const SocketEntry&, const SocketEntry&) = default;
  friend auto operator<=>(const SocketEntry&, const SocketEntry&) = default;
};

struct ProcessEntry {
  ProcessKey key;
  std::optional<ProcessKey> parent;
  std::vector<std::string> argv;
  std::optional<std::string> exe;
  std::string cwd;
  int64_t start_ns = 0;  // wall clock, ns since the epoch
  int64_t end_ns = 0;
  std::optional<int> exit_code;  // 128+N for death by signal N
  std::optional<int64_t> exec_ns;  // wall clock of its last successful execve (none: it never exec'd)
  std::vector<FileEntry> files;  // sorted by path
  std::vector<SocketEntry> sockets;  // sorted; connects are attempts, successful or not
  friend bool operator==(const ProcessEntry&, const ProcessEntry&) = default;
};

struct Record {
  std::string backend;
  std::vector<std::string> argv;
  std::string cwd;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int exit_code = 0;
  bool complete = true;
  uint64_t lost_events = 0;
  // With --cache: "hit" (nothing ran; the processes are those of the run
  // that stored the result) or "miss"; empty without a cache.
  std::string cache;
  // Run by bsandboxd (bsandbox exec --agent): the agent's socket; empty
  // when bsandbox traced the command itself.
  std::string agent;
  std::vector<ProcessEntry> processes;  // the top process first
  friend bool operator==(const Record&, const Record&) = default;
};

// "4242@8812345678".
std::string process_id(const ProcessKey& key);

// A wait(2) status as the spec's exit code: the exit status, or 128+N.
int exit_code_from_wait_status(int status);

std::string to_json(const Record& record);

std::string to_protobuf(const Record& record);
// what names the source in errors ("run.rec: not a bsandbox record").
Result<Record> from_protobuf(std::string_view bytes, std::string_view what);

}  // namespace bsandbox
