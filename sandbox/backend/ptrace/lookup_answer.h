// lookup_answer.h: the tracer answers a stopped tracee's name lookups itself.
//
// A ptrace stop round trip costs far more than a lookup (~20 us against
// ~1 us on the VMs we measured), and a syscall whose result the tracer must
// read costs two: the seccomp stop and the exit stop. For calls that only
// look a name up (stat, lstat, newfstatat, statx, access, faccessat,
// readlink, and an open of a name that does not exist), the tracer can
// instead make the same lookup at the seccomp stop, write what the call
// would have written into the tracee's memory, and have the tracee skip the
// syscall with that result: one stop, and the record holds exactly what the
// program saw.
//
// "Exactly" holds only where the tracer's lookup cannot differ from the
// tracee's, and answer_lookup() declines everything else (the tracee then
// makes the call itself):
//  - The caller must check that the tracee runs with the tracer's
//    credentials, user namespace and root directory (see the ptrace backend).
//  - The name must be resolved without magic links and without passing
//    through procfs or another pseudo file system, where names depend on
//    who asks (/proc/self, /proc/self/fd/N): the walk first may not leave the
//    mount it starts on; where it must, only what it finds off /proc (and
//    not an automount point) is answered, never a miss.
//  - Flags or sizes the kernel would reject, and outputs the tracer cannot
//    write, are declined.
// An answered open of a missing name returns ENOENT without allocating an
// fd first, so a process at its fd limit sees ENOENT where the kernel would
// have said EMFILE; that is the one known difference.
#pragma once

#include <linux/types.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "bpf/events.h"

namespace bsandbox {

struct LookupCall {
  bs_sys sys = BS_SYS_NONE;
  // A tracer fd for the directory a relative name starts from (the
  // tracee's cwd or dirfd, opened through /proc); unused for absolute ones.
  int base = -1;
  bool base_plain = false;  // the caller knows base is not on a pseudo file system
  std::string_view path;    // the name, as read from the tracee
  std::array<uint64_t, 6> args{};  // the syscall's raw arguments
};

// Whether sys (with these open flags) is a call answer_lookup may take:
// a name lookup (is_name_lookup, core/file_access.h), or an open that
// cannot create (only its miss is answered).
bool answerable(bs_sys sys, uint64_t open_flags);

// The value the syscall would return, with its outputs already written to
// the tracee tid's memory; nullopt when the tracer cannot be sure (nothing
// was written then).
std::optional<int64_t> answer_lookup(pid_t tid, const LookupCall& call);

// Whether fd is on a file system where names mean the same to everyone
// (not procfs or another pseudo file system, not autofs).
bool on_plain_fs(int fd);

// Makes the tracee, stopped at a seccomp stop, skip its syscall and see ret
// as the result. False where unsupported (not x86_64) or on failure.
bool skip_syscall(pid_t tid, int64_t ret);
bool can_skip_syscalls();

}  // namespace bsandbox
