// ptrace_backend.cpp: a tracer that turns seccomp stops into Events.
//
// Per thread the tracer is in one of two states: running freely (resumed
// with PTRACE_CONT, so only seccomp stops and ptrace events stop it), or in
// a traced syscall (resumed with PTRACE_SYSCALL, so its syscall-exit stop
// reports the result). A new task is held at its first stop until the
// fork/clone event of its creator has been handled, so its fork event is
// sent before anything it does.
//
// What the eBPF backend reads from kernel memory, this one reads from
// /proc while the tracee is stopped: the path of an fd, of the cwd and root
// (readlink), and whether an open created its file (looked up at the
// seccomp stop, before the call runs). The cwd is re-read only after a
// chdir, fchdir, chroot or rename anywhere in the tree could have changed
// it (the same generation scheme as the kernel side).
#include "sandbox/backend/ptrace/ptrace_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/base/io.h"
#include "sandbox/backend/ptrace/lookup_answer.h"
#include "sandbox/backend/seccomp_filter.h"
#include "sandbox/base/clocks.h"
#include "sandbox/backend/syscall_table.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "bsandbox's ptrace backend knows x86_64 and aarch64 so far"
#endif

constexpr long kOptions = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE |
                          PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
                          PTRACE_O_EXITKILL;

// Syscalls traced only to know that credentials or namespaces may change:
// answering lookups in the tracer is right only while the tracee's
// identity is the tracer's (see lookup_answer.h).
constexpr long kCredCalls[] = {SYS_setuid,   SYS_setgid,    SYS_setreuid, SYS_setregid,
                               SYS_setresuid, SYS_setresgid, SYS_setfsuid, SYS_setfsgid,
                               SYS_setgroups, SYS_capset};
// ...and these may change the root or cwd of other threads too.
constexpr long kNamespaceCalls[] = {SYS_unshare, SYS_setns, SYS_pivot_root};

bool one_of(std::span<const long> list, uint64_t nr) {
  return std::find(list.begin(), list.end(), static_cast<long>(nr)) != list.end();
}

// Syscall returns that mean "interrupted, will be restarted": the restarted
// call stops again, so this one is not reported.
bool is_restart(int64_t ret) { return ret <= -512 && ret >= -516; }

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "/proc/TID/WHAT" in a fixed buffer.
struct ProcPath {
  char buf[64];
  ProcPath(pid_t tid, const char* what) { std::snprintf(buf, sizeof buf, "/proc/%d/%s", tid, what); }
  ProcPath(pid_t tid, const char* what, long n) {
    std::snprintf(buf, sizeof buf, "/proc/%d/%s%ld", tid, what, n);
  }
  const char* c_str() const { return buf; }
};

// readlink into out; false with errno on failure.
bool read_link(const char* path, std::string& out) {
  out.resize(256);
  for (;;) {
    ssize_t n = ::readlink(path, out.data(), out.size());
    if (n < 0) return false;
    if (static_cast<size_t>(n) < out.size()) {
      out.resize(static_cast<size_t>(n));
      return true;
    }
    out.resize(out.size() * 4);
  }
}

