// runner.cpp: see runner.h. What is particular to the implementation: the
// forked child first makes itself a plain process again (default signal
// dispositions, nothing blocked, the descriptor limit jobs get) and closes
// every descriptor the agent held for others, then never returns: it ends
// in _exit once its last reply is sent, since the agent's io_context and
// destructors are not its own to run.
#include "sandbox/agent/runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include "sandbox/base/dir.h"
#include "sandbox/base/text.h"
#include "sandbox/run/traced_run.h"
#include "sandbox/run/tracer_service.h"

namespace bsandbox {
namespace {

agent::Reply error_reply(const std::string& message) {
  agent::Reply r;
  r.mutable_error()->set_message(message);
  return r;
}

// Closes every descriptor but keep (the agent's other clients and jobs are
// none of this job's business).
void close_all_but(const std::set<int>& keep) {
  std::vector<int> doomed;
  {
    auto d = Dir::open("/proc/self/fd");
    if (!d) return;
    while (const dirent* e = d->next()) {
      int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != d->fd() && !keep.count(fd)) doomed.push_back(fd);
    }
  }
  for (int fd : doomed) ::close(fd);
}

// The agent's signal handling is not the job's.
void reset_signals() {
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) ::signal(s, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Keeps what the job needs: its control socket, ring, stdio and directory,
// the tracer's maps and programs, its cgroup files.
void keep_only_the_jobs(const RunnerSpec& spec, int control) {
  const JobCommand& job = spec.job;
  std::set<int> keep{control, spec.ebpf->ring.get(), job.stdio.in, job.stdio.out, job.stdio.err, job.cwd_fd};
  for (int fd : spec.tracer->fds()) keep.insert(fd);
  if (job.cgroup)
    for (int fd : job.cgroup->procs_fds()) keep.insert(fd);
  close_all_but(keep);
}

void lower_nofile(rlim_t limit) {
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = std::min(limit, nofile.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
}

[[noreturn]] void run_job(RunnerSpec& spec, int control) {
  ::prctl(PR_SET_NAME, "bsandboxd-job", 0, 0, 0);
  reset_signals();
  keep_only_the_jobs(spec, control);
  lower_nofile(spec.nofile);
  auto source = spec.tracer->source(*spec.ebpf, spec.tracer);
  agent::Reply reply = source ? trace_job(**source, spec.job, control) : error_reply(source.error().message);
  send_result(control, reply, spec.max_record);
  _exit(0);
}

}  // namespace

Result<UniqueFd> null_for_unsent(const agent::Submit& submit) {
  const uint32_t stdio = kFdStdin | kFdStdout | kFdStderr;
  if ((submit.fds() & stdio) == stdio) return UniqueFd();
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd.valid()) return fail(std::string("starting the job: ") + std::strerror(errno));
  return null_fd;
}

JobCommand job_command(const agent::Submit& submit, const std::vector<UniqueFd>& fds, int null_fd,
                       unsigned default_time_limit_s) {
  JobCommand job;
  job.argv.assign(submit.argv().begin(), submit.argv().end());
  for (const auto& e : submit.env()) {
    // The caller's own tracer (an outer bsandbox exec) is not this job's.
    if (e.rfind(std::string(kTracerEnv) + "=", 0) == 0 || e.rfind("BSANDBOX_WRAPPED=", 0) == 0) continue;
    job.env.push_back(e);
  }
  job.cwd = submit.cwd();
  const uint32_t bits = submit.fds();
  size_t next = 0;
  job.stdio.in = bits & kFdStdin ? fds[next++].get() : null_fd;
  job.stdio.out = bits & kFdStdout ? fds[next++].get() : null_fd;
  job.stdio.err = bits & kFdStderr ? fds[next++].get() : null_fd;
  job.cwd_fd = fds[next].get();
  uint32_t limit = submit.time_limit_s() ? submit.time_limit_s() : default_time_limit_s;
  job.time_limit_ns = static_cast<int64_t>(limit) * 1000000000;
  job.priors = submit.priors();
  job.umask = static_cast<int>(submit.umask() & 0777);
  return job;
}

std::string stop_reason(int control) {
  char why = 0;
  ssize_t n = ::read(control, &why, 1);
  if (n == 0) return "the agent exited";
  if (n < 0) return errno == EAGAIN || errno == EINTR ? "" : "the agent's connection failed";
  if (why == 'c') return "the client went away";
  if (why == 't') return "the agent is shutting down";
  return "";
}

// GCC 12 with -fsanitize=address sees the fresh SuperviseOptions'
// optional<Credentials> as maybe uninitialized when it is assigned (a false
// positive that -Werror makes fatal in the sanitizer build).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
agent::Reply trace_job(EventSource& source, JobCommand& job, int control) {
  // Cached commands inside the job (bsandbox-wrap) borrow this tracer.
  std::unique_ptr<TracerService> service;
  if (auto s = TracerService::listen()) {
    service = std::move(*s);
    job.env.push_back(std::string(kTracerEnv) + "=" + service->address());
  }

  SuperviseOptions so;
  so.spawn.stdio = job.stdio;
  so.spawn.cwd_fd = job.cwd_fd;
  so.spawn.env = &job.env;
  so.spawn.credentials = job.credentials;
  if (job.cgroup) so.spawn.cgroup_procs = job.cgroup->procs_fds();
  so.spawn.umask = job.umask;
  so.service = service.get();
  so.stop_fd = control;
  so.stop_reason = [control] { return stop_reason(control); };
  so.time_limit_ns = job.time_limit_ns;
  so.kill_tree = [&job] {
    if (job.cgroup) job.cgroup->kill();
  };
  auto last = std::chrono::steady_clock::now();
  so.tick = [&] {
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) return;
    last = now;
    agent::Reply r;
    r.mutable_progress()->set_events(source.health().delivered);
    (void)send_frame(control, r);
  };
  // A caller that asks for the first accesses stores the run in its cache.
  auto run = run_traced(source, job.argv, job.cwd, so, /*for_cache=*/job.priors);
  if (!run) return error_reply(run.error().message);
  agent::Reply reply;
  *reply.mutable_finished() = to_finished(*run, job.priors);
  return reply;
}
#pragma GCC diagnostic pop

void send_result(int control, const agent::Reply& reply, size_t max_record) {
  size_t size = reply.ByteSizeLong();
  if (size > max_record)
    (void)send_frame(control, error_reply("the job's record is " + format_size(size) + ", over the agent's limit of " +
                                          format_size(max_record) + " (bsandboxd --max-record)"));
  else
    (void)send_frame(control, reply);
}

Result<StartedRunner> fork_runner(RunnerSpec& spec) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return fail(std::string("starting the job: ") + std::strerror(errno));
  UniqueFd ours(pair[0]), theirs(pair[1]);
  pid_t pid = ::fork();
  if (pid == 0) {
    ours.reset();
    run_job(spec, theirs.get());
  }
  if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
  return StartedRunner{pid, std::move(ours)};
}

}  // namespace bsandbox
