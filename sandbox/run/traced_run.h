// traced_run.h: one command run under a backend, from argv to a record.
//
// What `bsandbox exec` does between choosing a backend and writing the
// record, shared with bsandboxd, whose job runners do the same for their
// callers: supervise the command, then build the record and list, one line
// each, whatever made it incomplete.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sandbox/core/event_source.h"
#include "sandbox/core/ops.h"
#include "sandbox/core/process_tree.h"
#include "sandbox/core/provenance.h"
#include "sandbox/run/supervisor.h"
#include "sandbox/core/symlinks.h"

namespace bsandbox {

struct TracedRun {
  Record record;                      // all but the cache and agent fields
  std::vector<std::string> problems;  // why the record is incomplete
  std::string exec_error;             // "CMD: command not found", or empty
  std::string stopped;                // why the tree was killed early, or empty
  uint64_t events = 0;                // delivered by the backend
  std::string detail;                 // the backend's counts, for -v

  // What the run learnt of path's state from before it (the cache keys on
  // it): from the process tree here, from prior_map when the run was
  // elsewhere (bsandboxd).
  PriorAccess prior(const std::string& path) const;
  std::unique_ptr<SystemLinkReader> links;
  std::unique_ptr<ProcessTree> tree;
  std::unordered_map<std::string, PriorAccess> prior_map;
};

// options.boot_to_wall is measured here.
Result<TracedRun> run_traced(EventSource& source, const std::vector<std::string>& argv,
                             const std::string& cwd, SuperviseOptions options);

}  // namespace bsandbox
