// file_access_test.cpp: the spec's table of operations, syscall by syscall.
#include "sandbox/core/file_access.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/magic.h>

#include <sys/socket.h>

#include <cerrno>
#include <map>

using namespace bsandbox;

namespace {

const PathContext kCtx{"/work", "/"};

FileEvent ev(bs_sys sys, int64_t ret, const char* p1 = nullptr, const char* p2 = nullptr) {
  FileEvent e;
  e.sys = sys;
  e.ret = ret;
  if (p1) e.path1 = KernelPath{p1, 0};
  if (p2) e.path2 = KernelPath{p2, 0};
  return e;
}

std::map<std::string, OpSet> ops_of(const Interpretation& in) {
  std::map<std::string, OpSet> out;
  for (const auto& a : in.accesses) out[a.path] |= a.ops;
  return out;
}

std::map<std::string, OpSet> run(const FileEvent& e, const PathContext& c = kCtx) {
  return ops_of(interpret(e, c));
}

using M = std::map<std::string, OpSet>;

}  // namespace

TEST_CASE("open: read, write, create by flags and by what the kernel says happened") {
  auto e = ev(BS_SYS_OPENAT, 3, "a.c");
  e.flags = O_RDONLY;
  e.result = KernelPath{"/work/a.c", 0};
  CHECK(run(e) == M{{"/work/a.c", kOpRead}});

  e.flags = O_WRONLY | O_CREAT | O_TRUNC;
  e.result_flags = BS_RF_CREATED;
  CHECK(run(e) == M{{"/work/a.c", kOpCreate | kOpWrite}});

  e.result_flags = 0;  // O_CREAT on an existing file: a write, not a create
  CHECK(run(e) == M{{"/work/a.c", kOpWrite}});

  e.flags = O_RDWR;
  CHECK(run(e) == M{{"/work/a.c", kOpRead | kOpWrite}});
  e.flags = O_RDWR | O_TRUNC;  // old contents cannot be read
  CHECK(run(e) == M{{"/work/a.c", kOpWrite}});
  e.flags = O_RDWR | O_CREAT;
  e.result_flags = BS_RF_CREATED;  // a new empty file is no input
  CHECK(run(e) == M{{"/work/a.c", kOpCreate | kOpWrite}});

  e.flags = O_PATH;
  e.result_flags = 0;
  CHECK(run(e) == M{{"/work/a.c", kOpStat}});
  e.flags = O_RDONLY | O_DIRECTORY;
  e.result_flags = BS_RF_DIR;
  CHECK(run(e) == M{{"/work/a.c", kOpStat}});
}

TEST_CASE("creat is O_CREAT|O_WRONLY|O_TRUNC") {
  auto e = ev(BS_SYS_CREAT, 3, "/tmp/x");
  e.result = KernelPath{"/tmp/x", 0};
  e.result_flags = BS_RF_CREATED;
  CHECK(run(e) == M{{"/tmp/x", kOpCreate | kOpWrite}});
}

TEST_CASE("open through a symlink records the target and the name given") {
  auto e = ev(BS_SYS_OPENAT, 3, "link");
  e.result = KernelPath{"/data/target", 0};
  auto in = interpret(e, kCtx);
  REQUIRE(in.accesses.size() == 1);
  CHECK(in.accesses[0].path == "/data/target");
  REQUIRE(in.accesses[0].named);
  CHECK(*in.accesses[0].named == "/work/link");
}

TEST_CASE("failed lookups: ENOENT and ENOTDIR are missing, EEXIST on create is stat, others nothing") {
  CHECK(run(ev(BS_SYS_OPENAT, -ENOENT, "no.h")) == M{{"/work/no.h", kOpMissing}});
  CHECK(run(ev(BS_SYS_STAT, -ENOTDIR, "f/x")) == M{{"/work/f/x", kOpMissing}});
  CHECK(run(ev(BS_SYS_OPENAT, -EACCES, "secret")).empty());
  auto excl = ev(BS_SYS_OPENAT, -EEXIST, "lock");
  excl.flags = O_CREAT | O_EXCL | O_WRONLY;
  CHECK(run(excl) == M{{"/work/lock", kOpStat}});
  CHECK(run(ev(BS_SYS_MKDIR, -EEXIST, "d")) == M{{"/work/d", kOpStat}});
  CHECK(run(ev(BS_SYS_UNLINK, -EPERM, "x")).empty());
}

