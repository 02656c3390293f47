// seccomp_filter.h: the seccomp-bpf filter bsandbox installs in the traced
// tree.
//
// io_uring performs file operations with no syscall per operation, so no
// syscall tracepoint sees them, and io_uring's own tracepoints do not carry
// paths. Rather than let accesses escape the record silently, the tree is
// refused io_uring: io_uring_setup, io_uring_enter and io_uring_register fail
// with ENOSYS, the answer of a kernel without io_uring, to which programs
// already fall back. The filter is built with libseccomp in the parent and
// installed raw in the child, which must not allocate between fork and exec.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <vector>

#include "sandbox/base/result.h"

namespace bsandbox {

Result<std::vector<sock_filter>> io_uring_refusal_filter();

// The ptrace backend's filter: io_uring refused as above, and every file
// syscall of syscall_table.h stops for the tracer (SECCOMP_RET_TRACE), except
// newfstatat/statx with AT_EMPTY_PATH, which is how the C library spells
// fstat(). So do the native syscalls in also (numbers). Every other syscall
// runs untouched.
Result<std::vector<sock_filter>> file_syscall_trace_filter(std::span<const long> also = {});

// filter, preceded by a rule that lets every native syscall made from the
// page [gate, gate + size) run untraced, io_uring's and other ABIs' excepted
// (they go on to filter's own rules). The in-process runtime makes its calls
// from there. Only x86_64 so far: elsewhere filter is returned unchanged.
std::vector<sock_filter> allow_from_gate(const std::vector<sock_filter>& filter, uint64_t gate, uint64_t size);

// In the child after fork: installs filter. Async-signal-safe. Without
// CAP_SYS_ADMIN the kernel requires no_new_privs first, which is then set.
// Returns 0 or an errno.
int install_seccomp_filter(const std::vector<sock_filter>& filter);

}  // namespace bsandbox
