// ebpf_backend_test.cpp: the kernel programs, loaded for real. Each test
// forks a child, makes it the traced root, lets it make the real syscall,
// and checks the decoded event field by field. Needs root (or CAP_BPF and
// CAP_PERFMON); without it the binary prints why and exits 77 (skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/core/file_access.h"

using namespace bsandbox;

namespace {

// An event copied out of the ring buffer (events are views).
struct Seen {
  std::string type;
  ProcessKey proc;
  uint32_t tid = 0;
  bs_sys sys = BS_SYS_NONE;
  int64_t ret = 0;
  uint64_t flags = 0;
  uint16_t result_flags = 0;
  uint32_t magic = 0;
  int32_t dirfd1 = 0;
  int status = 0;
  ProcessKey parent;
  bool elf32 = false;
  std::map<std::string, std::string> str;
  std::map<std::string, uint8_t> str_flags;
  bool has(const std::string& k) const { return str.count(k) != 0; }
};

class Collector : public EventSink {
 public:
  std::vector<Seen> seen;
  void on_event(const Event& event) override {
    Seen s;
    const EventBase& b = base_of(event);
    s.proc = b.proc;
    s.tid = b.tid;
    put(s, "cwd", b.cwd);
    put(s, "root", b.root);
    if (auto* f = std::get_if<FileEvent>(&event)) {
      s.type = "file";
      s.sys = f->sys;
      s.ret = f->ret;
      s.flags = f->flags;
      s.result_flags = f->result_flags;
      s.magic = f->result_magic;
      s.dirfd1 = f->dirfd1;
      put(s, "path1", f->path1);
      put(s, "path2", f->path2);
      put(s, "dir1", f->dir1);
      put(s, "dir2", f->dir2);
      put(s, "result", f->result);
    } else if (auto* x = std::get_if<ExecEvent>(&event)) {
      s.type = "exec";
      s.str["filename"] = std::string(x->filename);
      s.str["interp"] = std::string(x->interp);
      s.str["argv"] = std::string(x->argv);
      put(s, "exe", x->exe);
      put(s, "ldso", x->ldso);
      s.elf32 = x->elf32;
    } else if (auto* k = std::get_if<ForkEvent>(&event)) {
      s.type = "fork";
      s.parent = k->parent;
    } else if (auto* e = std::get_if<ExitEvent>(&event)) {
      s.type = "exit";
      s.status = e->wait_status;
    }
    seen.push_back(std::move(s));
  }

 private:
  static void put(Seen& s, const char* k, const std::optional<KernelPath>& p) {
    if (!p) return;
    s.str[k] = std::string(p->path);
    s.str_flags[k] = p->flags;
  }
};

std::unique_ptr<EventSource>& shared_source() {
  static std::unique_ptr<EventSource> source;
  return source;
}

// The pid of the last traced() child.
pid_t g_root = 0;

// Runs body in a traced child; returns every event of the run.
std::vector<Seen> traced(EventSource& src, const std::function<void()>& body) {
  int go[2];
  REQUIRE(pipe(go) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(go[1]);
    char b;
    if (read(go[0], &b, 1) != 1) _exit(125);
    body();
    _exit(0);
  }
  close(go[0]);
  g_root = pid;
  REQUIRE(src.trace_root(pid));
  REQUIRE(write(go[1], "x", 1) == 1);
  close(go[1]);
  int status;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Collector c;
  src.drain(c);
  return c.seen;
}

std::vector<Seen> traced(const std::function<void()>& body) { return traced(*shared_source(), body); }

std::vector<Seen> of_sys(const std::vector<Seen>& all, bs_sys sys) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == "file" && s.sys == sys) out.push_back(s);
  }
  return out;
}

// Events of the traced child itself (a sanitizer runtime may start helpers).
std::vector<Seen> of_root(const std::vector<Seen>& all, const std::string& type) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == type && s.proc.pid == static_cast<uint32_t>(g_root)) out.push_back(s);
  }
  return out;
}

