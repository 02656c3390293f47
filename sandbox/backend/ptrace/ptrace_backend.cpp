// ptrace_backend.cpp: a tracer that turns seccomp stops into Events.
//
// Per thread the tracer is in one of two states: running freely (resumed
// with PTRACE_CONT, so only seccomp stops and ptrace events stop it), or in
// a traced syscall (resumed with PTRACE_SYSCALL, so its syscall-exit stop
// reports the result). A new task is held at its first stop until the
// fork/clone event of its creator has been handled, so its fork event is
// sent before anything it does.
//
// What the eBPF backend reads from kernel memory, this one reads while the
// tracee is stopped: a file syscall's arguments and names (file_call.h,
// tracee_memory.h), the path of an fd, of the cwd and root (proc_reader.h),
// what an exec started (exec_image.h). The cwd is re-read only after a
// chdir, fchdir, chroot or rename anywhere in the tree could have changed
// it (the same generation scheme as the kernel side). Lookups may be
// answered by the tracer itself at the seccomp stop (lookup_answer.h).
#include "sandbox/backend/ptrace/ptrace_backend.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/backend/inproc/shared_area.h"
#include "sandbox/backend/ptrace/exec_image.h"
#include "sandbox/backend/ptrace/file_call.h"
#include "sandbox/backend/ptrace/lookup_answer.h"
#include "sandbox/backend/ptrace/proc_reader.h"
#include "sandbox/backend/ptrace/tracee_memory.h"
#include "sandbox/backend/seccomp_filter.h"
#include "sandbox/backend/syscall_table.h"
#include "sandbox/base/clocks.h"
#include "sandbox/base/io.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/core/file_access.h"

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

