// file_access.cpp: the spec's operation table, syscall by syscall.
//
// Rules that apply throughout:
//  - Success records the op; ENOENT and ENOTDIR record "missing" on the name
//    looked up (a negative dependency); EEXIST from a call that creates
//    records "stat" (the name was observed to exist); other errors record
//    nothing.
//  - Where the kernel reached an object (an open's fd, an fd argument, a new
//    cwd) its path is the kernel's, symlinks resolved; otherwise the name as
//    given, made absolute and normalised lexically.
//  - Objects the kernel could not name from the root (pipes, sockets,
//    anonymous files, O_TMPFILE before linkat) and pseudo file systems are
//    left out, as the spec allows.
#include "sandbox/file_access.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/stat.h>

#include <cerrno>

#include "sandbox/path.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

namespace bsandbox {
namespace {

bool is_missing(int64_t ret) { return ret == -ENOENT || ret == -ENOTDIR; }

class Interpreter {
 public:
  Interpreter(const FileEvent& e, const PathContext& c) : e_(e), c_(c) {
    if (e.strings_dropped) ++out_.unresolved;
  }

  Interpretation run();

 private:
  // The absolute path of path1/path2, or nullopt (counted as unresolved).
  std::optional<std::string> name1() { return name(e_.path1, e_.dir1, e_.dirfd1); }
  std::optional<std::string> name2() { return name(e_.path2, e_.dir2, e_.dirfd2); }
  std::optional<std::string> name(const std::optional<KernelPath>& p,
                                  const std::optional<KernelPath>& dir, int32_t dirfd);
  // The kernel's path of the object reached, if it is a real file.
  std::optional<std::string> result_path(bool* skip);

  void add(std::optional<std::string> path, OpSet ops, OpSet if_existed = 0) {
    if (!path) return;
    out_.accesses.push_back(Access{std::move(*path), ops, if_existed, std::nullopt});
  }
  // The usual success / missing / exists pattern on one name.
  void on_name(std::optional<std::string> path, OpSet on_success, bool creates = false) {
    if (e_.ret >= 0) {
      add(std::move(path), on_success);
    } else if (is_missing(e_.ret)) {
      add(std::move(path), kOpMissing);
    } else if (creates && e_.ret == -EEXIST) {
      add(std::move(path), kOpStat);
    }
  }
  void on_result(OpSet ops) {
    if (e_.ret < 0) return;
    bool skip = false;
    auto p = result_path(&skip);
    if (!skip) add(std::move(p), ops);
  }

  void open();
  void rename();
  void xattr_read();

