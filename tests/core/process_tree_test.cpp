// process_tree_test.cpp: assembling the tree from synthetic event streams:
// out-of-order fork/exec/exit, pid reuse, per-thread cwd, argv inheritance,
// symlinks followed, and what makes a record incomplete.
#include "sandbox/core/process_tree.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <map>

using namespace bsandbox;

namespace {

class FakeLinks : public LinkReader {
 public:
  std::map<std::string, std::string> links;
  int reads = 0;
  std::optional<std::string> read_link(const std::string& path) override {
    ++reads;
    auto it = links.find(path);
    if (it == links.end()) return std::nullopt;
    return it->second;
  }
};

const ProcessKey kRoot{100, 5000};

ForkEvent fork_of(ProcessKey child, ProcessKey parent, const char* cwd, uint64_t time) {
  ForkEvent e;
  e.proc = child;
  e.tid = child.pid;
  e.parent = parent;
  e.time = time;
  e.cwd = KernelPath{cwd, 0};
  return e;
}

ExecEvent exec_of(ProcessKey p, std::string_view argv, const char* exe, uint64_t time) {
  ExecEvent e;
  e.proc = p;
  e.tid = e.old_tid = p.pid;
  e.time = time;
  e.filename = exe;
  e.interp = exe;
  e.exe = KernelPath{exe, 0};
  e.argv = argv;
  return e;
}

ExitEvent exit_of(ProcessKey p, int status, uint64_t time) {
  ExitEvent e;
  e.proc = p;
  e.tid = p.pid;
  e.wait_status = status;
  e.time = time;
  return e;
}

FileEvent open_of(ProcessKey p, uint32_t tid, const char* name, const char* result,
                  int flags = O_RDONLY) {
  FileEvent e;
  e.proc = p;
  e.tid = tid;
  e.sys = BS_SYS_OPENAT;
  e.ret = 3;
  e.flags = static_cast<uint64_t>(flags);
  e.path1 = KernelPath{name, 0};
  if (result) e.result = KernelPath{result, 0};
  return e;
}

const ProcessEntry* find(const std::vector<ProcessEntry>& ps, ProcessKey k) {
  for (const auto& p : ps) {
    if (p.key == k) return &p;
  }
  return nullptr;
}

OpSet ops(const ProcessEntry& p, const std::string& path) {
  for (const auto& f : p.files) {
    if (f.path == path) return f.ops;
  }
  return 0;
}

}  // namespace

TEST_CASE("a simple tree: root execs, forks a child that execs and reads") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"make"}, "/src");
  t.on_event(exec_of(kRoot, std::string_view("make\0-j2", 8), "/usr/bin/make", 5001));
  ProcessKey cc{101, 6000};
  t.on_event(fork_of(cc, kRoot, "/src", 6000));
  t.on_event(exec_of(cc, std::string_view("cc\0-c\0a.c", 9), "/usr/bin/cc", 6001));
  auto open = open_of(cc, 101, "a.c", "/src/a.c");
  open.cwd = KernelPath{"/src", 0};
  t.on_event(open);
  t.on_event(exit_of(cc, 0, 7000));
  t.on_event(exit_of(kRoot, 2 << 8, 8000));

  auto ps = t.entries(1000000, 9000);
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].key == kRoot);  // the top process first
  CHECK_FALSE(ps[0].parent);
  CHECK(ps[0].argv == std::vector<std::string>{"make", "-j2"});
  CHECK(ps[0].exe == "/usr/bin/make");
  CHECK(ps[0].cwd == "/src");
  CHECK(ps[0].exit_code == 2);
  CHECK(ps[0].start_ns == 1000000 + 5000);
  CHECK(ps[0].end_ns == 1000000 + 8000);
  CHECK(ops(ps[0], "/usr/bin/make") == kOpExec);

  CHECK(ps[1].key == cc);
  CHECK(ps[1].parent == kRoot);
  CHECK(ps[1].argv == std::vector<std::string>{"cc", "-c", "a.c"});
  CHECK(ps[1].cwd == "/src");
  CHECK(ps[1].exit_code == 0);
  CHECK(ops(ps[1], "/src/a.c") == kOpRead);
  CHECK(ops(ps[1], "/usr/bin/cc") == kOpExec);
  CHECK(t.health().orphans == 0);
  CHECK(t.health().unresolved == 0);
}