// The path of a directory longer than readlink of a /proc link can return
// (a page): walked up with "..", finding each name in its parent, as getcwd
// once did. Empty if some directory on the way cannot be read.
std::string long_dir_path(const char* proc_link) {
  UniqueFd cur(::open(proc_link, O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat st {}, top {};
  if (!cur.valid() || ::fstat(cur.get(), &st) != 0 || ::stat("/", &top) != 0) return "";
  std::vector<std::string> names;
  while (!(st.st_dev == top.st_dev && st.st_ino == top.st_ino)) {
    UniqueFd parent(::openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat pst {};
    if (!parent.valid() || ::fstat(parent.get(), &pst) != 0) return "";
    if (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino) return "";  // a root that is not ours
    DIR* dir = ::fdopendir(::dup(parent.get()));
    if (!dir) return "";
    bool found = false;
    while (dirent* ent = ::readdir(dir)) {
      if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
      if (st.st_dev == pst.st_dev && ent->d_ino != st.st_ino) continue;
      struct stat est {};
      if (::fstatat(parent.get(), ent->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
          est.st_dev == st.st_dev && est.st_ino == st.st_ino) {
        names.emplace_back(ent->d_name);
        found = true;
        break;
      }
    }
    ::closedir(dir);
    if (!found) return "";
    cur = std::move(parent);
    st = pst;
  }
  std::string out;
  for (auto it = names.rbegin(); it != names.rend(); ++it) out += "/" + *it;
  return out.empty() ? "/" : out;
}

// readlink of a /proc link, with the walk above for directories whose path
// is longer than a page. False with errno on failure.
bool proc_link(const char* path, std::string& out) {
  if (read_link(path, out)) return true;
  if (errno != ENAMETOOLONG) return false;
  out = long_dir_path(path);
  if (!out.empty()) return true;
  errno = ENAMETOOLONG;
  return false;
}

// A path the tracer named for an event, owning its bytes.
struct Named {
  std::string path;
  uint8_t flags = 0;   // BS_SF_*
  uint16_t rflags = 0;  // BS_RF_DIR
  uint32_t magic = 0;
  uint64_t ino = 0, mnt = 0;
  KernelPath view() const { return KernelPath{path, flags}; }
};

// A string in the tracee's memory, read page by page up to its NUL.
struct UserString {
  std::string text;
  bool present = false;  // the pointer was not NULL
  uint8_t flags = 0;     // BS_SF_FAULT, BS_SF_TRUNCATED
};

// Reads n bytes of the tracee's memory at addr. process_vm_readv first;
// what it cannot read the kernel still could (a page mapped write-only:
// the tracee's syscall reads it, a remote read without FOLL_FORCE does not),
// so then /proc/TID/mem, which reads as the tracer may. Returns bytes read.
ssize_t read_remote(pid_t tid, uint64_t addr, void* buf, size_t n) {
  iovec local{buf, n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  ssize_t got = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
  if (got > 0) return got;
  char mem[64];
  std::snprintf(mem, sizeof mem, "/proc/%d/mem", static_cast<int>(tid));
  UniqueFd fd(::open(mem, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return -1;
  return ::pread(fd.get(), buf, n, static_cast<off_t>(addr));
}

void read_user_string(pid_t tid, uint64_t addr, size_t max, UserString& out) {
  out.text.clear();
  out.flags = 0;
  out.present = addr != 0;
  if (!addr) return;
  char buf[4096];
  size_t want = 256;  // most paths are short: do not copy a page for them
  while (out.text.size() < max) {
    size_t to_page_end = 4096 - (addr & 4095);
    size_t chunk = std::min({want, to_page_end, max - out.text.size()});
    ssize_t n = read_remote(tid, addr, buf, chunk);
    if (n <= 0) {
      out.flags |= BS_SF_FAULT;
      return;
    }
    const void* nul = std::memchr(buf, 0, static_cast<size_t>(n));
    if (nul) {
      out.text.append(buf, static_cast<const char*>(nul) - buf);
      return;
    }
    out.text.append(buf, static_cast<size_t>(n));
    addr += static_cast<uint64_t>(n);
    want = sizeof buf;
  }
  out.flags |= BS_SF_TRUNCATED;
}

// The socket address of a connect, bind or send (bs_sc_desc's
// BS_DESC_SOCKADDR / BS_DESC_MSGHDR), as raw bytes. false: there is none
// (a send on a connected socket), nothing to report.
bool read_sockaddr(pid_t tid, const bs_sc_desc& d, const uint64_t* args, UserString& out) {
  out = UserString{};
  uint64_t addr = args[d.path1 - 1u];
  uint64_t len = d.path2 ? args[d.path2 - 1u] : 0;
  if ((d.desc_flags & BS_DESC_MSGHDR) && addr) {
    struct {
      uint64_t name;
      uint32_t namelen;
    } mh{};
    if (read_remote(tid, addr, &mh, sizeof mh) != sizeof mh) mh = {};
    addr = mh.name;
    len = mh.namelen;
  }
  if (!addr || !len) return false;
  out.present = true;
  out.text.resize(std::min<uint64_t>(len, BS_SOCKADDR_MAX));
  if (read_remote(tid, addr, out.text.data(), out.text.size()) != static_cast<ssize_t>(out.text.size())) {
    out.text.clear();
    out.flags = BS_SF_FAULT;
  }
  return true;
}

struct Pending {
  const SyscallSpec* spec = nullptr;
  std::array<uint64_t, 6> args{};
  uint64_t flags = 0;
  UserString path1, path2;
  int created = -1;  // open with O_CREAT: 1 if the name did not exist at entry
};

struct Thread {
  pid_t tgid = 0;
  bool in_syscall = false;  // resumed with PTRACE_SYSCALL, awaiting the exit stop
  bool fs_changing = false;  // ...of a call that changes a cwd, root or namespace
  uint64_t identity_epoch = 0;  // epoch_ when same_identity was last found
  bool same_identity = false;   // credentials, user namespace, root: the tracer's
  bool held = false;        // first stop seen; waiting for its creator's event
  bool announced = false;   // its creator's event was handled
  Pending pending;
  uint64_t fs_gen = 0;      // gen_ when cwd/root were last read
  std::string cwd, root = "/";  // as last read
  std::string cwd_sent, root_sent = "/";  // as the process tree has them
  uint64_t last_dir_ino = 0, last_dir_mnt = 0;  // getdents: one record per listing
};

struct Proc {
  ProcessKey key;
  pid_t parent = 0;       // creator's tgid, 0 for the top process
  std::string start_cwd;  // read when it was first seen
  UniqueFd cwd;           // the cwd of thread cwd_tid, as of generation cwd_gen
  pid_t cwd_tid = 0;
  uint64_t cwd_gen = 0;
  bool cwd_plain = false;  // on_plain_fs(cwd)
};

// The lines of /proc/PID/status that decide what a lookup may see.
std::string identity_of(const char* status_path) {
  auto status = read_file(status_path);
  if (!status) return "";
  std::string out;
  for (const char* field : {"\nUid:", "\nGid:", "\nGroups:", "\nCapEff:"}) {
    size_t at = status->find(field);
    if (at == std::string::npos) return "";
    size_t end = status->find('\n', at + 1);
    out.append(*status, at, end == std::string::npos ? std::string::npos : end - at);
  }
  return out;
}

// Which file system object a root is, as a string to compare.
std::string root_identity(const char* path) {
  struct statx sx {};
  if (::statx(AT_FDCWD, path, 0, STATX_INO | STATX_MNT_ID, &sx) != 0) return "";
  return std::to_string(sx.stx_dev_major) + ":" + std::to_string(sx.stx_dev_minor) + ":" +
         std::to_string(sx.stx_ino) + ":" + std::to_string(sx.stx_mnt_id);
}

class PtraceSource final : public EventSource {
 public:
  PtraceSource() {
    for (const SyscallSpec& s : file_syscalls()) {
      if (s.nr >= 0 && s.nr < static_cast<long>(table_.size())) table_[s.nr] = &s;
    }
    const char* knob = std::getenv("BSANDBOX_PTRACE_ANSWER");
    answer_ = can_skip_syscalls() && !(knob && std::strcmp(knob, "0") == 0);
    if (answer_) {
      std::string ns;
      self_identity_ = identity_of("/proc/self/status");
      if (read_link("/proc/self/ns/user", ns)) self_identity_ += "\n" + ns;
      self_identity_ += "\n" + root_identity("/");
    }
  }

  std::string_view name() const override { return "ptrace"; }
  int wait_fd() const override { return -1; }
  size_t drain(EventSink&) override { return 0; }
  Result<std::vector<sock_filter>> child_filter() override {
    std::vector<long> watched(std::begin(kCredCalls), std::end(kCredCalls));
    watched.insert(watched.end(), std::begin(kNamespaceCalls), std::end(kNamespaceCalls));
    return file_syscall_trace_filter(watched);
  }

  SourceHealth health() override {
    SourceHealth h = health_;
    if (unreadable_)
      h.problems.push_back(std::to_string(unreadable_) +
                           " stopped threads could not be inspected (killed while stopped?)");
    h.detail = std::to_string(answered_) + " of " + std::to_string(file_calls_) +
               " file syscalls answered at the seccomp stop" +
               (answer_ ? "" : " (answering is off)");
    return h;
  }

  Result<void> trace_root(pid_t pid) override {
    if (::ptrace(PTRACE_SEIZE, pid, nullptr, kOptions) != 0) {
      int e = errno;
      if (e == EPERM)
        return fail("ptrace backend: not permitted to trace the command (a security module or "
                    "seccomp policy forbids ptrace here)");
      return fail_errno("ptrace backend: PTRACE_SEIZE", e);
    }
    Proc& p = procs_[pid];
    p.key = ProcessKey{static_cast<uint32_t>(pid), Clocks::boot_now()};
    Thread& t = threads_[pid];
    t.tgid = pid;
    t.announced = true;
    return {};
  }

  bool on_wait(pid_t pid, int status, EventSink& sink) override {
    sink_ = &sink;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      on_death(pid, status);
      return false;
    }
    if (!WIFSTOPPED(status)) return true;
    on_stop(pid, status);
    return true;
  }

 private:
  void emit(const Event& e) {
    ++health_.delivered;
    sink_->on_event(e);
  }

  void resume(pid_t tid, int sig = 0) {
    auto it = threads_.find(tid);
    bool in_syscall = it != threads_.end() && it->second.in_syscall;
    ::ptrace(in_syscall ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, sig);
  }

  // The stopped thread's syscall, if the stop is the kind expected.
  bool syscall_info(pid_t tid, uint8_t op, __ptrace_syscall_info& info) {
    if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info) > 0 && info.op == op) return true;
    ++unreadable_;
    return false;
  }

  Thread& known(pid_t tid);
  void announce(pid_t child, pid_t creator);
  void on_stop(pid_t tid, int status);
  void on_death(pid_t tid, int status);
  void on_seccomp(pid_t tid, Thread& t);
  void on_syscall_exit(pid_t tid, Thread& t);
  void on_exec(pid_t tid);
  void end_fs_change(Thread& t);
  void erase_threads(pid_t tgid);
  bool same_identity(pid_t tid, Thread& t);
  int cwd_fd(pid_t tid, Thread& t);
  std::optional<int64_t> try_answer(pid_t tid, Thread& t);
  bool file_event(pid_t tid, Thread& t, int64_t ret, FileEvent& e);

  bool describe(pid_t tid, const char* what, long n, Named& out, bool info);
  uint32_t magic_of(uint64_t mnt, const char* path);
  void refresh_fs(pid_t tid, Thread& t);
  void attach_fs(pid_t tid, Thread& t, EventBase& e, bool need_cwd, bool need_root);
  int name_exists(pid_t tid, int dirfd, const std::string& name, bool follow);
  std::string script_interp(pid_t tid, const std::string& filename);
  std::optional<Named> mapping_at(pid_t tid, uint64_t ip, const std::string& exe);

  std::array<const SyscallSpec*, BS_SC_TABLE_SIZE> table_{};
  std::unordered_map<pid_t, Thread> threads_;
  std::unordered_map<pid_t, Proc> procs_;
  std::unordered_map<uint64_t, uint32_t> magic_by_mnt_;
  uint64_t gen_ = 1;
  // Answering lookups in the tracer (lookup_answer.h): on unless the
  // platform cannot skip syscalls or BSANDBOX_PTRACE_ANSWER=0.
  bool answer_ = false;
  std::string self_identity_;
  uint64_t epoch_ = 1;       // bumped when any thread's identity may have changed
  int fs_in_flight_ = 0;     // threads inside a call that changes cwd, root or namespace
  uint64_t answered_ = 0, file_calls_ = 0;
  EventSink* sink_ = nullptr;
  SourceHealth health_;
  uint64_t unreadable_ = 0;
  // Scratch for one event at a time (events are views).
  Named dir1_, dir2_, result_, exe_, ldso_;
  std::string argv_, filename_, interp_;
};

// The thread for tid, registering it (and its process) at first sight.
Thread& PtraceSource::known(pid_t tid) {
  auto it = threads_.find(tid);
  if (it != threads_.end()) return it->second;
  Thread& t = threads_[tid];
  t.tgid = tid;
  pid_t ppid = 0;
  if (auto status = read_file(ProcPath(tid, "status").c_str())) {
    auto field = [&](const char* name) -> pid_t {
      size_t at = status->find(name);
      return at == std::string::npos ? 0 : static_cast<pid_t>(std::atol(status->c_str() + at + std::strlen(name)));
    };
    if (pid_t tgid = field("\nTgid:")) t.tgid = tgid;
    ppid = field("\nPPid:");
  }
  if (!procs_.count(t.tgid)) {
    Proc& p = procs_[t.tgid];
    p.key = ProcessKey{static_cast<uint32_t>(t.tgid), Clocks::boot_now()};
    p.parent = ppid;
    proc_link(ProcPath(t.tgid, "cwd").c_str(), p.start_cwd);
  }
  return t;
}

// The creator's fork/clone event for child: send the fork event (for a new
// process) and let the child go if it is already waiting.
void PtraceSource::announce(pid_t child, pid_t creator_tgid) {
  Thread& t = known(child);
  if (t.announced) return;
  t.announced = true;
  auto p = procs_.find(child);
  if (t.tgid == child && p != procs_.end()) {
    auto parent = procs_.find(creator_tgid);
    if (parent != procs_.end()) p->second.parent = creator_tgid;
    ForkEvent e;
    e.proc = p->second.key;
    e.tid = static_cast<uint32_t>(child);
    e.time = p->second.key.start;
    if (parent != procs_.end()) e.parent = parent->second.key;
    t.cwd = t.cwd_sent = p->second.start_cwd;
    t.fs_gen = gen_;
    if (!t.cwd.empty()) e.cwd = KernelPath{t.cwd_sent, 0};
    emit(e);
  }
  if (t.held) {
    t.held = false;
    resume(child);
  }
}

void PtraceSource::on_stop(pid_t tid, int status) {
  Thread& t = known(tid);
  int sig = WSTOPSIG(status);
  int event = status >> 16;
  switch (event) {
    case PTRACE_EVENT_SECCOMP:
      on_seccomp(tid, t);
      return;
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
    case PTRACE_EVENT_CLONE: {
      unsigned long child = 0;
      pid_t tgid = t.tgid;
      if (::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child) == 0)
        announce(static_cast<pid_t>(child), tgid);
      resume(tid);
      return;
    }
    case PTRACE_EVENT_EXEC:
      on_exec(tid);
      return;
    case PTRACE_EVENT_STOP:
      if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
        // Group-stop: stay stopped, but let SIGCONT (and our next report) in.
        ::ptrace(PTRACE_LISTEN, tid, nullptr, 0);
        return;
      }
      if (!t.announced) {  // a new task's first stop: wait for its creator's event
        t.held = true;
        return;
      }
      resume(tid);
      return;
    case 0:
      if (sig == (SIGTRAP | 0x80)) {
        on_syscall_exit(tid, t);
        return;
      }
      resume(tid, sig);  // signal-delivery-stop: deliver it
      return;
    default:
      resume(tid);
      return;
  }
}

void PtraceSource::on_death(pid_t tid, int status) {
  auto it = threads_.find(tid);
  if (it == threads_.end()) return;
  pid_t tgid = it->second.tgid;
  end_fs_change(it->second);
  threads_.erase(it);
  if (tid != tgid) return;
  auto p = procs_.find(tgid);
  if (p == procs_.end()) return;
  ExitEvent e;
  e.proc = p->second.key;
  e.tid = static_cast<uint32_t>(tid);
  e.time = Clocks::boot_now();
  e.wait_status = status;
  emit(e);
  // The leader is reported last: its threads are gone. Children it created
  // whose fork event never came (it was killed mid-fork) are let go.
  std::vector<pid_t> orphans;
  for (auto& [other, th] : threads_) {
    if (th.tgid == tgid) continue;
    auto op = procs_.find(th.tgid);
    if (!th.announced && op != procs_.end() && op->second.parent == tgid) orphans.push_back(other);
  }
  erase_threads(tgid);
  procs_.erase(p);
  for (pid_t o : orphans) announce(o, 0);
}

void PtraceSource::on_seccomp(pid_t tid, Thread& t) {
  __ptrace_syscall_info info{};
  if (!syscall_info(tid, PTRACE_SYSCALL_INFO_SECCOMP, info)) {
    resume(tid);
    return;
  }
  uint64_t nr = info.seccomp.nr;
  bool native = info.arch == kNativeArch;
  if (native && one_of(kCredCalls, nr)) {
    t.identity_epoch = 0;  // looked at again before the next answer
    resume(tid);
    return;
  }
  if (native && one_of(kNamespaceCalls, nr)) {
    t.identity_epoch = 0;
    t.pending.spec = nullptr;
    t.fs_changing = true;  // no answers anywhere until it has returned
    ++fs_in_flight_;
    t.in_syscall = true;
    resume(tid);
    return;
  }
  const SyscallSpec* spec = native && nr < table_.size() ? table_[nr] : nullptr;
  if (!spec) {  // another ABI (a 32-bit program, reported by exec) or not ours
    resume(tid);
    return;
  }
  ++file_calls_;
  Pending& p = t.pending;
  p.spec = spec;
  const bs_sc_desc& d = spec->desc;
  for (size_t i = 0; i < 6; ++i) p.args[i] = info.seccomp.args[i];
  auto arg = [&](uint8_t index) { return p.args[index - 1u]; };
  p.flags = 0;
  if (d.flags) {
    p.flags = arg(d.flags);
    if (d.desc_flags & BS_DESC_FLAGS_IN_OPEN_HOW) {
      uint64_t how = 0;
      if (read_remote(tid, arg(d.flags), &how, sizeof how) != sizeof how) how = 0;
      p.flags = how;
    }
  }
  if (d.desc_flags & (BS_DESC_SOCKADDR | BS_DESC_MSGHDR)) {
    if (!read_sockaddr(tid, d, p.args.data(), p.path1)) {
      resume(tid);
      return;
    }
    p.path2 = UserString{};
    p.created = -1;
    t.in_syscall = true;
    resume(tid);
    return;
  } else if (d.path1) {
    read_user_string(tid, arg(d.path1), BS_USER_PATH_MAX, p.path1);
  } else {
    p.path1 = UserString{};
  }
  if ((d.desc_flags & BS_DESC_SKIP_EMPTY_PATH) && p.path1.present && p.path1.text.empty() &&
      !p.path1.flags) {
    resume(tid);  // fstat() in disguise
    return;
  }
  if (d.path2) {
    read_user_string(tid, arg(d.path2), BS_USER_PATH_MAX, p.path2);
  } else {
    p.path2 = UserString{};
  }
  p.created = -1;
  bool opens = d.resolve == BS_RESOLVE_RETFD && d.sys != BS_SYS_OPEN_BY_HANDLE_AT;
  uint64_t oflags = d.sys == BS_SYS_CREAT ? (O_CREAT | O_WRONLY | O_TRUNC) : p.flags;
  if (opens && (oflags & O_CREAT) && (oflags & O_TMPFILE) != O_TMPFILE && !(oflags & O_EXCL) &&
      p.path1.present && !p.path1.flags) {
    int dirfd = d.dirfd1 ? static_cast<int>(arg(d.dirfd1)) : AT_FDCWD;
    int exists = name_exists(tid, dirfd, p.path1.text, !(oflags & O_NOFOLLOW));
    if (exists >= 0) p.created = exists ? 0 : 1;
  }
  if (auto ret = try_answer(tid, t)) {
    FileEvent e;
    bool send = file_event(tid, t, *ret, e);
    resume(tid);  // past the skipped syscall, with its result
    if (send) emit(e);
    return;
  }
  if (d.resolve == BS_RESOLVE_PWD || d.resolve == BS_RESOLVE_ROOT) {
    t.fs_changing = true;
    ++fs_in_flight_;
  }
  t.in_syscall = true;
  resume(tid);
}

void PtraceSource::on_syscall_exit(pid_t tid, Thread& t) {
  if (!t.in_syscall) {
    resume(tid);
    return;
  }
  t.in_syscall = false;
  __ptrace_syscall_info info{};
  if (!t.pending.spec || !syscall_info(tid, PTRACE_SYSCALL_INFO_EXIT, info)) {
    end_fs_change(t);
    resume(tid);
    return;
  }
  int64_t ret = info.exit.rval;
  bs_sys sys = static_cast<bs_sys>(t.pending.spec->desc.sys);
  bool exec_ok = (sys == BS_SYS_EXECVE || sys == BS_SYS_EXECVEAT) && ret == 0;
  FileEvent e;
  bool send = !is_restart(ret) && !exec_ok && file_event(tid, t, ret, e);
  end_fs_change(t);
  resume(tid);  // the event is handled while the tracee runs on
  if (send) emit(e);
}

// The event for the thread's pending syscall, named while it is stopped
// (false: nothing to report).
bool PtraceSource::file_event(pid_t tid, Thread& t, int64_t ret, FileEvent& e) {
  const Pending& p = t.pending;
  const bs_sc_desc& d = p.spec->desc;
  auto arg = [&](uint8_t index) { return p.args[index - 1u]; };
  e.proc = procs_[t.tgid].key;
  e.tid = static_cast<uint32_t>(tid);
  e.sys = static_cast<bs_sys>(d.sys);
  e.ret = ret;
  e.flags = p.flags;
  e.dirfd1 = d.dirfd1 ? static_cast<int32_t>(arg(d.dirfd1)) : AT_FDCWD;
  e.dirfd2 = d.dirfd2 ? static_cast<int32_t>(arg(d.dirfd2)) : AT_FDCWD;
  int fd = d.fd ? static_cast<int>(arg(d.fd)) : -1;

  if (p.path1.present) e.path1 = KernelPath{p.path1.text, p.path1.flags};
  if (p.path2.present) e.path2 = KernelPath{p.path2.text, p.path2.flags};
  char c1 = p.path1.present && !p.path1.text.empty() ? p.path1.text[0] : 0;
  char c2 = p.path2.present && !p.path2.text.empty() ? p.path2.text[0] : 0;
  bool text2 = d.desc_flags & BS_DESC_PATH2_IS_TEXT;
  bool rel1 = d.path1 && c1 != '/';
  bool rel2 = p.path2.present && c2 != '/' && !text2;
  bool abs1 = p.path1.present && c1 == '/';
  bool abs2 = p.path2.present && c2 == '/' && !text2;
  if (rel1 && e.dirfd1 != AT_FDCWD && describe(tid, "fd/", e.dirfd1, dir1_, false))
    e.dir1 = dir1_.view();
  if (rel2 && e.dirfd2 != AT_FDCWD && describe(tid, "fd/", e.dirfd2, dir2_, false))
    e.dir2 = dir2_.view();
  bool need_cwd = (rel1 && p.path1.present && e.dirfd1 == AT_FDCWD) ||
                  (rel2 && e.dirfd2 == AT_FDCWD);
  if (need_cwd || abs1 || abs2) attach_fs(tid, t, e, need_cwd, abs1 || abs2);

  bool described = false;
  if (d.resolve == BS_RESOLVE_RETFD && ret >= 0) {
    described = describe(tid, "fd/", static_cast<long>(ret), result_, true);
    uint64_t oflags = d.sys == BS_SYS_CREAT ? O_CREAT : p.flags;
    if (described && (oflags & O_CREAT) && (oflags & O_TMPFILE) != O_TMPFILE &&
        ((oflags & O_EXCL) || p.created == 1))
      e.result_flags |= BS_RF_CREATED;
  } else if (d.resolve == BS_RESOLVE_FDARG && fd >= 0) {
    described = describe(tid, "fd/", fd, result_, true);
    if (described && (d.desc_flags & BS_DESC_ONCE_PER_FILE)) {
      if (result_.ino == t.last_dir_ino && result_.mnt == t.last_dir_mnt) return false;
      t.last_dir_ino = result_.ino;
      t.last_dir_mnt = result_.mnt;
    }
  } else if ((d.resolve == BS_RESOLVE_PWD || d.resolve == BS_RESOLVE_ROOT) && ret == 0) {
    described = describe(tid, d.resolve == BS_RESOLVE_PWD ? "cwd" : "root", -1, result_, false);
    result_.rflags = BS_RF_DIR;
  }
  if (described) {
    e.result = result_.view();
    e.result_flags |= BS_RF_RESOLVED | result_.rflags;
    e.result_magic = result_.magic;
  }
  if ((d.desc_flags & BS_DESC_BUMP_GEN) && ret == 0) ++gen_;
  return true;
}

void PtraceSource::on_exec(pid_t tid) {
  unsigned long former = static_cast<unsigned long>(tid);
  ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
  pid_t old_tid = static_cast<pid_t>(former);
  if (old_tid != tid) {
    // A non-leader thread exec'd: it now has the leader's tid, and every
    // other thread of the process is gone.
    auto moved = threads_.find(old_tid);
    if (moved != threads_.end()) {
      Thread keep = std::move(moved->second);
      moved->second.fs_changing = false;
      erase_threads(keep.tgid);
      threads_[tid] = std::move(keep);
    }
  }
  Thread& t = known(tid);
  t.identity_epoch = 0;  // a set-user-ID program, file capabilities
  Proc& proc = procs_[t.tgid];
  __ptrace_syscall_info info{};
  ::ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info);

  ExecEvent e;
  e.proc = proc.key;
  e.tid = static_cast<uint32_t>(tid);
  e.old_tid = static_cast<uint32_t>(old_tid);
  e.time = Clocks::boot_now();
  e.elf32 = info.arch != kNativeArch;

  // The name execve was given, as the kernel spells it (execveat relative
  // to a dirfd becomes /dev/fd/N/NAME).
  const Pending& p = t.pending;
  filename_.clear();
  if (p.spec && p.path1.present) {
    filename_ = p.path1.text;
    int dirfd = p.spec->desc.dirfd1 ? static_cast<int>(p.args[p.spec->desc.dirfd1 - 1u]) : AT_FDCWD;
    if (dirfd != AT_FDCWD && (filename_.empty() || filename_[0] != '/'))
      filename_ = "/dev/fd/" + std::to_string(dirfd) + (filename_.empty() ? "" : "/" + filename_);
  }
  bool have_exe = describe(tid, "exe", -1, exe_, true);
  if (filename_.empty() && have_exe) filename_ = exe_.path;
  e.filename = filename_;
  interp_ = script_interp(tid, filename_);
  e.interp = interp_.empty() ? e.filename : std::string_view(interp_);
  if (have_exe) e.exe = exe_.view();
  if (have_exe) {
    if (auto ld = mapping_at(tid, info.instruction_pointer, exe_.path)) {
      ldso_ = std::move(*ld);
      e.ldso = ldso_.view();
    }
  }
  auto args = read_file(ProcPath(tid, "cmdline").c_str());
  argv_ = args ? std::move(*args) : std::string();
  e.argv = argv_;
  bool relative = !filename_.empty() && filename_[0] != '/';
  attach_fs(tid, t, e, relative || !interp_.empty(), !relative);
  resume(tid);  // still in execve: its exit stop comes next and is skipped
  emit(e);
}

// The end (or the end by death) of a call that changes a cwd, root or
// namespace: names are read afresh and identities checked again.
void PtraceSource::end_fs_change(Thread& t) {
  if (!t.fs_changing) return;
  t.fs_changing = false;
  --fs_in_flight_;
  ++gen_;
  ++epoch_;
}

void PtraceSource::erase_threads(pid_t tgid) {
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->second.tgid != tgid) {
      ++it;
      continue;
    }
    end_fs_change(it->second);
    it = threads_.erase(it);
  }
}

