// ptrace_backend_test.cpp: the ptrace backend on real programs. Each test
// forks a child that installs the backend's seccomp filter and runs a body
// of real syscalls; this process is its tracer, driving PtraceSource as
// supervise() does (one blocking waitpid(-1, __WALL) loop, every report
// handed to on_wait), and the events are checked field by field. Tracing
// one's own child needs no privileges; where ptrace is forbidden anyway
// (a security module, a seccomp policy) the binary says why and exits 77.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sandbox/backend/ptrace/ptrace_backend.h"
#include "sandbox/backend/seccomp_filter.h"
#include "tests/backend/seen.h"

using namespace bsandbox;

using namespace bsandbox::testing;

namespace {

struct Run {
  pid_t root = 0;
  int root_status = 0;
  std::vector<Seen> events;
  SourceHealth health;
  std::vector<Seen> of_sys(bs_sys sys) const {
    std::vector<Seen> out;
    for (const auto& s : events)
      if (s.type == "file" && s.sys == sys) out.push_back(s);
    return out;
  }
  std::vector<Seen> of_type(const std::string& type) const {
    std::vector<Seen> out;
    for (const auto& s : events)
      if (s.type == type) out.push_back(s);
    return out;
  }
};

// Runs body in a child under the backend's filter, traced by this process
// until the whole tree is gone. The body reports failure by its exit code.
Run traced(const std::function<void()>& body) {
  auto opened = open_ptrace_backend();
  REQUIRE(opened);
  EventSource& src = **opened;
  auto filter = src.child_filter();
  REQUIRE(filter);
  int go[2];
  REQUIRE(::pipe(go) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(go[1]);
    char b;
    if (::read(go[0], &b, 1) != 1) ::_exit(125);
    if (install_seccomp_filter(*filter) != 0) ::_exit(126);
    body();
    ::_exit(0);
  }
  ::close(go[0]);
  Run run;
  run.root = pid;
  REQUIRE(src.trace_root(pid));
  REQUIRE(::write(go[1], "x", 1) == 1);
  ::close(go[1]);
  Collector sink;
  for (;;) {
    int status = 0;
    pid_t got = ::waitpid(-1, &status, __WALL);
    if (got < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: the whole tree is gone
    }
    if (!src.on_wait(got, status, sink) && got == pid) run.root_status = status;
  }
  run.events = std::move(sink.seen);
  run.health = src.health();
  return run;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/bsandbox-ptrace-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    char real[4096];
    REQUIRE(::realpath(tmpl, real) != nullptr);
    path = real;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name, const std::string& data = "x", mode_t mode = 0644) const {
    std::string p = path + "/" + name;
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs(data.c_str(), f);
    std::fclose(f);
    ::chmod(p.c_str(), mode);
    return p;
  }
};

void must(bool ok) {
  if (!ok) ::_exit(1);
}

}  // namespace

TEST_CASE("openat after chdir: the name as given, the file reached, the cwd told; chdir's result is the new cwd") {
  TempDir t;
  t.file("a.txt");
  ::mkdir((t.path + "/sub").c_str(), 0755);
  t.file("sub/b.txt");
  Run run = traced([&] {
    must(::chdir(t.path.c_str()) == 0);
    ::close(::openat(AT_FDCWD, "a.txt", O_RDONLY));
    must(::chdir("sub") == 0);
    ::close(::open("b.txt", O_RDONLY));
  });
  CHECK(WIFEXITED(run.root_status));
  CHECK(WEXITSTATUS(run.root_status) == 0);
  auto cd = run.of_sys(BS_SYS_CHDIR);
  REQUIRE(cd.size() == 2);
  CHECK(cd[0].ret == 0);
  CHECK(cd[0].str.at("path1") == t.path);
  CHECK(cd[0].str.at("result") == t.path);
  CHECK((cd[0].result_flags & BS_RF_RESOLVED));
  CHECK((cd[0].result_flags & BS_RF_DIR));
  CHECK(cd[1].str.at("path1") == "sub");
  CHECK(cd[1].str.at("result") == t.path + "/sub");

  auto opens = run.of_sys(BS_SYS_OPENAT);
  REQUIRE(opens.size() == 2);
  const Seen& a = opens[0];
  CHECK(a.proc.pid == static_cast<uint32_t>(run.root));
  CHECK(a.tid == static_cast<uint32_t>(run.root));
  CHECK(a.ret >= 0);
  CHECK(a.flags == O_RDONLY);
  CHECK(a.dirfd1 == AT_FDCWD);
  CHECK(a.str.at("path1") == "a.txt");
  CHECK(a.str.at("result") == t.path + "/a.txt");
  CHECK((a.result_flags & BS_RF_RESOLVED));
  CHECK_FALSE((a.result_flags & BS_RF_CREATED));
  CHECK_FALSE((a.result_flags & BS_RF_DIR));
  // Unlike the eBPF backend, ptrace does not count a chdir's result as
  // sent: the next relative name carries the cwd (the same one, so the
  // process tree, which took the result as its cwd, agrees).
  CHECK(a.str.at("cwd") == t.path);
  const Seen& b = opens[1];
  CHECK(b.str.at("path1") == "b.txt");
  CHECK(b.str.at("result") == t.path + "/sub/b.txt");
  CHECK(b.str.at("cwd") == t.path + "/sub");
}

