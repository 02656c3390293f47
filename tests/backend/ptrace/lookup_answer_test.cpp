// Answers made in the tracer must equal what the kernel answers the caller,
// and anything that could differ must be declined. The "tracee" here is
// this process itself (process_vm_writev into one's own memory works), so
// every answer is compared with the real syscall made right after.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sandbox/backend/ptrace/lookup_answer.h"
#include "sandbox/backend/syscall_table.h"
#include "sandbox/core/file_access.h"
#include "sandbox/base/unique_fd.h"

using namespace bsandbox;

namespace {

struct Tree {
  std::string root;
  UniqueFd fd;
  Tree() {
    char tmpl[] = "/tmp/bsandbox-answer-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    REQUIRE(::mkdir((root + "/dir").c_str(), 0755) == 0);
    write("dir/file", "hello");
    write("plain", "x");
    REQUIRE(::chmod((root + "/plain").c_str(), 0644) == 0);
    REQUIRE(::symlink("dir/file", (root + "/link").c_str()) == 0);
    REQUIRE(::symlink("/proc/self/fd/0", (root + "/to-proc").c_str()) == 0);
    fd = UniqueFd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd.valid());
  }
  ~Tree() { std::system(("rm -rf '" + root + "'").c_str()); }
  void write(const std::string& rel, const std::string& text) {
    UniqueFd f(::open((root + "/" + rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(f.valid());
    REQUIRE(::write(f.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  }
};

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }

std::optional<int64_t> ask(bs_sys sys, int base, const std::string& path,
                           std::array<uint64_t, 6> args) {
  LookupCall c;
  c.sys = sys;
  c.base = base;
  c.path = path;
  c.args = args;
  return answer_lookup(::getpid(), c);
}

// newfstatat(base, path, buf, flags) answered, and for real.
std::optional<int64_t> fstatat_answer(int base, const std::string& path, struct stat& st,
                                      int flags = 0) {
  return ask(BS_SYS_NEWFSTATAT, base, path,
             {static_cast<uint64_t>(base), ptr(path.c_str()), ptr(&st), static_cast<uint64_t>(flags)});
}
int64_t fstatat_real(int base, const std::string& path, struct stat& st, int flags = 0) {
  return ::fstatat(base, path.c_str(), &st, flags) == 0 ? 0 : -errno;
}

}  // namespace

TEST_CASE("stat of an existing file is answered with the kernel's struct stat") {
  Tree t;
  struct stat answered {}, real {};
  auto r = fstatat_answer(t.fd.get(), "dir/file", answered);
  REQUIRE(r);
  CHECK(*r == fstatat_real(t.fd.get(), "dir/file", real));
  CHECK(std::memcmp(&answered, &real, sizeof real) == 0);
  // Absolute names start at the root, not at base.
  struct stat abs {};
  std::string full = t.root + "/dir/file";
  auto a = ask(BS_SYS_STAT, -1, full, {ptr(full.c_str()), ptr(&abs)});
  REQUIRE(a);
  CHECK(*a == 0);
  CHECK(abs.st_ino == real.st_ino);
  CHECK(abs.st_size == 5);
}

TEST_CASE("a missing name is ENOENT, a file used as a directory ENOTDIR, as the kernel says") {
  Tree t;
  struct stat st {};
  for (const char* name : {"nope", "dir/nope", "nodir/nope", "nodir/deeper/nope", "plain/x"}) {
    CAPTURE(name);
    auto r = fstatat_answer(t.fd.get(), name, st);
    REQUIRE(r);
    CHECK(*r == fstatat_real(t.fd.get(), name, st));
    CHECK(*r < 0);
  }
}

TEST_CASE("symlinks are followed or not, as the call would") {
  Tree t;
  struct stat st {}, real {};
  auto followed = fstatat_answer(t.fd.get(), "link", st);
  REQUIRE(followed);
  CHECK(*followed == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(fstatat_real(t.fd.get(), "dir/file", real) == 0);
  CHECK(st.st_ino == real.st_ino);
  auto l = fstatat_answer(t.fd.get(), "link", st, AT_SYMLINK_NOFOLLOW);
  REQUIRE(l);
  CHECK(*l == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(fstatat_real(t.fd.get(), "link", real, AT_SYMLINK_NOFOLLOW) == 0);
  CHECK(st.st_ino == real.st_ino);
  REQUIRE(::symlink("nowhere", (t.root + "/dangling").c_str()) == 0);
  auto dangling = fstatat_answer(t.fd.get(), "dangling", st);
  REQUIRE(dangling);
  CHECK(*dangling == -ENOENT);
}

TEST_CASE("names whose lookup depends on who asks are declined") {
  Tree t;
  struct stat st {};
  // /proc/self is the tracer's, not the tracee's.
  for (const char* name : {"/proc/self/status", "/proc/self/fd/987/x", "/dev/fd/0", "/proc/self"}) {
    CAPTURE(name);
    CHECK_FALSE(fstatat_answer(t.fd.get(), name, st));
  }
  // Through a symlink into /proc, followed: declined; the link itself is fine.
  CHECK_FALSE(fstatat_answer(t.fd.get(), "to-proc", st));
  CHECK_FALSE(fstatat_answer(t.fd.get(), "to-proc/x", st));
  CHECK(fstatat_answer(t.fd.get(), "to-proc", st, AT_SYMLINK_NOFOLLOW));
}

TEST_CASE("'.', '..' and a trailing slash mean what they mean to the kernel") {
  Tree t;
  struct stat st {}, real {};
  auto dot = fstatat_answer(t.fd.get(), ".", st);
  REQUIRE(dot);
  CHECK(*dot == 0);
  REQUIRE(::fstat(t.fd.get(), &real) == 0);
  CHECK(st.st_ino == real.st_ino);
  auto up = fstatat_answer(t.fd.get(), "dir/..", st);
  REQUIRE(up);
  CHECK(st.st_ino == real.st_ino);
  // A trailing slash asks for a directory and follows a symlink even for
  // lstat, in the tracer's walk as in the kernel's.
  REQUIRE(::symlink("dir", (t.root + "/dlink").c_str()) == 0);
  for (int flags : {0, AT_SYMLINK_NOFOLLOW}) {
    for (const char* name : {"dir/", "plain/", "dlink/", "link/", "nope/"}) {
      CAPTURE(name);
      CAPTURE(flags);
      struct stat want {};
      auto got = fstatat_answer(t.fd.get(), name, st, flags);
      REQUIRE(got);
      CHECK(*got == fstatat_real(t.fd.get(), name, want, flags));
      if (*got == 0) CHECK(st.st_ino == want.st_ino);
    }
  }
}

TEST_CASE("arguments the kernel would reject, and unwritable outputs, are declined") {
  Tree t;
  struct stat st {};
  CHECK_FALSE(fstatat_answer(t.fd.get(), "plain", st, 0x40000000));
  std::string name = "plain";
  CHECK_FALSE(ask(BS_SYS_NEWFSTATAT, t.fd.get(), name, {0, ptr(name.c_str()), 8, 0}));
  // ...but a missing name fails before the output is touched, as in the kernel.
  std::string missing = "nope";
  auto r = ask(BS_SYS_NEWFSTATAT, t.fd.get(), missing, {0, ptr(missing.c_str()), 8, 0});
  REQUIRE(r);
  CHECK(*r == -ENOENT);
  CHECK_FALSE(ask(BS_SYS_READLINK, t.fd.get(), name, {ptr(name.c_str()), ptr(&st), 0}));
}

TEST_CASE("statx is answered with the kernel's struct statx") {
  Tree t;
  struct statx answered {}, real {};
  std::string name = "dir/file";
  auto r = ask(BS_SYS_STATX, t.fd.get(), name,
               {0, ptr(name.c_str()), 0, STATX_BASIC_STATS, ptr(&answered)});
  REQUIRE(r);
  CHECK(*r == 0);
  REQUIRE(::statx(t.fd.get(), name.c_str(), 0, STATX_BASIC_STATS, &real) == 0);
  CHECK(answered.stx_ino == real.stx_ino);
  CHECK(answered.stx_size == real.stx_size);
  CHECK(answered.stx_mode == real.stx_mode);
  CHECK(answered.stx_mask == real.stx_mask);
}

TEST_CASE("readlink: the target, truncated to the buffer; EINVAL for a non-symlink") {
  Tree t;
  char buf[64];
  std::memset(buf, '#', sizeof buf);
  std::string name = "link";
  auto r = ask(BS_SYS_READLINKAT, t.fd.get(), name, {0, ptr(name.c_str()), ptr(buf), 3});
  REQUIRE(r);
  CHECK(*r == 3);
  CHECK(std::string(buf, 4) == "dir#");
  std::string whole = "to-proc";
  r = ask(BS_SYS_READLINKAT, t.fd.get(), whole, {0, ptr(whole.c_str()), ptr(buf), sizeof buf});
  REQUIRE(r);
  CHECK(std::string(buf, static_cast<size_t>(*r)) == "/proc/self/fd/0");
  for (const char* other : {"plain", "nope"}) {
    std::string n = other;
    char real[8];
    auto a = ask(BS_SYS_READLINKAT, t.fd.get(), n, {0, ptr(n.c_str()), ptr(buf), sizeof buf});
    REQUIRE(a);
    CHECK(*a == (::readlinkat(t.fd.get(), other, real, sizeof real) < 0 ? -errno : 0));
  }
}

TEST_CASE("access: existence and permission bits, as the kernel checks them") {
  Tree t;
  for (int mode : {F_OK, R_OK, X_OK, R_OK | W_OK}) {
    for (const char* name : {"plain", "dir", "nope"}) {
      CAPTURE(mode);
      CAPTURE(name);
      std::string n = name;
      auto a = ask(BS_SYS_FACCESSAT, t.fd.get(), n,
                   {0, ptr(n.c_str()), static_cast<uint64_t>(mode)});
      REQUIRE(a);
      CHECK(*a == (::faccessat(t.fd.get(), name, mode, 0) == 0 ? 0 : -errno));
    }
  }
  std::string n = "plain";
  CHECK_FALSE(ask(BS_SYS_FACCESSAT, t.fd.get(), n, {0, ptr(n.c_str()), 0x40}));
}

TEST_CASE("open: only a name that is not there is answered, and never a create") {
  Tree t;
  auto args = [](const std::string& n, uint64_t flags) {
    return std::array<uint64_t, 6>{0, ptr(n.c_str()), flags};
  };
  std::string missing = "dir/nope", present = "dir/file";
  auto r = ask(BS_SYS_OPENAT, t.fd.get(), missing, args(missing, O_RDONLY));
  REQUIRE(r);
  CHECK(*r == -ENOENT);
  CHECK_FALSE(ask(BS_SYS_OPENAT, t.fd.get(), present, args(present, O_RDONLY)));
  CHECK_FALSE(ask(BS_SYS_OPENAT, t.fd.get(), missing, args(missing, O_WRONLY | O_CREAT)));
  CHECK_FALSE(answerable(BS_SYS_OPENAT, O_TMPFILE | O_RDWR));
  CHECK_FALSE(answerable(BS_SYS_OPENAT2, 0));
  CHECK_FALSE(answerable(BS_SYS_UNLINK, 0));
}

TEST_CASE("the calls answered are the record's name lookups (is_name_lookup), each as the kernel answers it") {
  Tree t;
  std::string name = "dir/file";
  uint64_t base = static_cast<uint64_t>(t.fd.get());
  // One call per lookup, with this name, and the same call made for real.
  // A lookup added to is_name_lookup without a case here, or that
  // answer_lookup cannot decode, fails below.
  struct stat st {};
  struct statx sx {};
  char buf[64];
  auto args_of = [&](bs_sys sys) -> std::optional<std::array<uint64_t, 6>> {
    uint64_t n = ptr(name.c_str());
    switch (sys) {
      case BS_SYS_STAT:
      case BS_SYS_LSTAT: return std::array<uint64_t, 6>{n, ptr(&st)};
      case BS_SYS_NEWFSTATAT: return std::array<uint64_t, 6>{base, n, ptr(&st), 0};
      case BS_SYS_STATX: return std::array<uint64_t, 6>{base, n, 0, STATX_BASIC_STATS, ptr(&sx)};
      case BS_SYS_ACCESS: return std::array<uint64_t, 6>{n, R_OK};
      case BS_SYS_FACCESSAT:
      case BS_SYS_FACCESSAT2: return std::array<uint64_t, 6>{base, n, R_OK, 0};
      case BS_SYS_READLINK: return std::array<uint64_t, 6>{n, ptr(buf), sizeof buf};
      case BS_SYS_READLINKAT: return std::array<uint64_t, 6>{base, n, ptr(buf), sizeof buf};
      default: return std::nullopt;
    }
  };
  // Relative names without a dirfd argument start at the cwd: the tree.
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  REQUIRE(::fchdir(t.fd.get()) == 0);
  int lookups = 0;
  for (int i = BS_SYS_NONE + 1; i < BS_SYS_COUNT; ++i) {
    auto sys = static_cast<bs_sys>(i);
    CAPTURE(i);
    bool opens = sys == BS_SYS_OPEN || sys == BS_SYS_OPENAT;
    CHECK(answerable(sys, O_RDONLY) == (is_name_lookup(sys) || opens));
    if (!is_name_lookup(sys)) continue;
    ++lookups;
    auto args = args_of(sys);
    REQUIRE_MESSAGE(args, "a name lookup this test does not know how to call");
    auto answered = ask(sys, t.fd.get(), name, *args);
    REQUIRE_MESSAGE(answered, "a name lookup answer_lookup declines");
    long nr = -1;
    for (const SyscallSpec& spec : file_syscalls())
      if (spec.desc.sys == sys) nr = spec.nr;
    REQUIRE(nr >= 0);
    long real = ::syscall(nr, (*args)[0], (*args)[1], (*args)[2], (*args)[3], (*args)[4]);
    CHECK(*answered == (real < 0 ? -errno : real));
  }
  REQUIRE(::chdir(cwd) == 0);
  CHECK(lookups > 0);
}
