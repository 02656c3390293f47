// runner.h: the job runner, the child bsandboxd forks for each job.
//
// The agent prepares everything before fork (RunnerSpec: the job's command
// as the caller asked for it, its slot of the shared tracer, its cgroup);
// fork_runner forks, and the child (run_job) keeps only the descriptors the
// job needs, takes its ring buffer as an event source, and runs the ordinary
// supervisor on the command: started in the job's cgroup, in the directory
// the caller sent as an fd, with the caller's environment, credentials and
// stdio. The runner and the agent talk on a socketpair (the control
// socket): the runner sends Progress about once a second and then one
// Finished or Error; the agent writes one byte to stop the job ('c': its
// caller went away, 't': the agent is shutting down), and the socket closing
// means the agent is gone. Either way the job's whole tree is killed.
//
// trace_job is the runner's work without the fork and the tracer, so that
// tests drive it with any EventSource on a socketpair.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/agent/agent.pb.h"
#include "sandbox/agent/cgroup.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/core/event_source.h"
#include "sandbox/run/spawn.h"

namespace bsandbox {

// The command a job runs and how, made concrete from the caller's Submit.
// The descriptors are borrowed (the job owns them until the runner runs).
struct JobCommand {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;                          // as the caller names it (for the record)
  ChildStdio stdio;                         // never -1: what was not sent is /dev/null
  int cwd_fd = -1;                          // where it starts
  std::optional<Credentials> credentials;   // the caller's (unset: the runner's own)
  const JobCgroup* cgroup = nullptr;        // joined, and killed whole at a stop (null: none)
  int64_t time_limit_ns = 0;                // wall time (0: none)
  bool priors = false;                      // the caller caches the run: first accesses come back
  int umask = 022;
};

// /dev/null, for the stdio a Submit does not send (invalid if it sends all
// three); the error says "starting the job: ...".
Result<UniqueFd> null_for_unsent(const agent::Submit& submit);

// The command of submit, whose descriptors fds are ([stdin] [stdout]
// [stderr] cwd, as submit.fds() says); stdio not sent is null_fd. The
// caller's own tracer (an outer bsandbox exec) is not passed on: the job
// gets its own. Its time limit is the caller's, else default_time_limit_s.
JobCommand job_command(const agent::Submit& submit, const std::vector<UniqueFd>& fds, int null_fd,
                       unsigned default_time_limit_s);

// Why the agent stopped the job, read from the control socket when it
// polls readable: "" if it was not a stop after all.
std::string stop_reason(int control);

// Traces job under source and returns the reply that ends it: Finished, or
// Error saying why it could not run. Progress goes to control about once a
// second; a byte from control (or its closing) stops the job.
agent::Reply trace_job(EventSource& source, JobCommand& job, int control);

// Sends the job's last reply on control, or an Error in its place if it is
// larger than max_record (a job decides its record's size; the agent holds
// it until its caller takes it).
void send_result(int control, const agent::Reply& reply, size_t max_record);

// Everything a job runner needs, prepared by the agent before fork.
struct RunnerSpec {
  std::shared_ptr<EbpfTracer> tracer;
  const EbpfJob* ebpf = nullptr;
  JobCommand job;
  size_t max_record = kMaxReplyBytes;  // the result frame's limit
  rlim_t nofile = RLIM_INFINITY;       // the descriptor limit jobs get (the agent's own is raised)
};

struct StartedRunner {
  pid_t pid = -1;
  UniqueFd control;  // the agent's end of the control socket
};

// Forks the job's runner; the child never returns. Errors name the step
// ("starting the job: ...", "fork: ...").
Result<StartedRunner> fork_runner(RunnerSpec& spec);

}  // namespace bsandbox
