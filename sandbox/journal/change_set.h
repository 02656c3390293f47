// change_set.h: computing a run's changes from its overlay layer, keeping
// their before states, and applying a change set to the tree so that a
// crash at any point can be finished or undone.
//
// A journaled run writes into the upper directory of an overlay mounted over
// the project root. scan_upper() turns that directory into changes against
// the real tree: a whiteout is a deletion (of a whole tree, if a directory
// was there), an opaque directory replaces the one below it, any other entry
// is a creation or a replacement. A file copied up but left as it was (same
// content, mode and mtime) is no change.
//
// keep_before() puts the content of every file a change set will overwrite
// or delete into the store, before anything is applied: each entry can then
// always be inverted (its before states restored), so applying one never
// loses a byte.
//
// apply() makes the tree match the after states in three passes: removals,
// deepest paths first; creations and replacements, parents first (a file is
// written under a temporary name and renamed over, so each path is always
// its before or its after state); directory modes last (a read-only
// directory is filled before it is closed). Each step first looks at the
// path and skips what is already done, so applying again after a crash
// finishes the job, and applying the inverse (after and before swapped,
// content from the store) undoes it. Owners, modes and times are set
// through descriptors of what was made or opened without following a
// symlink (the tree may hold directories that others can write in), the
// owner first: a chown clears the setuid and setgid bits.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sandbox/journal/journal.h"
#include "sandbox/base/result.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

// An overlay's upper directory. Opaque directories are recognised by either
// trusted.overlay.opaque (mounted by root) or user.overlay.opaque (mounted
// in a user namespace, userxattr).
struct UpperLayout {
  int upper_fd = -1;
  std::vector<std::string> skip;  // top-level names that are not the tree's (".bsandbox")
};

Result<std::vector<Change>> scan_upper(const UpperLayout& upper, int root_fd);

// Stores the content of every file that a change overwrites or removes (if
// the store lacks it) and fills in its before hash; returns the bytes added.
Result<uint64_t> keep_before(std::vector<Change>& changes, int root_fd, Store& store);

// Where after content comes from: the run's upper directory (files are
// renamed from there) or the store (files are copied out and verified).
struct ContentSource {
  int upper_fd = -1;  // -1: the store
  Store* store = nullptr;
};

// The paths whose current state is not their before state: what someone
// changed since. A directory that is to go also conflicts when it holds
// something the change set does not remove. Empty: apply() can go ahead.
Result<std::vector<std::string>> conflicts(const std::vector<Change>& changes, int root_fd);

// What --force does: each conflicting path's current state becomes its
// before state, with its content kept in the store, and what a directory
// that is to go holds beyond the change set is added as removals (kept too).
// Nothing is lost.
Result<uint64_t> adopt_current(std::vector<Change>& changes, const std::vector<std::string>& paths,
                               int root_fd, Store& store);

// progress(done, total) after each change; pause(phase) at the test points.
struct ApplyHooks {
  std::function<void(size_t, size_t)> progress;
  std::function<void(const char*)> pause;
};
Result<void> apply(const std::vector<Change>& changes, int root_fd, const ContentSource& source,
                   const ApplyHooks& hooks = {});

// The change set that undoes changes: before and after swapped.
std::vector<Change> inverse(const std::vector<Change>& changes);

// Whether apply() with this source can still finish changes: every after
// file not yet in place is there to be taken, with the right content.
Result<bool> can_finish(const std::vector<Change>& changes, int root_fd, const ContentSource& source);

}  // namespace bsandbox
