// history.h: the operations on a project's journal: committing a run,
// undoing an entry, recovering from a crash, deciding what a re-executed
// command must not see, and the log, diff and gc views of it.
//
// Every change to the tree goes the same way (commit_changes): keep the
// content of what will be overwritten or removed in the store, write the
// entry (status COMMITTING) and the pending marker, apply, mark the entry
// COMMITTED, remove the marker. A crash anywhere in between leaves either
// nothing to do or a pending entry that `recover` finishes (the run's upper
// directory or the store still holds every after state) or aborts (the
// store holds every before state). An undo is an entry like any other, so
// it can itself be undone. Callers hold the project lock.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sandbox/journal/change_set.h"
#include "sandbox/journal/journal.h"
#include "sandbox/journal/overlay_view.h"
#include "sandbox/journal/project.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

struct History {
  const Project* project;
  Journal journal;
  Store store;
};
Result<History> open_history(const Project& p);

Result<std::vector<JournalEntry>> read_entries(const History& h);
// Ids of the entries an undo in effect has reversed.
std::set<uint64_t> undone_ids(const std::vector<JournalEntry>& entries);
// The newest committed, not undone run of this command key.
std::optional<JournalEntry> last_live_run(const std::vector<JournalEntry>& entries, const Digest& key);

// Applies e.changes as entry e (its id is chosen here), content from
// source. On failure the tree is put back as it was (the error says so, or
// that `bsandbox recover` is needed).
Result<JournalEntry> commit_changes(History& h, JournalEntry e, const ContentSource& source,
                                    const ApplyHooks& hooks);

// Undoes entry target: refuses, changing nothing, if a path it changed has
// changed since (naming it), unless force.
Result<JournalEntry> undo_entry(History& h, const JournalEntry& target, bool force,
                                const std::string& reason, const ApplyHooks& hooks);

// Finishes (or with abort, rolls back) a pending entry and discards runs
// whose bsandbox died; returns what it did, a line per item.
Result<std::vector<std::string>> recover(History& h, bool abort);

// What a re-execution of `prev` must see instead of what live runs after it
// changed: the state before the first of them, for each path they changed
// (except paths prev itself changed: rolling it back restored those).
std::vector<HiddenPath> hidden_after(const std::vector<JournalEntry>& entries, const JournalEntry& prev);

// `bsandbox log`: a line per entry, newest first.
std::string log_text(const std::vector<JournalEntry>& entries);
// `bsandbox diff`: what the entry changed, a line per path.
std::string diff_text(const JournalEntry& e);
std::string describe(const JournalEntry& e);  // "run 12 (make -C ld)" / "undo 13 (of run 12)"

struct GcOptions {
  std::optional<uint64_t> keep;       // entries to keep
  std::optional<uint64_t> max_bytes;  // store budget
};
// Drops the oldest entries beyond the limits, then every object no kept
// entry refers to.
Result<std::string> gc(History& h, const GcOptions& o);

}  // namespace bsandbox
