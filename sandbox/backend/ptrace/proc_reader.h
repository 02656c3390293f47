// proc_reader.h: what the tracer learns of a stopped tracee from /proc.
//
// What the eBPF backend reads from kernel memory, the ptrace backend reads
// from /proc/TID while the tracee is stopped: the path of an fd, of the cwd,
// root and executable (readlink of the magic links, with a walk up ".." for
// directories whose path is longer than a page, where readlink gives up),
// whether a name exists as the tracee would look it up, and the fields of
// /proc/TID/status that say who it is (its process, its parent, its
// credentials).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sandbox/core/event.h"

namespace bsandbox {

// "/proc/TID/WHAT" (or "/proc/TID/WHATN", for "fd/" and a number) in a
// fixed buffer: built at every stop, so without allocating.
struct ProcPath {
  char buf[64];
  ProcPath(pid_t tid, const char* what) { std::snprintf(buf, sizeof buf, "/proc/%d/%s", tid, what); }
  ProcPath(pid_t tid, const char* what, long n) {
    std::snprintf(buf, sizeof buf, "/proc/%d/%s%ld", tid, what, n);
  }
  const char* c_str() const { return buf; }
};

// readlink of a /proc link into out, with a walk up ".." (finding each name
// in its parent, as getcwd once did) for directories whose path is longer
// than readlink of a /proc link can return (a page). False with errno on
// failure (ENAMETOOLONG: longer than a page, and the walk failed too).
bool proc_link(const char* path, std::string& out);

// The walk alone: the path of the directory proc_link names, found from
// "..". Empty if some directory on the way cannot be read, or the walk ends
// at a root that is not the tracer's.
std::string long_dir_path(const char* proc_link);

// A path the tracer named for an event, owning its bytes.
struct Named {
  std::string path;
  uint8_t flags = 0;   // BS_SF_*
  uint16_t rflags = 0;  // BS_RF_DIR
  uint32_t magic = 0;
  uint64_t ino = 0, mnt = 0;
  KernelPath view() const { return KernelPath{path, flags}; }
};

// Names what /proc/TID/WHAT[N] links to; remembers each mount's file
// system type, which statfs would otherwise ask again at every event.
class ProcReader {
 public:
  // What /proc/TID/WHAT[N] names (n < 0: no number). info: also whether it
  // is a directory, its file system, and whether it was deleted (the kernel
  // appends " (deleted)"). False if the link cannot be read at all.
  bool describe(pid_t tid, const char* what, long n, Named& out, bool info);

 private:
  uint32_t magic_of(uint64_t mnt, const char* path);
  std::unordered_map<uint64_t, uint32_t> magic_by_mnt_;
};

// Whether name exists for the tracee (1), not (0), or unknown (-1): looked
// up through its own cwd, root or dirfd in /proc, so it resolves as it would.
int name_exists(pid_t tid, int dirfd, const std::string& name, bool follow);

// The Tgid and PPid fields of the text of /proc/TID/status (0 where
// missing).
struct TaskIds {
  pid_t tgid = 0;
  pid_t ppid = 0;
};
TaskIds task_ids(std::string_view status);

// What decides what a lookup may see, of the text of /proc/PID/status: its
// Uid, Gid, Groups and CapEff lines (empty if one is missing).
std::string credentials_of(std::string_view status);

// Which file system object a root is, as a string to compare.
std::string root_identity(const char* path);

// Who a thread is to a lookup it makes, as a string to compare: its
// credentials, user namespace and root. proc_dir is "/proc/self" or
// "/proc/TID"; root the path of its root directory ("/" for the tracer
// itself, "/proc/TID/root" for a tracee).
std::string identity(const std::string& proc_dir, const char* root);

}  // namespace bsandbox