TEST_CASE("a failed stat: -ENOENT and the name; absolute names need no cwd") {
  Run run = traced([] {
    struct stat st;
    ::stat("/nonexistent/bsandbox-ptrace-test", &st);
  });
  auto stats = run.of_sys(BS_SYS_NEWFSTATAT);
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].ret == -ENOENT);
  CHECK(stats[0].str.at("path1") == "/nonexistent/bsandbox-ptrace-test");
  CHECK(stats[0].dirfd1 == AT_FDCWD);
  CHECK_FALSE(stats[0].has("cwd"));
  CHECK_FALSE(stats[0].has("result"));
}

TEST_CASE("getdents64: one event per listing; a directory made where a listed one was removed is listed anew") {
  char tmpl[] = "/tmp/bsandbox-ptrace-dirs-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string top = tmpl, a = top + "/a", b = top + "/b";
  for (int i = 0; i < 300; ++i) {  // more than one getdents call
    std::string name = top + "/entry-with-a-long-name-" + std::to_string(i);
    ::close(::open(name.c_str(), O_CREAT | O_WRONLY, 0600));
  }
  Run run = traced([&] {
    auto list = [](const std::string& dir) {
      DIR* d = ::opendir(dir.c_str());
      if (!d) _exit(2);
      while (::readdir(d)) {
      }
      ::closedir(d);
    };
    list(top);
    // ext4 and tmpfs often give a removed directory's inode number to the
    // next one made: the listing of b is not a repeat of a's.
    if (::mkdir(a.c_str(), 0700) != 0) _exit(3);
    list(a);
    ::rmdir(a.c_str());
    if (::mkdir(b.c_str(), 0700) != 0) _exit(4);
    list(b);
    list(b);
  });
  auto g = run.of_sys(BS_SYS_GETDENTS64);
  REQUIRE(g.size() == 4);
  CHECK(g[0].str.at("result") == top);
  CHECK(g[1].str.at("result") == a);
  CHECK(g[2].str.at("result") == b);
  CHECK(g[3].str.at("result") == b);
  std::system(("rm -rf '" + top + "'").c_str());
}

TEST_CASE("open O_CREAT: created only when the open made the file") {
  TempDir t;
  std::string fresh = t.path + "/new", old = t.file("old");
  Run run = traced([&] {
    ::close(::open(fresh.c_str(), O_WRONLY | O_CREAT, 0644));
    ::close(::open(old.c_str(), O_WRONLY | O_CREAT, 0644));
  });
  auto opens = run.of_sys(BS_SYS_OPENAT);
  REQUIRE(opens.size() == 2);
  CHECK(opens[0].str.at("result") == fresh);
  CHECK((opens[0].result_flags & BS_RF_CREATED));
  CHECK(opens[1].str.at("result") == old);
  CHECK_FALSE((opens[1].result_flags & BS_RF_CREATED));
}

TEST_CASE("rename: both names as given") {
  TempDir t;
  t.file("a");
  Run run = traced([&] {
    must(::chdir(t.path.c_str()) == 0);
    must(::rename("a", "b") == 0);
    struct stat st;
    ::stat("b", &st);
  });
  auto r = run.of_sys(BS_SYS_RENAME);
  REQUIRE(r.size() == 1);
  CHECK(r[0].ret == 0);
  CHECK(r[0].str.at("path1") == "a");
  CHECK(r[0].str.at("path2") == "b");
  CHECK(r[0].str.at("cwd") == t.path);  // both relative: from the cwd
  auto stats = run.of_sys(BS_SYS_NEWFSTATAT);
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].ret == 0);
  // The rename made the tracer read the cwd again; it had not changed, so
  // it is not sent again.
  CHECK_FALSE(stats[0].has("cwd"));
}

