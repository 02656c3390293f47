// runner_test.cpp: a job runner's work on real commands, traced by a fake
// event source in this process (trace_job is run_job without the fork and
// the tracer): the Finished reply and what it carries, the caller's
// environment without its own tracer, stdio the caller did not send, a stop
// from the agent on the control socket, the time limit, the record's size
// limit, and how a Submit becomes the command it runs.
#include "sandbox/agent/runner.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "sandbox/base/framing.h"
#include "sandbox/run/tracer_service.h"
#include "tests/run/fake_source.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using namespace bsandbox::testing;

namespace {

// The control socket: the runner's end and the agent's.
struct Control {
  UniqueFd runner, agent;
  Control() {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    runner.reset(pair[0]);
    agent.reset(pair[1]);
  }
  // The frames the runner sent, up to the end of what is waiting.
  std::vector<agent::Reply> replies() {
    std::vector<agent::Reply> out;
    ::shutdown(runner.get(), SHUT_WR);
    for (;;) {
      auto payload = read_frame(agent.get(), kMaxReplyBytes);
      REQUIRE(payload);
      if (!*payload) return out;
      agent::Reply r;
      REQUIRE(r.ParseFromString(**payload));
      out.push_back(r);
    }
  }
};

JobCommand command(std::vector<std::string> argv, int out_fd, int dir_fd) {
  JobCommand job;
  job.argv = std::move(argv);
  job.env = {"PATH=/usr/bin:/bin", "MARK=job"};
  job.cwd = "/somewhere";
  job.stdio = {out_fd, out_fd, out_fd};
  job.cwd_fd = dir_fd;
  return job;
}

}  // namespace