// How many pid namespaces deep a task is: the fields of its NSpid line.
size_t pid_depth(std::string_view status) {
  auto v = proc_field(status, "NSpid");
  if (!v) return 1;
  size_t n = 0;
  bool in_word = false;
  for (char c : *v) {
    bool space = c == ' ' || c == '\t';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

bool one_of(std::span<const long> list, uint64_t nr) {
  return std::find(list.begin(), list.end(), static_cast<long>(nr)) != list.end();
}

// Syscall returns that mean "interrupted, will be restarted": the restarted
// call stops again, so this one is not reported.
bool is_restart(int64_t ret) { return ret <= -512 && ret >= -516; }

struct Thread {
  pid_t tgid = 0;
  bool in_syscall = false;  // resumed with PTRACE_SYSCALL, awaiting the exit stop
  bool fs_changing = false;  // ...of a call that changes a cwd, root or namespace
  uint64_t identity_epoch = 0;  // epoch_ when same_identity was last found
  bool same_identity = false;   // credentials, user namespace, root: the tracer's
  bool held = false;        // first stop seen; waiting for its creator's event
  bool announced = false;   // its creator's event was handled
  FileCall pending;
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
  bool runtime_mapped = false;  // inproc: ld.so opened the runtime since the last exec
};

class PtraceSource final : public EventSource {
 public:
  PtraceSource(std::optional<SharedArea> area = std::nullopt, std::string runtime = {})
      : area_(std::move(area)), runtime_(std::move(runtime)) {
    for (const SyscallSpec& s : file_syscalls()) {
      if (s.nr >= 0 && s.nr < static_cast<long>(table_.size())) table_[s.nr] = &s;
    }
    const char* knob = std::getenv("BSANDBOX_PTRACE_ANSWER");
    answer_ = can_skip_syscalls() && !(knob && std::strcmp(knob, "0") == 0);
    if (answer_) {
      self_identity_ = identity("/proc/self", "/");
    }
    if (auto status = read_file("/proc/self/status")) own_pid_depth_ = pid_depth(*status);
  }

  std::string_view name() const override { return area_ ? "inproc" : "ptrace"; }
  int wait_fd() const override { return -1; }
  // The runtime's records, on every turn of the supervisor's loop: it
  // drains before it hands over a wait report, so a thread's records come
  // before whatever stopped it.
  size_t drain(EventSink& sink) override {
    if (!area_) return 0;
    sink_ = &sink;
    return area_->drain([this](const bs_ip_file& r) { on_record(r); });
  }
  Result<std::vector<sock_filter>> child_filter() override {
    std::vector<long> watched(std::begin(kCredCalls), std::end(kCredCalls));
    watched.insert(watched.end(), std::begin(kNamespaceCalls), std::end(kNamespaceCalls));
    auto filter = file_syscall_trace_filter(watched);
    if (!area_ || !filter) return filter;
    return allow_from_gate(*filter, BS_IP_GATE_ADDR, BS_IP_GATE_SIZE);
  }
  std::vector<std::string> child_environment() const override {
    if (!area_) return {};
    return {"LD_PRELOAD=" + runtime_, std::string(BS_IP_ENV) + "=" + area_->path()};
  }

  SourceHealth health() override {
    SourceHealth h = health_;
    if (unreadable_)
      h.problems.push_back(std::to_string(unreadable_) +
                           " stopped threads could not be inspected (killed while stopped?)");
    h.detail = std::to_string(answered_) + " of " + std::to_string(file_calls_) +
               " file syscalls answered at the seccomp stop" +
               (answer_ ? "" : " (answering is off)");
    if (area_) {
      const bs_ip_area& a = area_->header();
      auto count = [](const uint64_t& v) { return std::to_string(__atomic_load_n(&v, __ATOMIC_RELAXED)); };
      h.detail += "; " + std::to_string(inproc_calls_) + " recorded in process by the runtime (" + count(a.images) +
                  " programs ran it, starting in " + std::to_string(__atomic_load_n(&a.init_ns, __ATOMIC_RELAXED) / 1000000) +
                  " ms in all, " + count(a.refused) + " could not, " + count(a.fallbacks) +
                  " calls it left to the tracer); stopped here:";
      std::vector<std::pair<uint64_t, size_t>> top;
      for (size_t nr = 0; nr < traced_by_nr_.size(); ++nr)
        if (traced_by_nr_[nr]) top.emplace_back(traced_by_nr_[nr], nr);
      std::sort(top.rbegin(), top.rend());
      for (size_t i = 0; i < top.size() && i < 6; ++i)
        h.detail += std::string(i ? ", " : " ") + std::string(table_[top[i].second]->name) + " " +
                    std::to_string(top[i].first);
      if (area_->corrupt())
        h.problems.push_back(std::to_string(area_->corrupt()) + " records of the in-process runtime were malformed");
      h.corrupt += area_->corrupt();
      if (area_->abandoned())
        h.problems.push_back(std::to_string(area_->abandoned()) +
                             " threads ended with an in-process record half written (killed in a file syscall)");
      if (stray_)
        h.problems.push_back(std::to_string(stray_) + " in-process records named a thread or syscall not traced");
    }
    return h;
  }

  Result<void> trace_root(pid_t pid) override {
    // inproc: each thread stops once more as it exits, so that the last
    // records of its ring are read while its cwd and root can still be.
    long options = area_ ? kOptions | PTRACE_O_TRACEEXIT : kOptions;
    if (::ptrace(PTRACE_SEIZE, pid, nullptr, options) != 0) {
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
    if (area_) area_->mark_traced(pid);
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
  bool finish_result(const FileCall& p, Thread& t, bool described, FileEvent& e);
  bool loads_runtime(Thread& t, int64_t ret);
  void make_inert(pid_t tid);
  void on_record(const bs_ip_file& r);
  void release_ring(pid_t tid);

  bool describe(pid_t tid, const char* what, long n, Named& out, bool info) {
    return proc_.describe(tid, what, n, out, info);
  }
  void refresh_fs(pid_t tid, Thread& t);
  void attach_fs(pid_t tid, Thread& t, EventBase& e, bool need_cwd, bool need_root);

  std::array<const SyscallSpec*, BS_SC_TABLE_SIZE> table_{};
  std::unordered_map<pid_t, Thread> threads_;
  std::unordered_map<pid_t, Proc> procs_;
  ProcReader proc_;
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
  Named dir1_, dir2_, result_;
  ExecImage image_;
  // The in-process runtime's area and the runtime's path (inproc only).
  std::optional<SharedArea> area_;
  std::string runtime_;
  uint64_t inproc_calls_ = 0, stray_ = 0;
  size_t own_pid_depth_ = 0;
  std::array<uint64_t, BS_SC_TABLE_SIZE> traced_by_nr_{};  // file syscalls stopped here, by number
};

// The thread for tid, registering it (and its process) at first sight.
Thread& PtraceSource::known(pid_t tid) {
  auto it = threads_.find(tid);
  if (it != threads_.end()) return it->second;
  Thread& t = threads_[tid];
  t.tgid = tid;
  pid_t ppid = 0;
  if (auto status = read_file(ProcPath(tid, "status").c_str())) {
    TaskIds ids = task_ids(*status);
    if (ids.tgid) t.tgid = ids.tgid;
    ppid = ids.ppid;
    // In a pid namespace of its own the runtime's tids are not these.
    if (area_ && pid_depth(*status) != own_pid_depth_) make_inert(tid);
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
  if (area_) area_->mark_traced(child);
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
    case PTRACE_EVENT_EXIT:  // the supervisor drained the rings before this report
      resume(tid);
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
  release_ring(tid);
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
  ++traced_by_nr_[nr];
  if (!read_file_call(tid, *spec, info.seccomp.args, t.pending)) {
    resume(tid);
    return;
  }
  if (auto ret = try_answer(tid, t)) {
    FileEvent e;
    bool send = file_event(tid, t, *ret, e);
    resume(tid);  // past the skipped syscall, with its result
    if (send) emit(e);
    return;
  }
  if (spec->desc.resolve == BS_RESOLVE_PWD || spec->desc.resolve == BS_RESOLVE_ROOT) {
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
  // After chroot, unshare, setns or pivot_root the runtime's names would
  // no longer be the tracer's: the process leaves everything to the tracer.
  if (area_ && t.fs_changing && (!t.pending.spec || t.pending.spec->desc.resolve == BS_RESOLVE_ROOT))
    make_inert(tid);
  if (!t.pending.spec || !syscall_info(tid, PTRACE_SYSCALL_INFO_EXIT, info)) {
    end_fs_change(t);
    resume(tid);
    return;
  }
  int64_t ret = info.exit.rval;
  bs_sys sys = static_cast<bs_sys>(t.pending.spec->desc.sys);
  bool exec_ok = (sys == BS_SYS_EXECVE || sys == BS_SYS_EXECVEAT) && ret == 0;
  FileEvent e;
  bool send = !is_restart(ret) && !exec_ok && !loads_runtime(t, ret) && file_event(tid, t, ret, e);
  end_fs_change(t);
  resume(tid);  // the event is handled while the tracee runs on
  if (send) emit(e);
}

// The event for the thread's pending syscall, named while it is stopped
// (false: nothing to report).
bool PtraceSource::file_event(pid_t tid, Thread& t, int64_t ret, FileEvent& e) {
  const FileCall& p = t.pending;
  const bs_sc_desc& d = p.spec->desc;
  e.proc = procs_[t.tgid].key;
  e.tid = static_cast<uint32_t>(tid);
  NamesNeeded need = fill_file_event(p, ret, e);
  if (need.dir1 && describe(tid, "fd/", e.dirfd1, dir1_, false)) e.dir1 = dir1_.view();
  if (need.dir2 && describe(tid, "fd/", e.dirfd2, dir2_, false)) e.dir2 = dir2_.view();
  if (need.cwd || need.root) attach_fs(tid, t, e, need.cwd, need.root);
  int fd = d.fd ? static_cast<int>(p.arg(d.fd)) : -1;

  bool described = false;
  if (d.resolve == BS_RESOLVE_RETFD && ret >= 0) {
    described = describe(tid, "fd/", static_cast<long>(ret), result_, true);
  } else if (d.resolve == BS_RESOLVE_FDARG && fd >= 0) {
    described = describe(tid, "fd/", fd, result_, true);
  } else if ((d.resolve == BS_RESOLVE_PWD || d.resolve == BS_RESOLVE_ROOT) && ret == 0) {
    described = describe(tid, d.resolve == BS_RESOLVE_PWD ? "cwd" : "root", -1, result_, false);
    result_.rflags = BS_RF_DIR;
  }
  return finish_result(p, t, described, e);
}

// What the event says of the object the call reached (result_, when
// described), however it was named; false: a repeat not to report.
bool PtraceSource::finish_result(const FileCall& p, Thread& t, bool described, FileEvent& e) {
  const bs_sc_desc& d = p.spec->desc;
  if (described && d.resolve == BS_RESOLVE_RETFD && p.created_file()) e.result_flags |= BS_RF_CREATED;
  if (described && d.resolve == BS_RESOLVE_FDARG && (d.desc_flags & BS_DESC_ONCE_PER_FILE)) {
    // getdents is called until it returns 0: one listing, one record. A
    // listing that has ended (0 or an error) is forgotten, so that the next
    // one is recorded even where a deleted directory's inode number has
    // been given to the next directory listed.
    bool same = result_.ino == t.last_dir_ino && result_.mnt == t.last_dir_mnt;
    if (same && e.ret <= 0) t.last_dir_ino = t.last_dir_mnt = 0;
    if (same) return false;
    t.last_dir_ino = e.ret > 0 ? result_.ino : 0;
    t.last_dir_mnt = e.ret > 0 ? result_.mnt : 0;
  }
  if (described) {
    e.result = result_.view();
    e.result_flags |= BS_RF_RESOLVED | result_.rflags;
    e.result_magic = result_.magic;
  }
  if ((d.desc_flags & BS_DESC_BUMP_GEN) && e.ret == 0) ++gen_;
  return true;
}

// Sets the runtime's flag (inproc_abi.h) in tid's process; where the
// runtime is not mapped there is nothing to set.
void PtraceSource::make_inert(pid_t tid) {
  uint32_t one = 1;
  iovec local{&one, sizeof one};
  iovec remote{reinterpret_cast<void*>(BS_IP_FLAGS_ADDR), sizeof one};
  ::process_vm_writev(tid, &local, 1, &remote, 1, 0);
}

// Whether the pending call is ld.so opening the preloaded runtime, which
// the program never asked for: the first open of its path in each image.
bool PtraceSource::loads_runtime(Thread& t, int64_t ret) {
  const FileCall& p = t.pending;
  if (!area_ || ret < 0 || p.spec->desc.resolve != BS_RESOLVE_RETFD || !p.path1.present ||
      p.path1.text != runtime_)
    return false;
  Proc& proc = procs_[t.tgid];
  return !std::exchange(proc.runtime_mapped, true);
}

// One record of the runtime: a call it made in process, with what it read
// of the names (inproc_abi.h), turned into the event the tracer would have
// sent; an execve about to be made is kept for the exec stop to come.
void PtraceSource::on_record(const bs_ip_file& r) {
  pid_t tid = static_cast<pid_t>(r.tid);
  auto it = threads_.find(tid);
  const SyscallSpec* spec = r.nr >= 0 && static_cast<size_t>(r.nr) < table_.size() ? table_[r.nr] : nullptr;
  if (it == threads_.end() || !spec) {
    ++stray_;
    return;
  }
  Thread& t = it->second;
  std::string_view str[BS_IP_NSTR];
  const char* at = reinterpret_cast<const char*>(&r) + sizeof r;
  for (int i = 0; i < BS_IP_NSTR; ++i) {
    str[i] = std::string_view(at, r.len[i]);
    at += r.len[i] + 1;
  }
  auto present = [&](int i) { return (r.present >> i) & 1; };
  auto user_string = [&](int i) {
    UserString u;
    u.present = present(i);
    if (u.present) u.text.assign(str[i]);
    u.flags = r.sflags[i];
    return u;
  };
  FileCall p;
  p.spec = spec;
  std::copy(std::begin(r.args), std::end(r.args), p.args.begin());
  p.flags = r.flags;
  p.path1 = user_string(BS_IP_PATH1);
  p.path2 = user_string(BS_IP_PATH2);
  p.created = r.created;
  ++inproc_calls_;
  if (r.rec.type == BS_IP_REC_EXEC) {
    t.pending = std::move(p);
    return;
  }
  FileEvent e;
  e.proc = procs_[t.tgid].key;
  e.tid = static_cast<uint32_t>(tid);
  NamesNeeded need = fill_file_event(p, r.ret, e);
  auto named = [&](int i, Named& out) {
    out.path.assign(str[i]);
    out.flags = r.sflags[i];
    out.rflags = 0;
    out.magic = 0;
    out.ino = out.mnt = 0;
  };
  if (need.dir1 && present(BS_IP_DIR1)) {
    named(BS_IP_DIR1, dir1_);
    e.dir1 = dir1_.view();
  }
  if (need.dir2 && present(BS_IP_DIR2)) {
    named(BS_IP_DIR2, dir2_);
    e.dir2 = dir2_.view();
  }
  if (need.cwd || need.root) attach_fs(tid, t, e, need.cwd, need.root);
  bool described = present(BS_IP_RESULT);
  if (described) {
    named(BS_IP_RESULT, result_);
    result_.rflags = r.result_rflags;
    result_.magic = r.result_magic;
    result_.ino = r.result_ino;
    result_.mnt = r.result_mnt;
  }
  if (finish_result(p, t, described, e)) emit(e);
}

// A thread is gone: what its ring still holds is read, and the ring freed.
void PtraceSource::release_ring(pid_t tid) {
  if (!area_) return;
  area_->drain_thread(tid, [this](const bs_ip_file& r) { on_record(r); });
  area_->release_thread(tid);
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
      if (area_) area_->mark_traced(tid);  // erased with the old leader
    }
  }
  Thread& t = known(tid);
  t.identity_epoch = 0;  // a set-user-ID program, file capabilities
  Proc& proc = procs_[t.tgid];
  proc.runtime_mapped = false;
  __ptrace_syscall_info info{};
  ::ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info);

  ExecEvent e;
  e.proc = proc.key;
  e.tid = static_cast<uint32_t>(tid);
  e.old_tid = static_cast<uint32_t>(old_tid);
  e.time = Clocks::boot_now();
  e.elf32 = info.arch != kNativeArch;

  image_.read(tid, proc_, &t.pending, info.instruction_pointer);
  image_.fill(e);
  attach_fs(tid, t, e, image_.needs_cwd(), image_.needs_root());
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
    release_ring(it->first);
    end_fs_change(it->second);
    it = threads_.erase(it);
  }
}

// Whether the thread has the tracer's credentials, user namespace and
// root, so that a lookup made by the tracer is the lookup it would make.
bool PtraceSource::same_identity(pid_t tid, Thread& t) {
  if (t.identity_epoch == epoch_) return t.same_identity;
  std::string id = identity("/proc/" + std::to_string(tid), ProcPath(tid, "root").c_str());
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
  const FileCall& p = t.pending;
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

}  // namespace

Result<std::unique_ptr<EventSource>> open_ptrace_backend() {
  return std::unique_ptr<EventSource>(std::make_unique<PtraceSource>());
}

// The calls builds make by the thousand. Every handled call's libc site is
// patched in every image, which copies its page of libc (~10 us each
// here): the rare ones are left to the tracer.
bool inproc_handled(const SyscallSpec& spec) {
  auto sys = static_cast<bs_sys>(spec.desc.sys);
  if (is_name_lookup(sys)) return true;  // stat, access, readlink and their kin
  switch (sys) {
    case BS_SYS_OPEN:
    case BS_SYS_OPENAT:
    case BS_SYS_CREAT:
    case BS_SYS_GETDENTS64:
    case BS_SYS_UNLINK:
    case BS_SYS_UNLINKAT:
    case BS_SYS_MKDIR:
    case BS_SYS_MKDIRAT:
    case BS_SYS_RMDIR:
    case BS_SYS_EXECVE:  // its exec stop still comes to the tracer
      return true;
    default:
      return false;
  }
}

Result<std::unique_ptr<EventSource>> open_inproc_backend(const std::string& runtime) {
#if !defined(__x86_64__)
  (void)runtime;
  return fail("the in-process backend knows x86_64 only so far (use --backend=ptrace)");
#else
  if (runtime.empty() || runtime.find_first_of(": \t") != std::string::npos)
    return fail("in-process runtime: its path '" + runtime + "' cannot be put in LD_PRELOAD (':' or a space)");
  if (::access(runtime.c_str(), R_OK) != 0)
    return fail_errno("in-process runtime " + runtime, errno);
  auto area = SharedArea::create();
  if (!area) return tl::unexpected(area.error());
  for (const SyscallSpec& s : file_syscalls())
    if (inproc_handled(s)) area->handle(s.nr, s.desc);
  return std::unique_ptr<EventSource>(std::make_unique<PtraceSource>(std::move(*area), runtime));
#endif
}

}  // namespace bsandbox
