// traced_run.cpp: supervise, then turn the tree and the source's health
// into a record and its problems.
#include "sandbox/run/traced_run.h"

#include <cstring>

namespace bsandbox {

PriorAccess TracedRun::prior(const std::string& path) const {
  if (tree) return tree->prior(path);
  auto it = prior_map.find(path);
  return it == prior_map.end() ? PriorAccess{} : it->second;
}

Result<TracedRun> run_traced(EventSource& source, const std::vector<std::string>& argv,
                             const std::string& cwd, SuperviseOptions options) {
  TracedRun out;
  out.links = std::make_unique<SystemLinkReader>();
  out.tree = std::make_unique<ProcessTree>(*out.links);
  Clocks clocks = Clocks::measure();
  options.boot_to_wall = clocks.boot_to_wall;
  auto run = supervise(argv, source, *out.tree, cwd, options);
  if (!run) return tl::unexpected(run.error());

  if (run->exec_failure) {
    const ChildFailure& f = *run->exec_failure;
    if (f.stage == ChildFailure::kSeccomp)
      out.exec_error = "error: installing the io_uring filter failed: " + std::string(std::strerror(f.error));
    else if (f.stage == ChildFailure::kSetup)
      out.exec_error = "error: preparing the command (cgroup, working directory, identity) failed: " +
                       std::string(std::strerror(f.error));
    else if (f.error == ENOENT)
      out.exec_error = argv[0] + ": command not found";
    else
      out.exec_error = argv[0] + ": " + std::strerror(f.error);
  }
  out.stopped = run->stopped;

  SourceHealth sh = source.health();
  ProcessTree::Health th = out.tree->health();
  Record& rec = out.record;
  rec.backend = std::string(source.name());
  rec.argv = argv;
  rec.cwd = cwd;
  rec.start_ns = run->start_wall;
  rec.end_ns = run->end_wall;
  rec.exit_code = exit_code_from_wait_status(run->wait_status);
  rec.lost_events = sh.lost;
  rec.processes = out.tree->entries(clocks.boot_to_wall, run->end_boot);

  std::vector<std::string>& problems = out.problems;
  problems = sh.problems;
  if (sh.corrupt) problems.push_back(std::to_string(sh.corrupt) + " kernel records were corrupt");
  if (th.unresolved)
    problems.push_back(std::to_string(th.unresolved) + " accesses whose path could not be determined");
  if (th.strings_dropped) problems.push_back(std::to_string(th.strings_dropped) + " events too large to send whole");
  if (th.orphans) problems.push_back(std::to_string(th.orphans) + " processes whose parent was not seen");
  for (const auto& key : th.elf32)
    problems.push_back("process " + process_id(key) + " runs a 32-bit program, whose syscalls are not decoded");
  rec.complete = problems.empty() && sh.lost == 0;
  out.events = sh.delivered;
  out.detail = sh.detail;
  return out;
}

}  // namespace bsandbox
