// journaled_run.cpp: see journaled_run.h. The project lock is held only
// around begin's checks and rollback and around finish's commit, never while
// the command runs.
#include "sandbox/journal/journaled_run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "sandbox/storage/fs.h"

namespace bsandbox {
namespace {

void say(const std::string& line) { std::fprintf(stderr, "bsandbox: %s\n", line.c_str()); }

std::string relative_to(const std::string& root, const std::string& path) {
  if (path == root) return "";
  if (root == "/") return path.substr(1);
  return path.substr(root.size() + 1);
}

bool under(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

// A re-run sees what later runs changed as it was before them: says so,
// naming the paths (the first few; `bsandbox diff` lists them all).
std::string shown_before_line(const std::vector<std::pair<std::string, uint64_t>>& shown) {
  std::string list;
  for (size_t i = 0; i < shown.size() && i < 5; ++i)
    list += (i ? ", " : "") + printable(shown[i].first) + " (as before run " + std::to_string(shown[i].second) + ")";
  if (shown.size() > 5) list += ", ...";
  return "this run sees " + std::to_string(shown.size()) + " paths as they were before later runs changed them: " +
         list;
}

ApplyHooks hooks_for(size_t total, bool quiet) {
  ApplyHooks hooks;
  hooks.pause = pause_point;
  if (!quiet && total >= 5000) {
    hooks.progress = [](size_t done, size_t total) {
      if (done % 5000 == 0 || done == total)
        std::fprintf(stderr, "bsandbox: applying changes: %zu of %zu\n", done, total);
    };
  }
  return hooks;
}

}  // namespace

std::vector<std::string> writes_outside(const Record& rec, const std::string& root) {
  std::map<std::string, OpSet> ops;
  for (const auto& p : rec.processes)
    for (const auto& f : p.files) {
      if (!(f.ops & kMutatingOps) || f.path == root || under(f.path, root)) continue;
      if (under(f.path, "/dev") || under(f.path, "/proc") || under(f.path, "/sys")) continue;
      ops[f.path] |= f.ops;
    }
  std::vector<std::string> out;
  for (const auto& [path, o] : ops) {
    // A temporary the run made and removed again (a compiler's /tmp/cc*.s)
    // left nothing behind.
    struct stat st;
    if ((o & kOpCreate) && (o & kOpDelete) && ::lstat(path.c_str(), &st) != 0) continue;
    out.push_back(path);
  }
  return out;
}

Result<std::unique_ptr<JournaledRun>> JournaledRun::begin(Project project, const std::vector<std::string>& argv,
                                                          const std::string& cwd, char** envp,
                                                          const JournalOptions& o) {
  auto p = std::make_unique<Project>(std::move(project));
  auto history = open_history(*p);
  if (!history) return tl::unexpected(history.error());
  JournalEntry draft;
  draft.argv = argv;
  draft.cwd = relative_to(p->root, cwd);
  draft.env_hash = environment_hash(envp);
  draft.key = command_key(draft.cwd, argv, draft.env_hash);

  auto lock = ProjectLock::take(*p);
  if (!lock) return tl::unexpected(lock.error());
  auto pending = find_interrupted(*p);
  if (!pending) return tl::unexpected(pending.error());
  if (pending->any()) return fail(interrupted_message(*p, *pending));
  ViewOptions view;
  view.contain = o.contain;
  view.cwd = cwd;
  view.store = &history->store;
  if (!o.no_rollback) {
    auto entries = read_entries(*history);
    if (!entries) return tl::unexpected(entries.error());
    if (auto prev = last_live_run(*entries, draft.key)) {
      if (!o.quiet)
        say("rolling back " + describe(*prev) + " (" + std::to_string(prev->changes.size()) +
            " changes) before running it again");
      auto undone = undo_entry(*history, *prev, o.force, "re-execution", hooks_for(prev->changes.size(), o.quiet));
      if (!undone) return tl::unexpected(undone.error());
      view.hidden = hidden_after(*entries, *prev);
      for (const auto& h : view.hidden) draft.shown_before.emplace_back(h.path, h.before);
      if (!o.quiet && !view.hidden.empty()) say(shown_before_line(draft.shown_before));
    }
  }
  auto run = RunDir::create(*p);
  if (!run) return tl::unexpected(run.error());
  auto entered = enter_overlay_view(*p, *run, view);
  if (!entered) {
    run->remove(*p);
    return tl::unexpected(entered.error());
  }
  draft.work = run->name();
  std::unique_ptr<JournaledRun> out(new JournaledRun(std::move(p), std::move(*history), std::move(*run)));
  out->draft_ = std::move(draft);
  out->options_ = o;
  pause_point("before-command");
  return out;
}

JournaledRun::~JournaledRun() {
  if (settled_) return;
  if (auto killed = kill_run_processes(*project_, run_); !killed) say("warning: " + killed.error().message);
  if (auto r = run_.remove(*project_); !r) say("warning: " + r.error().message);
}

Result<JournalEntry> JournaledRun::finish(const Record& rec) {
  const Project& p = *project_;
  settled_ = true;
  JournalEntry e = draft_;
  e.start_ns = rec.start_ns;
  e.end_ns = rec.end_ns;
  e.exit_code = rec.exit_code;
  e.backend = rec.backend;
  for (auto& path : writes_outside(rec, p.root)) {
    bool discarded = options_.contain && in_contain_scratch(path);
    (discarded ? e.discarded_writes : e.outside_writes).push_back(std::move(path));
  }
  if (auto r = replace_file_at(run_.fd(), "entry", encode_entry(e), run_.path(p) + "/entry"); !r)
    return tl::unexpected(r.error());
  auto lock = ProjectLock::take(p);
  if (!lock) return tl::unexpected(lock.error());
  UniqueFd upper(::openat(run_.fd(), "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!upper.valid()) return fail_errno(run_.path(p) + "/upper", errno);
  auto changes = scan_upper(UpperLayout{upper.get(), {kStateDirName}}, p.root_fd.get());
  if (!changes) return fail("reading the run's changes: " + changes.error().message);
  e.changes = std::move(*changes);
  ApplyHooks hooks = hooks_for(e.changes.size(), options_.quiet);
  auto done = commit_changes(history_, std::move(e), ContentSource{upper.get(), &history_.store}, hooks);
  if (!done) {
    if (done.error().message.find("nothing was changed") == std::string::npos) return done;
    return fail(done.error().message + " (the run's output is kept in " + run_.path(p) +
                ": `bsandbox recover` commits it, `bsandbox recover --abort` drops it)");
  }
  if (auto r = run_.remove(p); !r) say("warning: " + r.error().message);
  return done;
}

}  // namespace bsandbox