TEST_CASE("names relative to a dirfd use the dirfd's path") {
  auto e = ev(BS_SYS_NEWFSTATAT, 0, "../inc/x.h");
  e.dirfd1 = 5;
  e.dir1 = KernelPath{"/src/lib", 0};
  CHECK(run(e) == M{{"/src/inc/x.h", kOpStat}});
  // An absolute name ignores the dirfd.
  auto a = ev(BS_SYS_NEWFSTATAT, 0, "/etc/hosts");
  a.dirfd1 = 5;
  CHECK(run(a) == M{{"/etc/hosts", kOpStat}});
}

TEST_CASE("an empty name with a dirfd names the dirfd itself") {
  auto e = ev(BS_SYS_UTIMENSAT, 0, "");
  e.dirfd1 = 4;
  e.dir1 = KernelPath{"/work/out", 0};
  CHECK(run(e) == M{{"/work/out", kOpWrite}});
  auto n = ev(BS_SYS_UTIMENSAT, 0);  // utimensat(fd, NULL, ...)
  n.dirfd1 = 4;
  n.dir1 = KernelPath{"/work/out", 0};
  CHECK(run(n) == M{{"/work/out", kOpWrite}});
}

TEST_CASE("a name relative to an unknown base is unresolved, not guessed") {
  PathContext no_cwd{"", "/"};
  auto in = interpret(ev(BS_SYS_STAT, 0, "x"), no_cwd);
  CHECK(in.accesses.empty());
  CHECK(in.unresolved == 1);
  auto e = ev(BS_SYS_OPENAT, -ENOENT, "x");
  e.dirfd1 = 9;  // dirfd path never arrived
  auto in2 = interpret(e, kCtx);
  CHECK(in2.accesses.empty());
  CHECK(in2.unresolved == 1);
  auto f = ev(BS_SYS_STAT, 0, "");
  f.path1->flags = BS_SF_FAULT;
  CHECK(interpret(f, kCtx).unresolved == 1);
}

TEST_CASE("absolute names of a chrooted process are inside its root") {
  PathContext jail{"/srv/jail/tmp", "/srv/jail"};
  CHECK(run(ev(BS_SYS_STAT, 0, "/etc/passwd"), jail) == M{{"/srv/jail/etc/passwd", kOpStat}});
  CHECK(run(ev(BS_SYS_STAT, 0, "/../../etc"), jail) == M{{"/srv/jail/etc", kOpStat}});
  CHECK(run(ev(BS_SYS_STAT, 0, "/"), jail) == M{{"/srv/jail", kOpStat}});
  CHECK(run(ev(BS_SYS_STAT, 0, "x"), jail) == M{{"/srv/jail/tmp/x", kOpStat}});
}

TEST_CASE("rename deletes the source and creates the target; exchange writes both") {
  auto r = interpret(ev(BS_SYS_RENAME, 0, "a", "b"), kCtx);
  CHECK(ops_of(r) == M{{"/work/a", kOpDelete}, {"/work/b", kOpCreate}});
  CHECK(r.accesses[1].if_existed == kOpWrite);

  auto x = ev(BS_SYS_RENAMEAT2, 0, "a", "b");
  x.flags = 2;  // RENAME_EXCHANGE
  CHECK(run(x) == M{{"/work/a", kOpWrite}, {"/work/b", kOpWrite}});
  auto nr = ev(BS_SYS_RENAMEAT2, 0, "a", "b");
  nr.flags = 1;  // RENAME_NOREPLACE: the target did not exist
  CHECK(interpret(nr, kCtx).accesses[1].if_existed == 0);
  CHECK(run(ev(BS_SYS_RENAME, -ENOENT, "a", "b")) == M{{"/work/a", kOpMissing}});
}

