// file_call.h: one traced file syscall, from its seccomp stop to its event.
//
// At the seccomp stop the tracer reads what the call names: its arguments
// are registers, its paths, open_how and socket address are in the tracee's
// memory (tracee_memory.h), and for an open that may create, whether the
// name exists yet is looked up before the call runs (so that the event can
// say the call created the file). At the exit stop, or at once when the
// tracer answered the call itself, the FileEvent is filled from that and the
// result; the names only /proc can give (a dirfd's path, the cwd, the root,
// the object reached) are then the tracer's to read: fill_file_event says
// which ones the event needs.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>

#include "sandbox/backend/ptrace/tracee_memory.h"
#include "sandbox/backend/syscall_table.h"
#include "sandbox/core/event.h"

namespace bsandbox {

struct FileCall {
  const SyscallSpec* spec = nullptr;
  std::array<uint64_t, 6> args{};
  uint64_t flags = 0;  // the open flags (from open_how for openat2), or the call's flags argument
  UserString path1, path2;
  int created = -1;  // open with O_CREAT: 1 if the name did not exist at entry

  // The argument bs_sc_desc numbers index (1-based; 0 is "none").
  uint64_t arg(uint8_t index) const { return args[index - 1u]; }
  // Whether a successful open of this call made its file: O_CREAT with
  // O_EXCL, or a name that did not exist at entry (never O_TMPFILE).
  bool created_file() const;
};

// Reads the call spec describes from the tracee tid, stopped at its seccomp
// stop with these six arguments. False: there is nothing to report (a send
// without an address; a stat of "" with AT_EMPTY_PATH, fstat in disguise).
bool read_file_call(pid_t tid, const SyscallSpec& spec, const uint64_t* args, FileCall& call);

// The names that an event must be given from /proc.
struct NamesNeeded {
  bool dir1 = false, dir2 = false;  // the path of dirfd1, dirfd2: a name is relative to it
  bool cwd = false;                 // a name is relative to the cwd
  bool root = false;                // a name is absolute (inside the root)
};

// Fills what e takes from the call itself and its result ret (the syscall,
// result, flags, dirfds and names as given), and says which names from
// /proc it needs besides. The process, thread and result object are the
// caller's.
NamesNeeded fill_file_event(const FileCall& call, int64_t ret, FileEvent& e);

}  // namespace bsandbox
