// ebpf_files_test.cpp: the sys_exit program, file syscall by file syscall:
// the name as given, what it reached, the cwd or dirfd it was relative to,
// and what a failure says (suite sys_exit of the ebpf_backend_test binary).
#include <doctest/doctest.h>

#include "tests/backend/ebpf/ebpf_fixture.h"

using namespace bsandbox;
using namespace bsandbox::ebpf_test;

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

  TEST_CASE("getdents64: each listing of one directory after another is its own event") {
    // The kernel often gives the next directory opened the struct file the
    // last one freed: a new listing is not the last one's continuation.
    TempDir a, b;
    a.file("x");
    b.file("y");
    auto ev = traced([&] {
      for (const std::string* dir : {&a.path, &b.path, &a.path}) {
        DIR* d = opendir(dir->c_str());
        while (readdir(d)) {
        }
        closedir(d);
      }
    });
    auto g = of_sys(ev, BS_SYS_GETDENTS64);
    REQUIRE(g.size() == 3);
    CHECK(g[0].str.at("result") == a.path);
    CHECK(g[1].str.at("result") == b.path);
    CHECK(g[2].str.at("result") == a.path);
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