TEST_CASE("link, symlink, unlink, mkdir, rmdir, mknod") {
  CHECK(run(ev(BS_SYS_LINK, 0, "a", "b")) == M{{"/work/a", kOpStat}, {"/work/b", kOpCreate}});
  CHECK(run(ev(BS_SYS_SYMLINK, 0, "l", "../target/text")) == M{{"/work/l", kOpCreate}});
  CHECK(run(ev(BS_SYS_UNLINK, 0, "a")) == M{{"/work/a", kOpDelete}});
  CHECK(run(ev(BS_SYS_UNLINKAT, 0, "d")) == M{{"/work/d", kOpDelete}});
  CHECK(run(ev(BS_SYS_RMDIR, 0, "d")) == M{{"/work/d", kOpDelete}});
  CHECK(run(ev(BS_SYS_MKDIRAT, 0, "d")) == M{{"/work/d", kOpCreate}});
  CHECK(run(ev(BS_SYS_MKNOD, 0, "fifo")) == M{{"/work/fifo", kOpCreate}});
}

TEST_CASE("O_TMPFILE is anonymous until linkat gives it a name") {
  auto t = ev(BS_SYS_OPENAT, 3, "/tmp");
  t.flags = O_TMPFILE | O_WRONLY;
  t.result = KernelPath{"/tmp/#1234", BS_SF_DELETED};
  CHECK(run(t).empty());
  auto l = ev(BS_SYS_LINKAT, 0, "", "/tmp/final");
  l.dirfd1 = 3;
  l.dir1 = KernelPath{"/tmp/#1234", BS_SF_DELETED};
  l.flags = AT_EMPTY_PATH;
  CHECK(run(l) == M{{"/tmp/final", kOpCreate}});
}

TEST_CASE("metadata changes are writes; truncate is a write") {
  for (bs_sys s : {BS_SYS_CHMOD, BS_SYS_FCHMODAT, BS_SYS_CHOWN, BS_SYS_LCHOWN, BS_SYS_UTIMES,
                   BS_SYS_UTIMENSAT, BS_SYS_SETXATTR, BS_SYS_REMOVEXATTR, BS_SYS_TRUNCATE}) {
    CAPTURE(s);
    CHECK(run(ev(s, 0, "f")) == M{{"/work/f", kOpWrite}});
  }
  auto f = ev(BS_SYS_FTRUNCATE, 0);
  f.result = KernelPath{"/work/f", 0};
  CHECK(run(f) == M{{"/work/f", kOpWrite}});
}

TEST_CASE("metadata reads are stat; a missing xattr still found the file") {
  for (bs_sys s : {BS_SYS_STAT, BS_SYS_LSTAT, BS_SYS_STATX, BS_SYS_ACCESS, BS_SYS_FACCESSAT2,
                   BS_SYS_READLINK, BS_SYS_GETXATTR, BS_SYS_LISTXATTR}) {
    CAPTURE(s);
    CHECK(run(ev(s, 0, "f")) == M{{"/work/f", kOpStat}});
  }
  CHECK(run(ev(BS_SYS_READLINK, 12, "l")) == M{{"/work/l", kOpStat}});
  CHECK(run(ev(BS_SYS_LGETXATTR, -ENODATA, "f")) == M{{"/work/f", kOpStat}});
  CHECK(run(ev(BS_SYS_GETXATTR, -ENOENT, "f")) == M{{"/work/f", kOpMissing}});
}

TEST_CASE("chdir records the directory the kernel reached; failure is missing") {
  auto c = ev(BS_SYS_CHDIR, 0, "sub");
  c.result = KernelPath{"/work/real-sub", 0};
  c.result_flags = BS_RF_DIR;
  CHECK(run(c) == M{{"/work/real-sub", kOpStat}});
  CHECK(run(ev(BS_SYS_CHDIR, -ENOENT, "nope")) == M{{"/work/nope", kOpMissing}});
}

TEST_CASE("getdents is readdir of the directory behind the fd") {
  auto g = ev(BS_SYS_GETDENTS64, 120);
  g.result = KernelPath{"/work/src", 0};
  CHECK(run(g) == M{{"/work/src", kOpReaddir}});
}

