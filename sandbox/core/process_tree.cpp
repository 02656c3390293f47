// process_tree.cpp: folding events into processes.
//
// Paths are interned once (a build names the same headers thousands of
// times), and each process keeps a map from path id to its set of ops, so
// memory grows with distinct (process, path) pairs, not with events.
#include "sandbox/core/process_tree.h"

#include <algorithm>

#include "sandbox/core/path.h"

namespace bsandbox {
namespace {

std::vector<std::string> split_nul(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = s.find('\0', i);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

// A usable kernel path, or nullopt (counting why in *unresolved).
std::optional<std::string> usable(const std::optional<KernelPath>& kp, uint64_t* unresolved) {
  if (!kp || kp->unreachable()) return std::nullopt;
  if (kp->truncated() || kp->fault()) {
    ++*unresolved;
    return std::nullopt;
  }
  return path::normalize(kp->path);
}

}  // namespace

void ProcessTree::set_root(uint32_t pid, uint64_t fallback_start, std::vector<std::string> argv,
                           std::string cwd) {
  root_pid_ = pid;
  root_fallback_start_ = fallback_start;
  root_argv_ = std::move(argv);
  root_cwd_ = std::move(cwd);
}

void ProcessTree::set_root_exit(int wait_status, uint64_t time) {
  root_wait_status_ = wait_status;
  root_end_ = time;
}

ProcessTree::Proc& ProcessTree::proc(const ProcessKey& key) {
  auto [it, added] = procs_.try_emplace(key);
  if (added) it->second.key = key;
  return it->second;
}

ProcessTree::Thread& ProcessTree::thread(const EventBase& e) {
  Thread& t = threads_[e.tid];
  if (e.cwd) {
    auto cwd = usable(e.cwd, &unresolved_);
    t.cwd = cwd ? *cwd : std::string();
  }
  if (e.root) {
    auto root = usable(e.root, &unresolved_);
    t.root = root ? *root : std::string("/");
  }
  if (e.strings_dropped) ++strings_dropped_;
  return t;
}

uint32_t ProcessTree::intern(const std::string& p) {
  auto [it, added] = path_ids_.try_emplace(p, static_cast<uint32_t>(paths_.size()));
  if (added) {
    paths_.push_back(&it->first);
    exists_.push_back(-1);
    prior_.emplace_back();
    changed_.push_back(false);
  }
  return it->second;
}

void ProcessTree::record(Proc& p, const std::string& file, OpSet ops, OpSet if_existed,
                         const std::optional<std::string>& named, Uses uses) {
  if (path::is_pseudo(file)) return;
  uint32_t id = intern(file);
  if (exists_[id] == 1) ops |= if_existed;
  if (uses == 0) uses = uses_of_ops(ops);  // exec, links followed: what the ops say
  // Saturating: past 4G accesses every later one counts as simultaneous,
  // which only ever adds to what a subtree is taken to have depended on.
  if (seq_ != UINT32_MAX) ++seq_;
  PriorAccess& prior = prior_[id];
  if (prior.first == 0) prior.first = ops;
  if (!changed_[id]) prior.uses |= uses;
  if (ops & kMutatingOps) changed_[id] = true;
  auto& access = p.files[id];
  if (access.ops == 0) {
    access.first = ops;
    access.first_seq = seq_;
  }
  if ((ops & kMutatingOps) && access.change_seq == 0) access.change_seq = seq_;
  for (size_t bit = 0; bit < access.use_seq.size(); ++bit)
    if ((uses & (1u << bit)) && access.use_seq[bit] == 0) access.use_seq[bit] = seq_;
  access.ops |= ops;
  if (ops & (kOpDelete | kOpMissing)) {
    exists_[id] = (ops & kOpCreate) ? 1 : 0;
  } else {
    exists_[id] = 1;
  }
  if (ops & (kOpCreate | kOpDelete)) symlinks_.forget(file);
  if (named && !path::is_pseudo(*named)) {
    if (auto links = symlinks_.links(*named, file)) {
      for (const auto& link : *links) record(p, link, kOpStat);
    }
  }
}

PriorAccess ProcessTree::prior(const std::string& path) const {
  auto it = path_ids_.find(path);
  return it == path_ids_.end() ? PriorAccess{} : prior_[it->second];
}

std::vector<std::pair<std::string, PriorAccess>> ProcessTree::all_priors() const {
  std::vector<std::pair<std::string, PriorAccess>> out;
  out.reserve(paths_.size());
  for (size_t id = 0; id < paths_.size(); ++id)
    if (prior_[id].first) out.emplace_back(*paths_[id], prior_[id]);
  return out;
}

void ProcessTree::on_event(const Event& event) {
  std::visit(
      [this](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, ForkEvent>) on_fork(e);
        if constexpr (std::is_same_v<T, ExecEvent>) on_exec(e);
        if constexpr (std::is_same_v<T, ExitEvent>) on_exit(e);
        if constexpr (std::is_same_v<T, FileEvent>) on_file(e);
      },
      event);
}

void ProcessTree::on_fork(const ForkEvent& e) {
  Thread& t = thread(e);
  Proc& child = proc(e.proc);
  child.forked = true;
  child.parent = e.parent;
  if (!t.cwd.empty()) child.start_cwd = t.cwd;
  // Until it execs, a child runs its parent's program.
  auto parent = procs_.find(e.parent);
  if (parent != procs_.end() && !child.exec_seen) {
    child.argv = parent->second.argv;
    child.exe = parent->second.exe;
    if (parent->second.argv.empty() && e.parent.pid == root_pid_) child.argv = root_argv_;
  } else if (!child.exec_seen && e.parent.pid == root_pid_) {
    child.argv = root_argv_;
  }
}

void ProcessTree::on_exec(const ExecEvent& e) {
  if (e.old_tid != e.tid) threads_.erase(e.old_tid);
  Thread& t = thread(e);
  Proc& p = proc(e.proc);
  p.exec_seen = true;
  if (e.time) p.exec_time = e.time;
  p.argv = split_nul(e.argv);
  if (e.argv_truncated) ++unresolved_;
  if (e.elf32) elf32_.push_back(e.proc);

  PathContext ctx{t.cwd, t.root};
  auto exe = usable(e.exe, &unresolved_);
  if (exe && e.exe->deleted()) exe.reset();
  p.exe = exe;

  std::optional<std::string> named = absolute_name(e.filename, nullptr, ctx);
  if (e.interp != e.filename) {
    // A #! script: the script itself, then the interpreter it names.
    if (named) record(p, *named, kOpExec);
    named = absolute_name(e.interp, nullptr, ctx);
  }
  if (exe) {
    if (named && *named == *exe) named.reset();
    record(p, *exe, kOpExec, 0, named);
  } else if (named) {
    record(p, *named, kOpExec);
  }
  if (auto ldso = usable(e.ldso, &unresolved_)) record(p, *ldso, kOpExec);
}

void ProcessTree::on_exit(const ExitEvent& e) {
  thread(e);
  Proc& p = proc(e.proc);
  p.end_time = e.time;
  p.wait_status = e.wait_status;
  threads_.erase(e.tid);
  threads_.erase(e.proc.pid);
}

void ProcessTree::on_file(const FileEvent& e) {
  Thread& t = thread(e);
  Proc& p = proc(e.proc);
  Interpretation in = interpret(e, PathContext{t.cwd, t.root});
  unresolved_ += in.unresolved;
  bool renamed = (e.sys == BS_SYS_RENAME || e.sys == BS_SYS_RENAMEAT ||
                  e.sys == BS_SYS_RENAMEAT2) && e.ret == 0;
  for (const Access& a : in.accesses) record(p, a.path, a.ops, a.if_existed, a.named, a.uses);
  for (auto& s : in.sockets) p.sockets.insert(std::move(s));
  if (renamed) symlinks_.forget_all();
  // A chdir's result is the thread's new cwd; the eBPF programs count it as
  // sent (files.bpf.c) and walk the cwd again only when it changes anew.
  if ((e.sys == BS_SYS_CHDIR || e.sys == BS_SYS_FCHDIR) && e.ret == 0 && e.result) {
    uint64_t counted = 0;  // interpret() counted an unusable result already
    auto cwd = usable(e.result, &counted);
    t.cwd = cwd ? *cwd : std::string();
  }
}

std::vector<pid_t> ProcessTree::running_pids() const {
  std::vector<pid_t> out;
  for (const auto& [key, p] : procs_) {
    if (!p.end_time) out.push_back(static_cast<pid_t>(key.pid));
  }
  return out;
}

ProcessTree::Health ProcessTree::health() const {
  Health h;
  h.unresolved = unresolved_;
  h.strings_dropped = strings_dropped_;
  h.elf32 = elf32_;
  for (const auto& [key, p] : procs_) {
    if (!p.forked && key.pid != root_pid_) ++h.orphans;
  }
  return h;
}

std::vector<ProcessEntry> ProcessTree::entries(int64_t boot_to_wall, uint64_t end_boot) const {
  // The top process is the one with the root pid that no fork named (a later
  // process reusing the pid was forked by someone in the tree).
  const Proc* root = nullptr;
  for (const auto& [key, p] : procs_) {
    if (key.pid == root_pid_ && !p.forked && (!root || key.start < root->key.start)) root = &p;
  }
  Proc fallback;
  if (!root) {
    fallback.key = ProcessKey{root_pid_, root_fallback_start_};
    root = &fallback;
  }

  std::vector<const Proc*> others;
  for (const auto& [key, p] : procs_) {
    if (&p != root) others.push_back(&p);
  }
  std::sort(others.begin(), others.end(), [](const Proc* a, const Proc* b) {
    if (a->key.start != b->key.start) return a->key.start < b->key.start;
    return a->key.pid < b->key.pid;
  });
  std::vector<ProcessEntry> out;
  out.reserve(others.size() + 1);
  out.push_back(entry_of(*root, true, boot_to_wall, end_boot));
  for (const Proc* p : others) out.push_back(entry_of(*p, false, boot_to_wall, end_boot));
  return out;
}

ProcessEntry ProcessTree::entry_of(const Proc& p, bool is_root, int64_t boot_to_wall, uint64_t end_boot) const {
  ProcessEntry out;
  out.key = p.key;
  if (!is_root) out.parent = p.parent;
  out.argv = p.exec_seen || !is_root ? p.argv : root_argv_;
  out.exe = p.exe;
  out.cwd = is_root ? root_cwd_ : p.start_cwd.value_or("");
  out.start_ns = boot_to_wall + static_cast<int64_t>(p.key.start);
  std::optional<uint64_t> end = p.end_time;
  std::optional<int> status = p.wait_status;
  if (is_root && root_wait_status_) {
    status = root_wait_status_;
    if (!end) end = root_end_;
  }
  out.end_ns = boot_to_wall + static_cast<int64_t>(end.value_or(end_boot));
  if (status) out.exit_code = exit_code_from_wait_status(*status);
  if (p.exec_time) out.exec_ns = boot_to_wall + static_cast<int64_t>(*p.exec_time);
  out.files.reserve(p.files.size());
  for (const auto& [id, access] : p.files) out.files.push_back(FileEntry{*paths_[id], access.ops});
  std::sort(out.files.begin(), out.files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  out.sockets.assign(p.sockets.begin(), p.sockets.end());
  return out;
}

std::optional<ProcessTree::Subtree> ProcessTree::subtree(pid_t pid, pid_t parent_pid, int64_t boot_to_wall,
                                                         uint64_t end_boot) const {
  const Proc* top = nullptr;
  std::unordered_map<ProcessKey, std::vector<const Proc*>, ProcessKeyHash> children;
  for (const auto& [key, p] : procs_) {
    if (p.parent) children[*p.parent].push_back(&p);
    if (key.pid == static_cast<uint32_t>(pid) && p.parent && p.parent->pid == static_cast<uint32_t>(parent_pid) &&
        (!top || key.start > top->key.start))
      top = &p;
  }
  if (!top) return std::nullopt;
  Subtree out;
  // Per path: the subtree's first access and first change, then what its
  // processes depended on up to that change.
  struct Seen {
    uint32_t first_seq = UINT32_MAX, change_seq = UINT32_MAX;
    OpSet first = 0;
    std::vector<const Proc::Access*> accesses;
  };
  std::unordered_map<uint32_t, Seen> seen;
  std::vector<const Proc*> todo{top};
  while (!todo.empty()) {
    const Proc* p = todo.back();
    todo.pop_back();
    out.processes.push_back(entry_of(*p, false, boot_to_wall, end_boot));
    for (const auto& [id, access] : p->files) {
      Seen& s = seen[id];
      if (access.first_seq < s.first_seq) {
        s.first_seq = access.first_seq;
        s.first = access.first;
      }
      if (access.change_seq && access.change_seq < s.change_seq) s.change_seq = access.change_seq;
      s.accesses.push_back(&access);
    }
    if (auto c = children.find(p->key); c != children.end())
      todo.insert(todo.end(), c->second.begin(), c->second.end());
  }
  std::sort(out.processes.begin() + 1, out.processes.end(), [](const ProcessEntry& a, const ProcessEntry& b) {
    return a.key.start != b.key.start ? a.key.start < b.key.start : a.key.pid < b.key.pid;
  });
  for (const auto& [id, s] : seen) {
    PriorAccess prior{s.first, 0};
    for (const Proc::Access* a : s.accesses)
      for (size_t bit = 0; bit < a->use_seq.size(); ++bit)
        if (a->use_seq[bit] && a->use_seq[bit] <= s.change_seq) prior.uses |= static_cast<Uses>(1u << bit);
    out.priors.emplace(*paths_[id], prior);
  }
  return out;
}

}  // namespace bsandbox