// Forks made by the traced child.
std::vector<Seen> of_root_forks(const std::vector<Seen>& all) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == "fork" && s.parent.pid == static_cast<uint32_t>(g_root)) out.push_back(s);
  }
  return out;
}

std::vector<Seen> of_type(const std::vector<Seen>& all, const std::string& type) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == type) out.push_back(s);
  }
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/bsandbox-kernel-XXXXXX";
    path = mkdtemp(tmpl);
    char real[4096];
    path = realpath(path.c_str(), real);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name, const std::string& data = "x") const {
    std::string p = path + "/" + name;
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs(data.c_str(), f);
    std::fclose(f);
    return p;
  }
};

}  // namespace

TEST_SUITE("sys_exit") {
  TEST_CASE("openat: the name as given, the file reached; the chdir before it told the cwd") {
    TempDir t;
    t.file("a.txt");
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      close(openat(AT_FDCWD, "a.txt", O_RDONLY));
    });
    auto opens = of_sys(ev, BS_SYS_OPENAT);
    REQUIRE(opens.size() >= 1);
    const Seen& o = opens.back();
    CHECK(o.ret >= 0);
    CHECK(o.flags == O_RDONLY);
    CHECK(o.dirfd1 == AT_FDCWD);
    CHECK(o.str.at("path1") == "a.txt");
    CHECK(o.str.at("result") == t.path + "/a.txt");
    auto cd = of_sys(ev, BS_SYS_CHDIR);
    REQUIRE(cd.size() == 1);
    CHECK(cd[0].str.at("result") == t.path);  // the thread's cwd from here on
    CHECK_FALSE(o.has("cwd"));                 // so it is not walked again
    CHECK((o.result_flags & BS_RF_RESOLVED));
    CHECK_FALSE((o.result_flags & BS_RF_CREATED));
    CHECK(o.str_flags.at("result") == 0);
  }

  TEST_CASE("openat O_CREAT: created is set only when the open created the file") {
    TempDir t;
    std::string fresh = t.path + "/new", old = t.file("old");
    auto ev = traced([&] {
      close(open(fresh.c_str(), O_WRONLY | O_CREAT, 0644));
      close(open(old.c_str(), O_WRONLY | O_CREAT, 0644));
    });
    auto opens = of_sys(ev, BS_SYS_OPENAT);
    REQUIRE(opens.size() >= 2);
    const Seen& a = opens[opens.size() - 2];
    const Seen& b = opens.back();
    CHECK(a.str.at("result") == fresh);
    CHECK((a.result_flags & BS_RF_CREATED));
    CHECK(b.str.at("result") == old);
    CHECK_FALSE((b.result_flags & BS_RF_CREATED));
    CHECK_FALSE(a.has("cwd"));  // absolute names need no cwd
  }

  TEST_CASE("dirfd-relative names carry the dirfd's path") {
    TempDir t;
    mkdir((t.path + "/d").c_str(), 0755);
    t.file("d/x");
    auto ev = traced([&] {
      int dfd = open((t.path + "/d").c_str(), O_RDONLY | O_DIRECTORY);
      close(openat(dfd, "x", O_RDONLY));
    });
    auto opens = of_sys(ev, BS_SYS_OPENAT);
    REQUIRE(opens.size() >= 2);
    const Seen& o = opens.back();
    CHECK(o.dirfd1 >= 0);
    CHECK(o.str.at("dir1") == t.path + "/d");
    CHECK(o.str.at("result") == t.path + "/d/x");
    CHECK((opens[opens.size() - 2].result_flags & BS_RF_DIR));
  }

  TEST_CASE("stat of a missing file: -ENOENT and the name") {
    auto ev = traced([] {
      struct stat st;
      stat("/nonexistent/bsandbox-test", &st);
    });
    auto stats = of_sys(ev, BS_SYS_NEWFSTATAT);
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].ret == -ENOENT);
    CHECK(stats[0].str.at("path1") == "/nonexistent/bsandbox-test");
  }

  TEST_CASE("fstat through newfstatat(fd, \"\", AT_EMPTY_PATH) is not reported") {
    TempDir t;
    std::string f = t.file("f");
    auto ev = traced([&] {
      int fd = open(f.c_str(), O_RDONLY);
      struct stat st;
      fstat(fd, &st);
      syscall(SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH);
    });
    CHECK(of_sys(ev, BS_SYS_NEWFSTATAT).empty());
  }

  TEST_CASE("rename: both names; afterwards the cwd is sent again") {
    TempDir t;
    t.file("a");
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      struct stat st;
      stat("before", &st);
      rename("a", "b");
      stat("after", &st);
    });
    auto r = of_sys(ev, BS_SYS_RENAME);
    REQUIRE(r.size() == 1);
    CHECK(r[0].ret == 0);
    CHECK(r[0].str.at("path1") == "a");
    CHECK(r[0].str.at("path2") == "b");
    auto stats = of_sys(ev, BS_SYS_NEWFSTATAT);
    REQUIRE(stats.size() == 2);
    CHECK_FALSE(stats[0].has("cwd"));  // the chdir's result told it
    CHECK(stats[1].str.at("cwd") == t.path);  // a rename may have moved the cwd
  }

  TEST_CASE("the cwd: a chdir's result, then sent only when it changes otherwise") {
    TempDir t;
    mkdir((t.path + "/sub").c_str(), 0755);
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      struct stat st;
      stat("one", &st);
      if (chdir("sub") != 0) _exit(1);
      stat("two", &st);
      // Threads share their cwd: one that moves it, seen by the other.
      pthread_t th;
      auto move = [](void*) -> void* { return reinterpret_cast<void*>(static_cast<intptr_t>(chdir(".."))); };
      if (pthread_create(&th, nullptr, move, nullptr) != 0) _exit(1);
      pthread_join(th, nullptr);
      stat("three", &st);
      stat("four", &st);
    });
    auto stats = of_sys(ev, BS_SYS_NEWFSTATAT);
    REQUIRE(stats.size() == 4);
    CHECK_FALSE(stats[0].has("cwd"));
    CHECK_FALSE(stats[1].has("cwd"));
    CHECK(stats[2].str.at("cwd") == t.path);  // moved by the other thread
    CHECK_FALSE(stats[3].has("cwd"));
    auto cd = of_sys(ev, BS_SYS_CHDIR);
    REQUIRE(cd.size() == 3);
    CHECK(cd[0].str.at("result") == t.path);
    CHECK(cd[1].str.at("path1") == "sub");
    CHECK(cd[1].str.at("result") == t.path + "/sub");
    CHECK(cd[2].str.at("result") == t.path);
  }

  TEST_CASE("getdents64: one event per listing, naming the directory") {
    TempDir t;
    for (int i = 0; i < 300; ++i) t.file("entry-with-a-long-name-" + std::to_string(i));
    auto ev = traced([&] {
      DIR* d = opendir(t.path.c_str());
      while (readdir(d)) {
      }
      closedir(d);
    });
    auto g = of_sys(ev, BS_SYS_GETDENTS64);
    REQUIRE(g.size() == 1);
    CHECK(g[0].str.at("result") == t.path);
    CHECK(g[0].ret > 0);
  }

  TEST_CASE("O_TMPFILE is flagged deleted; a pipe is unreachable on pipefs") {
    TempDir t;
    auto ev = traced([&] {
      close(open(t.path.c_str(), O_TMPFILE | O_WRONLY, 0600));
      int p[2];
      if (pipe(p) != 0) _exit(1);
      char name[64];
      std::snprintf(name, sizeof name, "/proc/self/fd/%d", p[0]);
      close(open(name, O_RDONLY | O_NONBLOCK));
    });
    auto opens = of_sys(ev, BS_SYS_OPENAT);
    REQUIRE(opens.size() >= 2);
    const Seen& tmp = opens[opens.size() - 2];
    CHECK((tmp.str_flags.at("result") & BS_SF_DELETED));
    const Seen& pipe_open = opens.back();
    CHECK((pipe_open.str_flags.at("result") & BS_SF_UNREACHABLE));
    CHECK(pipe_open.magic == PIPEFS_MAGIC);
  }

  TEST_CASE("paths longer than PATH_MAX come through whole") {
    TempDir t;
    std::string deep = t.path;
    std::string name(200, 'd');
    int dfd = open(t.path.c_str(), O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 30; ++i) {  // relative to a dirfd: the whole path exceeds PATH_MAX
      deep += "/" + name;
      REQUIRE(mkdirat(dfd, name.c_str(), 0755) == 0);
      int next = openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY);
      REQUIRE(next >= 0);
      close(dfd);
      dfd = next;
    }
    close(dfd);
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      for (int i = 0; i < 30; ++i) {
        if (chdir(name.c_str()) != 0) _exit(1);
      }
      close(open("leaf", O_WRONLY | O_CREAT, 0644));
    });
    auto opens = of_sys(ev, BS_SYS_OPENAT);
    REQUIRE(!opens.empty());
    const Seen& o = opens.back();
    CHECK(o.str.at("result") == deep + "/leaf");
    CHECK(o.str.at("result").size() > 4096);
    CHECK(o.str_flags.at("result") == 0);
  }

  TEST_CASE("ftruncate and fchmod name the file behind the fd") {
    TempDir t;
    std::string f = t.file("f", "hello");
    auto ev = traced([&] {
      int fd = open(f.c_str(), O_WRONLY);
      if (ftruncate(fd, 1) != 0 || fchmod(fd, 0600) != 0) _exit(1);
    });
    auto tr = of_sys(ev, BS_SYS_FTRUNCATE);
    REQUIRE(tr.size() == 1);
    CHECK(tr[0].str.at("result") == f);
    auto ch = of_sys(ev, BS_SYS_FCHMOD);
    REQUIRE(ch.size() == 1);
    CHECK(ch[0].str.at("result") == f);
  }

  TEST_CASE("connect, bind and addressed sends carry the socket address; a send on a connected socket does not") {
    auto ev = traced([&] {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(9);  // discard: nobody listens, connect is refused
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int t = socket(AF_INET, SOCK_STREAM, 0);
      (void)!connect(t, reinterpret_cast<sockaddr*>(&a), sizeof a);
      int u = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in any{};
      any.sin_family = AF_INET;
      any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      (void)!bind(u, reinterpret_cast<sockaddr*>(&any), sizeof any);
      (void)!sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      msghdr m{};
      iovec v{const_cast<char*>("y"), 1};
      m.msg_name = &a;
      m.msg_namelen = sizeof a;
      m.msg_iov = &v;
      m.msg_iovlen = 1;
      (void)!sendmsg(u, &m, 0);
      (void)!connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a);
      (void)!send(u, "z", 1, 0);  // sendto without an address
    });
    auto connects = of_sys(ev, BS_SYS_CONNECT);
    REQUIRE(connects.size() == 2);
    CHECK(connects[0].ret == -ECONNREFUSED);
    std::string want(16, '\0');
    want[0] = AF_INET;
    want[3] = 9;
    want[4] = 127;
    want[7] = 1;
    CHECK(connects[0].str.at("path1") == want);
    CHECK(socket_address(connects[0].str.at("path1"), PathContext{"/", "/"}) == "inet:127.0.0.1:9");
    REQUIRE(of_sys(ev, BS_SYS_BIND).size() == 1);
    CHECK(socket_address(of_sys(ev, BS_SYS_BIND)[0].str.at("path1"), PathContext{"/", "/"}) == "inet:127.0.0.1:0");
    auto sends = of_sys(ev, BS_SYS_SENDTO);
    REQUIRE(sends.size() == 1);  // send() on the connected socket is not reported
    CHECK(sends[0].str.at("path1") == want);
    auto msgs = of_sys(ev, BS_SYS_SENDMSG);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].str.at("path1") == want);
  }

  TEST_CASE("threads of the traced process are traced") {
    TempDir t;
    std::string f = t.file("f");
    auto ev = traced([&] {
      pthread_t th;
      pthread_create(
          &th, nullptr,
          [](void* p) -> void* {
            close(open(static_cast<const char*>(p), O_RDONLY));
            return nullptr;
          },
          const_cast<char*>(f.c_str()));
      pthread_join(th, nullptr);
    });
    bool from_thread = false;
    for (const auto& o : of_sys(ev, BS_SYS_OPENAT)) {
      if (o.str.count("result") && o.str.at("result") == f) from_thread = o.tid != o.proc.pid;
    }
    CHECK(from_thread);
  }

  TEST_CASE("processes outside the tree are not seen") {
    TempDir t;
    std::string f = t.file("outside");
    pid_t outsider = fork();
    REQUIRE(outsider >= 0);
    if (outsider == 0) {
      for (int i = 0; i < 2000; ++i) close(open(f.c_str(), O_RDONLY));
      _exit(0);
    }
    auto ev = traced([&] { usleep(20000); });
    waitpid(outsider, nullptr, 0);
    for (const auto& s : ev) CHECK(s.proc.pid != static_cast<uint32_t>(outsider));
    for (const auto& s : of_sys(ev, BS_SYS_OPENAT)) CHECK((!s.has("path1") || s.str.at("path1") != f));
  }
}

