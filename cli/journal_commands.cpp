// journal_commands.cpp: each command finds the project of the current
// directory, checks whose it is (project.h: act_as_owner), takes its lock, refuses (pointing at `bsandbox recover`) if a
// crash left work pending, and does its one thing.
#include "cli/journal_commands.h"

#include <unistd.h>

#include <cstdio>
#include <functional>

#include "cli/exec_command.h"
#include "cli/report.h"
#include "sandbox/journal/history.h"

namespace bsandbox {
namespace {

int print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : kExitOwnError;
}

// Runs body with the project, its history and its lock; refuses while work
// is pending unless this is recover.
int with_project(bool allow_pending, bool trust_owner, const std::function<int(History&)>& body) {
  auto project = find_project(".");
  if (!project) return error_exit(project.error().message);
  if (!*project) {
    if (auto root = run_view_of("."))
      return error_exit("this is a journaled run's view of " + *root +
                        ", where the journal is hidden from the command: run this outside the run");
    return error_exit("not inside a bsandbox project (run bsandbox init first)");
  }
  const Project& p = **project;
  if (auto r = act_as_owner(p, trust_owner); !r) return error_exit(r.error().message);
  auto history = open_history(p);
  if (!history) return error_exit(history.error().message);
  auto lock = ProjectLock::take(p);
  if (!lock) return error_exit(lock.error().message);
  if (!allow_pending) {
    auto pending = find_interrupted(p);
    if (!pending) return error_exit(pending.error().message);
    if (pending->any()) return error_exit(interrupted_message(p, *pending));
  }
  return body(*history);
}

}  // namespace

int run_init(const std::string& dir, bool trust_owner) {
  if (auto r = act_as_owner_of(dir, trust_owner); !r) return error_exit(r.error().message);
  auto said = init_project(dir);
  if (!said) return error_exit(said.error().message);
  return print(*said + "\n");
}

int run_log(bool trust_owner) {
  return with_project(false, trust_owner, [](History& h) {
    auto entries = read_entries(h);
    if (!entries) return error_exit(entries.error().message);
    if (entries->empty()) return print("no journal entries yet\n");
    return print(log_text(*entries));
  });
}

int run_diff(uint64_t id, bool trust_owner) {
  return with_project(false, trust_owner, [id](History& h) {
    auto e = h.journal.read(id);
    if (!e) return error_exit(e.error().message);
    return print(diff_text(*e));
  });
}

int run_undo(uint64_t id, bool force, bool trust_owner) {
  return with_project(false, trust_owner, [id, force](History& h) {
    auto entries = read_entries(h);
    if (!entries) return error_exit(entries.error().message);
    std::set<uint64_t> undone = undone_ids(*entries);
    const JournalEntry* target = nullptr;
    for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
      // By default the newest run in effect: undo after undo walks back.
      if (id ? it->id == id
             : it->kind == JournalEntry::Kind::kRun && it->status == JournalEntry::Status::kCommitted &&
                   !undone.count(it->id)) {
        target = &*it;
        break;
      }
    }
    if (!target) return error_exit(id ? "no journal entry " + std::to_string(id) : std::string("nothing to undo"));
    if (target->status != JournalEntry::Status::kCommitted)
      return error_exit(describe(*target) + " was rolled back by recover; there is nothing to undo");
    if (undone.count(target->id)) return error_exit(describe(*target) + " is already undone");
    ApplyHooks hooks;
    hooks.pause = pause_point;
    auto done = undo_entry(h, *target, force, "undo", hooks);
    if (!done) return error_exit(done.error().message);
    return print("undid " + describe(*target) + " as entry " + std::to_string(done->id) + ": " +
                 std::to_string(done->changes.size()) + " changes\n");
  });
}

int run_recover(bool abort, bool trust_owner) {
  return with_project(true, trust_owner, [abort](History& h) {
    auto said = recover(h, abort);
    if (!said) return error_exit(said.error().message);
    std::string text;
    for (const auto& line : *said) text += line + "\n";
    return print(text);
  });
}

int run_gc(std::optional<uint64_t> keep, std::optional<uint64_t> max_bytes, bool trust_owner) {
  return with_project(false, trust_owner, [&](History& h) {
    auto said = gc(h, GcOptions{keep, max_bytes});
    if (!said) return error_exit(said.error().message);
    return print(*said + "\n");
  });
}

}  // namespace bsandbox
