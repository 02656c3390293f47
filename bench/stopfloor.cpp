// stopfloor STOPS CMD...: the cheapest possible seccomp+ptrace tracer, as a
// floor for the ptrace backend's cost. CMD runs under bsandbox's own
// seccomp filter (the same traced syscalls); at each seccomp stop the tracer
// reads the syscall (PTRACE_GET_SYSCALL_INFO) and its first 256 bytes of
// path, and nothing else. STOPS=1 resumes at once; STOPS=2 also takes the
// syscall-exit stop, as a tracer that reads every result must. Forks,
// clones and execs are followed; no record is kept. Prints the number of
// stops to stderr and exits with CMD's status.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sandbox/backend/seccomp_filter.h"

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[1], "1") != 0 && std::strcmp(argv[1], "2") != 0)) {
    std::fprintf(stderr, "usage: stopfloor 1|2 CMD...\n");
    return 2;
  }
  bool exit_stops = argv[1][0] == '2';
  auto filter = bsandbox::file_syscall_trace_filter();
  if (!filter) {
    std::fprintf(stderr, "stopfloor: %s\n", filter.error().message.c_str());
    return 1;
  }
  pid_t child = fork();
  if (child == 0) {
    raise(SIGSTOP);
    if (int e = bsandbox::install_seccomp_filter(*filter)) _exit(100 + e);
    execvp(argv[2], argv + 2);
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, WSTOPPED);
  long options = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
                 PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
  if (ptrace(PTRACE_SEIZE, child, nullptr, options) != 0) {
    std::perror("stopfloor: PTRACE_SEIZE");
    return 1;
  }
  kill(child, SIGCONT);
  long stops = 0;
  int code = 0;
  char path[256];
  for (;;) {
    pid_t tid = waitpid(-1, &status, __WALL);
    if (tid < 0) break;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (tid == child) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      continue;
    }
    int event = status >> 16, sig = WSTOPSIG(status);
    __ptrace_syscall_info info{};
    if (event == PTRACE_EVENT_SECCOMP) {
      ++stops;
      ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info);
      iovec local{path, sizeof path};
      iovec remote{reinterpret_cast<void*>(info.seccomp.args[1]), sizeof path};
      process_vm_readv(tid, &local, 1, &remote, 1, 0);
      ptrace(exit_stops ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, 0);
    } else if (event == 0 && sig == (SIGTRAP | 0x80)) {
      ++stops;
      ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info);
      ptrace(PTRACE_CONT, tid, nullptr, 0);
    } else if (event == PTRACE_EVENT_STOP) {
      bool group_stop = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
      ptrace(group_stop ? PTRACE_LISTEN : PTRACE_CONT, tid, nullptr, 0);
    } else {
      ptrace(PTRACE_CONT, tid, nullptr, event ? 0 : sig);
    }
  }
  std::fprintf(stderr, "stopfloor: %ld stops\n", stops);
  return code;
}
