// event_source.h: what the supervisor needs from a backend.
//
// A backend turns the activity of a process tree into Events. The supervisor
// tells it which process is the top of the tree before that process runs,
// waits as the source asks (waiting()), asks it to drain on every turn of
// its loop, and at the end asks what it lost. The
// eBPF backend (events from the kernel through a ring buffer) is one; the
// ptrace backend (events from the tracer's own waitpid reports) is the other.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/core/event.h"
#include "sandbox/base/result.h"

namespace bsandbox {

struct SourceHealth {
  uint64_t delivered = 0;    // events handed to the sink
  uint64_t lost = 0;         // events the backend knows it dropped
  uint64_t corrupt = 0;      // records that did not decode
  std::vector<std::string> problems;  // one line each, for warnings
  std::string detail;                 // backend-specific counts, shown with -v
};

class EventSource {
 public:
  virtual ~EventSource() = default;

  // "ebpf", "ptrace": what the record's "backend" says.
  virtual std::string_view name() const = 0;
  // Begin tracing pid and everything it starts. Called before pid runs.
  virtual Result<void> trace_root(pid_t pid) = 0;
  // An fd that polls readable when events may be waiting, or -1.
  virtual int wait_fd() const = 0;
  // How the supervisor waits for the next turn of its loop:
  //   kPoll     on wait_fd() and a short timer, reaping without blocking
  //             (events come from elsewhere: the kernel's ring buffer);
  //   kWaitpid  blocking in waitpid(), each report handed to on_wait() at
  //             once (a tracer, whose tracees sit stopped until it acts).
  // By default, kPoll when the source has an fd.
  enum class Waiting { kPoll, kWaitpid };
  virtual Waiting waiting() const { return wait_fd() >= 0 ? Waiting::kPoll : Waiting::kWaitpid; }
  // Delivers everything waiting to sink; returns how many events.
  virtual size_t drain(EventSink& sink) = 0;
  virtual SourceHealth health() = 0;

  // The seccomp filter the command starts under (installed just before it
  // execs). Every backend refuses io_uring there.
  virtual Result<std::vector<sock_filter>> child_filter() = 0;
  // Variables the command's environment must carry for this source
  // ("NAME=value"; LD_PRELOAD is merged with the command's own, ours
  // first). None by default.
  virtual std::vector<std::string> child_environment() const { return {}; }
  // The supervisor reaps with waitpid(-1, __WALL) and hands each report
  // here first. A tracer consumes its stops (and resumes the tracee) and
  // returns true; exits are returned false so the supervisor sees them too.
  virtual bool on_wait(pid_t pid, int status, EventSink& sink) {
    (void)pid, (void)status, (void)sink;
    return false;
  }
};

}  // namespace bsandbox
