// cgroup_test.cpp: a job's group on this machine's real hierarchy: joined by
// its first process, limited in process count, killed whole, removed, and
// swept by the next agent when one is left behind. Needs root and a cgroup
// hierarchy; skips with the reason otherwise.
#include "sandbox/agent/cgroup.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace bsandbox;

namespace {

// A fixed name: the directories it leaves (as an agent does) are the same
// ones every run.
std::string agent_name() { return "unit-test"; }

// A child that joins g and sleeps (forking `extra` more sleepers first).
pid_t start_in(const JobCgroup& g, int extra) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (int fd : g.procs_fds())
      if (::write(fd, "0", 1) != 1) _exit(3);
    for (int i = 0; i < extra; ++i)
      if (::fork() == 0) break;
    ::pause();
    _exit(0);
  }
  return pid;
}

bool settle(const std::function<bool()>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

bool usable(const Cgroups& c) {
  if (::geteuid() != 0) {
    MESSAGE("skipped: creating cgroups needs root");
    return false;
  }
  if (!c.can_group()) {
    MESSAGE("skipped: " << c.describe());
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a job's group holds its whole tree, is killed whole and removed") {
  Cgroups c = Cgroups::probe(agent_name());
  if (!usable(c)) return;
  auto g = c.create("job-1", 0);
  REQUIRE(g);
  CHECK(g->empty());
  pid_t top = start_in(*g, 3);
  CHECK(settle([&] { return !g->empty(); }));
  CHECK_FALSE(g->remove());  // not while processes remain
  g->kill();
  int status = 0;
  REQUIRE(::waitpid(top, &status, 0) == top);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  CHECK(settle([&] { return g->empty(); }));  // the grandchildren too
  CHECK(settle([&] { return g->remove(); }));
  CHECK(c.sweep() == 0);
}

TEST_CASE("max_pids refuses forks beyond the limit where a pids controller is there") {
  Cgroups c = Cgroups::probe(agent_name());
  if (!usable(c)) return;
  if (!c.can_limit_pids()) {
    MESSAGE("skipped: " << c.describe());
    return;
  }
  auto g = c.create("job-2", 3);
  REQUIRE(g);
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t top = ::fork();
  REQUIRE(top >= 0);
  if (top == 0) {
    for (int fd : g->procs_fds())
      if (::write(fd, "0", 1) != 1) _exit(3);
    int made = 0;
    for (int i = 0; i < 10; ++i) {
      pid_t k = ::fork();
      if (k == 0) {
        ::pause();
        _exit(0);
      }
      if (k > 0) ++made;
    }
    (void)!::write(p[1], &made, sizeof made);
    ::pause();
    _exit(0);
  }
  ::close(p[1]);
  int made = -1;
  REQUIRE(::read(p[0], &made, sizeof made) == sizeof made);
  ::close(p[0]);
  CHECK(made == 2);  // three processes in all
  g->kill();
  ::waitpid(top, nullptr, 0);
  CHECK(settle([&] { return g->remove(); }));
}

TEST_CASE("the next agent on the same socket sweeps a group left behind") {
  std::string name = agent_name();
  Cgroups c = Cgroups::probe(name);
  if (!usable(c)) return;
  auto g = c.create("job-3", 0);
  REQUIRE(g);
  pid_t left = start_in(*g, 1);
  CHECK(settle([&] { return !g->empty(); }));
  g->close_procs();
  // Another agent name: its sweep leaves this one's groups alone.
  CHECK(Cgroups::probe(name + "-other").sweep() == 0);
  CHECK_FALSE(g->empty());
  // One directory per hierarchy the job was in (v2, and v1 pids on a hybrid host).
  CHECK(Cgroups::probe(name).sweep() >= 1);
  int status = 0;
  REQUIRE(::waitpid(left, &status, 0) == left);
  CHECK(WIFSIGNALED(status));
  CHECK(Cgroups::probe(name).sweep() == 0);
}
