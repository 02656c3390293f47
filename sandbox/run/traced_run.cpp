// traced_run.cpp: supervise, then turn the tree and the source's health
// into a record and its problems.
#include "sandbox/run/traced_run.h"

#include <cstring>

#include "sandbox/core/symlinks.h"

namespace bsandbox {

std::string describe_exec_failure(const std::optional<ChildFailure>& failure, const std::string& command) {
  if (!failure) return "";
  const ChildFailure& f = *failure;
  if (f.stage == ChildFailure::kSeccomp)
    return "error: installing the io_uring filter failed: " + std::string(std::strerror(f.error));
  if (f.stage == ChildFailure::kSetup)
    return "error: preparing the command (cgroup, working directory, identity) failed: " +
           std::string(std::strerror(f.error));
  if (f.error == ENOENT) return command + ": command not found";
  return command + ": " + std::strerror(f.error);
}

Result<TracedRun> run_traced(EventSource& source, const std::vector<std::string>& argv, const std::string& cwd,
                             SuperviseOptions options, bool for_cache) {
  SystemLinkReader links;
  ProcessTree tree(links);
  Clocks clocks = Clocks::measure();
  options.boot_to_wall = clocks.boot_to_wall;
  auto run = supervise(argv, source, tree, cwd, options);
  if (!run) return tl::unexpected(run.error());

  TracedRun out;
  out.exec_error = describe_exec_failure(run->exec_failure, argv[0]);
  out.stopped = run->stopped;
  SourceHealth sh = source.health();
  Completeness judged = completeness(sh, tree.health(), Extent::kWholeRun);
  Record& rec = out.record;
  rec.backend = std::string(source.name());
  rec.lost_events = sh.lost;
  rec.complete = judged.complete;
  rec.processes = tree.entries(clocks.boot_to_wall, run->end_boot);
  set_facts(rec, RunFacts{argv, cwd, run->start_wall, run->end_wall, exit_code_from_wait_status(run->wait_status),
                          for_cache ? "miss" : "", ""});
  out.problems = std::move(judged.problems);
  if (for_cache) out.first_accesses = FirstAccesses::of(tree);
  out.events = sh.delivered;
  out.detail = sh.detail;
  return out;
}

}  // namespace bsandbox
