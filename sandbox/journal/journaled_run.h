// journaled_run.h: `bsandbox exec` inside a project: the steps before and
// after the command that make its writes a journal entry.
//
// begin(), with the project lock held: refuse if a crash left work pending;
// if this command (cwd relative to the root, argv, environment) ran before,
// roll that run back (an undo entry) unless --no-rollback, and collect what
// later runs changed so the command sees the tree as it was before them;
// create the run directory; then enter the overlay view (overlay_view.h).
// The lock is not held while the command runs, so independent commands can
// run side by side.
//
// finish(), after the whole tree has exited: save the draft entry in the run
// directory (so a crash from here on can still be committed by recover),
// take the lock, scan the upper directory and commit the changes
// (history.h), then remove the run directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sandbox/journal/history.h"
#include "sandbox/core/provenance.h"

namespace bsandbox {

struct JournalOptions {
  bool no_rollback = false;
  bool force = false;
  bool contain = false;
  bool quiet = false;
};

class JournaledRun {
 public:
  static Result<std::unique_ptr<JournaledRun>> begin(Project project, const std::vector<std::string>& argv,
                                                     const std::string& cwd, char** envp,
                                                     const JournalOptions& o);
  // Commits the run's writes; rec supplies times, exit code and the writes
  // made outside the root. Returns the entry.
  Result<JournalEntry> finish(const Record& rec);
  const Project& project() const { return *project_; }
  // A run that never reached finish() (bsandbox failed before or while
  // supervising) is discarded: its leftover processes killed, its upper
  // directory removed. The tree was never touched.
  ~JournaledRun();
  JournaledRun(const JournaledRun&) = delete;
  JournaledRun& operator=(const JournaledRun&) = delete;

 private:
  JournaledRun(std::unique_ptr<Project> p, History h, RunDir run)
      : project_(std::move(p)), history_(std::move(h)), run_(std::move(run)) {}

  std::unique_ptr<Project> project_;
  History history_;
  RunDir run_;
  JournalEntry draft_;
  JournalOptions options_;
  bool settled_ = false;  // finish() ran: committed, or kept for recover
};

// The paths of rec written, created or deleted outside root, sorted: not
// /dev, /proc or /sys, and not temporaries the run both created and removed.
std::vector<std::string> writes_outside(const Record& rec, const std::string& root);

}  // namespace bsandbox
