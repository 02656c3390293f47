// lookup_answer.cpp: see lookup_answer.h for when an answer is exact.
#include "sandbox/backend/ptrace/lookup_answer.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/stat.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <string>

#include "sandbox/core/file_access.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {
namespace {

static_assert(sizeof(struct statx) == 256, "statx is copied out whole, as the kernel does");

constexpr uint64_t kStatFlags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH;
constexpr uint64_t kStatxFlags = kStatFlags | AT_STATX_SYNC_TYPE;
constexpr uint64_t kAccessFlags = AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH;

enum class Kind { kStat, kStatx, kAccess, kReadlink, kOpen };

// What one call asks, decoded from its arguments.
struct Ask {
  Kind kind = Kind::kStat;
  bool follow = true;  // a symlink as the last component is followed
  uint64_t out = 0;    // where the result goes in the tracee
  uint64_t flags = 0;  // AT_* flags (open: O_* flags)
  uint32_t mask = 0;   // statx
  int mode = 0;        // access
  int size = 0;        // readlink
};

// Decodes c; false if the kernel would reject the arguments before any
// lookup, or the call is not one answered here.
bool decode(const LookupCall& c, Ask& q) {
  auto a = [&](int i) { return c.args[static_cast<size_t>(i)]; };
  switch (c.sys) {
    case BS_SYS_STAT:
    case BS_SYS_LSTAT:
      q.kind = Kind::kStat;
      q.out = a(1);
      q.follow = c.sys == BS_SYS_STAT;
      return true;
    case BS_SYS_NEWFSTATAT:
      q.kind = Kind::kStat;
      q.out = a(2);
      q.flags = a(3);
      q.follow = !(q.flags & AT_SYMLINK_NOFOLLOW);
      return !(q.flags & ~kStatFlags);
    case BS_SYS_STATX:
      q.kind = Kind::kStatx;
      q.flags = a(2);
      q.mask = static_cast<uint32_t>(a(3));
      q.out = a(4);
      q.follow = !(q.flags & AT_SYMLINK_NOFOLLOW);
      return !(q.flags & ~kStatxFlags) && (q.flags & AT_STATX_SYNC_TYPE) != AT_STATX_SYNC_TYPE &&
             !(q.mask & STATX__RESERVED);
    case BS_SYS_ACCESS:
    case BS_SYS_FACCESSAT:
    case BS_SYS_FACCESSAT2:
      q.kind = Kind::kAccess;
      q.mode = static_cast<int>(a(c.sys == BS_SYS_ACCESS ? 1 : 2));
      q.flags = c.sys == BS_SYS_FACCESSAT2 ? a(3) : 0;
      q.follow = !(q.flags & AT_SYMLINK_NOFOLLOW);
      return !(q.mode & ~(R_OK | W_OK | X_OK)) && !(q.flags & ~kAccessFlags);
    case BS_SYS_READLINK:
    case BS_SYS_READLINKAT: {
      int first = c.sys == BS_SYS_READLINK ? 1 : 2;
      q.kind = Kind::kReadlink;
      q.out = a(first);
      q.size = static_cast<int>(a(first + 1));
      q.follow = false;
      return q.size > 0;
    }
    case BS_SYS_OPEN:
    case BS_SYS_OPENAT:
      q.kind = Kind::kOpen;
      q.flags = a(c.sys == BS_SYS_OPEN ? 1 : 2);
      q.follow = !(q.flags & O_NOFOLLOW);
      return answerable(c.sys, q.flags);
    default:
      return false;
  }
}

bool write_out(pid_t tid, uint64_t addr, const void* data, size_t size) {
  iovec local{const_cast<void*>(data), size};
  iovec remote{reinterpret_cast<void*>(addr), size};
  return ::process_vm_writev(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

bool on_pseudo_fs(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return true;
  auto magic = static_cast<uint32_t>(fs.f_type);
  return is_pseudo_fs(magic) || magic == AUTOFS_SUPER_MAGIC;
}

bool root_is_plain() {
  static const bool plain = [] {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    return root.valid() && !on_pseudo_fs(root.get());
  }();
  return plain;
}

int walk(const LookupCall& c, bool follow, uint64_t resolve) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  how.resolve = resolve;
  std::string path(c.path);
  return static_cast<int>(::syscall(SYS_openat2, c.base, path.c_str(), &how, sizeof how));
}

// What the name reaches, found as the call would find it (following a
// symlink in the last component or not, as it would): an O_PATH fd, or the error
// (ENOENT, ENOTDIR) with which the walk fails for anyone; nullopt where the
// walk could depend on who makes it.
//
// The walk refuses magic links, and first may not leave the mount it starts
// on (the root, or the base directory), which must not be a pseudo file
// system: then nothing on the way is /proc, where /proc/self/... is the
// asker's, and the answer holds for the tracee whether found or not. Where
// it must cross a mount, it is walked again freely, and only an object found
// off /proc (and not an automount point) is answered.
struct Found {
  UniqueFd fd;
  int error = 0;
};

std::optional<Found> find(const LookupCall& c, bool follow) {
  if (c.path[0] == '/' ? !root_is_plain() : c.base < 0 || (!c.base_plain && on_pseudo_fs(c.base)))
    return std::nullopt;
  Found f;
  f.fd = UniqueFd(walk(c, follow, RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
  if (f.fd.valid()) return f;
  if (errno == ENOENT || errno == ENOTDIR) {
    f.error = errno;
    return f;
  }
  if (errno != EXDEV) return std::nullopt;
  f.fd = UniqueFd(walk(c, follow, RESOLVE_NO_MAGICLINKS));
  if (!f.fd.valid() || on_pseudo_fs(f.fd.get())) return std::nullopt;
  return f;
}

}  // namespace

bool on_plain_fs(int fd) { return !on_pseudo_fs(fd); }

bool answerable(bs_sys sys, uint64_t open_flags) {
  if (is_name_lookup(sys)) return true;  // decode() reads each one's arguments
  // Only a miss is answered; an open that may create is never.
  if (sys == BS_SYS_OPEN || sys == BS_SYS_OPENAT)
    return !(open_flags & O_CREAT) && (open_flags & O_TMPFILE) != O_TMPFILE;
  return false;
}

std::optional<int64_t> answer_lookup(pid_t tid, const LookupCall& c) {
  Ask q;
  if (c.path.empty() || !decode(c, q)) return std::nullopt;
  auto found = find(c, q.follow);
  if (!found) return std::nullopt;
  if (found->error) return -found->error;
  int fd = found->fd.get();
  if (q.kind == Kind::kOpen) return std::nullopt;  // it exists: the tracee opens it itself

  if (q.kind == Kind::kStatx) {
    struct statx sx {};
    int flags = static_cast<int>(q.flags & AT_STATX_SYNC_TYPE) | AT_EMPTY_PATH;
    if (::syscall(SYS_statx, fd, "", flags, q.mask, &sx) != 0) return std::nullopt;
    if (!write_out(tid, q.out, &sx, sizeof sx)) return std::nullopt;
    return 0;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  bool link = S_ISLNK(st.st_mode);
  switch (q.kind) {
    case Kind::kStat:
      if (!write_out(tid, q.out, &st, sizeof st)) return std::nullopt;
      return 0;
    case Kind::kAccess: {
      if (q.mode == F_OK) return 0;
      int flags = static_cast<int>(q.flags & AT_EACCESS) | AT_EMPTY_PATH;
      if (::syscall(SYS_faccessat2, fd, "", q.mode, flags) == 0) return 0;
      if (errno == ENOSYS || errno == EINVAL) return std::nullopt;
      return -errno;
    }
    case Kind::kReadlink: {
      if (!link) return -EINVAL;
      char buf[PATH_MAX];
      size_t cap = std::min(static_cast<size_t>(q.size), sizeof buf);
      ssize_t n = ::readlinkat(fd, "", buf, cap);
      if (n < 0 || (static_cast<size_t>(n) == cap && cap < static_cast<size_t>(q.size)))
        return std::nullopt;
      if (n > 0 && !write_out(tid, q.out, buf, static_cast<size_t>(n))) return std::nullopt;
      return n;
    }
    case Kind::kOpen:
    case Kind::kStatx:
      break;
  }
  return std::nullopt;
}

#if defined(__x86_64__)
bool can_skip_syscalls() { return true; }

bool skip_syscall(pid_t tid, int64_t ret) {
  // At a seccomp stop, syscall number -1 skips the call; the return
  // register then holds what the tracee sees.
  if (::ptrace(PTRACE_POKEUSER, tid, offsetof(struct user, regs.orig_rax), -1L) != 0) return false;
  return ::ptrace(PTRACE_POKEUSER, tid, offsetof(struct user, regs.rax), ret) == 0;
}
#else
bool can_skip_syscalls() { return false; }
bool skip_syscall(pid_t, int64_t) { return false; }
#endif

}  // namespace bsandbox
