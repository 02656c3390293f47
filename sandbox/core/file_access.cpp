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
#include "sandbox/core/file_access.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <linux/stat.h>

#include <cerrno>

#include "sandbox/core/path.h"

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

  static constexpr int kUsesFromOps = -1;
  void add(std::optional<std::string> path, OpSet ops, OpSet if_existed = 0, int uses = kUsesFromOps) {
    if (!path) return;
    Uses u = uses == kUsesFromOps ? uses_of_ops(ops) : static_cast<Uses>(uses);
    // ENOTDIR is "missing" in the record, but it may be the name itself that
    // exists and is no directory (cp opens its target with O_DIRECTORY):
    // what is there, whatever it is, was seen.
    if ((ops & kOpMissing) && e_.ret == -ENOTDIR) u = static_cast<Uses>((u & ~kUsesAbsent) | kUsesMeta);
    out_.accesses.push_back(Access{std::move(*path), ops, if_existed, u, std::nullopt});
  }
  // The usual success / missing / exists pattern on one name; on success
  // the access depends on uses_on_success of the earlier state.
  void on_name(std::optional<std::string> path, OpSet on_success, bool creates = false,
               int uses_on_success = kUsesFromOps) {
    if (e_.ret >= 0) {
      add(std::move(path), on_success, 0, uses_on_success);
    } else if (is_missing(e_.ret)) {
      add(std::move(path), kOpMissing);
    } else if (creates && e_.ret == -EEXIST) {
      add(std::move(path), kOpStat);
    }
  }
  void on_result(OpSet ops, int uses = kUsesFromOps) {
    if (e_.ret < 0) return;
    bool skip = false;
    auto p = result_path(&skip);
    if (!skip) add(std::move(p), ops, 0, uses);
  }

  bool says_something() const;
  void open();
  void rename();
  void xattr_read();
  void socket();

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
  Uses uses = 0;
  if ((flags & O_PATH) || (e_.result_flags & BS_RF_DIR)) {
    ops = kOpStat;
    uses = kUsesMeta;
  } else {
    int acc = flags & O_ACCMODE;
    if (e_.result_flags & BS_RF_CREATED) {
      ops = kOpCreate | (acc != O_RDONLY ? kOpWrite : 0);
      // O_CREAT|O_TRUNC ends the same whether or not the file was there;
      // without O_TRUNC an old file's content would have stayed (>> log).
      uses = (flags & O_TRUNC) && !(flags & O_EXCL) ? 0 : kUsesAbsent;
    } else if (flags & O_TRUNC) {
      // The old content is gone; only O_CREAT's absence makes it succeed
      // whether or not the file was there.
      ops = kOpWrite | (acc == O_RDONLY ? kOpRead : 0);
      uses = (flags & O_CREAT) ? 0 : kUsesPresent;
    } else if (acc == O_RDONLY) {
      ops = kOpRead;
      uses = kUsesContent;
    } else {
      // Writing without truncating (appending, or overwriting part of it)
      // leaves a result made partly of the old content.
      ops = acc == O_WRONLY ? kOpWrite : (kOpRead | kOpWrite);
      uses = kUsesContent | kUsesPresent;
    }
  }
  out_.accesses.push_back(Access{std::move(*target), ops, 0, uses, std::move(named)});
}

