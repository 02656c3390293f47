// metrics.h: bsandboxd's /metrics page (Prometheus text format).
//
// The agent fills a snapshot; format_metrics() writes it. Series are bounded:
// per-job series exist only for jobs running or queued (at most
// --max-jobs + --max-queued), labelled by job id and uid; the remote cache
// traffic that clients report has a series per uid that reported, at most
// CacheTrafficTable::kMaxUids of them and one uid="other".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/agent/cache_traffic.h"

namespace bsandbox {

struct AgentMetrics {
  uint32_t running = 0, queued = 0, max_jobs = 0;
  uint64_t finished = 0, refused = 0;
  uint64_t events = 0;            // delivered to runners, all jobs since start
  double events_per_second = 0;   // running jobs, last second
  uint64_t ring_bytes = 0;        // per job
  double uptime_seconds = 0;
  uint64_t drops_ring_full = 0, drops_untracked = 0, drops_too_big = 0, recursion_misses = 0;
  struct Program {
    std::string name;
    uint64_t run_ns = 0, runs = 0;
  };
  bool program_stats = false;  // the kernel counts run time (BPF_ENABLE_STATS)
  std::vector<Program> programs;
  struct Job {
    uint64_t id = 0;
    uint32_t uid = 0;
    bool running = false;
    uint64_t events = 0;
    double events_per_second = 0;
    uint64_t ring_fill = 0;
    uint64_t drops = 0;
  };
  std::vector<Job> jobs;
  std::vector<CacheTrafficTable::Row> remote_cache;  // reported by clients, per uid
};

std::string format_metrics(const AgentMetrics& m);

}  // namespace bsandbox
