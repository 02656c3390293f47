// status.h: what bsandboxd says of itself, to /metrics (a snapshot that
// metrics.h writes as Prometheus text) and to `bsandbox agent status` (the
// Status reply).
//
// A snapshot is taken when asked, from three things: what the agent counted
// since it started (AgentTotals: jobs finished, requests refused, events and
// drops of finished jobs, the remote cache traffic clients reported), the jobs it holds now (JobQueue: running, then
// queued), and what the tracer tells (TracerReading: its ring size, program
// run times and, per slot, drops and ring fill). The tracer is read through
// functions so that tests make up what it says. The Status reply is the
// snapshot with the jobs listed, a caller seeing only its own (root sees all).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/agent/agent.pb.h"
#include "sandbox/agent/cache_traffic.h"
#include "sandbox/agent/metrics.h"
#include "sandbox/agent/queue.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"

namespace bsandbox {

// What the agent counted since it started.
struct AgentTotals {
  uint32_t max_jobs = 0;
  uint64_t finished = 0, refused = 0;
  uint64_t events_done = 0;  // delivered to finished jobs
  EbpfJobCounters dropped;   // of finished jobs, by cause
  bool program_stats = false;
  CacheTrafficTable remote_cache;  // what clients reported, per uid
};

// What the tracer tells of one job's slot.
struct SlotReading {
  EbpfJobCounters counters;
  uint64_t ring_fill = 0;  // bytes waiting in its ring
};

struct TracerReading {
  uint64_t ring_bytes = 0, recursion_misses = 0;
  std::vector<AgentMetrics::Program> programs;
  std::function<SlotReading(const EbpfJob&)> slot;
};

// The agent's tracer, read now (its slots when snapshot asks).
TracerReading read_tracer(const EbpfTracer& tracer);

// The /metrics snapshot: totals plus the jobs held now (drops of running
// jobs counted in; events and rates of running ones, not queued ones).
AgentMetrics snapshot(const AgentTotals& totals, const JobQueue& jobs, const TracerReading& tracer,
                      double uptime_seconds);

// The Status reply to caller, from a snapshot of jobs (m.jobs in the order
// snapshot lists them: running, then queued); its remote cache counts are
// every uid's together.
agent::Reply status_reply(const AgentMetrics& m, const JobQueue& jobs, uid_t caller, const std::string& limits,
                          int64_t uptime_ns);

// "v2 ... (grouping, cgroup.kill); wall time 3600 s; 4096 processes".
std::string describe_limits(const std::string& cgroups, bool can_limit_pids, unsigned time_limit_s,
                            unsigned max_processes);

}  // namespace bsandbox
