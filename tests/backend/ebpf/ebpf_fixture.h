// ebpf_fixture.h: what the eBPF backend's kernel tests share: a traced
// child running a body, the events of its run copied out of the ring
// buffer (Seen), filters over them, a scratch directory. One backend is
// loaded for the whole test binary (ebpf_backend_test.cpp's main).
#pragma once

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
#include "tests/backend/seen.h"
#include "sandbox/core/file_access.h"


namespace bsandbox::ebpf_test {

using bsandbox::testing::Collector;
using bsandbox::testing::Seen;


inline std::unique_ptr<EventSource>& shared_source() {
  static std::unique_ptr<EventSource> source;
  return source;
}

// The pid of the last traced() child.
inline pid_t g_root = 0;

// Runs body in a traced child; returns every event of the run.
inline std::vector<Seen> traced(EventSource& src, const std::function<void()>& body) {
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

inline std::vector<Seen> traced(const std::function<void()>& body) { return traced(*shared_source(), body); }

inline std::vector<Seen> of_sys(const std::vector<Seen>& all, bs_sys sys) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == "file" && s.sys == sys) out.push_back(s);
  }
  return out;
}

// Events of the traced child itself (a sanitizer runtime may start helpers).
inline std::vector<Seen> of_root(const std::vector<Seen>& all, const std::string& type) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == type && s.proc.pid == static_cast<uint32_t>(g_root)) out.push_back(s);
  }
  return out;
}

// Forks made by the traced child.
inline std::vector<Seen> of_root_forks(const std::vector<Seen>& all) {
  std::vector<Seen> out;
  for (const auto& s : all) {
    if (s.type == "fork" && s.parent.pid == static_cast<uint32_t>(g_root)) out.push_back(s);
  }
  return out;
}

inline std::vector<Seen> of_type(const std::vector<Seen>& all, const std::string& type) {
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


}  // namespace bsandbox::ebpf_test
