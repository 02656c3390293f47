// seccomp_filter_test.cpp: the filters installed in real forked children:
// io_uring refused with ENOSYS by both, file syscalls stopping for a tracer
// under the ptrace backend's (with none attached, a SECCOMP_RET_TRACE call
// fails with ENOSYS, which shows it was caught), fstat's spellings and
// everything else running untouched.
#include "sandbox/backend/seccomp_filter.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

using namespace bsandbox;

namespace {

// Runs body in a child under filter; the errno body returns (0 for success)
// travels back as the exit status.
int errno_under(const std::vector<sock_filter>& filter, const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (install_seccomp_filter(filter) != 0) _exit(250);
    _exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) != 250);
  return WEXITSTATUS(status);
}

int errno_of(long rc) { return rc < 0 ? errno : 0; }

}  // namespace

TEST_CASE("io_uring is refused with ENOSYS; other calls run") {
  auto f = io_uring_refusal_filter();
  REQUIRE(f);
  CHECK(errno_under(*f, [] { return errno_of(::syscall(SYS_io_uring_setup, 4, nullptr)); }) == ENOSYS);
  CHECK(errno_under(*f, [] { return errno_of(::syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0)); }) == ENOSYS);
  CHECK(errno_under(*f, [] { return errno_of(::syscall(SYS_io_uring_register, -1, 0, nullptr, 0)); }) == ENOSYS);
  CHECK(errno_under(*f, [] {
    int fd = ::open("/dev/null", O_RDONLY);
    return fd >= 0 ? 0 : errno;
  }) == 0);
}

TEST_CASE("the ptrace filter stops file syscalls (ENOSYS without a tracer), not fstat nor the rest") {
  auto f = file_syscall_trace_filter();
  REQUIRE(f);
  CHECK(errno_under(*f, [] { return errno_of(::open("/dev/null", O_RDONLY)); }) == ENOSYS);
  CHECK(errno_under(*f, [] {
    struct stat st;
    return errno_of(::syscall(SYS_newfstatat, AT_FDCWD, "/", &st, 0));
  }) == ENOSYS);
  // fstat spelt newfstatat(fd, "", AT_EMPTY_PATH): runs.
  CHECK(errno_under(*f, [] {
    struct stat st;
    return errno_of(::syscall(SYS_newfstatat, 0, "", &st, AT_EMPTY_PATH));
  }) == 0);
  CHECK(errno_under(*f, [] { return errno_of(::syscall(SYS_getpid)); }) == 0);
  CHECK(errno_under(*f, [] { return errno_of(::syscall(SYS_io_uring_setup, 4, nullptr)); }) == ENOSYS);
  // "also": a syscall outside the file table, stopped on request.
  long getppid_nr = SYS_getppid;
  auto also = file_syscall_trace_filter(std::span<const long>(&getppid_nr, 1));
  REQUIRE(also);
  CHECK(errno_under(*also, [] { return errno_of(::syscall(SYS_getppid)); }) == ENOSYS);
}

#if defined(__x86_64__)
TEST_CASE("a call made from the gate page runs untraced; the same call elsewhere stops; io_uring stays refused") {
  auto trace = file_syscall_trace_filter();
  REQUIRE(trace);
  constexpr uint64_t kGate = 0x00006a5a00000000ULL;  // the in-process runtime's (above ASan's shadow)
  auto filter = allow_from_gate(*trace, kGate, 4096);
  // mov %rdi,%rax; mov %rsi,%rdi; mov %rdx,%rsi; xor %edx,%edx; syscall;
  // ret -- at the page's start, and so that the syscall instruction is the
  // page's last two bytes (the instruction pointer the filter sees is then
  // the page's end), and one byte further (on the next page).
  const unsigned char code[] = {0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x31, 0xd2, 0x0f, 0x05, 0xc3};
  auto gate_errno = [&](size_t at, long nr, long a1, long a2) {
    return errno_under(filter, [&] {
      void* page = ::mmap(reinterpret_cast<void*>(kGate), 8192, PROT_READ | PROT_WRITE | PROT_EXEC,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (page == MAP_FAILED) return 251;
      std::memcpy(static_cast<char*>(page) + at, code, sizeof code);
      auto fn = reinterpret_cast<long (*)(long, long, long)>(static_cast<char*>(page) + at);
      long rc = fn(nr, a1, a2);
      return rc < 0 ? static_cast<int>(-rc) : 0;
    });
  };
  auto path = reinterpret_cast<long>("/");
  CHECK(gate_errno(0, SYS_faccessat, AT_FDCWD, path) == 0);                  // from the gate: runs
  CHECK(gate_errno(4096 - 13, SYS_faccessat, AT_FDCWD, path) == 0);          // ends at the page's end
  CHECK(gate_errno(4096 - 12, SYS_faccessat, AT_FDCWD, path) == ENOSYS);     // the syscall on the next page
  CHECK(gate_errno(0, SYS_io_uring_setup, 1, 0) == ENOSYS);                  // refused wherever it comes from
  CHECK(errno_under(filter, [] { return errno_of(::access("/", F_OK)); }) == ENOSYS);  // elsewhere: stops
  CHECK(errno_under(filter, [] { return errno_of(::getppid() > 0 ? 0 : -1); }) == 0);
}
#endif
