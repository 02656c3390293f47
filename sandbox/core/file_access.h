// file_access.h: what one file syscall means for the provenance record.
//
// A FileEvent says what a process asked (syscall, names, flags) and what came
// back (return value, the object the kernel reached). This module turns that
// into accesses, (absolute path, ops), following the table of operations in
// the provenance spec. It knows nothing of processes or backends: the caller
// gives the cwd and root the event's names are relative to.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/core/event.h"
#include "sandbox/core/ops.h"
#include "sandbox/core/provenance.h"

namespace bsandbox {

struct PathContext {
  std::string_view cwd;   // absolute; empty if unknown
  std::string_view root;  // the process's root ("/" unless chrooted)
};

struct Access {
  std::string path;  // absolute, normalised
  OpSet ops = 0;
  // Ops to add if the path is known to have existed just before (a rename
  // onto an existing name is a write as well as a create).
  OpSet if_existed = 0;
  // What it depended on of the path's earlier state (ops.h).
  Uses uses = 0;
  // For a successful open or exec: the path as the process named it, when
  // that differs from path (a symlink was followed on the way).
  std::optional<std::string> named;
};

struct Interpretation {
  std::vector<Access> accesses;
  // Sockets reached (connect, bind, a send with an address).
  std::vector<SocketEntry> sockets;
  // Accesses whose path could not be determined (unreadable argument,
  // unknown cwd, a path the kernel truncated): the record is incomplete.
  int unresolved = 0;
};

Interpretation interpret(const FileEvent& event, const PathContext& context);

// The absolute path name denotes: relative to dir when given (the dirfd's
// path), else to context.cwd; absolute names are taken inside context.root.
// nullopt if a needed part is unknown.
std::optional<std::string> absolute_name(std::string_view name, const KernelPath* dir,
                                         const PathContext& context);

// A socket address as the record spells it (provenance.h): relative
// AF_UNIX names made absolute against context.cwd.
std::string socket_address(std::string_view sockaddr, const PathContext& context);

// Whether sys only looks a name up: it learns whether the name exists and
// its metadata (stat, access) or a symlink's target (readlink), and changes
// nothing. The record keeps a "stat" of the name (or "missing"); the ptrace
// backend may answer these in the tracer (backend/ptrace/lookup_answer.h).
bool is_name_lookup(bs_sys sys);

// Whether a file system magic number is a pseudo file system whose files the
// spec lets us leave out (procfs, sysfs, devpts, cgroup, ...).
bool is_pseudo_fs(uint32_t magic);

}  // namespace bsandbox
