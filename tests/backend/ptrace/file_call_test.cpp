// file_call_test.cpp: a file syscall read at its seccomp stop and turned
// into an event's fields, with this process as the tracee (its memory holds
// the arguments, its cwd is where relative names start). The specs are the
// real ones of syscall_table.
#include "sandbox/backend/ptrace/file_call.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

namespace {

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }
constexpr uint64_t kCwd = static_cast<uint64_t>(AT_FDCWD);

const SyscallSpec& spec_of(bs_sys sys) {
  for (const SyscallSpec& s : file_syscalls())
    if (s.desc.sys == sys) return s;
  FAIL("no spec");
  std::abort();
}

FileCall read(bs_sys sys, std::array<uint64_t, 6> args, bool* reported = nullptr) {
  FileCall c;
  bool r = read_file_call(::getpid(), spec_of(sys), args.data(), c);
  if (reported) *reported = r;
  return c;
}

}  // namespace

TEST_CASE("an open that may create looks its name up first: created only if it was not there") {
  TempDir d("filecall");
  testing::put_file(d / "old", "x");
  std::string old_name = d / "old", new_name = d / "new";
  FileCall c = read(BS_SYS_OPENAT, {kCwd, ptr(old_name.c_str()), O_WRONLY | O_CREAT});
  CHECK(c.path1.text == old_name);
  CHECK(c.flags == (O_WRONLY | O_CREAT));
  CHECK(c.created == 0);
  CHECK_FALSE(c.created_file());
  c = read(BS_SYS_OPENAT, {kCwd, ptr(new_name.c_str()), O_WRONLY | O_CREAT});
  CHECK(c.created == 1);
  CHECK(c.created_file());
  // Relative to a dirfd.
  std::string rel = "new";
  c = read(BS_SYS_OPENAT, {static_cast<uint64_t>(d.fd.get()), ptr(rel.c_str()), O_WRONLY | O_CREAT});
  CHECK(c.created == 1);
  // O_EXCL: created whenever it succeeds, nothing looked up.
  c = read(BS_SYS_OPENAT, {kCwd, ptr(old_name.c_str()), O_WRONLY | O_CREAT | O_EXCL});
  CHECK(c.created == -1);
  CHECK(c.created_file());
  // No O_CREAT, or O_TMPFILE: never a create.
  c = read(BS_SYS_OPENAT, {kCwd, ptr(new_name.c_str()), O_RDONLY});
  CHECK(c.created == -1);
  CHECK_FALSE(c.created_file());
  c = read(BS_SYS_OPENAT, {kCwd, ptr(d.path.c_str()), O_TMPFILE | O_RDWR});
  CHECK_FALSE(c.created_file());
#ifdef SYS_creat
  c = read(BS_SYS_CREAT, {ptr(new_name.c_str()), 0644});
  CHECK(c.created == 1);
  CHECK(c.created_file());
#endif
}

TEST_CASE("openat2's flags come from its open_how") {
  open_how how{};
  how.flags = O_RDONLY | O_DIRECTORY;
  std::string name = "/tmp";
  FileCall c = read(BS_SYS_OPENAT2, {kCwd, ptr(name.c_str()), ptr(&how), sizeof how});
  CHECK(c.flags == (O_RDONLY | O_DIRECTORY));
  c = read(BS_SYS_OPENAT2, {kCwd, ptr(name.c_str()), 8, sizeof how});  // unreadable: 0
  CHECK(c.flags == 0);
}

TEST_CASE("what is not reported: a stat of \"\" (fstat), a send without an address") {
  bool reported = true;
  std::string empty;
  struct stat st {};
  read(BS_SYS_NEWFSTATAT, {3, ptr(empty.c_str()), ptr(&st), AT_EMPTY_PATH}, &reported);
  CHECK_FALSE(reported);
  read(BS_SYS_SENDTO, {3, ptr("x"), 1, 0, 0, 0}, &reported);
  CHECK_FALSE(reported);
  // An unreadable name is reported, as a fault.
  FileCall c = read(BS_SYS_NEWFSTATAT, {3, 8, ptr(&st), 0}, &reported);
  CHECK(reported);
  CHECK(c.path1.flags == BS_SF_FAULT);
}

TEST_CASE("fill_file_event: the call's fields, and which names /proc must give") {
  std::string a = "a/b", abs = "/x/y", target = "../t";
  FileEvent e;
  // renameat(5, "a/b", AT_FDCWD, "/x/y"): dirfd 5's path; the root for the second.
  FileCall c = read(BS_SYS_RENAMEAT, {5, ptr(a.c_str()), kCwd, ptr(abs.c_str())});
  NamesNeeded n = fill_file_event(c, 0, e);
  CHECK(e.sys == BS_SYS_RENAMEAT);
  CHECK(e.ret == 0);
  CHECK(e.dirfd1 == 5);
  CHECK(e.dirfd2 == AT_FDCWD);
  REQUIRE(e.path1);
  CHECK(e.path1->path == "a/b");
  REQUIRE(e.path2);
  CHECK(e.path2->path == "/x/y");
  CHECK(n.dir1);
  CHECK_FALSE(n.dir2);
  CHECK_FALSE(n.cwd);
  CHECK(n.root);

  // openat(AT_FDCWD, "a/b"): the cwd; the flags and result as given.
  FileEvent o;
  c = read(BS_SYS_OPENAT, {kCwd, ptr(a.c_str()), O_RDONLY | O_CLOEXEC});
  n = fill_file_event(c, -ENOENT, o);
  CHECK(o.ret == -ENOENT);
  CHECK(o.flags == (O_RDONLY | O_CLOEXEC));
  CHECK(n.cwd);
  CHECK_FALSE(n.root);
  CHECK_FALSE(n.dir1);

  // symlinkat("../t", 5, "a/b"): the target is text, it needs nothing.
  FileEvent s;
  c = read(BS_SYS_SYMLINKAT, {ptr(target.c_str()), 5, ptr(a.c_str())});
  n = fill_file_event(c, 0, s);
  REQUIRE(s.path2);
  CHECK(s.path2->path == "../t");
  CHECK(n.dir1);
  CHECK_FALSE(n.dir2);
  CHECK_FALSE(n.cwd);
  CHECK_FALSE(n.root);

  // connect to a named AF_UNIX socket: its name is taken from the cwd.
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "sock");
  FileEvent k;
  c = read(BS_SYS_CONNECT, {3, ptr(&un), sizeof un});
  n = fill_file_event(c, 0, k);
  REQUIRE(k.path1);
  CHECK(k.path1->path.size() == std::min<size_t>(BS_SOCKADDR_MAX, sizeof un));
  CHECK(n.cwd);

  // ftruncate(fd): no names at all.
  FileEvent f;
  c = read(BS_SYS_FTRUNCATE, {3, 0});
  n = fill_file_event(c, 0, f);
  CHECK_FALSE(f.path1);
  CHECK_FALSE((n.cwd || n.root || n.dir1 || n.dir2));
}