TEST_CASE("events arriving before their fork and exec still land on the right process") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"sh"}, "/w");
  ProcessKey child{200, 7000};
  // Exit first, then a file event, then exec, then the fork.
  t.on_event(exit_of(child, 9, 9000));  // killed by SIGKILL
  auto open = open_of(child, 200, "/etc/hosts", "/etc/hosts");
  t.on_event(open);
  t.on_event(exec_of(child, std::string_view("cat\0/etc/hosts", 14), "/usr/bin/cat", 7500));
  t.on_event(fork_of(child, kRoot, "/w", 7000));
  t.on_event(exec_of(kRoot, std::string_view("sh", 2), "/usr/bin/sh", 5001));

  auto ps = t.entries(0, 10000);
  auto* c = find(ps, child);
  REQUIRE(c);
  CHECK(c->parent == kRoot);
  CHECK(c->argv == std::vector<std::string>{"cat", "/etc/hosts"});
  CHECK(c->exit_code == 128 + 9);
  CHECK(ops(*c, "/etc/hosts") == kOpRead);
  CHECK(t.health().orphans == 0);
}

TEST_CASE("a reused pid is a different process") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"sh"}, "/w");
  ProcessKey first{300, 6000}, second{300, 8000};
  t.on_event(fork_of(first, kRoot, "/w", 6000));
  t.on_event(open_of(first, 300, "/a", "/a"));
  t.on_event(exit_of(first, 0, 6500));
  t.on_event(fork_of(second, kRoot, "/w", 8000));
  t.on_event(open_of(second, 300, "/b", "/b"));
  t.on_event(exit_of(second, 1 << 8, 8500));

  auto ps = t.entries(0, 10000);
  auto* a = find(ps, first);
  auto* b = find(ps, second);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(ops(*a, "/a") == kOpRead);
  CHECK(ops(*a, "/b") == 0);
  CHECK(ops(*b, "/b") == kOpRead);
  CHECK(a->exit_code == 0);
  CHECK(b->exit_code == 1);
}

TEST_CASE("the top process is the root pid that no fork named, even after its pid is reused") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"sh"}, "/w");
  ProcessKey reuse{kRoot.pid, 99000};  // a later child got the top's pid
  ProcessKey mid{150, 6000};
  t.on_event(exec_of(kRoot, std::string_view("sh", 2), "/usr/bin/sh", 5001));
  t.on_event(fork_of(mid, kRoot, "/w", 6000));
  t.on_event(exit_of(kRoot, 0, 7000));
  t.on_event(fork_of(reuse, mid, "/w", 99000));
  auto ps = t.entries(0, 100000);
  REQUIRE(ps.size() == 3);
  CHECK(ps[0].key == kRoot);
  CHECK(find(ps, reuse)->parent == mid);
}

TEST_CASE("a child that never execs runs its parent's program") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"bash", "-c", "x"}, "/w");
  t.on_event(exec_of(kRoot, std::string_view("bash\0-c\0x", 9), "/usr/bin/bash", 5001));
  ProcessKey sub{101, 6000};
  t.on_event(fork_of(sub, kRoot, "/w/sub", 6000));
  auto ps = t.entries(0, 7000);
  auto* s = find(ps, sub);
  REQUIRE(s);
  CHECK(s->argv == std::vector<std::string>{"bash", "-c", "x"});
  CHECK(s->exe == "/usr/bin/bash");
  CHECK(s->cwd == "/w/sub");
  CHECK_FALSE(s->exit_code);  // never seen to exit: still running
  CHECK(s->end_ns == 7000);
}

TEST_CASE("a top process whose exec failed keeps the command as given") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 4242, {"no-such-cmd", "arg"}, "/w");
  FileEvent miss;
  miss.proc = kRoot;
  miss.tid = kRoot.pid;
  miss.sys = BS_SYS_EXECVE;
  miss.ret = -2;
  miss.path1 = KernelPath{"/usr/bin/no-such-cmd", 0};
  t.on_event(miss);
  t.set_root_exit(127 << 8, 6000);
  auto ps = t.entries(0, 7000);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].argv == std::vector<std::string>{"no-such-cmd", "arg"});
  CHECK_FALSE(ps[0].exe);
  CHECK(ps[0].exit_code == 127);
  CHECK(ops(ps[0], "/usr/bin/no-such-cmd") == kOpMissing);
}

TEST_CASE("without any event for the top process its fallback identity is used") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 4242, {"x"}, "/w");
  t.set_root_exit(0, 6000);
  auto ps = t.entries(0, 7000);
  REQUIRE(ps.size() == 1);
  CHECK(ps[0].key == ProcessKey{kRoot.pid, 4242});
  CHECK(ps[0].exit_code == 0);
}

TEST_CASE("cwd is tracked per thread, as the backend sends it") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  auto a = open_of(kRoot, 100, "f", "/one/f");
  a.cwd = KernelPath{"/one", 0};
  t.on_event(a);
  auto b = open_of(kRoot, 101, "missing", nullptr);  // second thread, own cwd
  b.ret = -2;
  b.cwd = KernelPath{"/two", 0};
  t.on_event(b);
  auto c = open_of(kRoot, 100, "g", nullptr);  // first thread: still /one
  c.ret = -2;
  t.on_event(c);
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/two/missing") == kOpMissing);
  CHECK(ops(ps[0], "/one/g") == kOpMissing);
}

