// startup.cpp: see startup.h. Each step is what run_agent (agent.cpp) did
// inline; the messages are the ones the agent has always logged.
#include "sandbox/agent/startup.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "bpf/events.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/base/io.h"
#include "sandbox/base/text.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

Result<CheckedOptions> check_options(const AgentOptions& options, bool root) {
  if (!root) return fail("bsandboxd runs as root (it loads BPF programs and runs jobs as their callers)");
  if (options.max_jobs == 0 || options.max_jobs > BS_JOBS_MAX)
    return fail("--max-jobs must be between 1 and " + std::to_string(BS_JOBS_MAX));
  if (options.limits.max_record_bytes > kMaxReplyBytes)
    return fail("--max-record must be at most " + format_size(kMaxReplyBytes));
  CheckedOptions checked;
  if (options.metrics) {
    auto m = parse_metrics_address(*options.metrics);
    if (!m) return tl::unexpected(m.error());
    checked.metrics = *m;
  }
  if (options.group) {
    group* g = ::getgrnam(options.group->c_str());
    if (!g) return fail("no group named '" + *options.group + "'");
    checked.gid = g->gr_gid;
  }
  checked.limits = resolve_limits(options.limits, options.max_jobs, options.max_queued);
  return checked;
}

DescriptorLimits take_descriptor_limit(const AgentLimits& limits, unsigned max_jobs, const LogLine& log_line) {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  rlim_t jobs_nofile = nofile.rlim_cur;
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  if (size_t need = descriptors_needed(limits, max_jobs); nofile.rlim_cur < need)
    log_line("warning: at its limits the agent may need " + std::to_string(need) + " descriptors, more than its " +
             std::to_string(nofile.rlim_cur) + " (LimitNOFILE, ulimit -n): lower --max-connections or raise it");
  return {jobs_nofile, nofile.rlim_cur};
}

// The agent's cgroup directory is named after its socket (FNV-1a: the
// same name from one version to the next, so a new agent sweeps an old one's).
std::string cgroup_dir_name(const std::string& socket) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : socket) h = (h ^ ch) * 1099511628211ULL;
  char name[32];
  std::snprintf(name, sizeof name, "agent-%016llx", static_cast<unsigned long long>(h));
  return name;
}

// Program run times: the kernel keeps them while someone holds
// BPF_ENABLE_STATS or kernel.bpf_stats_enabled is 1.
bool program_stats_on(bool asked, EbpfTracer& tracer, const LogLine& log_line) {
  bool on = asked && tracer.enable_run_stats();
  if (auto sysctl = read_file("/proc/sys/kernel/bpf_stats_enabled"); sysctl && sysctl->rfind("1", 0) == 0) on = true;
  if (asked && !on) log_line("warning: the kernel refused BPF_ENABLE_STATS: no program run times");
  return on;
}

// Ready once the parent returns: the socket already accepts.
Result<void> go_to_background() {
  pid_t pid = ::fork();
  if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) _exit(0);
  ::setsid();
  UniqueFd null_fd(::open("/dev/null", O_RDWR));
  if (null_fd.valid()) {
    ::dup2(null_fd.get(), 0);
    if (null_fd.get() <= 2) (void)null_fd.release();  // it is one of stdin, stdout, stderr now
  }
  return {};
}

std::vector<std::string> listening_lines(const AgentOptions& options, const AgentLimits& limits,
                                         const std::string& cgroups, rlim_t nofile, pid_t pid) {
  std::vector<std::string> lines;
  lines.push_back("listening on " + options.socket + " (pid " + std::to_string(pid) + "); up to " +
                  std::to_string(options.max_jobs) + " jobs at once, " + format_size(options.ring_bytes) +
                  " ring each; " + cgroups);
  lines.push_back("per user: " + std::to_string(limits.max_jobs_per_user) + " jobs running, " +
                  std::to_string(limits.max_queued_per_user) + " waiting, " +
                  std::to_string(limits.max_connections_per_user) + " connections (" +
                  std::to_string(limits.max_startups_per_user) + " with a request under way); " +
                  std::to_string(limits.max_connections) + " connections in all; " + std::to_string(nofile) +
                  " descriptors");
  if (options.metrics) lines.push_back("serving /metrics on http://" + *options.metrics + "/metrics");
  return lines;
}

}  // namespace bsandbox