TEST_SUITE("sched_process_fork") {
  TEST_CASE("a fork names the child, the parent and the child's cwd") {
    TempDir t;
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      pid_t c = fork();
      if (c == 0) _exit(0);
      waitpid(c, nullptr, 0);
    });
    auto forks = of_root_forks(ev);
    REQUIRE(forks.size() == 1);
    const Seen& f = forks[0];
    CHECK(f.str.at("cwd") == t.path);
    CHECK(f.proc.pid != f.parent.pid);
    CHECK(f.proc.start > f.parent.start);
    // The parent is the traced root: its other events carry the same identity.
    bool parent_matches = false;
    for (const auto& s : ev) parent_matches |= s.type != "fork" && s.proc == f.parent;
    CHECK(parent_matches);
    // The child's exit carries the child's identity.
    bool child_exit = false;
    for (const auto& s : of_type(ev, "exit")) child_exit |= s.proc == f.proc;
    CHECK(child_exit);
  }

  TEST_CASE("threads are not processes") {
    auto ev = traced([] {
      pthread_t th;
      pthread_create(&th, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
      pthread_join(th, nullptr);
    });
    CHECK(of_root_forks(ev).empty());
  }
}

TEST_SUITE("sched_process_exec") {
  TEST_CASE("exec reports the program file, ld.so and argv") {
    auto ev = traced([] {
      char* argv[] = {const_cast<char*>("true"), const_cast<char*>("an arg"), nullptr};
      execv("/bin/true", argv);
      _exit(1);
    });
    auto ex = of_root(ev, "exec");
    REQUIRE(ex.size() == 1);
    const Seen& e = ex[0];
    CHECK(e.str.at("filename") == "/bin/true");
    CHECK(e.str.at("interp") == "/bin/true");
    char real[4096];
    REQUIRE(realpath("/bin/true", real));
    CHECK(e.str.at("exe") == real);
    REQUIRE(e.has("ldso"));
    CHECK(e.str.at("ldso").find("ld-linux") != std::string::npos);
    CHECK(e.str.at("argv") == std::string("true\0an arg\0", 12));  // as /proc/PID/cmdline
    CHECK_FALSE(e.elf32);
  }

  TEST_CASE("a #! script: the interpreter as named and the file that runs") {
    TempDir t;
    std::string script = t.file("s.sh", "#!/bin/sh\nexit 0\n");
    chmod(script.c_str(), 0755);
    auto ev = traced([&] {
      if (chdir(t.path.c_str()) != 0) _exit(1);
      char* argv[] = {const_cast<char*>("./s.sh"), nullptr};
      execv("./s.sh", argv);
      _exit(1);
    });
    auto ex = of_root(ev, "exec");
    REQUIRE(ex.size() == 1);
    CHECK(ex[0].str.at("filename") == "./s.sh");
    CHECK(ex[0].str.at("interp") == "/bin/sh");
    char real[4096];
    REQUIRE(realpath("/bin/sh", real));
    CHECK(ex[0].str.at("exe") == real);
    CHECK(ex[0].str.at("cwd") == t.path);  // the relative filename needs it
  }

  TEST_CASE("a failed execve is a file event, not an exec") {
    auto ev = traced([] {
      char* argv[] = {const_cast<char*>("x"), nullptr};
      execv("/nonexistent/prog", argv);
    });
    CHECK(of_root(ev, "exec").empty());
    auto fails = of_sys(ev, BS_SYS_EXECVE);
    REQUIRE(fails.size() == 1);
    CHECK(fails[0].ret == -ENOENT);
    CHECK(fails[0].str.at("path1") == "/nonexistent/prog");
  }
}