TEST_CASE("a chdir's result is its thread's cwd; a failed chdir changes nothing") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  FileEvent cd;
  cd.proc = kRoot;
  cd.tid = 100;
  cd.sys = BS_SYS_CHDIR;
  cd.ret = 0;
  cd.path1 = KernelPath{"sub", 0};
  cd.cwd = KernelPath{"/w", 0};
  cd.result = KernelPath{"/w/sub", 0};
  t.on_event(cd);
  auto a = open_of(kRoot, 100, "f", nullptr);  // no cwd sent: the chdir told it
  a.ret = -2;
  t.on_event(a);
  FileEvent failed;
  failed.proc = kRoot;
  failed.tid = 100;
  failed.sys = BS_SYS_CHDIR;
  failed.ret = -2;
  failed.path1 = KernelPath{"gone", 0};
  t.on_event(failed);
  auto b = open_of(kRoot, 101, "g", nullptr);  // another thread: its own cwd, none yet
  b.ret = -2;
  t.on_event(b);
  auto c = open_of(kRoot, 100, "h", nullptr);
  c.ret = -2;
  t.on_event(c);
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/w/sub/f") == kOpMissing);
  CHECK(ops(ps[0], "/w/sub/h") == kOpMissing);
  CHECK(ops(ps[0], "/w/sub/gone") == kOpMissing);
  CHECK(t.health().unresolved == 1);  // g
}

TEST_CASE("a relative name before any cwd is unresolved, not guessed") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  auto e = open_of(kRoot, 100, "f", nullptr);
  e.ret = -2;
  t.on_event(e);
  CHECK(t.health().unresolved == 1);
}

TEST_CASE("each symlink followed on the way to an opened file is recorded as stat") {
  FakeLinks fs;
  fs.links["/lib"] = "usr/lib";
  fs.links["/usr/lib/libz.so.1"] = "libz.so.1.2.13";
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  t.on_event(open_of(kRoot, 100, "/lib/libz.so.1", "/usr/lib/libz.so.1.2.13"));
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/usr/lib/libz.so.1.2.13") == kOpRead);
  CHECK(ops(ps[0], "/lib") == kOpStat);
  CHECK(ops(ps[0], "/usr/lib/libz.so.1") == kOpStat);
  CHECK(ps[0].files.size() == 3);

  // A second open of the same name reads the link cache, not the disk.
  int before = fs.reads;
  t.on_event(open_of(kRoot, 100, "/lib/libz.so.1", "/usr/lib/libz.so.1.2.13"));
  CHECK(fs.reads == before);
}

TEST_CASE("links are not recorded when resolving them again reaches another file") {
  FakeLinks fs;
  fs.links["/w/l"] = "elsewhere";  // changed since the kernel resolved it
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  t.on_event(open_of(kRoot, 100, "/w/l", "/w/target"));
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/w/target") == kOpRead);
  CHECK(ps[0].files.size() == 1);
}

TEST_CASE("a #! script records the script, the interpreter and the links to it") {
  FakeLinks fs;
  fs.links["/bin"] = "usr/bin";
  fs.links["/usr/bin/sh"] = "dash";
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"./s.sh"}, "/w");
  ExecEvent e = exec_of(kRoot, std::string_view("/bin/sh\0./s.sh", 14), "/usr/bin/dash", 5001);
  e.filename = "./s.sh";
  e.interp = "/bin/sh";
  e.ldso = KernelPath{"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0};
  e.cwd = KernelPath{"/w", 0};
  t.on_event(e);
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/w/s.sh") == kOpExec);
  CHECK(ops(ps[0], "/usr/bin/dash") == kOpExec);
  CHECK(ops(ps[0], "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2") == kOpExec);
  CHECK(ops(ps[0], "/bin") == kOpStat);
  CHECK(ops(ps[0], "/usr/bin/sh") == kOpStat);
  CHECK(ps[0].exe == "/usr/bin/dash");
}

TEST_CASE("rename onto a name known to exist is a write as well as a create") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  auto mk = open_of(kRoot, 100, "/w/out", "/w/out", O_WRONLY | O_CREAT);
  mk.result_flags = BS_RF_CREATED;
  t.on_event(mk);
  FileEvent mv;
  mv.proc = kRoot;
  mv.tid = 100;
  mv.sys = BS_SYS_RENAME;
  mv.path1 = KernelPath{"/w/out.tmp", 0};
  mv.path2 = KernelPath{"/w/out", 0};
  t.on_event(mv);
  mv.path2 = KernelPath{"/w/fresh", 0};
  t.on_event(mv);
  auto ps = t.entries(0, 1);
  CHECK(ops(ps[0], "/w/out") == (kOpCreate | kOpWrite));
  CHECK(ops(ps[0], "/w/fresh") == kOpCreate);
  CHECK(ops(ps[0], "/w/out.tmp") == kOpDelete);
}

