// startup.h: the steps bsandboxd takes before its event loop (run_agent in
// agent.cpp calls them in order).
//
// The options are checked first, before anything is set up or loaded: an
// agent that cannot serve says so at once, in one line. Then the agent
// raises its descriptor limit (keeping the one it was started with for its
// jobs), names its cgroup directory after its socket, asks the kernel for
// program run times if wanted, and goes to the background once its socket
// accepts. Steps that only warn take the log's line writer.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/agent/options.h"
#include "sandbox/agent/socket.h"
#include "sandbox/agent/limits.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/base/result.h"

namespace bsandbox {

using LogLine = std::function<void(const std::string&)>;

// What can be checked before anything is set up: the agent's own limits
// made explicit, where /metrics is served, the socket's group.
struct CheckedOptions {
  AgentLimits limits;
  std::optional<MetricsAddress> metrics;
  gid_t gid = 0;
};

// The options, checked for an agent that runs as root or not (it must).
Result<CheckedOptions> check_options(const AgentOptions& options, bool root);

// Descriptors: the agent takes its hard limit (connections, jobs' rings,
// BPF maps); jobs get the soft one it was started with, as a login would.
// Warns if the agent's is below what it may need at its limits.
struct DescriptorLimits {
  rlim_t jobs = 0, agent = 0;
};
DescriptorLimits take_descriptor_limit(const AgentLimits& limits, unsigned max_jobs, const LogLine& log_line);

// "agent-" and 16 hex digits, the same for a socket from one version to the next.
std::string cgroup_dir_name(const std::string& socket);

// Whether the kernel counts program run times: asked (--bpf-stats) and
// granted, or enabled by sysctl; warns if asked and refused.
bool program_stats_on(bool asked, EbpfTracer& tracer, const LogLine& log_line);

// Forks: the parent exits, the child continues in a session of its own
// with /dev/null as stdin.
Result<void> go_to_background();

// The lines the agent logs once it listens.
std::vector<std::string> listening_lines(const AgentOptions& options, const AgentLimits& limits,
                                         const std::string& cgroups, rlim_t nofile, pid_t pid);

}  // namespace bsandbox
