// syscall_table.h: which syscalls are file syscalls, and how to read them.
//
// The kernel programs are written against enum bs_sys (meaning) and need a
// table from this architecture's syscall numbers to bs_sc_desc (which
// arguments are paths, dirfds, fds and flags). Building the table here, from
// <sys/syscall.h>, keeps the numbers in one place that the C library already
// gets right for the architecture; the ptrace backend will filter on the
// same list.
#pragma once

#include <linux/types.h>

#include <array>
#include <span>
#include <string_view>

#include "bpf/events.h"

namespace bsandbox {

struct SyscallSpec {
  long nr;                // this architecture's number
  std::string_view name;  // as in the man pages
  bs_sc_desc desc;
};

// Every file syscall bsandbox records, for this architecture.
std::span<const SyscallSpec> file_syscalls();

// The table the kernel programs index by syscall number.
std::array<bs_sc_desc, BS_SC_TABLE_SIZE> kernel_syscall_table();

// "openat" for BS_SYS_OPENAT.
std::string_view sys_name(bs_sys sys);

}  // namespace bsandbox
