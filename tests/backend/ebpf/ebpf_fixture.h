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
#include "sandbox/core/file_access.h"


namespace bsandbox::ebpf_test {


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