TEST_CASE("failed execve attempts are missing; successes come as exec events") {
  CHECK(run(ev(BS_SYS_EXECVE, -ENOENT, "/usr/local/bin/cc")) ==
        M{{"/usr/local/bin/cc", kOpMissing}});
  CHECK(run(ev(BS_SYS_EXECVE, -EACCES, "/etc/passwd")).empty());
}

TEST_CASE("pipes, sockets and pseudo file systems are left out") {
  auto p = ev(BS_SYS_OPENAT, 3, "/proc/self/status");
  p.result = KernelPath{"/proc/1/status", 0};
  p.result_magic = PROC_SUPER_MAGIC;
  CHECK(run(p).empty());
  auto s = ev(BS_SYS_FTRUNCATE, 0);
  s.result = KernelPath{"/", BS_SF_UNREACHABLE};
  CHECK(run(s).empty());
  CHECK(is_pseudo_fs(SYSFS_MAGIC));
  CHECK_FALSE(is_pseudo_fs(EXT4_SUPER_MAGIC));
  CHECK_FALSE(is_pseudo_fs(TMPFS_MAGIC));
}

TEST_CASE("a file deleted before its open returned falls back to the name given") {
  auto e = ev(BS_SYS_OPENAT, 3, "gone");
  e.result = KernelPath{"/work/gone", BS_SF_DELETED};
  CHECK(run(e) == M{{"/work/gone", kOpRead}});
}

TEST_CASE("an event that lost a string counts as unresolved") {
  auto e = ev(BS_SYS_STAT, 0, "x");
  e.strings_dropped = true;
  CHECK(interpret(e, kCtx).unresolved == 1);
}

TEST_CASE("what each change depends on of the state before it") {
  auto uses = [](const FileEvent& e) {
    std::map<std::string, Uses> out;
    for (const auto& a : interpret(e, kCtx).accesses) out[a.path] |= a.uses;
    return out;
  };
  using U = std::map<std::string, Uses>;
  auto e = ev(BS_SYS_OPENAT, 3, "f");
  e.result = KernelPath{"/work/f", 0};
  e.flags = O_RDONLY;
  CHECK(uses(e) == U{{"/work/f", kUsesContent}});
  e.flags = O_WRONLY | O_CREAT | O_TRUNC;  // replaces it whatever was there
  CHECK(uses(e) == U{{"/work/f", 0}});
  e.flags = O_WRONLY | O_TRUNC;  // fails where nothing is
  CHECK(uses(e) == U{{"/work/f", kUsesPresent}});
  e.flags = O_WRONLY | O_APPEND | O_CREAT;  // the result holds the old content
  CHECK(uses(e) == U{{"/work/f", kUsesContent | kUsesPresent}});
  e.flags = O_WRONLY | O_CREAT | O_EXCL;
  e.result_flags = BS_RF_CREATED;
  CHECK(uses(e) == U{{"/work/f", kUsesAbsent}});
  e.flags = O_WRONLY | O_CREAT | O_APPEND;  // an old file's content would have stayed
  CHECK(uses(e) == U{{"/work/f", kUsesAbsent}});
  e.flags = O_WRONLY | O_CREAT | O_TRUNC;
  CHECK(uses(e) == U{{"/work/f", 0}});

  CHECK(uses(ev(BS_SYS_MKDIR, 0, "d")) == U{{"/work/d", kUsesAbsent}});
  CHECK(uses(ev(BS_SYS_SYMLINK, 0, "l", "t")) == U{{"/work/l", kUsesAbsent}});
  CHECK(uses(ev(BS_SYS_UNLINK, 0, "f")) == U{{"/work/f", kUsesPresent}});
  CHECK(uses(ev(BS_SYS_UNLINK, -ENOENT, "f")) == U{{"/work/f", kUsesAbsent}});
  CHECK(uses(ev(BS_SYS_TRUNCATE, 0, "f")) == U{{"/work/f", kUsesContent | kUsesPresent}});
  CHECK(uses(ev(BS_SYS_CHMOD, 0, "f")) == U{{"/work/f", kUsesPresent | kUsesKept}});
  CHECK(uses(ev(BS_SYS_UTIMENSAT, 0, "f")) == U{{"/work/f", kUsesPresent | kUsesKept}});
  CHECK(uses(ev(BS_SYS_NEWFSTATAT, 0, "f")) == U{{"/work/f", kUsesMeta}});
  CHECK(uses(ev(BS_SYS_LINK, 0, "a", "b")) == U{{"/work/a", kUsesMeta | kUsesContent}, {"/work/b", kUsesAbsent}});
  // A rename carries the source's old state to the target.
  auto moved = kUsesContent | kUsesListing | kUsesPresent;
  CHECK(uses(ev(BS_SYS_RENAME, 0, "a", "b")) == U{{"/work/a", moved}, {"/work/b", 0}});
  auto noreplace = ev(BS_SYS_RENAMEAT2, 0, "a", "b");
  noreplace.flags = 1;  // RENAME_NOREPLACE
  CHECK(uses(noreplace) == U{{"/work/a", moved}, {"/work/b", kUsesAbsent}});
}

