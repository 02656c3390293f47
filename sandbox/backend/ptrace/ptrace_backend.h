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

#include "sandbox/backend/syscall_table.h"
#include "sandbox/core/event_source.h"

namespace bsandbox {

Result<std::unique_ptr<EventSource>> open_ptrace_backend();

// The same tracer with the in-process runtime (backend/inproc) preloaded
// into the tree's dynamically linked programs: the file syscalls it handles
// (inproc_handled()) are made from its gate page, untraced, and reported
// through the shared area's rings, which the tracer reads on every turn
// and before it handles any stop; everything else (what ld.so does before
// the runtime is loaded, static programs, a call the runtime could not
// record) stops here as with the ptrace backend. runtime: the library's
// path (no ':' or spaces: LD_PRELOAD separates with those).
Result<std::unique_ptr<EventSource>> open_inproc_backend(const std::string& runtime);

// Whether the runtime handles the file syscall spec in process.
bool inproc_handled(const SyscallSpec& spec);

}  // namespace bsandbox
