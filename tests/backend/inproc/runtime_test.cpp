// runtime_test.cpp: the in-process runtime (libbsandbox-inproc.so) on real
// programs, without a tracer or seccomp filter (then the gate's calls are
// plain syscalls and the calls it leaves outside the gate just happen):
// the records it leaves in a SharedArea, what the programs see (their
// environment, output and exit status, the same with and without it), and
// many calls drained while they are made.
//
// This executable is also the small C-like program the tests run: with
// BS_RT_CHILD set, a constructor (after the runtime's) does what it says
// and exits before doctest starts.
#include "sandbox/backend/inproc/shared_area.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/backend/syscall_table.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

#ifndef BSANDBOX_INPROC_RUNTIME
#error "BSANDBOX_INPROC_RUNTIME: the path of libbsandbox-inproc.so"
#endif

namespace {

// ---------------------------------------------------------------- child

long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// BS_RT_CHILD="stat N PATH [THREADS]": N stat() of PATH in each thread;
// "bench N PATH": prints ns per stat(); "errno PATH": prints stat's errno;
// "fault": stat() of a bad pointer.
__attribute__((constructor)) void child_main() {
  const char* what = std::getenv("BS_RT_CHILD");
  if (!what) return;
  char mode[16] = "";
  long n = 0;
  char path[512] = "";
  int threads = 1;
  std::sscanf(what, "%15s %ld %511s %d", mode, &n, path, &threads);
  struct stat st {};
  if (std::strcmp(mode, "stat") == 0) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] {
        for (long i = 0; i < n; ++i) ::stat(path, &st);
      });
    for (auto& t : ts) t.join();
    std::_Exit(0);
  }
  if (std::strcmp(mode, "bench") == 0) {
    for (long i = 0; i < 1000; ++i) ::stat(path, &st);
    long t0 = now_ns();
    for (long i = 0; i < n; ++i) ::stat(path, &st);
    std::printf("%ld\n", (now_ns() - t0) / n);
    std::fflush(stdout);
    std::_Exit(0);
  }
  if (std::strcmp(mode, "errno") == 0) {
    errno = 0;
    int r = ::stat(what + 6, &st);
    int e = errno;
    int r2 = ::fstat(1, &st);
    std::printf("%d %d %d %d\n", r, e, r2, errno);
    std::fflush(stdout);
    std::_Exit(0);
  }
  if (std::strcmp(mode, "fault") == 0) {
    int r = ::stat(reinterpret_cast<const char*>(8), &st);
    std::printf("%d %d\n", r, errno);
    std::fflush(stdout);
    std::_Exit(0);
  }
  std::_Exit(99);
}

// ---------------------------------------------------------------- helpers

const char* const kRuntime = BSANDBOX_INPROC_RUNTIME;

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

SharedArea make_area(uint32_t nrings = 64, uint32_t ring_bytes = 256 * 1024) {
  auto a = SharedArea::create(nrings, ring_bytes);
  REQUIRE(a);
  static const char* const names[] = {"open",    "openat",    "creat",      "stat",     "lstat",
                                      "newfstatat", "statx",  "access",     "faccessat", "faccessat2",
                                      "readlink", "readlinkat", "execve",   "getdents64", "unlink",
                                      "unlinkat", "mkdir",     "mkdirat",    "rmdir"};
  for (const char* name : names)
    for (const auto& s : file_syscalls())
      if (s.name == name) a->handle(s.nr, s.desc);
  a->header().all_traced = 1;  // no tracer here to mark the threads
  return std::move(*a);
}

struct Rec {
  bs_ip_file f;
  std::string s[BS_IP_NSTR];
  bool has(int i) const { return f.present & (1u << i); }
};

Rec copy(const bs_ip_file& f) {
  Rec r;
  r.f = f;
  const char* p = reinterpret_cast<const char*>(&f + 1);
  for (int i = 0; i < BS_IP_NSTR; ++i) {
    r.s[i].assign(p, f.len[i]);
    p += f.len[i] + 1;
  }
  return r;
}