TEST_CASE("fork, exec and exit: the child's fork event, its exec with argv, its exit status") {
  TempDir t;
  std::string script = t.file("script", "#!/bin/sh\nexit 3\n", 0755);
  Run run = traced([&] {
    pid_t child = ::fork();
    if (child == 0) {
      ::execl(script.c_str(), "script", "one", "two", static_cast<char*>(nullptr));
      ::_exit(99);
    }
    int status = 0;
    must(::waitpid(child, &status, 0) == child);
    must(WIFEXITED(status) && WEXITSTATUS(status) == 3);
  });
  CHECK(WIFEXITED(run.root_status));
  CHECK(WEXITSTATUS(run.root_status) == 0);
  auto forks = run.of_type("fork");
  REQUIRE(forks.size() == 1);
  uint32_t child = forks[0].proc.pid;
  CHECK(child != static_cast<uint32_t>(run.root));
  CHECK(forks[0].tid == child);
  CHECK(forks[0].parent.pid == static_cast<uint32_t>(run.root));
  CHECK(forks[0].proc.start != 0);

  auto execs = run.of_type("exec");
  REQUIRE(execs.size() == 1);
  const Seen& x = execs[0];
  CHECK(x.proc == forks[0].proc);  // the same process, exec'd
  CHECK(x.str.at("filename") == script);
  CHECK(x.str.at("interp") == "/bin/sh");
  // The kernel runs "/bin/sh script one two".
  CHECK(x.str.at("argv") == std::string("/bin/sh\0", 8) + script + std::string("\0one\0two\0", 9));
  REQUIRE(x.has("exe"));
  CHECK(x.str.at("exe").find("sh") != std::string::npos);
  CHECK(x.has("ldso"));  // /bin/sh is dynamically linked

  auto exits = run.of_type("exit");
  REQUIRE(exits.size() == 2);
  CHECK(exits[0].proc == forks[0].proc);  // the child first, then its parent
  CHECK(WIFEXITED(exits[0].status));
  CHECK(WEXITSTATUS(exits[0].status) == 3);
  CHECK(exits[1].proc.pid == static_cast<uint32_t>(run.root));
  CHECK(WEXITSTATUS(exits[1].status) == 0);
  // Nothing the child did is sent before its fork event.
  size_t fork_at = 0, first_of_child = run.events.size();
  for (size_t i = 0; i < run.events.size(); ++i) {
    if (run.events[i].type == "fork") fork_at = i;
    if (run.events[i].proc.pid == child && first_of_child == run.events.size()) first_of_child = i;
  }
  CHECK(fork_at == first_of_child);
}

TEST_CASE("a thread: its calls under its own tid, in its process; no fork event for it") {
  TempDir t;
  static std::string name;
  name = t.file("from-thread");
  static pid_t thread_tid = 0;
  Run run = traced([&] {
    pthread_t th;
    auto body = [](void*) -> void* {
      thread_tid = static_cast<pid_t>(::gettid());
      ::close(::open(name.c_str(), O_RDONLY));
      return nullptr;
    };
    must(::pthread_create(&th, nullptr, body, nullptr) == 0);
    ::pthread_join(th, nullptr);
    must(thread_tid != ::getpid());
  });
  CHECK(WEXITSTATUS(run.root_status) == 0);
  auto opens = run.of_sys(BS_SYS_OPENAT);
  std::vector<Seen> mine;
  for (const auto& o : opens)
    if (o.has("path1") && o.str.at("path1") == name) mine.push_back(o);
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].proc.pid == static_cast<uint32_t>(run.root));
  CHECK(mine[0].tid != static_cast<uint32_t>(run.root));
  CHECK(mine[0].str.at("result") == name);
  CHECK(run.of_type("fork").empty());
  auto exits = run.of_type("exit");
  REQUIRE(exits.size() == 1);  // the process, not the thread
  CHECK(exits[0].tid == static_cast<uint32_t>(run.root));
}

TEST_CASE("a tracee killed in a traced syscall: its exit, no event for the call, the tracer goes on") {
  TempDir t;
  std::string fifo = t.path + "/fifo", after = t.file("after");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  Run run = traced([&] {
    pid_t child = ::fork();
    if (child == 0) {
      ::open(fifo.c_str(), O_RDONLY);  // blocks: nobody writes
      ::_exit(0);
    }
    ::usleep(200000);
    ::kill(child, SIGKILL);
    int status = 0;
    must(::waitpid(child, &status, 0) == child);
    must(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ::close(::open(after.c_str(), O_RDONLY));
  });
  CHECK(WIFEXITED(run.root_status));
  CHECK(WEXITSTATUS(run.root_status) == 0);
  auto forks = run.of_type("fork");
  REQUIRE(forks.size() == 1);
  uint32_t child = forks[0].proc.pid;
  for (const auto& o : run.of_sys(BS_SYS_OPENAT)) CHECK(o.proc.pid != child);  // killed inside it
  auto exits = run.of_type("exit");
  REQUIRE(exits.size() == 2);
  CHECK(exits[0].proc.pid == child);
  CHECK(WIFSIGNALED(exits[0].status));
  CHECK(WTERMSIG(exits[0].status) == SIGKILL);
  auto opens = run.of_sys(BS_SYS_OPENAT);
  REQUIRE(opens.size() == 1);
  CHECK(opens[0].str.at("result") == after);
  CHECK(run.health.problems.empty());
  CHECK(run.health.delivered == run.events.size());
}

int main(int argc, char** argv) {
  // Can this process trace a child of its own here?
  pid_t probe = ::fork();
  if (probe == 0) {
    ::pause();
    ::_exit(0);
  }
  long seized = ::ptrace(PTRACE_SEIZE, probe, nullptr, 0);
  int err = errno;
  ::kill(probe, SIGKILL);
  ::waitpid(probe, nullptr, __WALL);
  if (seized != 0) {
    std::printf("SKIP: ptrace of a child is not permitted here: %s\n", std::strerror(err));
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