TEST_CASE("pseudo files are left out") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  t.on_event(open_of(kRoot, 100, "/dev/null", "/dev/null", O_WRONLY));
  t.on_event(open_of(kRoot, 100, "/proc/self/maps", "/proc/100/maps"));
  t.on_event(open_of(kRoot, 100, "/dev/shm/x", "/dev/shm/x"));
  auto ps = t.entries(0, 1);
  REQUIRE(ps[0].files.size() == 1);
  CHECK(ps[0].files[0].path == "/dev/shm/x");
}

TEST_CASE("health reports what makes a record incomplete") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  ExecEvent e = exec_of(ProcessKey{400, 1}, std::string_view("a", 1), "/a", 1);
  e.elf32 = true;
  e.argv_truncated = true;
  t.on_event(e);  // also an orphan: no fork seen
  FileEvent f = open_of(kRoot, 100, "/x", "/x");
  f.strings_dropped = true;
  t.on_event(f);
  auto h = t.health();
  CHECK(h.elf32.size() == 1);
  CHECK(h.orphans == 1);
  CHECK(h.strings_dropped == 1);
  CHECK(h.unresolved >= 1);
}

TEST_CASE("running_pids lists processes not seen to exit") {
  FakeLinks fs;
  ProcessTree t(fs);
  t.set_root(kRoot.pid, 1, {"x"}, "/w");
  ProcessKey a{201, 2}, b{202, 3};
  t.on_event(fork_of(a, kRoot, "/w", 2));
  t.on_event(fork_of(b, kRoot, "/w", 3));
  t.on_event(exit_of(a, 0, 4));
  auto pids = t.running_pids();
  CHECK(std::find(pids.begin(), pids.end(), 202) != pids.end());
  CHECK(std::find(pids.begin(), pids.end(), 201) == pids.end());
}

TEST_CASE("prior: what the run saw of a path before it first changed it, across processes") {
  FakeLinks links;
  ProcessTree tree(links);
  tree.set_root(kRoot.pid, kRoot.start, {"sh"}, "/w");
  const ProcessKey a{101, 6000}, b{102, 7000};
  tree.on_event(fork_of(a, kRoot, "/w", 10));
  tree.on_event(fork_of(b, kRoot, "/w", 11));
  auto stat_of = [](ProcessKey p, const char* name, int64_t ret) {
    FileEvent e;
    e.proc = p;
    e.tid = p.pid;
    e.sys = BS_SYS_NEWFSTATAT;
    e.ret = ret;
    e.path1 = KernelPath{name, 0};
    return e;
  };
  // a: stat g (exists), then b reads g, then a rewrites g (O_TRUNC), then b reads g again.
  tree.on_event(stat_of(a, "g", 0));
  tree.on_event(open_of(b, b.pid, "g", "/w/g"));
  tree.on_event(open_of(a, a.pid, "g", "/w/g", O_WRONLY | O_CREAT | O_TRUNC));
  // out: looked up (missing) by a, created by b, read by a afterwards: only its absence was seen.
  tree.on_event(stat_of(a, "out", -ENOENT));
  FileEvent create = open_of(b, b.pid, "out", "/w/out", O_WRONLY | O_CREAT | O_TRUNC);
  create.result_flags = BS_RF_CREATED;
  tree.on_event(create);
  tree.on_event(open_of(a, a.pid, "out", "/w/out"));
  CHECK(tree.prior("/w/g") == PriorAccess{kOpStat, kUsesMeta | kUsesContent});
  CHECK(tree.prior("/w/out") == PriorAccess{kOpMissing, kUsesAbsent});
  CHECK(tree.prior("/w/never") == PriorAccess{});

  SUBCASE("a subtree sees only what its own processes did") {
    auto sub = tree.subtree(static_cast<pid_t>(b.pid), static_cast<pid_t>(kRoot.pid), 0, 100);
    REQUIRE(sub);
    // b read g before anyone in its subtree changed it (a is not in it),
    // and created out without looking first.
    CHECK(sub->priors.at("/w/g") == PriorAccess{kOpRead, kUsesContent});
    CHECK(sub->priors.at("/w/out") == PriorAccess{kOpCreate | kOpWrite, 0});
    auto suba = tree.subtree(static_cast<pid_t>(a.pid), static_cast<pid_t>(kRoot.pid), 0, 100);
    REQUIRE(suba);
    // a's read of out came after nothing of its own changed it: all of it counts
    CHECK(suba->priors.at("/w/out") == PriorAccess{kOpMissing, kUsesAbsent | kUsesContent});
    CHECK(suba->priors.at("/w/g") == PriorAccess{kOpStat, kUsesMeta});
  }
}
