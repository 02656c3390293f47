// spawn.h: starting the traced command so that tracing is armed before its
// first instruction.
//
// spawn_paused() forks a child that waits on a pipe; the supervisor starts
// tracing the child's pid, then release() lets it go on to install the
// io_uring refusal filter and exec the command (searching PATH like a
// shell). Between fork and exec the child only makes async-signal-safe
// calls and allocates nothing: everything it needs is prepared before fork.
// If exec fails, the child reports the errno on a close-on-exec pipe and
// exits 127 (not found) or 126 (found but not runnable), as a shell does.
//
// For bsandboxd the child also joins the job's cgroups, enters the caller's
// working directory (an fd the caller opened), takes the environment it was
// given, and drops to the caller's uid, gid and groups, in that order: the
// cgroup files are written while it is still root, and the command never
// runs with more rights than its caller.
#pragma once

#include <linux/filter.h>
#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct ChildFailure {
  enum Stage : int { kSeccomp = 1, kExec = 2, kSetup = 3 } stage;
  int error;  // errno
};

// Where the command's stdin, stdout and stderr come from (-1: bsandbox's own).
struct ChildStdio {
  int in = -1, out = -1, err = -1;
};

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

struct SpawnOptions {
  ChildStdio stdio;
  int cwd_fd = -1;                              // fchdir here (-1: stay)
  const std::vector<std::string>* env = nullptr;  // the command's environment (null: ours)
  std::optional<Credentials> credentials;       // run as these (needs root)
  std::vector<int> cgroup_procs;                // cgroup.procs files to join
  int umask = -1;                               // the file creation mask (-1: ours)
};

class PausedChild {
 public:
  pid_t pid() const { return pid_; }
  // Lets the child run. After this, exec_failure() tells whether its exec
  // failed (call it once the child has exited).
  Result<void> release();
  std::optional<ChildFailure> exec_failure();

 private:
  friend Result<PausedChild> spawn_paused(const std::vector<std::string>&, const sigset_t&,
                                          const std::vector<sock_filter>&, const SpawnOptions&);
  pid_t pid_ = -1;
  UniqueFd go_;      // write end: one byte releases the child
  UniqueFd status_;  // read end: a ChildFailure, or EOF when exec succeeded
};

// argv[0] is searched in PATH. child_mask is the signal mask the command
// starts with (the supervisor blocks signals it reads from a signalfd).
Result<PausedChild> spawn_paused(const std::vector<std::string>& argv, const sigset_t& child_mask,
                                 const std::vector<sock_filter>& filter, const SpawnOptions& options = {});

}  // namespace bsandbox
