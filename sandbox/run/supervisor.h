// supervisor.h: runs a command under an event source until the whole tree
// is gone.
//
// The supervisor is a child subreaper, so orphans and daemons of the tree
// become its children and it can wait for every one of them: the tree has
// ended when waitpid(-1) reports no children at all. Events are drained from
// the source on every turn of one loop, which waits as the source asks
// (EventSource::waiting(): on its fd and a short timer, the kernel side
// batching its wakeups; or, for a tracer, in waitpid), and once more after
// the last process is reaped; since a process's exit event is written
// before its parent can reap it, that last drain sees everything. Every
// wait report is offered to the source first: a tracer (ptrace) consumes
// its tracees' stops.
//
// Signals: SIGCHLD is read from a signalfd. SIGINT, SIGTERM, SIGHUP and
// SIGQUIT sent to bsandbox by another process are forwarded to the top
// process (or, once it has exited, to the processes of the tree still
// running); the terminal's own ^C already reaches the whole foreground group
// and is not sent twice.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/clocks.h"
#include "sandbox/core/event_source.h"
#include "sandbox/core/process_tree.h"
#include "sandbox/base/result.h"
#include "sandbox/run/spawn.h"

namespace bsandbox {

struct Supervision {
  int wait_status = 0;  // of the top process
  std::optional<ChildFailure> exec_failure;
  uint64_t end_boot = 0;
  int64_t start_wall = 0;
  int64_t end_wall = 0;
  std::string stopped;  // why the tree was killed before it ended, or empty
};

// Runs argv (PATH searched) with tracing armed before its first instruction,
// feeding events to tree, and returns once every process of the tree has
// exited.
class TracerService;
struct SuperviseOptions {
  SpawnOptions spawn;
  // Served on every turn of the loop (a source waited on by poll wakes
  // for it at once).
  TracerService* service = nullptr;
  int64_t boot_to_wall = 0;
  // For bsandboxd's jobs: when stop_fd polls readable (checked on every
  // turn), stop_reason() says why (empty: not a stop after all) and every
  // process of the tree is killed; so it is when time_limit_ns of wall time
  // has passed. kill_tree also runs then (a cgroup kill). tick runs on every
  // turn of the loop (at least every 20 ms).
  int stop_fd = -1;
  std::function<std::string()> stop_reason;
  int64_t time_limit_ns = 0;
  std::function<void()> kill_tree;
  std::function<void()> tick;
};

Result<Supervision> supervise(const std::vector<std::string>& argv, EventSource& source,
                              ProcessTree& tree, const std::string& cwd,
                              const SuperviseOptions& options = {});

}  // namespace bsandbox