  const FileEvent& e_;
  const PathContext& c_;
  Interpretation out_;
};

std::optional<std::string> Interpreter::name(const std::optional<KernelPath>& p,
                                             const std::optional<KernelPath>& dir,
                                             int32_t dirfd) {
  std::string_view given;
  if (p) {
    if (p->fault()) {
      ++out_.unresolved;
      return std::nullopt;
    }
    given = p->path;
  }
  const KernelPath* base = nullptr;
  if (dirfd != AT_FDCWD && (given.empty() || given.front() != '/')) {
    if (!dir || dir->truncated()) {
      ++out_.unresolved;
      return std::nullopt;
    }
    if (dir->unreachable()) return std::nullopt;  // relative to a pipe or socket: no file
    base = &*dir;
  }
  auto abs = absolute_name(given, base, c_);
  if (!abs) ++out_.unresolved;
  return abs;
}

std::optional<std::string> Interpreter::result_path(bool* skip) {
  *skip = false;
  if (!e_.result) {
    ++out_.unresolved;
    return std::nullopt;
  }
  const KernelPath& r = *e_.result;
  if (r.unreachable() || r.deleted() || is_pseudo_fs(e_.result_magic)) {
    *skip = true;
    return std::nullopt;
  }
  if (r.truncated()) {
    ++out_.unresolved;
    return std::nullopt;
  }
  return path::normalize(r.path);
}

void Interpreter::open() {
  uint64_t flags = e_.sys == BS_SYS_CREAT ? (O_CREAT | O_WRONLY | O_TRUNC) : e_.flags;
  if (e_.ret < 0) {
    if (e_.sys == BS_SYS_OPEN_BY_HANDLE_AT) return;
    on_name(name1(), 0, /*creates=*/flags & O_CREAT);
    return;
  }
  if ((flags & O_TMPFILE) == O_TMPFILE) return;  // anonymous until linkat names it
  // The kernel's name for what was opened, symlinks resolved. Without it
  // (a file deleted before the open returned, a string the kernel could not
  // fit) the name as given stands in.
  std::optional<std::string> target;
  if (e_.result) {
    const KernelPath& r = *e_.result;
    if (r.unreachable() || is_pseudo_fs(e_.result_magic)) return;  // pipe, socket, procfs
    if (!r.deleted() && !r.truncated()) target = path::normalize(r.path);
  }
  std::optional<std::string> named;
  if (e_.sys != BS_SYS_OPEN_BY_HANDLE_AT) named = name1();
  if (!target) {
    if (!named) return;
    target = std::move(named);
    named.reset();
  } else if (named && *named == *target) {
    named.reset();
  }

  OpSet ops = 0;
  if ((flags & O_PATH) || (e_.result_flags & BS_RF_DIR)) {
    ops = kOpStat;
  } else {
    int acc = flags & O_ACCMODE;
    if (e_.result_flags & BS_RF_CREATED) {
      ops = kOpCreate | (acc != O_RDONLY ? kOpWrite : 0);
    } else if (acc == O_RDONLY) {
      ops = kOpRead | ((flags & O_TRUNC) ? kOpWrite : 0);
    } else if (acc == O_WRONLY) {
      ops = kOpWrite;
    } else {
      ops = (flags & O_TRUNC) ? kOpWrite : (kOpRead | kOpWrite);
    }
  }
  out_.accesses.push_back(Access{std::move(*target), ops, 0, std::move(named)});
}

void Interpreter::rename() {
  uint64_t flags = e_.sys == BS_SYS_RENAMEAT2 ? e_.flags : 0;
  auto from = name1();
  auto to = name2();
  if (e_.ret == 0) {
    if (flags & RENAME_EXCHANGE) {
      add(std::move(from), kOpWrite);
      add(std::move(to), kOpWrite);
      return;
    }
    add(std::move(from), kOpDelete);
    add(std::move(to), kOpCreate, (flags & RENAME_NOREPLACE) ? 0 : kOpWrite);
  } else if (is_missing(e_.ret)) {
    add(std::move(from), kOpMissing);
  } else if (e_.ret == -EEXIST) {
    add(std::move(to), kOpStat);
  }
}

void Interpreter::xattr_read() {
  // A missing attribute still means the file was found and its metadata read.
  if (e_.ret == -ENODATA || e_.ret == -EOPNOTSUPP || e_.ret == -ERANGE) {
    add(name1(), kOpStat);
    return;
  }
  on_name(name1(), kOpStat);
}

Interpretation Interpreter::run() {
  switch (e_.sys) {
    case BS_SYS_OPEN:
    case BS_SYS_OPENAT:
    case BS_SYS_OPENAT2:
    case BS_SYS_CREAT:
    case BS_SYS_OPEN_BY_HANDLE_AT:
      open();
      break;

    case BS_SYS_EXECVE:
    case BS_SYS_EXECVEAT:
      // Success arrives as an ExecEvent; here only failed attempts, such as
      // a shell trying each directory of PATH.
      if (is_missing(e_.ret)) add(name1(), kOpMissing);
      break;

    case BS_SYS_STAT:
    case BS_SYS_LSTAT:
    case BS_SYS_NEWFSTATAT:
    case BS_SYS_STATX:
    case BS_SYS_ACCESS:
    case BS_SYS_FACCESSAT:
    case BS_SYS_FACCESSAT2:
    case BS_SYS_READLINK:
    case BS_SYS_READLINKAT:
      on_name(name1(), kOpStat);
      break;

    case BS_SYS_GETXATTR:
    case BS_SYS_LGETXATTR:
    case BS_SYS_LISTXATTR:
    case BS_SYS_LLISTXATTR:
      xattr_read();
      break;

    case BS_SYS_RENAME:
    case BS_SYS_RENAMEAT:
    case BS_SYS_RENAMEAT2:
      rename();
      break;

    case BS_SYS_LINK:
    case BS_SYS_LINKAT:
      if (e_.ret == 0) {
        // The source was looked up (an O_TMPFILE's fd has no name to record).
        if (e_.path1 && !e_.path1->path.empty()) add(name1(), kOpStat);
        add(name2(), kOpCreate);
      } else if (is_missing(e_.ret) && e_.path1 && !e_.path1->path.empty()) {
        add(name1(), kOpMissing);
      } else if (e_.ret == -EEXIST) {
        add(name2(), kOpStat);
      }
      break;

    case BS_SYS_SYMLINK:
    case BS_SYS_SYMLINKAT:
      on_name(name1(), kOpCreate, /*creates=*/true);
      break;

    case BS_SYS_UNLINK:
    case BS_SYS_UNLINKAT:
    case BS_SYS_RMDIR:
      on_name(name1(), kOpDelete);
      break;

    case BS_SYS_MKDIR:
    case BS_SYS_MKDIRAT:
    case BS_SYS_MKNOD:
    case BS_SYS_MKNODAT:
      on_name(name1(), kOpCreate, /*creates=*/true);
      break;

    case BS_SYS_TRUNCATE:
    case BS_SYS_CHMOD:
    case BS_SYS_FCHMODAT:
    case BS_SYS_FCHMODAT2:
    case BS_SYS_CHOWN:
    case BS_SYS_LCHOWN:
    case BS_SYS_FCHOWNAT:
    case BS_SYS_UTIME:
    case BS_SYS_UTIMES:
    case BS_SYS_UTIMENSAT:
    case BS_SYS_FUTIMESAT:
    case BS_SYS_SETXATTR:
    case BS_SYS_LSETXATTR:
    case BS_SYS_REMOVEXATTR:
    case BS_SYS_LREMOVEXATTR:
      // Changing a file's metadata changes the file: recorded as a write.
      on_name(name1(), kOpWrite);
      break;

    case BS_SYS_FTRUNCATE:
    case BS_SYS_FCHMOD:
    case BS_SYS_FCHOWN:
    case BS_SYS_FSETXATTR:
    case BS_SYS_FREMOVEXATTR:
      on_result(kOpWrite);
      break;

    case BS_SYS_CHDIR:
      if (e_.ret == 0) {
        on_result(kOpStat);
      } else if (is_missing(e_.ret)) {
        add(name1(), kOpMissing);
      }
      break;

    case BS_SYS_CHROOT:
      on_result(kOpStat);
      break;

    case BS_SYS_FCHDIR:
      break;  // the new cwd matters only for later names, which carry it

    case BS_SYS_GETDENTS:
    case BS_SYS_GETDENTS64:
      on_result(kOpReaddir);
      break;

    case BS_SYS_NONE:
    case BS_SYS_COUNT:
      break;
  }
  return std::move(out_);
}

}  // namespace

std::optional<std::string> absolute_name(std::string_view name, const KernelPath* dir,
                                         const PathContext& context) {
  if (!name.empty() && name.front() == '/') {
    std::string inside = path::normalize(name);
    if (context.root.empty() || context.root == "/") return inside;
    if (inside == "/") return std::string(context.root);
    return path::normalize(std::string(context.root) + inside);
  }
  std::string_view base;
  if (dir) {
    if (dir->truncated() || dir->fault()) return std::nullopt;
    base = dir->path;
  } else {
    base = context.cwd;
  }
  if (base.empty()) return std::nullopt;
  if (name.empty()) return path::normalize(base);
  return path::resolve(base, name);
}

bool is_pseudo_fs(uint32_t magic) {
  switch (magic) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEVPTS_SUPER_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case BPF_FS_MAGIC:
    case PSTOREFS_MAGIC:
    case EFIVARFS_MAGIC:
    case SELINUX_MAGIC:
    case SMACK_MAGIC:
    case NSFS_MAGIC:
    case PIPEFS_MAGIC:
    case SOCKFS_MAGIC:
    case ANON_INODE_FS_MAGIC:
    case DEVMEM_MAGIC:
      return true;
    default:
      return false;
  }
}

Interpretation interpret(const FileEvent& event, const PathContext& context) {
  return Interpreter(event, context).run();
}

}  // namespace bsandbox
