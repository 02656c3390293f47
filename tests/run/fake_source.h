// fake_source.h: an EventSource that delivers a scripted event stream, so
// the supervisor, the traced run and the tracer service can be tested on
// real child processes without a kernel backend.
//
// The script is written once the top process's pid is known (trace_root):
// a function from that pid to the events, in the order they are to arrive
// (out of order if the test wants). drain() hands over what is waiting,
// optionally slowly or a few at a time; health() says what the test wants
// lost. The source is waited on by poll (an eventfd, readable while events
// wait) or, like a tracer, in waitpid (every report is then counted).
// Strings in events are views: scripts use literals.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/base/unique_fd.h"
#include "sandbox/core/event_source.h"
#include "sandbox/core/symlinks.h"

namespace bsandbox::testing {

inline constexpr uint64_t kRootStart = 1000;  // the top process's start time in scripts

inline ForkEvent fork_of(ProcessKey child, ProcessKey parent, const char* cwd = "/", uint64_t time = 0) {
  ForkEvent e;
  e.proc = child;
  e.tid = child.pid;
  e.parent = parent;
  e.time = time;
  e.cwd = KernelPath{cwd, 0};
  return e;
}

inline ExecEvent exec_of(ProcessKey p, std::string_view argv, const char* exe, uint64_t time = 0) {
  ExecEvent e;
  e.proc = p;
  e.tid = e.old_tid = p.pid;
  e.time = time;
  e.filename = exe;
  e.interp = exe;
  e.exe = KernelPath{exe, 0};
  e.argv = argv;
  e.cwd = KernelPath{"/", 0};
  return e;
}

inline ExitEvent exit_of(ProcessKey p, int status = 0, uint64_t time = 0) {
  ExitEvent e;
  e.proc = p;
  e.tid = p.pid;
  e.wait_status = status;
  e.time = time;
  return e;
}

inline FileEvent open_of(ProcessKey p, const char* path, int flags = 0, int64_t ret = 3) {
  FileEvent e;
  e.proc = p;
  e.tid = p.pid;
  e.sys = BS_SYS_OPENAT;
  e.ret = ret;
  e.flags = static_cast<uint64_t>(flags);
  e.path1 = KernelPath{path, 0};
  if (ret >= 0) e.result = KernelPath{path, 0};
  return e;
}

// No symlinks anywhere.
class NoLinks : public LinkReader {
 public:
  std::optional<std::string> read_link(const std::string&) override { return std::nullopt; }
};

class FakeSource : public EventSource {
 public:
  using Script = std::function<std::vector<Event>(pid_t root)>;
  explicit FakeSource(Script script = {}, Waiting waiting = Waiting::kPoll)
      : script_(std::move(script)), waiting_(waiting), ready_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  // What the test sets.
  SourceHealth reported;                                 // health() adds delivered
  std::chrono::milliseconds drain_delay{0};              // a slow drain
  size_t per_drain = SIZE_MAX;                           // events handed over per drain
  Result<void> trace_result = {};                        // what trace_root returns

  // What the test reads.
  pid_t root = -1;
  size_t drains = 0;
  std::vector<std::pair<pid_t, int>> reports;  // on_wait's
  size_t waiting_events() const { return pending_.size(); }

  // Adds events as if the kernel had just written them.
  void push(std::vector<Event> events) {
    for (auto& e : events) pending_.push_back(std::move(e));
    if (!pending_.empty()) (void)!::eventfd_write(ready_.get(), 1);
  }

  std::string_view name() const override { return "fake"; }
  Result<void> trace_root(pid_t pid) override {
    root = pid;
    if (script_) push(script_(pid));
    return trace_result;
  }
  int wait_fd() const override { return waiting_ == Waiting::kPoll ? ready_.get() : -1; }
  Waiting waiting() const override { return waiting_; }
  size_t drain(EventSink& sink) override {
    ++drains;
    if (drain_delay.count()) std::this_thread::sleep_for(drain_delay);
    eventfd_t ignored;
    (void)::eventfd_read(ready_.get(), &ignored);
    size_t n = 0;
    for (; n < per_drain && !pending_.empty(); ++n) {
      sink.on_event(pending_.front());
      pending_.pop_front();
    }
    if (!pending_.empty()) (void)!::eventfd_write(ready_.get(), 1);
    delivered_ += n;
    return n;
  }
  SourceHealth health() override {
    SourceHealth h = reported;
    h.delivered = delivered_;
    return h;
  }
  // Allows everything (the real filters refuse io_uring).
  Result<std::vector<sock_filter>> child_filter() override {
    return std::vector<sock_filter>{BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  }
  bool on_wait(pid_t pid, int status, EventSink&) override {
    reports.emplace_back(pid, status);
    return false;
  }

 private:
  Script script_;
  Waiting waiting_;
  UniqueFd ready_;
  std::deque<Event> pending_;
  uint64_t delivered_ = 0;
};

// The script of a command that execs once and exits: its own events.
inline FakeSource::Script top_only(std::string_view argv, const char* exe) {
  return [argv, exe](pid_t root) {
    ProcessKey top{static_cast<uint32_t>(root), kRootStart};
    return std::vector<Event>{exec_of(top, argv, exe, kRootStart + 1), exit_of(top, 0, kRootStart + 2)};
  };
}

}  // namespace bsandbox::testing