void Interpreter::rename() {
  uint64_t flags = e_.sys == BS_SYS_RENAMEAT2 ? e_.flags : 0;
  auto from = name1();
  auto to = name2();
  if (e_.ret == 0) {
    // What was at the source (a file's content, a directory's whole tree)
    // is now at the target: the result is made of the source's old state.
    constexpr Uses kMoved = kUsesContent | kUsesListing | kUsesPresent;
    if (flags & RENAME_EXCHANGE) {
      add(std::move(from), kOpWrite, 0, kMoved);
      add(std::move(to), kOpWrite, 0, kMoved);
      return;
    }
    add(std::move(from), kOpDelete, 0, kMoved);
    add(std::move(to), kOpCreate, (flags & RENAME_NOREPLACE) ? 0 : kOpWrite,
        (flags & RENAME_NOREPLACE) ? kUsesAbsent : 0);
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

// A failed call is recorded only where its errno says what the kernel found
// at a name: ENOENT and ENOTDIR (missing), EEXIST from a call that creates
// (there), EINVAL from readlink (there, no symlink), the "no such
// attribute" answers of xattr reads (there); a connect that failed still
// tried someone. Anything else (EBADF, EFAULT, ENAMETOOLONG, EINVAL
// flags, EACCES...) either failed before any name was looked up or says
// nothing the record keeps: nothing is recorded, and since no name had to
// be made, nothing is missing from the record either (stress-ng's invalid
// calls made records "incomplete" by the thousand). An empty name is not
// looked up at all (ENOENT without a lookup; with AT_EMPTY_PATH it names
// an open descriptor, which cannot be missing).
bool Interpreter::says_something() const {
  if (e_.ret >= 0) return true;
  int err = static_cast<int>(-e_.ret);
  bool empty_name = e_.path1 && !e_.path1->fault() && e_.path1->path.empty();
  switch (e_.sys) {
    case BS_SYS_CONNECT:
      return err != EBADF && err != EFAULT && err != EINVAL && err != ENOTSOCK && err != EAFNOSUPPORT;
    case BS_SYS_READLINK:
    case BS_SYS_READLINKAT:
      if (err == EINVAL) return !empty_name;
      break;
    case BS_SYS_GETXATTR:
    case BS_SYS_LGETXATTR:
    case BS_SYS_LISTXATTR:
    case BS_SYS_LLISTXATTR:
      if (err == ENODATA || err == EOPNOTSUPP || err == ERANGE) return true;
      break;
    case BS_SYS_BIND:
      if (err == EADDRINUSE) return true;
      break;
    default:
      break;
  }
  if (err == ENOENT || err == ENOTDIR) return !empty_name;
  return err == EEXIST;
}

// One case per kind of syscall, each a line or three: long as a function,
// but it reads as the table of what every call does to which path, and
// split it would be that table scattered.
Interpretation Interpreter::run() {
  if (!says_something()) return std::move(out_);
  if (is_name_lookup(e_.sys)) {
    // EINVAL (only readlink's gets here): found, and not a symlink (gcc
    // asks of its output).
    if (e_.ret == -EINVAL) add(name1(), kOpStat);
    else on_name(name1(), kOpStat);
    return std::move(out_);
  }
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
        // The new name shows the source's content: a link is a copy as far
        // as its result goes.
        if (e_.path1 && !e_.path1->path.empty()) add(name1(), kOpStat, 0, kUsesMeta | kUsesContent);
        add(name2(), kOpCreate, 0, kUsesAbsent);
      } else if (is_missing(e_.ret) && e_.path1 && !e_.path1->path.empty()) {
        add(name1(), kOpMissing);
      } else if (e_.ret == -EEXIST) {
        add(name2(), kOpStat);
      }
      break;

    case BS_SYS_SYMLINK:
    case BS_SYS_SYMLINKAT:
    case BS_SYS_MKDIR:
    case BS_SYS_MKDIRAT:
    case BS_SYS_MKNOD:
    case BS_SYS_MKNODAT:
      // Succeeds only where nothing was.
      on_name(name1(), kOpCreate, /*creates=*/true, kUsesAbsent);
      break;

    case BS_SYS_UNLINK:
    case BS_SYS_UNLINKAT:
    case BS_SYS_RMDIR:
      on_name(name1(), kOpDelete, false, kUsesPresent);
      break;

    case BS_SYS_TRUNCATE:
      // Whatever length it leaves, the bytes below it are the old ones.
      on_name(name1(), kOpWrite, false, kUsesContent | kUsesPresent);
      break;

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
      // Its content stays what it was.
      on_name(name1(), kOpWrite, false, kUsesPresent | kUsesKept);
      break;

    case BS_SYS_FTRUNCATE:
      on_result(kOpWrite, kUsesContent | kUsesPresent);
      break;

    case BS_SYS_FCHMOD:
    case BS_SYS_FCHOWN:
    case BS_SYS_FSETXATTR:
    case BS_SYS_FREMOVEXATTR:
      on_result(kOpWrite, kUsesPresent | kUsesKept);
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

    case BS_SYS_CONNECT:
    case BS_SYS_BIND:
    case BS_SYS_SENDTO:
    case BS_SYS_SENDMSG:
      socket();
      break;

    default:  // the name lookups, above; BS_SYS_NONE, BS_SYS_COUNT
      break;
  }
  return std::move(out_);
}

