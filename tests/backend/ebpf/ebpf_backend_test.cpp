// ebpf_backend_test.cpp: the kernel programs, loaded for real. Each test
// forks a child, makes it the traced root, lets it make the real syscall,
// and checks the decoded event field by field. Needs root (or CAP_BPF and
// CAP_PERFMON); without it the binary prints why and exits 77 (skip).
#define DOCTEST_CONFIG_IMPLEMENT
//
// This file: the process programs (fork, exec, exit), the ring buffer and
// jobs, and main(); the file syscalls are in ebpf_files_test.cpp, what both
// use in ebpf_fixture.h.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/backend/ebpf/ebpf_fixture.h"

using namespace bsandbox;
using namespace bsandbox::ebpf_test;

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
