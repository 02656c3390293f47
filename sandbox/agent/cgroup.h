// cgroup.h: a cgroup per bsandboxd job, to find, limit and kill all of it.
//
// The host's layout is probed, never assumed (../shared/KERNEL.md): a cgroup
// v2 hierarchy groups the job and, where it has the pids controller, limits
// its process count; a v1 pids hierarchy limits it where v2 cannot (hybrid
// hosts). Each job gets <hierarchy>/bsandbox/<agent>/job-<id> in each
// hierarchy used, <agent> naming the agent's socket (one agent per socket),
// so that agents on different sockets never touch each other's groups.
// Killing uses cgroup.kill where the kernel has it (5.14+), else SIGKILL to
// every pid listed until none is left. A crashed agent leaves its groups
// behind: the next one kills what is in them and removes them (sweep).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

class JobCgroup {
 public:
  JobCgroup() = default;
  JobCgroup(JobCgroup&&) = default;
  JobCgroup& operator=(JobCgroup&&) = default;
  // Open cgroup.procs files: the job's first process writes "0" to each.
  std::vector<int> procs_fds() const;
  void close_procs() { procs_.clear(); }
  // SIGKILL everything in the group (once; call again for late forks).
  void kill() const;
  bool empty() const;
  // rmdir; false while processes remain.
  bool remove();
  bool valid() const { return !dirs_.empty(); }

 private:
  friend class Cgroups;
  std::vector<std::string> dirs_;
  std::vector<UniqueFd> procs_;
  bool has_kill_ = false;  // dirs_[0] is v2 with cgroup.kill
};

class Cgroups {
 public:
  // Reads /proc/self/mountinfo. Never fails: what is missing is said by
  // describe() and jobs just go without.
  static Cgroups probe(const std::string& agent);
  // "v2 /sys/fs/cgroup/unified (grouping, cgroup.kill), pids limit via v1 /sys/fs/cgroup/pids".
  std::string describe() const;
  bool can_group() const { return !v2_.empty() || !pids_v1_.empty(); }
  bool can_limit_pids() const { return pids_in_v2_ || !pids_v1_.empty(); }
  // A group for job name; max_pids 0 = no limit.
  Result<JobCgroup> create(const std::string& name, unsigned max_pids) const;
  // Kills and removes job groups left by an earlier agent; returns how many.
  size_t sweep() const;

 private:
  std::vector<std::string> parents() const;
  std::string v2_;       // mount point of the v2 hierarchy
  bool pids_in_v2_ = false;
  std::string pids_v1_;  // mount point of a v1 hierarchy with pids
  bool kill_file_ = false;
  std::string agent_;    // this agent's directory under bsandbox/
};

}  // namespace bsandbox