// A named AF_UNIX socket is also a name in the file system: bind makes it
// (a create, which fails where something is), and a connect that finds
// nothing there is a missing name (glibc asking nscd). Anything else a
// connect, bind or addressed send reached is a socket entry; a connect is
// recorded whether it succeeded or not (that nothing answered is also
// something the process learnt).
void Interpreter::socket() {
  if (!e_.path1 || e_.path1->fault() || e_.path1->path.size() < 2) return;
  std::string_view sa = e_.path1->path;
  uint16_t family = static_cast<uint8_t>(sa[0]) | (static_cast<uint16_t>(static_cast<uint8_t>(sa[1])) << 8);
  if (family == AF_UNSPEC) return;  // connect(AF_UNSPEC) dissolves an association
  if (family == AF_UNIX && sa.size() > 2 && sa[2] != '\0') {
    std::string_view name = sa.substr(2);
    name = name.substr(0, name.find('\0'));
    auto path = absolute_name(name, nullptr, c_);
    if (e_.sys == BS_SYS_BIND) {
      on_name(path, kOpCreate, /*creates=*/false, kUsesAbsent);
      if (e_.ret == -EADDRINUSE) add(path, kOpStat);
      if (e_.ret < 0) return;
    } else if (is_missing(e_.ret)) {
      add(path, kOpMissing);
      return;
    }
  }
  if (e_.sys != BS_SYS_CONNECT && e_.ret < 0) return;  // a bind or send that failed reached nothing
  SocketOp op = e_.sys == BS_SYS_CONNECT ? SocketOp::kConnect : e_.sys == BS_SYS_BIND ? SocketOp::kBind : SocketOp::kSend;
  out_.sockets.push_back(SocketEntry{op, socket_address(sa, c_)});
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

std::string socket_address(std::string_view sa, const PathContext& context) {
  if (sa.size() < 2) return "family ?";
  auto byte = [&](size_t i) { return i < sa.size() ? static_cast<uint8_t>(sa[i]) : 0u; };
  unsigned family = byte(0) | (byte(1) << 8);
  unsigned port = (byte(2) << 8) | byte(3);
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case AF_UNIX: {
      std::string_view name = sa.substr(2);
      if (name.empty()) return "unix:";
      if (name[0] == '\0') return "unix:@" + std::string(name.substr(1));
      name = name.substr(0, name.find('\0'));
      auto abs = absolute_name(name, nullptr, context);
      return "unix:" + (abs ? *abs : std::string(name));
    }
    case AF_INET:
      if (sa.size() < 8) break;
      ::inet_ntop(AF_INET, sa.data() + 4, buf, sizeof buf);
      return "inet:" + std::string(buf) + ":" + std::to_string(port);
    case AF_INET6:
      if (sa.size() < 24) break;
      ::inet_ntop(AF_INET6, sa.data() + 8, buf, sizeof buf);
      return "inet6:[" + std::string(buf) + "]:" + std::to_string(port);
    case AF_NETLINK:
      return "netlink";
    default:
      break;
  }
  return "family " + std::to_string(family);
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

bool is_name_lookup(bs_sys sys) {
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
    default:
      return false;
  }
}

Interpretation interpret(const FileEvent& event, const PathContext& context) {
  return Interpreter(event, context).run();
}

}  // namespace bsandbox
