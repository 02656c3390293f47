// syscall_table.cpp: the list itself. Argument positions are 1-based (0 =
// none), as in bs_sc_desc. Syscalls that only name an fd and only read
// metadata (fstat, fgetxattr) are left out on purpose: the file was recorded
// when it was opened, and fstat is among the most frequent syscalls there
// are. newfstatat/statx with an empty path are fstat in disguise (glibc's
// fstat uses them) and are dropped in the kernel for the same reason.
#include "sandbox/backend/syscall_table.h"

#include <sys/syscall.h>

#include <vector>

namespace bsandbox {
namespace {

constexpr uint8_t kRetFd = BS_RESOLVE_RETFD;
constexpr uint8_t kFdArg = BS_RESOLVE_FDARG;
constexpr uint8_t kPwd = BS_RESOLVE_PWD;
constexpr uint8_t kRoot = BS_RESOLVE_ROOT;

struct Row {
  bs_sys sys;
  uint8_t path1, dirfd1, path2, dirfd2, fd, flags, resolve, desc_flags;
};

bs_sc_desc make(const Row& r) {
  bs_sc_desc d{};
  d.sys = r.sys;
  d.path1 = r.path1;
  d.dirfd1 = r.dirfd1;
  d.path2 = r.path2;
  d.dirfd2 = r.dirfd2;
  d.fd = r.fd;
  d.flags = r.flags;
  d.resolve = r.resolve;
  d.desc_flags = r.desc_flags;
  return d;
}

#define ROW(name, ...) {SYS_##name, #name, make(Row{__VA_ARGS__})}

// A table, a row per syscall (the ones this architecture has): long, and
// nothing but rows.
std::vector<SyscallSpec> build() {
  constexpr uint8_t kHow = BS_DESC_FLAGS_IN_OPEN_HOW;
  constexpr uint8_t kSkipEmpty = BS_DESC_SKIP_EMPTY_PATH;
  constexpr uint8_t kGen = BS_DESC_BUMP_GEN;
  constexpr uint8_t kOnce = BS_DESC_ONCE_PER_FILE;
  constexpr uint8_t kText2 = BS_DESC_PATH2_IS_TEXT;
  constexpr uint8_t kAddr = BS_DESC_SOCKADDR;
  constexpr uint8_t kMsg = BS_DESC_MSGHDR;
  // clang-format off
  //         sys                        p1 d1 p2 d2 fd fl resolve desc_flags
  return {
#ifdef SYS_open
    ROW(open,     BS_SYS_OPEN,          1, 0, 0, 0, 0, 2, kRetFd, 0),
#endif
    ROW(openat,   BS_SYS_OPENAT,        2, 1, 0, 0, 0, 3, kRetFd, 0),
    ROW(openat2,  BS_SYS_OPENAT2,       2, 1, 0, 0, 0, 3, kRetFd, kHow),
#ifdef SYS_creat
    ROW(creat,    BS_SYS_CREAT,         1, 0, 0, 0, 0, 0, kRetFd, 0),
#endif
    ROW(open_by_handle_at, BS_SYS_OPEN_BY_HANDLE_AT, 0, 0, 0, 0, 0, 3, kRetFd, 0),
    ROW(execve,   BS_SYS_EXECVE,        1, 0, 0, 0, 0, 0, 0, 0),
    ROW(execveat, BS_SYS_EXECVEAT,      2, 1, 0, 0, 0, 5, 0, 0),
#ifdef SYS_stat
    ROW(stat,     BS_SYS_STAT,          1, 0, 0, 0, 0, 0, 0, 0),
    ROW(lstat,    BS_SYS_LSTAT,         1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(newfstatat, BS_SYS_NEWFSTATAT,  2, 1, 0, 0, 0, 4, 0, kSkipEmpty),
    ROW(statx,    BS_SYS_STATX,         2, 1, 0, 0, 0, 3, 0, kSkipEmpty),
#ifdef SYS_access
    ROW(access,   BS_SYS_ACCESS,        1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(faccessat,  BS_SYS_FACCESSAT,   2, 1, 0, 0, 0, 0, 0, 0),
    ROW(faccessat2, BS_SYS_FACCESSAT2,  2, 1, 0, 0, 0, 4, 0, 0),
#ifdef SYS_readlink
    ROW(readlink, BS_SYS_READLINK,      1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(readlinkat, BS_SYS_READLINKAT,  2, 1, 0, 0, 0, 0, 0, 0),
#ifdef SYS_rename
    ROW(rename,   BS_SYS_RENAME,        1, 0, 2, 0, 0, 0, 0, kGen),
#endif
    ROW(renameat, BS_SYS_RENAMEAT,      2, 1, 4, 3, 0, 0, 0, kGen),
    ROW(renameat2, BS_SYS_RENAMEAT2,    2, 1, 4, 3, 0, 5, 0, kGen),
#ifdef SYS_link
    ROW(link,     BS_SYS_LINK,          1, 0, 2, 0, 0, 0, 0, 0),
#endif
    ROW(linkat,   BS_SYS_LINKAT,        2, 1, 4, 3, 0, 5, 0, 0),
    // symlink(target, linkpath): path1 is the new name, path2 the target text.
#ifdef SYS_symlink
    ROW(symlink,  BS_SYS_SYMLINK,       2, 0, 1, 0, 0, 0, 0, kText2),
#endif
    ROW(symlinkat, BS_SYS_SYMLINKAT,    3, 2, 1, 0, 0, 0, 0, kText2),
#ifdef SYS_unlink
    ROW(unlink,   BS_SYS_UNLINK,        1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(unlinkat, BS_SYS_UNLINKAT,      2, 1, 0, 0, 0, 3, 0, 0),
#ifdef SYS_mkdir
    ROW(mkdir,    BS_SYS_MKDIR,         1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(mkdirat,  BS_SYS_MKDIRAT,       2, 1, 0, 0, 0, 0, 0, 0),
#ifdef SYS_rmdir
    ROW(rmdir,    BS_SYS_RMDIR,         1, 0, 0, 0, 0, 0, 0, 0),
#endif
#ifdef SYS_mknod
    ROW(mknod,    BS_SYS_MKNOD,         1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(mknodat,  BS_SYS_MKNODAT,       2, 1, 0, 0, 0, 0, 0, 0),
    ROW(truncate, BS_SYS_TRUNCATE,      1, 0, 0, 0, 0, 0, 0, 0),
    ROW(ftruncate, BS_SYS_FTRUNCATE,    0, 0, 0, 0, 1, 0, kFdArg, 0),
    ROW(chdir,    BS_SYS_CHDIR,         1, 0, 0, 0, 0, 0, kPwd, 0),
    ROW(fchdir,   BS_SYS_FCHDIR,        0, 0, 0, 0, 1, 0, kPwd, 0),
    ROW(chroot,   BS_SYS_CHROOT,        1, 0, 0, 0, 0, 0, kRoot, 0),
#ifdef SYS_getdents
    ROW(getdents, BS_SYS_GETDENTS,      0, 0, 0, 0, 1, 0, kFdArg, kOnce),
#endif
    ROW(getdents64, BS_SYS_GETDENTS64,  0, 0, 0, 0, 1, 0, kFdArg, kOnce),
#ifdef SYS_chmod
    ROW(chmod,    BS_SYS_CHMOD,         1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(fchmod,   BS_SYS_FCHMOD,        0, 0, 0, 0, 1, 0, kFdArg, 0),
    ROW(fchmodat, BS_SYS_FCHMODAT,      2, 1, 0, 0, 0, 0, 0, 0),
#ifdef SYS_fchmodat2
    ROW(fchmodat2, BS_SYS_FCHMODAT2,    2, 1, 0, 0, 0, 4, 0, 0),
#endif
#ifdef SYS_chown
    ROW(chown,    BS_SYS_CHOWN,         1, 0, 0, 0, 0, 0, 0, 0),
    ROW(lchown,   BS_SYS_LCHOWN,        1, 0, 0, 0, 0, 0, 0, 0),
#endif
    ROW(fchown,   BS_SYS_FCHOWN,        0, 0, 0, 0, 1, 0, kFdArg, 0),
    ROW(fchownat, BS_SYS_FCHOWNAT,      2, 1, 0, 0, 0, 5, 0, 0),
#ifdef SYS_utime
    ROW(utime,    BS_SYS_UTIME,         1, 0, 0, 0, 0, 0, 0, 0),
    ROW(utimes,   BS_SYS_UTIMES,        1, 0, 0, 0, 0, 0, 0, 0),
    ROW(futimesat, BS_SYS_FUTIMESAT,    2, 1, 0, 0, 0, 0, 0, 0),
#endif
    ROW(utimensat, BS_SYS_UTIMENSAT,    2, 1, 0, 0, 0, 4, 0, 0),
    ROW(setxattr, BS_SYS_SETXATTR,      1, 0, 0, 0, 0, 0, 0, 0),
    ROW(lsetxattr, BS_SYS_LSETXATTR,    1, 0, 0, 0, 0, 0, 0, 0),
    ROW(fsetxattr, BS_SYS_FSETXATTR,    0, 0, 0, 0, 1, 0, kFdArg, 0),
    ROW(removexattr, BS_SYS_REMOVEXATTR,   1, 0, 0, 0, 0, 0, 0, 0),
    ROW(lremovexattr, BS_SYS_LREMOVEXATTR, 1, 0, 0, 0, 0, 0, 0, 0),
    ROW(fremovexattr, BS_SYS_FREMOVEXATTR, 0, 0, 0, 0, 1, 0, kFdArg, 0),
    ROW(getxattr, BS_SYS_GETXATTR,      1, 0, 0, 0, 0, 0, 0, 0),
    ROW(lgetxattr, BS_SYS_LGETXATTR,    1, 0, 0, 0, 0, 0, 0, 0),
    ROW(listxattr, BS_SYS_LISTXATTR,    1, 0, 0, 0, 0, 0, 0, 0),
    ROW(llistxattr, BS_SYS_LLISTXATTR,  1, 0, 0, 0, 0, 0, 0, 0),
    // Sockets: path1 the address, path2 the argument with its length.
    ROW(connect,  BS_SYS_CONNECT,       2, 0, 3, 0, 0, 0, 0, kAddr),
    ROW(bind,     BS_SYS_BIND,          2, 0, 3, 0, 0, 0, 0, kAddr),
    ROW(sendto,   BS_SYS_SENDTO,        5, 0, 6, 0, 0, 0, 0, kAddr),
    ROW(sendmsg,  BS_SYS_SENDMSG,       2, 0, 0, 0, 0, 0, 0, kMsg),
  };
  // clang-format on
}

#undef ROW

const std::vector<SyscallSpec>& all() {
  static const std::vector<SyscallSpec> specs = build();
  return specs;
}

}  // namespace

std::span<const SyscallSpec> file_syscalls() { return all(); }

std::array<bs_sc_desc, BS_SC_TABLE_SIZE> kernel_syscall_table() {
  std::array<bs_sc_desc, BS_SC_TABLE_SIZE> table{};
  for (const auto& s : all()) {
    if (s.nr >= 0 && s.nr < BS_SC_TABLE_SIZE) table[s.nr] = s.desc;
  }
  return table;
}

std::string_view sys_name(bs_sys sys) {
  for (const auto& s : all()) {
    if (s.desc.sys == sys) return s.name;
  }
  return "?";
}

}  // namespace bsandbox