TEST_CASE("sockets: where a process connects, binds or sends; named AF_UNIX sockets are names too") {
  auto inet = [](uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    std::string sa(16, '\0');
    sa[0] = AF_INET;
    sa[2] = static_cast<char>(port >> 8);
    sa[3] = static_cast<char>(port & 0xff);
    sa[4] = static_cast<char>(a), sa[5] = static_cast<char>(b), sa[6] = static_cast<char>(c), sa[7] = static_cast<char>(d);
    return sa;
  };
  auto unix_sa = [](std::string_view name) { return std::string("\x01\x00", 2) + std::string(name); };
  auto sock = [](bs_sys sys, int64_t ret, const std::string& sa) {
    FileEvent e;
    e.sys = sys;
    e.ret = ret;
    e.path1 = KernelPath{sa, 0};
    return interpret(e, kCtx);
  };
  auto one = [](const Interpretation& in) {
    REQUIRE(in.sockets.size() == 1);
    return std::pair(in.sockets[0].op, in.sockets[0].address);
  };
  CHECK(one(sock(BS_SYS_CONNECT, 0, inet(127, 0, 0, 1, 8080))) == std::pair(SocketOp::kConnect, std::string("inet:127.0.0.1:8080")));
  // a refused connect still learnt something
  CHECK(one(sock(BS_SYS_CONNECT, -ECONNREFUSED, inet(10, 1, 2, 3, 53))) == std::pair(SocketOp::kConnect, std::string("inet:10.1.2.3:53")));
  CHECK(one(sock(BS_SYS_SENDTO, 5, inet(8, 8, 8, 8, 53))) == std::pair(SocketOp::kSend, std::string("inet:8.8.8.8:53")));
  CHECK(sock(BS_SYS_SENDTO, -EBADF, inet(8, 8, 8, 8, 53)).sockets.empty());
  std::string v6(28, '\0');
  v6[0] = AF_INET6;
  v6[3] = 80;
  v6[23] = 1;
  CHECK(one(sock(BS_SYS_CONNECT, 0, v6)) == std::pair(SocketOp::kConnect, std::string("inet6:[::1]:80")));
  CHECK(one(sock(BS_SYS_CONNECT, 0, unix_sa(std::string("\0bsandbox-tracer-1", 18)))).second == "unix:@bsandbox-tracer-1");
  // glibc asking nscd, which is not running: a name looked up and missing
  auto nscd = sock(BS_SYS_CONNECT, -ENOENT, unix_sa(std::string("/var/run/nscd/socket\0", 21)));
  CHECK(nscd.sockets.empty());
  CHECK(ops_of(nscd) == M{{"/var/run/nscd/socket", kOpMissing}});
  // bind makes the name (relative to the cwd)
  auto bound = sock(BS_SYS_BIND, 0, unix_sa("s.sock"));
  CHECK(ops_of(bound) == M{{"/work/s.sock", kOpCreate}});
  CHECK(one(bound) == std::pair(SocketOp::kBind, std::string("unix:/work/s.sock")));
  std::string unspec(16, '\0');
  CHECK(sock(BS_SYS_CONNECT, 0, unspec).sockets.empty());
}

