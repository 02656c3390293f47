// lookup_answer.cpp: see lookup_answer.h for when an answer is exact.
#include "sandbox/lookup_answer.h"

#include <fcntl.h>
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

#include "sandbox/file_access.h"
#include "sandbox/unique_fd.h"

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
  return ::fstatfs(fd, &fs) != 0 || is_pseudo_fs(static_cast<uint32_t>(fs.f_type));
}

int open_dir(int base, const std::string& dir, uint64_t resolve) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, base, dir.c_str(), &how, sizeof how));
}

// The directory holding the last component of the name, and that
// component (empty for "." and "..": the directory is the object); or the error (ENOENT, ENOTDIR) with which reaching that
// directory fails for anyone; or nullopt where the walk could depend on
// who makes it.
struct Parent {
  UniqueFd owned;
  int fd = -1;
  std::string leaf;
  int error = 0;
};

std::optional<Parent> parent_of(const LookupCall& c) {
  std::string_view path = c.path;
  size_t slash = path.rfind('/');
  std::string_view leaf = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (leaf.empty()) return std::nullopt;  // "dir/": the slash has rules of its own
  bool dot = leaf == "." || leaf == "..";
  Parent p;
  if (!dot) p.leaf = std::string(leaf);
  std::string dir(dot ? path : slash == std::string_view::npos ? std::string_view()
                                                                : path.substr(0, slash == 0 ? 1 : slash));
  if (dir.empty()) {
    if (c.base < 0 || on_pseudo_fs(c.base)) return std::nullopt;
    p.fd = c.base;
    return p;
  }
  p.owned = UniqueFd(open_dir(c.base, dir, RESOLVE_NO_MAGICLINKS));
  p.fd = p.owned.get();
  if (p.fd >= 0) {
    if (on_pseudo_fs(p.fd)) return std::nullopt;
    return p;
  }
  if (errno != ENOENT && errno != ENOTDIR) return std::nullopt;
  // Missing on the way. Had the walk passed through /proc (/proc/self/fd/N
  // names the asker's fds), that could be the tracer's view only: walked
  // again without leaving the starting mount, the same error proves that
  // it never got there.
  UniqueFd root;
  int from = c.base;
  if (path[0] == '/') {
    root = UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    from = root.get();
  }
  if (from < 0 || on_pseudo_fs(from)) return std::nullopt;
  UniqueFd again(open_dir(c.base, dir, RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
  if (again.valid() || (errno != ENOENT && errno != ENOTDIR)) return std::nullopt;
  p.error = errno;
  return p;
}

}  // namespace

bool answerable(bs_sys sys, uint64_t open_flags) {
  switch (sys) {
    case BS_SYS_STAT:
    case BS_SYS_LSTAT:
    case BS_SYS_NEWFSTATAT:
    case BS_SYS_STATX:
    case BS_SYS_ACCESS:
    case BS_SYS_FACCESSAT:
    case BS_SYS_FACCESSAT2:
    case BS_SYS_READLINK:
    case BS_SYS_READLINKAT:
      return true;
    case BS_SYS_OPEN:
    case BS_SYS_OPENAT:
      // Only a miss is answered; an open that may create is never.
      return !(open_flags & O_CREAT) && (open_flags & O_TMPFILE) != O_TMPFILE;
    default:
      return false;
  }
}

std::optional<int64_t> answer_lookup(pid_t tid, const LookupCall& c) {
  Ask q;
  if (c.path.empty() || !decode(c, q)) return std::nullopt;
  auto parent = parent_of(c);
  if (!parent) return std::nullopt;
  if (parent->error) return -parent->error;
  const char* leaf = parent->leaf.c_str();
  int self = parent->leaf.empty() ? AT_EMPTY_PATH : 0;  // the object is the directory

  // The last component is looked at without following it, so a symlink
  // (which may point into /proc) is seen before anything is answered.
  if (q.kind == Kind::kStatx) {
    struct statx sx {};
    int flags = static_cast<int>((q.flags & ~uint64_t{AT_EMPTY_PATH}) | AT_SYMLINK_NOFOLLOW) | self;
    if (::syscall(SYS_statx, parent->fd, leaf, flags, q.mask, &sx) != 0)
      return errno == ENOENT ? std::optional<int64_t>(-ENOENT) : std::nullopt;
    if (q.follow && (!(sx.stx_mask & STATX_TYPE) || S_ISLNK(sx.stx_mode))) return std::nullopt;
    if (!write_out(tid, q.out, &sx, sizeof sx)) return std::nullopt;
    return 0;
  }
  struct stat st {};
  int flags = static_cast<int>((q.flags & AT_NO_AUTOMOUNT) | AT_SYMLINK_NOFOLLOW) | self;
  if (q.kind == Kind::kOpen) flags = AT_SYMLINK_NOFOLLOW | self;
  if (::syscall(SYS_newfstatat, parent->fd, leaf, &st, flags) != 0)
    return errno == ENOENT ? std::optional<int64_t>(-ENOENT) : std::nullopt;
  bool link = S_ISLNK(st.st_mode);
  if (link && q.follow) return std::nullopt;
  switch (q.kind) {
    case Kind::kStat:
      if (!write_out(tid, q.out, &st, sizeof st)) return std::nullopt;
      return 0;
    case Kind::kAccess: {
      if (q.mode == F_OK) return 0;
      int aflags = static_cast<int>(q.flags & ~uint64_t{AT_EMPTY_PATH}) | self;
      if (::syscall(SYS_faccessat2, parent->fd, leaf, q.mode, aflags) == 0) return 0;
      if (errno == ENOSYS || errno == EINVAL) return std::nullopt;
      return -errno;
    }
    case Kind::kReadlink: {
      if (!link) return -EINVAL;
      char buf[PATH_MAX];
      size_t cap = std::min(static_cast<size_t>(q.size), sizeof buf);
      ssize_t n = ::readlinkat(parent->fd, leaf, buf, cap);
      if (n < 0 || (static_cast<size_t>(n) == cap && cap < static_cast<size_t>(q.size)))
        return std::nullopt;
      if (n > 0 && !write_out(tid, q.out, buf, static_cast<size_t>(n))) return std::nullopt;
      return n;
    }
    case Kind::kOpen:
    case Kind::kStatx:
      return std::nullopt;  // it exists: the tracee opens it itself
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
