// spawn_test.cpp: a paused child runs nothing until released, then takes
// the options (stdio, working directory, environment, umask) and execs;
// exec failures come back as a shell would report them; a child whose
// supervisor goes away without releasing it exits 125.
#include "sandbox/run/spawn.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "sandbox/base/io.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

namespace {

const std::vector<sock_filter> kAllow{BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};

sigset_t no_mask() {
  sigset_t s;
  sigemptyset(&s);
  return s;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

TEST_CASE("the child waits for release, then runs the command") {
  TempDir dir("spawn");
  auto child = spawn_paused({"sh", "-c", "echo ran > " + dir / "mark"}, no_mask(), kAllow);
  REQUIRE(child);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(::waitpid(child->pid(), nullptr, WNOHANG) == 0);  // still waiting
  CHECK(::access((dir / "mark").c_str(), F_OK) != 0);
  REQUIRE(child->release());
  int status = wait_for(child->pid());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(child->exec_failure());
  CHECK(read_file(dir / "mark").value_or("") == "ran\n");
}

TEST_CASE("the options: stdout, working directory, environment and umask") {
  TempDir dir("spawn");
  UniqueFd out(::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  std::vector<std::string> env{"PATH=/usr/bin:/bin", "SPAWN_TEST=yes"};
  SpawnOptions o;
  o.stdio.out = out.get();
  o.cwd_fd = dir.fd.get();
  o.env = &env;
  o.umask = 027;
  auto child = spawn_paused({"sh", "-c", "pwd; echo $SPAWN_TEST; umask"}, no_mask(), kAllow, o);
  REQUIRE(child);
  REQUIRE(child->release());
  CHECK(wait_for(child->pid()) == 0);
  CHECK(read_file(dir / "out").value_or("") == dir.path + "\nyes\n0027\n");
}

TEST_CASE("a command not found exits 127, one not runnable 126, and the errno comes back") {
  TempDir dir("spawn");
  auto missing = spawn_paused({"bsandbox-no-such-command"}, no_mask(), kAllow);
  REQUIRE(missing);
  REQUIRE(missing->release());
  int status = wait_for(missing->pid());
  CHECK(WEXITSTATUS(status) == 127);
  auto f = missing->exec_failure();
  REQUIRE(f);
  CHECK(f->stage == ChildFailure::kExec);
  CHECK(f->error == ENOENT);
  CHECK_FALSE(missing->exec_failure());  // told once

  UniqueFd(::open((dir / "plain").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));  // not executable
  auto denied = spawn_paused({dir / "plain"}, no_mask(), kAllow);
  REQUIRE(denied);
  REQUIRE(denied->release());
  CHECK(WEXITSTATUS(wait_for(denied->pid())) == 126);
  f = denied->exec_failure();
  REQUIRE(f);
  CHECK(f->error == EACCES);
}

TEST_CASE("a filter that cannot be installed is a seccomp failure") {
  auto child = spawn_paused({"true"}, no_mask(), {});  // an empty program is refused
  REQUIRE(child);
  REQUIRE(child->release());
  CHECK(WEXITSTATUS(wait_for(child->pid())) == 125);
  auto f = child->exec_failure();
  REQUIRE(f);
  CHECK(f->stage == ChildFailure::kSeccomp);
}

TEST_CASE("a child never released exits 125 without running the command") {
  TempDir dir("spawn");
  pid_t pid;
  {
    auto child = spawn_paused({"sh", "-c", "echo ran > " + dir / "mark"}, no_mask(), kAllow);
    REQUIRE(child);
    pid = child->pid();
  }
  CHECK(WEXITSTATUS(wait_for(pid)) == 125);
  CHECK(::access((dir / "mark").c_str(), F_OK) != 0);
}

TEST_CASE("no command, no child") {
  auto child = spawn_paused({}, no_mask(), kAllow);
  REQUIRE_FALSE(child);
  CHECK(child.error().message == "no command given");
}