TEST_SUITE("sched_process_exit") {
  TEST_CASE("exit status as wait(2) reports it, once per process") {
    auto ev = traced([] {
      pthread_t th;
      pthread_create(&th, nullptr, [](void*) -> void* { pause(); return nullptr; }, nullptr);
      usleep(1000);
      exit(7);
    });
    auto exits = of_root(ev, "exit");
    REQUIRE(exits.size() == 1);
    CHECK(exits[0].status == (7 << 8));
  }

  TEST_CASE("death by signal") {
    auto ev = traced([] { kill(getpid(), SIGKILL); });
    auto exits = of_root(ev, "exit");
    REQUIRE(exits.size() == 1);
    CHECK(exits[0].status == SIGKILL);
  }
}

TEST_SUITE("ringbuf") {
  TEST_CASE("a full ring buffer is counted, not silent") {
    EbpfOptions small;
    small.ring_bytes = 4096;
    auto src = open_ebpf_backend(small);
    REQUIRE(src);
    TempDir t;
    std::string f = t.file("f");
    traced(**src, [&] {
      for (int i = 0; i < 2000; ++i) close(open(f.c_str(), O_RDONLY));
    });
    auto h = (*src)->health();
    CHECK(h.lost > 0);
    REQUIRE_FALSE(h.problems.empty());
    CHECK(h.problems[0].find("ring buffer was full") != std::string::npos);
  }

  TEST_CASE("the default buffer loses nothing on a normal run") {
    TempDir t;
    std::string f = t.file("f");
    auto ev = traced([&] {
      for (int i = 0; i < 2000; ++i) close(open(f.c_str(), O_RDONLY));
    });
    CHECK(of_sys(ev, BS_SYS_OPENAT).size() >= 2000);
    CHECK(shared_source()->health().lost == 0);
  }
}