TEST_CASE("a failed call is recorded only where its errno says what was at a name") {
  auto unresolved = [](const FileEvent& e) { return interpret(e, PathContext{"", "/"}).unresolved; };
  // Failed before any lookup: nothing, and nothing missing from the record
  // even where the name could not have been made (no cwd known here).
  for (int err : {EBADF, EFAULT, ENAMETOOLONG, EINVAL, EACCES, EPERM}) {
    auto e = ev(BS_SYS_NEWFSTATAT, -err, "rel");
    e.dirfd1 = 20001;  // stress-ng's bad descriptor
    CHECK(run(e).empty());
    CHECK(unresolved(e) == 0);
  }
  auto bad = ev(BS_SYS_STATX, -EFAULT);
  bad.path1 = KernelPath{"", BS_SF_FAULT};
  CHECK(run(bad).empty());
  CHECK(unresolved(bad) == 0);
  // An empty name is not looked up: ENOENT without AT_EMPTY_PATH.
  CHECK(run(ev(BS_SYS_NEWFSTATAT, -ENOENT, "")).empty());
  CHECK(run(ev(BS_SYS_ACCESS, -ENOENT, "")).empty());
  CHECK(run(ev(BS_SYS_OPENAT, -ENOENT, "")).empty());
  // A lookup that ran and failed is missing; one whose name cannot be made
  // (a relative name, no cwd) is what makes a record incomplete.
  CHECK(run(ev(BS_SYS_NEWFSTATAT, -ENOENT, "gone")) == M{{"/work/gone", kOpMissing}});
  CHECK(unresolved(ev(BS_SYS_NEWFSTATAT, -ENOENT, "gone")) == 1);
  // readlink's EINVAL: found, and not a symlink.
  CHECK(run(ev(BS_SYS_READLINK, -EINVAL, "a.o")) == M{{"/work/a.o", kOpStat}});
  // mkdir's EEXIST: found.
  CHECK(run(ev(BS_SYS_MKDIR, -EEXIST, "d")) == M{{"/work/d", kOpStat}});
  // EACCES from open: nothing (the spec records no op it failed at).
  CHECK(run(ev(BS_SYS_OPENAT, -EACCES, "secret")).empty());
}

TEST_CASE("the name lookups: a stat of the name when found, missing when not, nothing else") {
  int lookups = 0;
  for (int i = BS_SYS_NONE + 1; i < BS_SYS_COUNT; ++i) {
    auto sys = static_cast<bs_sys>(i);
    if (!is_name_lookup(sys)) continue;
    CAPTURE(i);
    ++lookups;
    auto found = interpret(ev(sys, 0, "a/b"), kCtx);
    REQUIRE(found.accesses.size() == 1);
    CHECK(found.accesses[0].path == "/work/a/b");
    CHECK(found.accesses[0].ops == kOpStat);
    CHECK(found.sockets.empty());
    CHECK(run(ev(sys, -ENOENT, "a/b")) == M{{"/work/a/b", kOpMissing}});
    CHECK(run(ev(sys, -EACCES, "a/b")).empty());
  }
  // stat, lstat, newfstatat, statx, access, faccessat, faccessat2,
  // readlink, readlinkat.
  CHECK(lookups == 9);
  // Calls that look a name up and do more are not lookups.
  for (bs_sys other : {BS_SYS_OPEN, BS_SYS_OPENAT, BS_SYS_EXECVE, BS_SYS_GETXATTR, BS_SYS_CHDIR,
                       BS_SYS_UNLINK, BS_SYS_MKDIR, BS_SYS_NONE, BS_SYS_COUNT})
    CHECK_FALSE(is_name_lookup(other));
  // readlink's EINVAL: found, and no symlink; a stat's EINVAL says nothing.
  CHECK(run(ev(BS_SYS_READLINK, -EINVAL, "a")) == M{{"/work/a", kOpStat}});
  CHECK(run(ev(BS_SYS_STAT, -EINVAL, "a")).empty());
}
