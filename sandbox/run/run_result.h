// run_result.h: what a traced run yields, in one shape wherever it ran.
//
// A command is traced here (run_traced), by bsandboxd for its caller (the
// agent ships a TracedRun in its Finished reply), or by the tracer of a
// build it runs inside (the tracer service answers a wrapper with its
// subtree). Each of them hands back a TracedRun: the record, whatever made
// it incomplete, and the first accesses the cache keys on, as they are.
//
// A record has two kinds of content: what the trace saw (processes,
// backend, lost events, complete) and what only the one who started the
// command knows (RunFacts: argv, cwd, times, exit code, how the cache and
// the agent took part). The facts go in through set_facts() as the record
// is built, never patched in later.
//
// The completeness rule (completeness()) is written here once, for a whole
// run and for a subtree.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sandbox/core/event_source.h"
#include "sandbox/core/ops.h"
#include "sandbox/core/process_tree.h"
#include "sandbox/core/provenance.h"

namespace bsandbox {

// What a run learnt of each path's state from before it (PriorAccess, per
// path): the cache keys on this, never on what the run saw of its own doing.
// Callable as the cache's PriorOf (std::cref(first_accesses)).
class FirstAccesses {
 public:
  FirstAccesses() = default;
  explicit FirstAccesses(std::unordered_map<std::string, PriorAccess> by_path) : by_path_(std::move(by_path)) {}
  // Every path the whole tree accessed.
  static FirstAccesses of(const ProcessTree& tree);

  // {} for a path never accessed.
  PriorAccess operator()(const std::string& path) const;
  size_t size() const { return by_path_.size(); }
  bool empty() const { return by_path_.empty(); }

  // The wire form, the same in every message that carries it (the agent's
  // Finished, the tracer service's SubtreeReply): repeated prior_paths and
  // priors (PriorAccess::pack()), pairwise.
  template <class Message>
  void write_to(Message& message) const {
    for (const auto& [path, access] : by_path_) {
      message.add_prior_paths(path);
      message.add_priors(access.pack());
    }
  }
  template <class Message>
  static FirstAccesses read_from(const Message& message) {
    FirstAccesses out;
    for (int i = 0; i < message.prior_paths_size() && i < message.priors_size(); ++i)
      out.by_path_.emplace(message.prior_paths(i), PriorAccess::unpack(message.priors(i)));
    return out;
  }

 private:
  std::unordered_map<std::string, PriorAccess> by_path_;
};

// What the one who started the command knows of it, which no trace tells.
struct RunFacts {
  std::vector<std::string> argv;  // as given
  std::string cwd;
  int64_t start_ns = 0;  // wall clock
  int64_t end_ns = 0;
  int exit_code = 0;  // exit_code_from_wait_status()
  std::string cache;  // "hit", "miss" (the run is stored), or empty (no cache)
  std::string agent;  // the bsandboxd socket that ran it, or empty
};
// The one place a record's facts are written.
void set_facts(Record& record, RunFacts facts);
// The facts a record holds (to add the one a receiver knows: the agent).
RunFacts facts_of(const Record& record);

struct TracedRun {
  Record record;
  std::vector<std::string> problems;  // why the record is incomplete, one line each
  FirstAccesses first_accesses;       // when asked for (a run the cache stores)
  std::string exec_error;             // "CMD: command not found", or empty
  std::string stopped;                // why the tree was killed early, or empty
  uint64_t events = 0;                // delivered by the backend
  std::string detail;                 // the backend's counts, for -v (not shipped)
};

// The completeness rule. A whole run is incomplete when the backend lost or
// could not decode events, when the tree could not resolve a path or had
// a string cut short, when a process's parent was never seen, or when a
// process ran a 32-bit program.
//
// A subtree (the tracer service's answer, asked while the rest of the tree
// still runs) is judged by the same rule without the orphans: an orphan is
// a process whose fork event has not arrived, and mid-run that is most often
// a fork on another CPU not yet read, in a part of the tree the subtree does
// not hold (the subtree is gathered through fork links, so an orphan is never
// in it). A fork of the subtree's own that was dropped is a lost event, which
// does count.
enum class Extent { kWholeRun, kSubtree };
struct Completeness {
  std::vector<std::string> problems;
  bool complete = true;
};
Completeness completeness(const SourceHealth& source, const ProcessTree::Health& tree, Extent extent);

}  // namespace bsandbox
