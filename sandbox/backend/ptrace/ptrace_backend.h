// ptrace_backend.h: the event source that needs no privileges.
//
// The command starts under a seccomp filter that stops only the file
// syscalls of syscall_table.h for the tracer (SECCOMP_RET_TRACE); every
// other syscall runs at full speed. The supervisor is the tracer
// (PTRACE_SEIZE with TRACESECCOMP, TRACECLONE/FORK/VFORK, TRACEEXEC,
// EXITKILL): at a seccomp stop it reads the arguments (process_vm_readv),
// asks for the syscall-exit stop, and there reads the result and names what
// the call reached from /proc/TID/{fd,cwd,root,exe} while the tracee is
// stopped. Process events come from ptrace's own events and wait reports.
//
// The events are the same Events the eBPF backend produces, so the process
// tree, file interpretation and record are shared. See the README for what
// differs (cost per traced syscall; paths longer than a page).
#pragma once

#include <memory>

#include "sandbox/core/event_source.h"

namespace bsandbox {

Result<std::unique_ptr<EventSource>> open_ptrace_backend();

}  // namespace bsandbox