// Whether the thread has the tracer's credentials, user namespace and
// root, so that a lookup made by the tracer is the lookup it would make.
bool PtraceSource::same_identity(pid_t tid, Thread& t) {
  if (t.identity_epoch == epoch_) return t.same_identity;
  std::string ns, id = identity_of(ProcPath(tid, "status").c_str());
  if (read_link(ProcPath(tid, "ns/user").c_str(), ns)) id += "\n" + ns;
  id += "\n" + root_identity(ProcPath(tid, "root").c_str());
  t.same_identity = !self_identity_.empty() && id == self_identity_;
  t.identity_epoch = epoch_;
  return t.same_identity;
}

// An fd for the thread's cwd, kept per process until a cwd may change; -1
// if it is not on a plain file system (see lookup_answer.h).
int PtraceSource::cwd_fd(pid_t tid, Thread& t) {
  Proc& p = procs_[t.tgid];
  if (!p.cwd.valid() || p.cwd_tid != tid || p.cwd_gen != gen_) {
    p.cwd = UniqueFd(::open(ProcPath(tid, "cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    p.cwd_tid = tid;
    p.cwd_gen = gen_;
    p.cwd_plain = p.cwd.valid() && on_plain_fs(p.cwd.get());
  }
  return p.cwd_plain ? p.cwd.get() : -1;
}

// The pending call's result, if the tracer could answer it (the tracee
// then skips the call); nullopt if the tracee must make it.
std::optional<int64_t> PtraceSource::try_answer(pid_t tid, Thread& t) {
  const Pending& p = t.pending;
  const bs_sc_desc& d = p.spec->desc;
  bs_sys sys = static_cast<bs_sys>(d.sys);
  if (!answer_ || fs_in_flight_ || !answerable(sys, p.flags) || !p.path1.present ||
      p.path1.flags || p.path1.text.empty() || !same_identity(tid, t))
    return std::nullopt;
  LookupCall call;
  call.sys = sys;
  call.path = p.path1.text;
  call.args = p.args;
  UniqueFd dir;
  if (call.path[0] != '/') {
    int dirfd = d.dirfd1 ? static_cast<int>(p.args[d.dirfd1 - 1u]) : AT_FDCWD;
    if (dirfd == AT_FDCWD) {
      call.base = cwd_fd(tid, t);
      call.base_plain = true;
    } else {
      dir = UniqueFd(::open(ProcPath(tid, "fd/", dirfd).c_str(), O_PATH | O_CLOEXEC));
      call.base = dir.get();
    }
    if (call.base < 0) return std::nullopt;
  }
  auto ret = answer_lookup(tid, call);
  if (!ret || !skip_syscall(tid, *ret)) return std::nullopt;
  ++answered_;
  return ret;
}

// What /proc/TID/WHAT[N] names. info: also whether it is a directory, its
// file system, and whether it was deleted (the kernel appends " (deleted)").
bool PtraceSource::describe(pid_t tid, const char* what, long n, Named& out, bool info) {
  ProcPath path = n >= 0 ? ProcPath(tid, what, n) : ProcPath(tid, what);
  out.flags = 0;
  out.rflags = 0;
  out.magic = 0;
  out.ino = out.mnt = 0;
  if (!proc_link(path.c_str(), out.path)) {
    if (errno != ENAMETOOLONG) return false;
    out.path.clear();
    out.flags = BS_SF_TRUNCATED;  // longer than a page: /proc cannot say
    return true;
  }
  if (out.path.empty() || out.path[0] != '/') {
    out.flags = BS_SF_UNREACHABLE;  // pipe:[..], socket:[..], anon_inode:..
    return true;
  }
  bool maybe_deleted = ends_with(out.path, " (deleted)");
  if (!info && !maybe_deleted) return true;
  struct statx sx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_TYPE | STATX_NLINK | STATX_INO | STATX_MNT_ID,
              &sx) != 0)
    return true;
  if (S_ISDIR(sx.stx_mode)) out.rflags |= BS_RF_DIR;
  if (maybe_deleted && sx.stx_nlink == 0) {
    out.path.resize(out.path.size() - std::strlen(" (deleted)"));
    out.flags |= BS_SF_DELETED;
  }
  out.ino = sx.stx_ino;
  out.mnt = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : (uint64_t{sx.stx_dev_major} << 32 | sx.stx_dev_minor);
  out.magic = magic_of((sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0, path.c_str());
  return true;
}

uint32_t PtraceSource::magic_of(uint64_t mnt, const char* path) {
  if (mnt) {
    auto it = magic_by_mnt_.find(mnt);
    if (it != magic_by_mnt_.end()) return it->second;
  }
  struct statfs fs {};
  if (::statfs(path, &fs) != 0) return 0;
  uint32_t magic = static_cast<uint32_t>(fs.f_type);
  if (mnt) magic_by_mnt_[mnt] = magic;
  return magic;
}

void PtraceSource::refresh_fs(pid_t tid, Thread& t) {
  if (t.fs_gen == gen_) return;
  if (!proc_link(ProcPath(tid, "cwd").c_str(), t.cwd)) t.cwd.clear();
  if (!proc_link(ProcPath(tid, "root").c_str(), t.root)) t.root = "/";
  t.fs_gen = gen_;
}

// Sends the thread's cwd (and root) with e when the process tree's copy is
// out of date, as the kernel side does.
void PtraceSource::attach_fs(pid_t tid, Thread& t, EventBase& e, bool need_cwd, bool need_root) {
  refresh_fs(tid, t);
  if (need_cwd && t.cwd != t.cwd_sent) {
    t.cwd_sent = t.cwd;
    e.cwd = KernelPath{t.cwd_sent, static_cast<uint8_t>(t.cwd.empty() ? BS_SF_TRUNCATED : 0)};
  }
  if ((need_root || need_cwd) && t.root != t.root_sent) {
    t.root_sent = t.root;
    e.root = KernelPath{t.root_sent, 0};
  }
}

// Whether name exists for the tracee (1), not (0), or unknown (-1): looked up
// through its own cwd, root or dirfd in /proc, so it resolves as it would.
int PtraceSource::name_exists(pid_t tid, int dirfd, const std::string& name, bool follow) {
  bool absolute = !name.empty() && name[0] == '/';
  ProcPath base = absolute ? ProcPath(tid, "root") : dirfd == AT_FDCWD ? ProcPath(tid, "cwd")
                                                                        : ProcPath(tid, "fd/", dirfd);
  UniqueFd dir(::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return -1;
  const char* rel = absolute ? name.c_str() + 1 : name.c_str();
  if (*rel == '\0') rel = ".";
  struct stat st {};
  if (::fstatat(dir.get(), rel, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0) return 1;
  return errno == ENOENT ? 0 : -1;
}

// The interpreter a #! script names (as named), or "" if filename is not a
// script. Nested scripts end at the last interpreter, like the kernel's.
std::string PtraceSource::script_interp(pid_t tid, const std::string& filename) {
  std::string current = filename, interp;
  for (int depth = 0; depth < 4 && !current.empty(); ++depth) {
    std::string path = current[0] == '/' ? std::string(ProcPath(tid, "root").c_str()) + current
                                         : std::string(ProcPath(tid, "cwd").c_str()) + "/" + current;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) break;
    char head[256];
    ssize_t n = ::read(fd.get(), head, sizeof head);
    if (n < 3 || head[0] != '#' || head[1] != '!') break;
    std::string_view line(head + 2, static_cast<size_t>(n - 2));
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string_view::npos) break;
    size_t e = line.find_first_of(" \t\n", b);
    std::string next(line.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (next.empty()) break;
    interp = current = next;
  }
  return interp;
}

// The file mapped at ip in the new program (the ELF interpreter, where
// execution starts), unless that is the program itself (a static binary).
std::optional<Named> PtraceSource::mapping_at(pid_t tid, uint64_t ip, const std::string& exe) {
  auto maps = read_file(ProcPath(tid, "maps").c_str());
  if (!maps) return std::nullopt;
  size_t at = 0;
  while (at < maps->size()) {
    size_t end = maps->find('\n', at);
    if (end == std::string::npos) end = maps->size();
    std::string_view line(maps->data() + at, end - at);
    at = end + 1;
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(std::string(line.substr(0, 40)).c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    if (ip < lo || ip >= hi) continue;
    size_t slash = line.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    Named out;
    out.path = std::string(line.substr(slash));
    if (ends_with(out.path, " (deleted)")) {
      out.path.resize(out.path.size() - std::strlen(" (deleted)"));
      out.flags |= BS_SF_DELETED;
    }
    if (out.path == exe) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<EventSource>> open_ptrace_backend() {
  return std::unique_ptr<EventSource>(std::make_unique<PtraceSource>());
}

}  // namespace bsandbox
