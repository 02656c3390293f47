// seccomp_filter.cpp: libseccomp builds the filter for every ABI the machine
// runs (native, and 32-bit where it exists, so a 32-bit program cannot reach
// io_uring either); seccomp_export_bpf writes it to a memfd we read back.
#include "sandbox/backend/seccomp_filter.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "sandbox/backend/syscall_table.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

namespace {

using Context = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

// A filter that allows everything not ruled otherwise, on every ABI the
// machine runs, refusing io_uring.
Result<Context> base_filter() {
  Context ctx(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
  if (!ctx) return fail("seccomp: cannot create a filter");
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
#if defined(__x86_64__)
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    int rc = seccomp_arch_add(ctx.get(), arch);
    if (rc != 0 && rc != -EEXIST) return fail_errno("seccomp: adding an architecture", -rc);
  }
#endif
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    if (rc != 0) return fail_errno(std::string("seccomp: rule for ") + name, -rc);
  }
  return ctx;
}

Result<std::vector<sock_filter>> export_filter(const Context& ctx) {
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "bsandbox-seccomp", MFD_CLOEXEC)));
  if (!mem.valid()) return fail_errno("seccomp: memfd_create", errno);
  int rc = seccomp_export_bpf(ctx.get(), mem.get());
  if (rc != 0) return fail_errno("seccomp: exporting the filter", -rc);
  off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) return fail("seccomp: exported filter is malformed");
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size)
    return fail_errno("seccomp: reading the filter back", errno);
  return prog;
}

}  // namespace

Result<std::vector<sock_filter>> io_uring_refusal_filter() {
  auto ctx = base_filter();
  if (!ctx) return tl::unexpected(ctx.error());
  return export_filter(*ctx);
}

Result<std::vector<sock_filter>> file_syscall_trace_filter(std::span<const long> also) {
  auto ctx = base_filter();
  if (!ctx) return tl::unexpected(ctx.error());
  for (const SyscallSpec& s : file_syscalls()) {
    int rc;
    if (s.desc.desc_flags & BS_DESC_SKIP_EMPTY_PATH) {
      // fstat() is newfstatat(fd, "", AT_EMPTY_PATH): let it run untraced.
      unsigned arg = s.desc.flags - 1u;
      rc = seccomp_rule_add(ctx->get(), SCMP_ACT_TRACE(0), static_cast<int>(s.nr), 1,
                            SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
    } else if (s.desc.desc_flags & BS_DESC_SOCKADDR) {
      // send() is sendto() without an address: on a connected socket, it
      // says nothing connect() did not.
      unsigned arg = s.desc.path1 - 1u;
      rc = seccomp_rule_add(ctx->get(), SCMP_ACT_TRACE(0), static_cast<int>(s.nr), 1,
                            SCMP_CMP(arg, SCMP_CMP_NE, 0));
    } else {
      rc = seccomp_rule_add(ctx->get(), SCMP_ACT_TRACE(0), static_cast<int>(s.nr), 0);
    }
    if (rc != 0) return fail_errno("seccomp: rule for " + std::string(s.name), -rc);
  }
  for (long nr : also) {
    int rc = seccomp_rule_add(ctx->get(), SCMP_ACT_TRACE(0), static_cast<int>(nr), 0);
    if (rc != 0) return fail_errno("seccomp: rule for syscall " + std::to_string(nr), -rc);
  }
  return export_filter(*ctx);
}

std::vector<sock_filter> allow_from_gate(const std::vector<sock_filter>& filter, uint64_t gate, uint64_t size) {
#if defined(__x86_64__)
  // seccomp_data: nr at 0, arch at 4, instruction_pointer at 8 (low word
  // first). The instruction pointer is the one after the syscall
  // instruction, so a call from the last bytes of the page counts too.
  constexpr uint32_t kNr = 0, kArch = 4, kIpLow = 8, kIpHigh = 12;
  const uint32_t low = static_cast<uint32_t>(gate), high = static_cast<uint32_t>(gate >> 32);
  const uint32_t end = low + static_cast<uint32_t>(size);
  // Every "on to the filter" jump lands just past the ALLOW (index 13).
  std::vector<sock_filter> out = {
      /*  0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArch),
      /*  1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 11),
      /*  2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNr),
      /*  3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 9, 0),  // x32
      /*  4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 8, 0),
      /*  5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_enter, 7, 0),
      /*  6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_register, 6, 0),
      /*  7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpHigh),
      /*  8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, high, 0, 4),
      /*  9 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpLow),
      /* 10 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, low, 0, 2),
      /* 11 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, end, 1, 0),
      /* 12 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  out.insert(out.end(), filter.begin(), filter.end());
  return out;
#else
  (void)gate, (void)size;
  return filter;
#endif
}

int install_seccomp_filter(const std::vector<sock_filter>& filter) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(filter.size());
  prog.filter = const_cast<sock_filter*>(filter.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) return 0;
  if (errno != EACCES) return errno;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0) return 0;
  return errno;
}

}  // namespace bsandbox
