// overlay_view.h: the private view a journaled run works in.
//
// enter_overlay_view() moves the calling process (bsandbox itself, so that
// it and the traced command see the same files) into a new mount namespace
// (inside a new user namespace when it is not root) in which the project
// root's path shows an overlay: the real tree as the lower layer, the run's
// upper directory taking every write. The state directory is covered by an
// empty read-only tmpfs there, so the command can neither see nor damage the
// journal. The real tree and the state stay reachable through the fds
// Project holds (opened before), which is how the commit reaches them.
//
// Isolation: hidden paths (what later runs changed, shown as it was before
// them) are laid out in a tmpfs as a second lower layer above the tree:
// files restored from the store, whiteouts for what did not exist yet.
//
// --contain: nothing outside the root changes. Every other mount is made
// read-only (mount_setattr, Linux 5.12), so a write there fails, except in
// the scratch directories /tmp, /var/tmp and /dev/shm: the run gets its own,
// empty ones (tmpfs), where writes succeed and are discarded with the run
// (bsandbox names them; builds need a /tmp). /dev and /proc stay writable.
// The same holds wherever the project lies, under /tmp too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/storage/file_state.h"
#include "sandbox/journal/project.h"
#include "sandbox/base/result.h"
#include "sandbox/storage/store.h"

namespace bsandbox {

struct HiddenPath {
  std::string path;     // relative to the root
  FileState state;      // what the run sees there
  uint64_t before = 0;  // the journal entry it is shown as before
};

// Whether path (absolute) lies in a directory that --contain gives the run
// its own copy of.
bool in_contain_scratch(std::string_view path);

struct ViewOptions {
  bool contain = false;
  std::vector<HiddenPath> hidden;
  Store* store = nullptr;  // where hidden files' content comes from
  std::string cwd;         // re-entered after mounting, so it resolves inside the view
};

struct View {
  bool user_namespace = false;
};

Result<View> enter_overlay_view(const Project& p, const RunDir& run, const ViewOptions& o);

// Kills every process still in an interrupted run's view; returns how many
// there were. The namespace recorded in runs/NAME/mntns only narrows the
// search (the project's owner can write that file): a process is killed
// only if it shows the marker that enter_overlay_view() leaves in the view,
// which nobody but a bsandbox of the same user can make.
Result<int> kill_run_processes(const Project& p, const RunDir& run);

}  // namespace bsandbox
