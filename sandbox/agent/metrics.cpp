// metrics.cpp: the snapshot as Prometheus text (base/prometheus.h writes
// it). Counts are integers; rates and seconds are "%.6g".
#include "sandbox/agent/metrics.h"

#include <cstdio>

#include "sandbox/base/prometheus.h"

namespace bsandbox {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string format_metrics(const AgentMetrics& m) {
  prometheus::Writer w;
  auto one = [&](const char* name, const char* type, const char* help, const std::string& value) {
    w.family(name, type, help);
    w.sample(name, "", value);
  };
  one("bsandboxd_jobs_running", "gauge", "Jobs running now.", std::to_string(m.running));
  one("bsandboxd_jobs_queued", "gauge", "Jobs waiting for a free slot.", std::to_string(m.queued));
  one("bsandboxd_jobs_max", "gauge", "Jobs that may run at once (--max-jobs).", std::to_string(m.max_jobs));
  one("bsandboxd_jobs_finished_total", "counter", "Jobs that ran and ended, since the agent started.",
      std::to_string(m.finished));
  one("bsandboxd_jobs_refused_total", "counter", "Requests refused (malformed, queue full, shutting down).",
      std::to_string(m.refused));
  one("bsandboxd_events_total", "counter", "Kernel events delivered to job runners.", std::to_string(m.events));
  one("bsandboxd_events_per_second", "gauge", "Events per second of the running jobs, last second.",
      number(m.events_per_second));
  one("bsandboxd_ring_buffer_bytes", "gauge", "Size of each job's ring buffer.", std::to_string(m.ring_bytes));
  w.family("bsandboxd_drops_total", "counter", "Events the kernel side dropped or could not make, by cause.");
  for (auto [cause, n] : {std::pair{"ring_full", m.drops_ring_full}, std::pair{"untracked", m.drops_untracked},
                          std::pair{"too_big", m.drops_too_big}, std::pair{"recursion", m.recursion_misses}})
    w.sample("bsandboxd_drops_total", prometheus::labels({{"cause", cause}}), std::to_string(n));
  one("bsandboxd_uptime_seconds", "gauge", "Seconds since the agent started.", number(m.uptime_seconds));
  one("bsandboxd_bpf_program_stats_enabled", "gauge",
      "1 if the kernel counts BPF program run time (bsandboxd --bpf-stats, or kernel.bpf_stats_enabled).",
      m.program_stats ? "1" : "0");
  w.family("bsandboxd_bpf_program_run_seconds_total", "counter", "Time the kernel spent in each BPF program.");
  for (const auto& p : m.programs)
    w.sample("bsandboxd_bpf_program_run_seconds_total", prometheus::labels({{"program", p.name}}),
             number(static_cast<double>(p.run_ns) / 1e9));
  w.family("bsandboxd_bpf_program_runs_total", "counter", "Runs of each BPF program.");
  for (const auto& p : m.programs)
    w.sample("bsandboxd_bpf_program_runs_total", prometheus::labels({{"program", p.name}}), std::to_string(p.runs));
  // Per job: queued jobs have events only.
  auto per_job = [&](const char* name, const char* help, bool queued_too, auto value) {
    w.family(name, "gauge", help);
    for (const auto& j : m.jobs)
      if (j.running || queued_too)
        w.sample(name, prometheus::labels({{"job", std::to_string(j.id)}, {"uid", std::to_string(j.uid)}}), value(j));
  };
  using Job = AgentMetrics::Job;
  per_job("bsandboxd_job_events", "Events delivered so far, per running or queued job.", true,
          [](const Job& j) { return std::to_string(j.events); });
  per_job("bsandboxd_job_events_per_second", "Events per second, per running job.", false,
          [](const Job& j) { return number(j.events_per_second); });
  per_job("bsandboxd_job_ring_fill_bytes", "Bytes waiting in the job's ring buffer.", false,
          [](const Job& j) { return std::to_string(j.ring_fill); });
  per_job("bsandboxd_job_drops", "Events dropped so far, per running job.", false,
          [](const Job& j) { return std::to_string(j.drops); });
  // Per uid that reported: what its clients said of their remote cache.
  using Row = CacheTrafficTable::Row;
  auto per_uid = [&](const char* name, const char* help, uint64_t CacheTraffic::*count) {
    w.family(name, "counter", help);
    for (const Row& r : m.remote_cache)
      w.sample(name, prometheus::labels({{"uid", r.uid ? std::to_string(*r.uid) : "other"}}),
               std::to_string(r.traffic.*count));
  };
  per_uid("bsandboxd_remote_cache_hits_total",
          "Remote cache lookups the server answered with an entry, as each uid's clients reported them.",
          &CacheTraffic::hits);
  per_uid("bsandboxd_remote_cache_misses_total", "Remote cache lookups the server had nothing for, per uid.",
          &CacheTraffic::misses);
  per_uid("bsandboxd_remote_cache_uploads_total", "Entries uploaded to the remote cache, per uid.",
          &CacheTraffic::uploads);
  per_uid("bsandboxd_remote_cache_bytes_down_total", "Bytes fetched from the remote cache, per uid.",
          &CacheTraffic::bytes_down);
  per_uid("bsandboxd_remote_cache_bytes_up_total", "Bytes sent to the remote cache, per uid.",
          &CacheTraffic::bytes_up);
  per_uid("bsandboxd_remote_cache_errors_total",
          "Remote cache requests that failed (server down, slow, refusing or answering garbage), per uid.",
          &CacheTraffic::errors);
  per_uid("bsandboxd_remote_cache_prefetched_total",
          "Entries a build's manifest brought ahead into the local cache (hits on them count as local), per uid.",
          &CacheTraffic::prefetched);
  return w.take();
}

}  // namespace bsandbox
