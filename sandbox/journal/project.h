// project.h: a project root (a directory `bsandbox init` made one) and its
// state directory, ROOT/.bsandbox:
//
//   format      "bsandbox-state 1": the layout version
//   lock        flock()ed by whoever changes the tree or the state
//   pending     the id of a journal entry being applied (absent otherwise)
//   journal/    one file per entry (journal.h)
//   objects/    the content-addressed store (store.h)
//   runs/NAME/  a journaled run in progress: its overlay's upper and work
//               directories, held by a flock on runs/NAME/lock while the
//               run's bsandbox lives
//
// A project is found like git finds a repository: the nearest directory at
// or above the current one that holds .bsandbox/format. All later access to
// the tree and the state goes through the two fds opened here, so mounts
// that a journaled run makes over the root's path do not redirect it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

inline constexpr char kStateDirName[] = ".bsandbox";
// In a journaled run's view the state directory is covered by an empty
// tmpfs holding only this file, which names the run (overlay_view.h).
inline constexpr char kRunMarker[] = "bsandbox-run";

struct Project {
  std::string root;   // absolute path of the root
  UniqueFd root_fd;   // the real tree (O_RDONLY | O_DIRECTORY)
  UniqueFd state_fd;  // ROOT/.bsandbox
  std::string state;  // its path, for messages
};

// Makes dir a project root; says what it did ("initialised ..." or
// "already a project root").
Result<std::string> init_project(const std::string& dir);
// The project containing dir, if any. A state directory that cannot be
// looked at (a symlink loop, an I/O error) is an error naming it, not "no
// project"; one in a directory the user may not search is none of theirs.
Result<std::optional<Project>> find_project(const std::string& dir);
// Inside a journaled run's view (where the journal is hidden, so
// find_project finds nothing): the root of the project it is a view of.
std::optional<std::string> run_view_of(const std::string& dir);

// Whose project it is. A project is its owner's: the user who owns its
// state directory (its root directory must be theirs too, or root's). That
// user controls every path inside, so anyone else acting there, above all
// root, could be made to act on files outside it; like git's
// safe.directory, bsandbox refuses another user's project unless
// trust_owner (--trust-owner). Trusted, root becomes the owner (uid, gid,
// groups; for the rest of the process) and works as the owner would, with
// the owner's rights and no more; another user works as itself.
Result<void> act_as_owner(const Project& p, bool trust_owner);
// The same for `init` in dir, which is not a project yet: refused if dir
// belongs to another user (but root).
Result<void> act_as_owner_of(const std::string& dir, bool trust_owner);

// An exclusive flock on ROOT/.bsandbox/lock, released on destruction. Waits
// for another bsandbox holding it (saying so once on stderr).
class ProjectLock {
 public:
  static Result<ProjectLock> take(const Project& p);
  ProjectLock(ProjectLock&&) = default;
  ProjectLock& operator=(ProjectLock&&) = default;

 private:
  explicit ProjectLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Work a crash left behind: an entry being applied, or runs whose bsandbox
// is gone. Call with the lock held.
struct Interrupted {
  std::optional<uint64_t> pending;
  std::vector<std::string> runs;  // names under runs/
  bool any() const { return pending || !runs.empty(); }
};
Result<Interrupted> find_interrupted(const Project& p);
// One line telling the user what is pending and to run `bsandbox recover`.
std::string interrupted_message(const Project& p, const Interrupted& i);

Result<void> set_pending(const Project& p, uint64_t id);
Result<void> clear_pending(const Project& p);

// A run's directory, runs/NAME, with upper/ and work/ for the overlay,
// locked for as long as this object lives.
class RunDir {
 public:
  static Result<RunDir> create(const Project& p);
  // Opens an interrupted run's directory (for recover).
  static Result<RunDir> open(const Project& p, const std::string& name);
  const std::string& name() const { return name_; }
  int fd() const { return dir_.get(); }
  std::string path(const Project& p) const;
  // Removes the directory (the overlay must be gone: its namespace ended).
  Result<void> remove(const Project& p);

 private:
  RunDir(std::string name, UniqueFd dir, UniqueFd lock)
      : name_(std::move(name)), dir_(std::move(dir)), lock_(std::move(lock)) {}
  std::string name_;
  UniqueFd dir_, lock_;
};

// Test hook: if $BSANDBOX_TEST_PAUSE names phase, say "bsandbox: paused at
// PHASE" on stderr and wait to be killed (the crash tests kill -9 here).
void pause_point(const char* phase);

}  // namespace bsandbox
