// restore.h: putting a hit's outputs in place under the root.
//
// Directories are made first (parents before children). Files and symlinks
// are then written under temporary names next to where they go, so that a
// damaged object is found before anything is replaced; then deletions are
// made, deepest first; then the temporaries are renamed over their names and
// directory modes set. Nothing follows a symlink the tree may hold now
// (open_parent, open_beneath). A parent directory the command did not
// create and that is missing now makes the restore a miss: the command would
// not have run the same way.
//
// Why not the journal's apply() (journal/change_set.cpp), which restores a
// tree too: that puts back exact states (owner, mtime), fsynced and
// resumable after a crash. Here times are not set by hand (the kernel's
// clock must stamp outputs in the order the run left them, and never ahead
// of what the build writes next), every file is staged before anything is
// removed, and a crash costs a rerun, not a wrong tree.
#pragma once

#include <optional>
#include <string>

#include "sandbox/base/result.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

namespace pb {
class CacheEntry;
}  // namespace pb

// Restores e's outputs under root from store (shown names the entry in
// messages). On failure: *why set if the tree is not as the entry needs (a
// miss, not an error), *damaged set to an object that failed its check.
Result<void> restore_outputs(const pb::CacheEntry& e, const std::string& shown, const std::string& root, Store& store,
                             std::string* why, std::optional<Digest>* damaged);

}  // namespace bsandbox