TEST_SUITE("jobs") {
  // Runs body_a and body_b at once, each in a child traced under its own job.
  struct Pair {
    std::vector<Seen> a, b;
    SourceHealth ha, hb;
    pid_t pa, pb;
  };
  Pair two_jobs(size_t ring_bytes, const std::function<void()>& body_a, const std::function<void()>& body_b) {
    auto tracer = EbpfTracer::load(EbpfOptions{ring_bytes, false});
    REQUIRE(tracer);
    auto ja = (*tracer)->add_job();
    auto jb = (*tracer)->add_job();
    REQUIRE(ja);
    REQUIRE(jb);
    CHECK(ja->slot != jb->slot);
    CHECK((*tracer)->jobs() == 2);
    auto sa = (*tracer)->source(*ja, *tracer);
    auto sb = (*tracer)->source(*jb, *tracer);
    REQUIRE(sa);
    REQUIRE(sb);
    int go[2];
    REQUIRE(pipe(go) == 0);
    auto start = [&](const std::function<void()>& body) {
      pid_t pid = fork();
      if (pid == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1) _exit(125);
        body();
        _exit(0);
      }
      return pid;
    };
    Pair out;
    out.pa = start(body_a);
    out.pb = start(body_b);
    close(go[0]);
    REQUIRE((*sa)->trace_root(out.pa));
    REQUIRE((*sb)->trace_root(out.pb));
    REQUIRE(write(go[1], "xx", 2) == 2);
    close(go[1]);
    int status;
    REQUIRE(waitpid(out.pa, &status, 0) == out.pa);
    REQUIRE(waitpid(out.pb, &status, 0) == out.pb);
    Collector ca, cb;
    (*sa)->drain(ca);
    (*sb)->drain(cb);
    out.a = ca.seen;
    out.b = cb.seen;
    out.ha = (*sa)->health();
    out.hb = (*sb)->health();
    (*tracer)->remove_job(ja->slot);
    (*tracer)->remove_job(jb->slot);
    CHECK((*tracer)->jobs() == 0);
    return out;
  }

  TEST_CASE("each job's events reach its own ring only") {
    TempDir t;
    std::string fa = t.file("a"), fb = t.file("b");
    auto p = two_jobs(1 << 20, [&] { for (int i = 0; i < 50; ++i) close(open(fa.c_str(), O_RDONLY)); },
                      [&] { for (int i = 0; i < 30; ++i) close(open(fb.c_str(), O_RDONLY)); });
    auto opens = [](const std::vector<Seen>& ev, const std::string& path) {
      size_t n = 0;
      for (const auto& s : of_sys(ev, BS_SYS_OPENAT)) n += s.str.count("path1") && s.str.at("path1") == path;
      return n;
    };
    CHECK(opens(p.a, fa) == 50);
    CHECK(opens(p.a, fb) == 0);
    CHECK(opens(p.b, fb) == 30);
    CHECK(opens(p.b, fa) == 0);
    for (const auto& s : p.a) CHECK(s.proc.pid == static_cast<uint32_t>(p.pa));
    for (const auto& s : p.b) CHECK(s.proc.pid == static_cast<uint32_t>(p.pb));
    CHECK(p.ha.lost == 0);
    CHECK(p.hb.lost == 0);
  }

  TEST_CASE("one job's storm is lost from its own record only") {
    TempDir t;
    std::string fa = t.file("a"), fb = t.file("b");
    auto p = two_jobs(16 << 10, [&] { for (int i = 0; i < 5000; ++i) close(open(fa.c_str(), O_RDONLY)); },
                      [&] { for (int i = 0; i < 20; ++i) close(open(fb.c_str(), O_RDONLY)); });
    CHECK(p.ha.lost > 0);
    CHECK(p.hb.lost == 0);
    CHECK(of_sys(p.b, BS_SYS_OPENAT).size() >= 20);
  }
}

int main(int argc, char** argv) {
  auto source = open_ebpf_backend(EbpfOptions{});
  if (!source) {
    if (geteuid() != 0) {
      std::printf("SKIP: the eBPF backend needs root: %s\n", source.error().message.c_str());
      return 77;
    }
    std::printf("FAIL: %s\n", source.error().message.c_str());
    return 1;
  }
  shared_source() = std::move(*source);
  doctest::Context context(argc, argv);
  int rc = context.run();
  shared_source().reset();
  return rc;
}
