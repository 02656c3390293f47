// exec_image.h: what a successful execve started, as the tracer reads it.
//
// At the exec stop the new program is mapped and has not run yet. The
// eBPF backend takes the file name, the script interpreter and the ELF
// interpreter from the kernel's linux_binprm; here they are found again
// from outside: the name from the call's own argument (execveat relative
// to a dirfd is spelt as the kernel spells it, /dev/fd/N/NAME), a #! line
// read from the file through the tracee's root or cwd, and the ELF
// interpreter as the file mapped where execution starts (/proc/TID/maps).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sandbox/backend/ptrace/file_call.h"
#include "sandbox/backend/ptrace/proc_reader.h"

namespace bsandbox {

// The name execve was given, as the kernel spells it: a name relative to a
// dirfd other than AT_FDCWD becomes /dev/fd/N/NAME (/dev/fd/N when empty).
std::string exec_name(const std::string& given, int dirfd);

// The interpreter a #! script names (as named), or "" if filename is not a
// script. Nested scripts end at the last interpreter, like the kernel's.
// The file is opened through /proc/TID/root or /proc/TID/cwd.
std::string script_interp(pid_t tid, const std::string& filename);

// In the text of /proc/TID/maps: the file mapped at ip (where the new
// program starts: the ELF interpreter), unless that is the program exe
// itself (a static binary) or no file is mapped there.
std::optional<Named> mapping_at(std::string_view maps, uint64_t ip, const std::string& exe);

// The names of an ExecEvent, read at the exec stop of tid; it owns the
// bytes the event's views point to, until the next read.
class ExecImage {
 public:
  // execve: the call as read at its seccomp stop (nullptr if unknown); ip:
  // where the new program starts.
  void read(pid_t tid, ProcReader& proc, const FileCall* execve, uint64_t ip);
  // The filename (the name given, else the executable's path), interp (the
  // script interpreter, else the filename), exe, ldso and argv of e.
  void fill(ExecEvent& e) const;
  // Whether the names in e need the cwd (a relative name, or a script whose
  // interpreter is looked up) and the root (an absolute name).
  bool needs_cwd() const { return relative() || !interp_.empty(); }
  bool needs_root() const { return !relative(); }

 private:
  bool relative() const { return !filename_.empty() && filename_[0] != '/'; }
  std::string filename_, interp_, argv_;
  Named exe_, ldso_;
  bool have_exe_ = false, have_ldso_ = false;
};

}  // namespace bsandbox
