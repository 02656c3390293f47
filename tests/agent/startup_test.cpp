// startup_test.cpp: what bsandboxd checks and decides before its event loop:
// options refused in one line before anything is set up, the descriptor
// limit taken (jobs keep the one it was started with), a cgroup directory
// name stable per socket, and the lines it logs once it listens.
#include "sandbox/agent/startup.h"

#include <doctest/doctest.h>
#include <sys/resource.h>

using namespace bsandbox;

namespace {

std::string refused(const AgentOptions& o, bool root = true) {
  auto c = check_options(o, root);
  return c ? std::string() : c.error().message;
}

}  // namespace

TEST_CASE("options an agent cannot serve with are refused, saying which") {
  AgentOptions o;
  CHECK(refused(o).empty());
  CHECK(refused(o, false).find("runs as root") != std::string::npos);
  o.max_jobs = 0;
  CHECK(refused(o).find("--max-jobs must be between 1 and") != std::string::npos);
  o.max_jobs = 100000;
  CHECK(refused(o).find("--max-jobs") != std::string::npos);
  o = AgentOptions{};
  o.limits.max_record_bytes = size_t{4} << 30;
  CHECK(refused(o).find("--max-record must be at most") != std::string::npos);
  o = AgentOptions{};
  o.group = "no-such-group-bsandbox-test";
  CHECK(refused(o) == "no group named 'no-such-group-bsandbox-test'");
  o = AgentOptions{};
  o.metrics = "not an address";
  CHECK_FALSE(refused(o).empty());
}

TEST_CASE("checked options make the per-user shares explicit and find the group and /metrics address") {
  AgentOptions o;
  o.max_jobs = 4;
  o.max_queued = 64;
  o.group = "root";
  o.metrics = "127.0.0.1:9123";
  auto c = check_options(o, true);
  REQUIRE(c);
  CHECK(c->gid == 0);
  CHECK(c->limits.max_jobs_per_user == 2);     // half of --max-jobs
  CHECK(c->limits.max_queued_per_user == 16);  // a quarter of --max-queued
  REQUIRE(c->metrics);
}

TEST_CASE("the agent takes its hard descriptor limit; jobs keep the soft one") {
  rlimit before{};
  ::getrlimit(RLIMIT_NOFILE, &before);
  rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 512);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  std::vector<std::string> log;
  AgentLimits huge;
  huge.max_connections = 1000000;  // more than any limit: a warning, not a failure
  auto d = take_descriptor_limit(huge, 4, [&](const std::string& l) { log.push_back(l); });
  CHECK(d.jobs == lowered.rlim_cur);
  CHECK(d.agent == before.rlim_max);
  REQUIRE(log.size() == 1);
  CHECK(log[0].find("warning: at its limits the agent may need") != std::string::npos);
  ::setrlimit(RLIMIT_NOFILE, &before);
}

TEST_CASE("the cgroup directory is named after the socket, the same every time") {
  std::string a = cgroup_dir_name("/run/bsandbox/agent.sock");
  CHECK(a == cgroup_dir_name("/run/bsandbox/agent.sock"));
  CHECK(a != cgroup_dir_name("/run/bsandbox/other.sock"));
  CHECK(a.rfind("agent-", 0) == 0);
  CHECK(a.size() == 6 + 16);
}

TEST_CASE("what the agent logs once it listens") {
  AgentOptions o;
  o.socket = "/run/x.sock";
  o.metrics = "127.0.0.1:9100";
  AgentLimits l = resolve_limits(o.limits, o.max_jobs, o.max_queued);
  auto lines = listening_lines(o, l, "no cgroup hierarchy found", 2048, 42);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("listening on /run/x.sock (pid 42); up to 4 jobs at once", 0) == 0);
  CHECK(lines[1].find("2048 descriptors") != std::string::npos);
  CHECK(lines[2] == "serving /metrics on http://127.0.0.1:9100/metrics");
}
