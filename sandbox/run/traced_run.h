// traced_run.h: one command run under a backend, from argv to a TracedRun.
//
// What `bsandbox exec` does between choosing a backend and writing the
// record, shared with bsandboxd, whose job runners do the same for their
// callers: supervise the command, then build the record (the trace, and the
// facts the supervision knows: set_facts()) and list, one line each,
// whatever made it incomplete (completeness(), run_result.h).
#pragma once

#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/core/event_source.h"
#include "sandbox/run/run_result.h"
#include "sandbox/run/supervisor.h"

namespace bsandbox {

// options.boot_to_wall is measured here. for_cache: the caller stores the
// run in its cache, so the record says cache "miss" and the first accesses
// are kept (they cost a copy of every path name otherwise not needed).
Result<TracedRun> run_traced(EventSource& source, const std::vector<std::string>& argv, const std::string& cwd,
                             SuperviseOptions options, bool for_cache);

// The line bsandbox prints when the command could not be started, or empty.
std::string describe_exec_failure(const std::optional<ChildFailure>& failure, const std::string& command);

}  // namespace bsandbox
