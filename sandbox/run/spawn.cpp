// spawn.cpp: fork, wait for the go byte, seccomp, execvp.
#include "sandbox/run/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/backend/seccomp_filter.h"

namespace bsandbox {
namespace {

[[noreturn]] void child_fail(int fd, ChildFailure::Stage stage, int error) {
  ChildFailure failure{stage, error};
  ssize_t ignored = ::write(fd, &failure, sizeof failure);
  (void)ignored;
  _exit(stage == ChildFailure::kExec && (error == ENOENT || error == ENOTDIR) ? 127
         : stage == ChildFailure::kExec                                      ? 126
                                                                             : 125);
}

// Everything between the go byte and exec that the options ask for.
// Async-signal-safe calls only; returns 0 or an errno.
int set_up_child(const SpawnOptions& o, char* const* envp) {
  for (int fd : o.cgroup_procs) {
    if (::write(fd, "0", 1) != 1) return errno;
  }
  if (o.cwd_fd >= 0 && ::fchdir(o.cwd_fd) != 0) return errno;
  if (o.umask >= 0) ::umask(static_cast<mode_t>(o.umask));
  if (o.credentials) {
    const Credentials& c = *o.credentials;
    if (::setgroups(c.groups.size(), c.groups.data()) != 0) return errno;
    if (::setresgid(c.gid, c.gid, c.gid) != 0) return errno;
    if (::setresuid(c.uid, c.uid, c.uid) != 0) return errno;
  }
  if (envp) environ = const_cast<char**>(envp);  // execvp searches this PATH
  return 0;
}

}  // namespace

Result<PausedChild> spawn_paused(const std::vector<std::string>& argv, const sigset_t& child_mask,
                                 const std::vector<sock_filter>& filter, const SpawnOptions& options) {
  if (argv.empty()) return fail("no command given");
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  if (options.env) {
    for (const auto& e : *options.env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
  }
  const ChildStdio& stdio = options.stdio;

  int go[2], status[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd go_r(go[0]), go_w(go[1]);
  if (::pipe2(status, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd status_r(status[0]), status_w(status[1]);

  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork", errno);
  if (pid == 0) {
    ::close(go[1]);
    ::close(status[0]);
    char byte;
    ssize_t n;
    do {
      n = ::read(go[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(125);  // the supervisor went away before releasing us
    ::close(go[0]);
    const int from[3] = {stdio.in, stdio.out, stdio.err};
    for (int target = 0; target < 3; ++target) {
      if (from[target] >= 0 && from[target] != target && ::dup2(from[target], target) < 0)
        child_fail(status[1], ChildFailure::kExec, errno);
    }
    ::sigprocmask(SIG_SETMASK, &child_mask, nullptr);
    // The filter goes on while the child may still be root (a filter needs
    // CAP_SYS_ADMIN or no_new_privs, and setuid programs must keep working).
    if (int e = install_seccomp_filter(filter); e != 0) child_fail(status[1], ChildFailure::kSeccomp, e);
    if (int e = set_up_child(options, options.env ? cenv.data() : nullptr); e != 0)
      child_fail(status[1], ChildFailure::kSetup, e);
    ::execvp(cargv[0], cargv.data());
    child_fail(status[1], ChildFailure::kExec, errno);
  }
  PausedChild child;
  child.pid_ = pid;
  child.go_ = std::move(go_w);
  child.status_ = std::move(status_r);
  return child;
}

Result<void> PausedChild::release() {
  char byte = 1;
  ssize_t n;
  do {
    n = ::write(go_.get(), &byte, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return fail_errno("starting the command", errno);
  go_.reset();
  return {};
}

std::optional<ChildFailure> PausedChild::exec_failure() {
  if (!status_.valid()) return std::nullopt;
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status_.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  status_.reset();
  if (n != static_cast<ssize_t>(sizeof failure)) return std::nullopt;
  return failure;
}

}  // namespace bsandbox