std::vector<Rec> drain(SharedArea& area) {
  std::vector<Rec> out;
  area.drain([&](const bs_ip_file& f) { out.push_back(copy(f)); });
  return out;
}

struct Ran {
  std::string out;
  int status = -1;
  pid_t pid = 0;
};

// argv run with env (plus, with the runtime, our two variables), its
// stdout (and stderr, with merge) captured.
Ran run(const std::vector<std::string>& argv, SharedArea* area, std::vector<std::string> env = {},
        bool merge = false) {
  if (area) {
    env.push_back(std::string("LD_PRELOAD=") + kRuntime);
    env.push_back(std::string(BS_IP_ENV "=") + area->path());
  }
  env.push_back("PATH=/usr/bin:/bin");
  env.push_back("LC_ALL=C");
#if defined(__SANITIZE_ADDRESS__)
  // This test re-runs itself as a child, built with ASan like itself: its
  // runtime must let another library be preloaded before it.
  env.push_back("ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0");
#endif
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::vector<char*> av, ev;
  for (auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(p[1], 1);
    if (merge) ::dup2(p[1], 2);
    ::execve(av[0], av.data(), ev.data());
    ::_exit(127);
  }
  ::close(p[1]);
  Ran r;
  r.pid = pid;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

std::string real(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? buf : "";
}

const Rec* find(const std::vector<Rec>& recs, long nr, const std::string& path1) {
  for (const auto& r : recs)
    if (r.f.nr == nr && r.f.rec.type == BS_IP_REC_FILE && r.s[BS_IP_PATH1] == path1) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("a thread the tracer has not marked is left to the tracer: nothing recorded") {
  TempDir dir("inproc");
  std::string file = dir / "data.txt";
  testing::put_file(file, "hello\n");
  SharedArea area = make_area();
  area.header().all_traced = 0;  // as under a tracer that never heard of these threads
  Ran r = run({"/bin/cat", file}, &area);
  CHECK(r.status == 0);
  CHECK(r.out == "hello\n");
  CHECK(area.header().images >= 1);  // the runtime started and patched...
  CHECK(drain(area).empty());        // ...but made every call outside the gate
}

TEST_CASE("cat: its open recorded with the file it opened, no fstat, patched sites") {
  TempDir dir("inproc");
  std::string file = dir / "data.txt";
  testing::put_file(file, "hello\n");
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  SharedArea area = make_area();
  Ran r = run({"/bin/cat", file}, &area);
  CHECK(r.status == 0);
  CHECK(r.out == "hello\n");
  CHECK(area.header().images >= 1);
  CHECK(area.header().sites > 0);
  auto recs = drain(area);
  CHECK(area.corrupt() == 0);
  const Rec* open = find(recs, SYS_openat, file);
  REQUIRE(open);
  CHECK(open->f.tid == static_cast<uint32_t>(r.pid));
  CHECK(open->f.ret >= 0);
  CHECK(open->has(BS_IP_PATH1));
  CHECK(open->has(BS_IP_RESULT));
  CHECK(open->s[BS_IP_RESULT] == real(file));
  CHECK(open->f.result_ino == st.st_ino);
  CHECK(open->f.result_magic != 0);
  CHECK((open->f.result_rflags & BS_RF_DIR) == 0);
  CHECK(open->f.created == -1);
  CHECK((open->f.flags & O_ACCMODE) == O_RDONLY);
  CHECK(!open->has(BS_IP_DIR1));  // AT_FDCWD
  // ld.so's opens are recorded too (libc.so.6 through the cache).
  bool libc = false;
  for (const auto& rec : recs) {
    if (rec.f.nr == SYS_openat && rec.s[BS_IP_RESULT].find("libc.so.6") != std::string::npos) libc = true;
    // fstat() is newfstatat(fd, "", AT_EMPTY_PATH): never recorded.
    if (rec.f.nr == SYS_newfstatat || rec.f.nr == SYS_statx)
      CHECK_MESSAGE(rec.s[BS_IP_PATH1] != "", "an fstat recorded");
  }
  CHECK(libc == false);  // ld.so opened libc before the runtime started
}

TEST_CASE("env: our variables are hidden, other LD_PRELOAD entries kept") {
  SharedArea area = make_area();
  Ran r = run({"/usr/bin/env"}, &area, {"FOO=bar"});
  CHECK(r.status == 0);
  CHECK(r.out.find("FOO=bar\n") != std::string::npos);
  CHECK(r.out.find(BS_IP_ENV) == std::string::npos);
  CHECK(r.out.find("LD_PRELOAD") == std::string::npos);
  CHECK(r.out.find("bsandbox-inproc") == std::string::npos);
  // Another preloaded library (an empty entry ld.so ignores) stays.
  Ran r2 = run({"/usr/bin/env"}, &area, {"LD_PRELOAD=/nonexistent-lib.so"}, false);
  CHECK(r2.out.find("LD_PRELOAD=/nonexistent-lib.so\n") != std::string::npos);
  CHECK(r2.out.find("bsandbox-inproc") == std::string::npos);
  CHECK(area.header().images >= 2);
}

TEST_CASE("sh -c: the exec is recorded and its child runs the runtime again") {
  TempDir dir("inproc");
  std::string file = dir / "in.txt";
  testing::put_file(file, "x\n");
  SharedArea area = make_area();
  // env -i: the child's environment is empty, the runtime comes back all the same.
  Ran r = run({"/bin/sh", "-c", "/usr/bin/env -i /bin/cat " + file + "; /usr/bin/env"}, &area);
  CHECK(r.status == 0);
  CHECK(r.out.find("x\n") == 0);
  CHECK(r.out.find(BS_IP_ENV) == std::string::npos);
  CHECK(r.out.find("bsandbox-inproc") == std::string::npos);
  auto recs = drain(area);
  CHECK(area.corrupt() == 0);
  // sh's and env's execve: libc's patched site, our variables put back.
  bool exec = false;
  for (const auto& rec : recs)
    if (rec.f.rec.type == BS_IP_REC_EXEC && rec.s[BS_IP_PATH1] == "/usr/bin/env")
      exec = true;
  CHECK(exec);
  const Rec* open = find(recs, SYS_openat, file);
  REQUIRE(open);
  CHECK(open->f.tid != static_cast<uint32_t>(r.pid));  // cat, a child of sh
  CHECK(area.header().images >= 3);  // sh, env, cat (and env)
  // A failed exec: an EXEC record, then a FILE record with the error.
  Ran bad = run({"/bin/sh", "-c", "/nonexistent/prog; exit 0"}, &area, {}, true);
  CHECK(bad.status == 0);
  recs = drain(area);
  const Rec* failed = find(recs, SYS_execve, "/nonexistent/prog");
  REQUIRE(failed);
  CHECK(failed->f.ret == -ENOENT);
}

TEST_CASE("creating and removing: created, dir1 of a dirfd-relative call") {
  TempDir dir("inproc");
  std::string sub = dir / "sub";
  SharedArea area = make_area();
  Ran r = run({"/bin/sh", "-c",
               "mkdir " + sub + " && echo a > " + sub + "/f && echo b > " + sub + "/f && rm -r " + sub},
              &area);
  CHECK(r.status == 0);
  auto recs = drain(area);
  CHECK(area.corrupt() == 0);
  // glibc's mkdir site may be left unpatched (a byte before it looks like
  // a jump into it): then it is made outside the gate, not recorded here.
  if (const Rec* mk = find(recs, SYS_mkdir, sub)) CHECK(mk->f.ret == 0);
  std::vector<const Rec*> opens;
  for (const auto& rec : recs)
    if (rec.f.nr == SYS_openat && rec.s[BS_IP_PATH1] == sub + "/f") opens.push_back(&rec);
  REQUIRE(opens.size() == 2);
  CHECK(opens[0]->f.created == 1);
  CHECK(opens[1]->f.created == 0);
  CHECK((opens[0]->f.flags & O_CREAT) != 0);
  CHECK(opens[0]->s[BS_IP_RESULT] == real(dir.path) + "/sub/f");
  // rm -r: unlinkat(dirfd of sub, "f", 0): dir1 names sub.
  const Rec* un = find(recs, SYS_unlinkat, "f");
  REQUIRE(un);
  CHECK(un->f.ret == 0);
  CHECK(un->has(BS_IP_DIR1));
  CHECK(un->s[BS_IP_DIR1] == real(dir.path) + "/sub");
  // ls: getdents64 of the directory, its result the directory.
  Ran ls = run({"/bin/ls", dir.path}, &area);
  recs = drain(area);
  bool dents = false;
  for (const auto& rec : recs)
    if (rec.f.nr == SYS_getdents64 && rec.s[BS_IP_RESULT] == real(dir.path) &&
        (rec.f.result_rflags & BS_RF_DIR))
      dents = true;
  CHECK(dents);
}

TEST_CASE("errno and a bad pointer") {
#if defined(__SANITIZE_ADDRESS__)
  // This case re-runs this test program, built with ASan in that build; its
  // calls there do not come through libc's patched sites (issue 21's note).
  MESSAGE("not checked in an ASan build");
  return;
#endif
  SharedArea area = make_area();
  std::string exe = self_exe();
  Ran r = run({exe}, &area, {"BS_RT_CHILD=errno /nonexistent/x"});
  Ran bare = run({exe}, nullptr, {"BS_RT_CHILD=errno /nonexistent/x"});
  CHECK(r.out == "-1 2 0 2\n");  // errno untouched by the runtime's own calls
  CHECK(r.out == bare.out);
  auto recs = drain(area);
  const Rec* st = find(recs, SYS_newfstatat, "/nonexistent/x");
  REQUIRE(st);
  CHECK(st->f.ret == -ENOENT);
  // A name longer than PATH_MAX: the kernel read 4096 bytes of it, so do we.
  std::string longname = "/" + std::string(5000, 'x');
  Ran l = run({"/bin/sh", "-c", "test -e " + longname + " || echo no"}, &area);
  CHECK(l.out == "no\n");
  recs = drain(area);
  bool truncated = false;
  for (const auto& rec : recs)
    if (rec.f.ret == -ENAMETOOLONG && rec.f.len[BS_IP_PATH1] == BS_USER_PATH_MAX &&
        (rec.f.sflags[BS_IP_PATH1] & BS_SF_TRUNCATED) && rec.s[BS_IP_PATH1] == longname.substr(0, BS_USER_PATH_MAX))
      truncated = true;
  CHECK(truncated);
  Ran f = run({exe}, &area, {"BS_RT_CHILD=fault"});
  CHECK(f.out == "-1 14\n");
  recs = drain(area);
  bool fault = false;
  for (const auto& rec : recs)
    if (rec.f.nr == SYS_newfstatat && rec.f.ret == -EFAULT && rec.has(BS_IP_PATH1) &&
        (rec.f.sflags[BS_IP_PATH1] & BS_SF_FAULT))
      fault = true;
  CHECK(fault);
}

TEST_CASE("differential: the same output and status with and without the runtime") {
  TempDir dir("inproc");
  testing::put_file(dir / "a", "1\n");
  testing::put_file(dir / "b", "22\n");
  ::mkdir((dir / "d").c_str(), 0755);
  ::symlink("a", (dir / "l").c_str());
  std::vector<std::vector<std::string>> cmds = {
      {"/bin/cat", dir / "a", dir / "b", "/nonexistent"},
      {"/bin/ls", "-la", "--time-style=+", dir.path},
      {"/bin/ls", "-R", "/usr/include/linux"},
      {"/usr/bin/env"},
      {"/bin/ls", "/proc/self/fd/"},  // no fd of ours left open
      {"/bin/sh", "-c", "grep -E '^Sig(Cgt|Ign)' /proc/self/status"},  // no handler of ours
      {"/usr/bin/stat", "-c", "%n %s %i %F", dir / "a", dir / "l", dir / "d", "/nonexistent"},
      {"/bin/sh", "-c", "cd " + dir.path + " && ls && test -e a && echo yes; readlink l; rmdir nope; echo $?"},
      {"/usr/bin/find", dir.path},
      {"/bin/sh", "-c", "for f in /etc/passwd /nonexistent; do test -r $f && echo $f; done; exit 3"},
  };
  SharedArea area = make_area();
  for (const auto& cmd : cmds) {
    Ran with = run(cmd, &area, {}, true);
    Ran without = run(cmd, nullptr, {}, true);
    std::string what = cmd[0] + " " + (cmd.size() > 1 ? cmd[1] : "");
    CHECK_MESSAGE(with.out == without.out, what);
    CHECK(with.status == without.status);
  }
  drain(area);
  CHECK(area.corrupt() == 0);
}

TEST_CASE("many calls, drained while they are made: none lost, none corrupt") {
#if defined(__SANITIZE_ADDRESS__)
  // This case re-runs this test program, built with ASan in that build; its
  // calls there do not come through libc's patched sites (issue 21's note).
  MESSAGE("not checked in an ASan build");
  return;
#endif
  SharedArea area = make_area(64, 64 * 1024);  // small rings: they fill
  std::string exe = self_exe();
  const long n = 50000;
  const int threads = 4;
  std::atomic<bool> done{false};
  std::atomic<long> seen{0}, total{0};
  const std::string path = "/nonexistent/many";
  std::thread drainer([&] {
    auto count = [&](const bs_ip_file& f) {
      ++total;
      Rec r = copy(f);
      if (r.s[BS_IP_PATH1] == path && r.f.ret == -ENOENT) ++seen;
    };
    while (!done) {
      if (area.drain(count) == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    area.drain(count);
  });
  uint64_t fallbacks0 = area.header().fallbacks;
  Ran r = run({exe}, &area, {"BS_RT_CHILD=stat " + std::to_string(n) + " " + path + " " + std::to_string(threads)});
  done = true;
  drainer.join();
  CHECK(r.status == 0);
  CHECK(area.corrupt() == 0);
  uint64_t fell_back = area.header().fallbacks - fallbacks0;
  // Every stat either recorded or made outside the gate (traced, were there a tracer).
  CHECK(seen + static_cast<long>(fell_back) == n * threads);
  MESSAGE("stats recorded: ", seen.load(), ", outside the gate (ring full): ", fell_back,
          ", records: ", total.load());
  // find over a big tree, drained at the end only (room checks).
  Ran f = run({"/usr/bin/find", "/usr/include", "-name", "nothing-like-this"}, &area);
  CHECK(f.status == 0);
  drain(area);
  CHECK(area.corrupt() == 0);
}

TEST_CASE("costs: a stat of a missing path, and starting a process") {
  SharedArea area = make_area();
  std::string exe = self_exe();
  std::thread drainer;
  std::atomic<bool> done{false};
  drainer = std::thread([&] {
    while (!done) {
      area.drain([](const bs_ip_file&) {});
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  Ran bare = run({exe}, nullptr, {"BS_RT_CHILD=bench 200000 /nonexistent/x"});
  Ran with = run({exe}, &area, {"BS_RT_CHILD=bench 200000 /nonexistent/x"});
  done = true;
  drainer.join();
  MESSAGE("stat() of a missing path: ", bare.out.substr(0, bare.out.size() - 1), " ns bare, ",
          with.out.substr(0, with.out.size() - 1), " ns with the runtime");
  const int runs = 200;
  long t0 = now_ns();
  for (int i = 0; i < runs; ++i) run({"/bin/true"}, nullptr);
  long t1 = now_ns();
  for (int i = 0; i < runs; ++i) {
    run({"/bin/true"}, &area);
    if (i % 16 == 0) drain(area);
  }
  long t2 = now_ns();
  MESSAGE("/bin/true: ", (t1 - t0) / runs / 1000, " us bare, ", (t2 - t1) / runs / 1000,
          " us with the runtime");
  CHECK(!bare.out.empty());
  CHECK(!with.out.empty());
}
