// event.h: the one stream of events every backend produces and the process
// tree consumes.
//
// Events are views: their strings point into the backend's buffer and are
// valid only for the duration of the EventSink::on_event() call that
// delivers them. That lets the eBPF backend hand records straight from the
// ring buffer without copying; whatever the consumer keeps, it copies.
//
// Every event names its process by identity (pid, start time), never by pid
// alone, so a consumer can assemble the tree whatever order events arrive in
// and however pids are reused.
#pragma once

#include <linux/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <variant>

#include "bpf/events.h"

namespace bsandbox {

struct ProcessKey {
  uint32_t pid = 0;
  uint64_t start = 0;  // thread group start, CLOCK_BOOTTIME ns
  friend bool operator==(const ProcessKey&, const ProcessKey&) = default;
};

struct ProcessKeyHash {
  size_t operator()(const ProcessKey& k) const {
    return std::hash<uint64_t>()(k.start * 0x9e3779b97f4a7c15ULL ^ k.pid);
  }
};

// A path the kernel named, with what it said about it (BS_SF_* flags).
struct KernelPath {
  std::string_view path;
  uint8_t flags = 0;
  bool truncated() const { return flags & BS_SF_TRUNCATED; }
  bool unreachable() const { return flags & BS_SF_UNREACHABLE; }
  bool deleted() const { return flags & BS_SF_DELETED; }
  bool fault() const { return flags & BS_SF_FAULT; }
};

// Fields every event has.
struct EventBase {
  ProcessKey proc;
  uint32_t tid = 0;
  uint64_t time = 0;  // CLOCK_BOOTTIME ns
  // The thread's cwd / root as of this event, when the backend sends them
  // (only when they changed since the thread's previous event).
  std::optional<KernelPath> cwd;
  std::optional<KernelPath> root;
  bool strings_dropped = false;  // the backend had to leave a string out
};

// A new process joined the tree. proc is the child.
struct ForkEvent : EventBase {
  ProcessKey parent;
};

// A successful execve.
struct ExecEvent : EventBase {
  uint32_t old_tid = 0;
  std::string_view filename;  // as execve was given it
  std::string_view interp;    // #! interpreter as named; == filename if none
  std::optional<KernelPath> exe;   // the program file that runs
  std::optional<KernelPath> ldso;  // the ELF interpreter, if any
  std::string_view argv;           // NUL-separated
  bool argv_truncated = false;
  bool elf32 = false;
};

// The last thread of a process exited.
struct ExitEvent : EventBase {
  int wait_status = 0;
};

// A file syscall returned.
struct FileEvent : EventBase {
  bs_sys sys = BS_SYS_NONE;
  int64_t ret = 0;
  uint64_t flags = 0;
  int32_t dirfd1 = -100;
  int32_t dirfd2 = -100;
  std::optional<KernelPath> path1;  // as given (fault flag if unreadable)
  std::optional<KernelPath> path2;
  std::optional<KernelPath> dir1;  // what dirfd1 named, when path1 needed it
  std::optional<KernelPath> dir2;
  std::optional<KernelPath> result;  // the object reached (bs_resolve)
  uint16_t result_flags = 0;         // BS_RF_*
  uint32_t result_magic = 0;         // its file system's magic
};

using Event = std::variant<ForkEvent, ExecEvent, ExitEvent, FileEvent>;

inline const EventBase& base_of(const Event& e) {
  return std::visit([](const auto& v) -> const EventBase& { return v; }, e);
}

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& event) = 0;
};

}  // namespace bsandbox
