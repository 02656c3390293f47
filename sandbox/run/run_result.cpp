// run_result.cpp: see run_result.h. The problems are worded for the
// "warning: record incomplete: " lines bsandbox prints.
#include "sandbox/run/run_result.h"

namespace bsandbox {

FirstAccesses FirstAccesses::of(const ProcessTree& tree) {
  FirstAccesses out;
  for (auto& [path, access] : tree.all_priors()) out.by_path_.emplace(std::move(path), access);
  return out;
}

PriorAccess FirstAccesses::operator()(const std::string& path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? PriorAccess{} : it->second;
}

void set_facts(Record& record, RunFacts facts) {
  record.argv = std::move(facts.argv);
  record.cwd = std::move(facts.cwd);
  record.start_ns = facts.start_ns;
  record.end_ns = facts.end_ns;
  record.exit_code = facts.exit_code;
  record.cache = std::move(facts.cache);
  record.agent = std::move(facts.agent);
}

RunFacts facts_of(const Record& record) {
  return RunFacts{record.argv,      record.cwd,   record.start_ns, record.end_ns,
                  record.exit_code, record.cache, record.agent};
}

Completeness completeness(const SourceHealth& source, const ProcessTree::Health& tree, Extent extent) {
  Completeness out;
  std::vector<std::string>& problems = out.problems;
  problems = source.problems;
  if (source.corrupt) problems.push_back(std::to_string(source.corrupt) + " kernel records were corrupt");
  if (tree.unresolved)
    problems.push_back(std::to_string(tree.unresolved) + " accesses whose path could not be determined");
  if (tree.strings_dropped)
    problems.push_back(std::to_string(tree.strings_dropped) + " events too large to send whole");
  if (tree.orphans && extent == Extent::kWholeRun)
    problems.push_back(std::to_string(tree.orphans) + " processes whose parent was not seen");
  for (const auto& key : tree.elf32)
    problems.push_back("process " + process_id(key) + " runs a 32-bit program, whose syscalls are not decoded");
  out.complete = problems.empty() && source.lost == 0;
  return out;
}

}  // namespace bsandbox