TEST_CASE("trace_job: the command runs where and as asked, and the reply is Finished with its record") {
  TempDir dir;
  UniqueFd out(::open((dir.path + "/out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  Control control;
  FakeSource source(top_only(std::string_view("sh\0-c\0...\0", 10), "/bin/sh"));
  auto job = command({"sh", "-c", "pwd; echo \"$MARK ${BSANDBOX_TRACER:+has-a-tracer}\"; exit 3"}, out.get(),
                     dir.fd.get());
  job.umask = 027;
  agent::Reply reply = trace_job(source, job, control.runner.get());
  REQUIRE(reply.has_finished());
  auto run = from_finished(reply.finished(), "/run/agent.sock");
  REQUIRE(run);
  CHECK(run->record.exit_code == 3);
  CHECK(run->record.argv == job.argv);
  CHECK(run->record.cwd == "/somewhere");
  CHECK(run->record.backend == "fake");
  CHECK(run->record.complete);
  CHECK(reply.finished().events() == 2);
  // In the directory sent as a descriptor, with the caller's environment
  // and a tracer of the job's own for cached commands inside it.
  CHECK(get_file(dir.path + "/out") == dir.path + "\njob has-a-tracer\n");
  CHECK(control.replies().empty());  // the runner sends the result, not trace_job
}

TEST_CASE("trace_job: a command that cannot start is a Finished reply that says so") {
  TempDir dir;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  Control control;
  FakeSource source;
  auto job = command({"/no/such/program"}, null_fd.get(), dir.fd.get());
  agent::Reply reply = trace_job(source, job, control.runner.get());
  REQUIRE(reply.has_finished());
  auto run = from_finished(reply.finished());
  REQUIRE(run);
  CHECK(run->exec_error.find("/no/such/program") != std::string::npos);
}

TEST_CASE("trace_job: a byte from the agent stops the job, which says why") {
  TempDir dir;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  Control control;
  FakeSource source;
  auto job = command({"sleep", "30"}, null_fd.get(), dir.fd.get());
  std::thread agent([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    (void)!::write(control.agent.get(), "c", 1);
  });
  auto start = std::chrono::steady_clock::now();
  agent::Reply reply = trace_job(source, job, control.runner.get());
  agent.join();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  REQUIRE(reply.has_finished());
  auto run = from_finished(reply.finished());
  REQUIRE(run);
  CHECK(run->stopped == "the client went away");
  // Progress came about once a second while it ran.
  auto replies = control.replies();
  REQUIRE_FALSE(replies.empty());
  CHECK(replies.front().has_progress());
}

TEST_CASE("trace_job: the wall time limit stops the job") {
  TempDir dir;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  Control control;
  FakeSource source;
  auto job = command({"sleep", "30"}, null_fd.get(), dir.fd.get());
  job.time_limit_ns = 1000000000;
  agent::Reply reply = trace_job(source, job, control.runner.get());
  REQUIRE(reply.has_finished());
  auto run = from_finished(reply.finished());
  REQUIRE(run);
  CHECK(run->stopped == "the wall time limit of 1 s was reached");
}

TEST_CASE("stop_reason: what each byte from the agent means, and its socket closing") {
  {
    Control control;
    (void)!::write(control.agent.get(), "ct?", 3);
    CHECK(stop_reason(control.runner.get()) == "the client went away");
    CHECK(stop_reason(control.runner.get()) == "the agent is shutting down");
    CHECK(stop_reason(control.runner.get()) == "");  // not a stop after all
    control.agent.reset();
    CHECK(stop_reason(control.runner.get()) == "the agent exited");
  }
  {
    Control control;
    REQUIRE(::fcntl(control.runner.get(), F_SETFL, O_NONBLOCK) == 0);
    CHECK(stop_reason(control.runner.get()) == "");  // nothing there yet
  }
}

TEST_CASE("send_result: the reply as it is, or an error in its place when over the limit") {
  agent::Reply reply;
  reply.mutable_finished()->set_events(5);
  reply.mutable_finished()->set_record(std::string(10000, 'x'));
  {
    Control control;
    send_result(control.runner.get(), reply, 1 << 20);
    auto got = control.replies();
    REQUIRE(got.size() == 1);
    CHECK(got[0].has_finished());
    CHECK(got[0].finished().events() == 5);
  }
  {
    Control control;
    send_result(control.runner.get(), reply, 4096);
    auto got = control.replies();
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].has_error());
    CHECK(got[0].error().message().find("over the agent's limit of 4.0 KiB (bsandboxd --max-record)") !=
          std::string::npos);
  }
}

TEST_CASE("job_command: the Submit's descriptors in order, /dev/null for what was not sent") {
  agent::Submit s;
  s.add_argv("make");
  s.add_argv("-j2");
  s.add_env("HOME=/home/u");
  s.add_env(std::string(kTracerEnv) + "=unix:/outer");
  s.add_env("BSANDBOX_WRAPPED=1");
  s.add_env("BSANDBOX_TRACERX=kept");
  s.set_cwd("/src");
  s.set_fds(kFdStdout);  // stdout only, then the directory
  s.set_umask(0022 | 07000);
  s.set_priors(true);
  std::vector<UniqueFd> fds;
  fds.emplace_back(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  fds.emplace_back(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  JobCommand job = job_command(s, fds, 99, 3600);
  CHECK(job.argv == std::vector<std::string>{"make", "-j2"});
  CHECK(job.env == std::vector<std::string>{"HOME=/home/u", "BSANDBOX_TRACERX=kept"});
  CHECK(job.cwd == "/src");
  CHECK(job.stdio.in == 99);
  CHECK(job.stdio.out == fds[0].get());
  CHECK(job.stdio.err == 99);
  CHECK(job.cwd_fd == fds[1].get());
  CHECK(job.time_limit_ns == int64_t{3600} * 1000000000);
  CHECK(job.priors);
  CHECK(job.umask == 0022);

  s.set_time_limit_s(5);
  CHECK(job_command(s, fds, 99, 3600).time_limit_ns == 5000000000);
}

TEST_CASE("null_for_unsent: /dev/null only when some stdio was not sent") {
  agent::Submit s;
  s.set_fds(kFdStdin | kFdStdout | kFdStderr);
  auto all = null_for_unsent(s);
  REQUIRE(all);
  CHECK_FALSE(all->valid());
  s.set_fds(kFdStdin);
  auto some = null_for_unsent(s);
  REQUIRE(some);
  CHECK(some->valid());
}
