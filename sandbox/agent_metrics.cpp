// agent_metrics.cpp: the snapshot as Prometheus text.
#include "sandbox/agent_metrics.h"

#include <cstdio>

namespace bsandbox {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + value + "\n";
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string format_metrics(const AgentMetrics& m) {
  Writer w;
  w.family("bsandboxd_jobs_running", "gauge", "Jobs running now.");
  w.sample("bsandboxd_jobs_running", "", std::to_string(m.running));
  w.family("bsandboxd_jobs_queued", "gauge", "Jobs waiting for a free slot.");
  w.sample("bsandboxd_jobs_queued", "", std::to_string(m.queued));
  w.family("bsandboxd_jobs_max", "gauge", "Jobs that may run at once (--max-jobs).");
  w.sample("bsandboxd_jobs_max", "", std::to_string(m.max_jobs));
  w.family("bsandboxd_jobs_finished_total", "counter", "Jobs that ran and ended, since the agent started.");
  w.sample("bsandboxd_jobs_finished_total", "", std::to_string(m.finished));
  w.family("bsandboxd_jobs_refused_total", "counter", "Requests refused (malformed, queue full, shutting down).");
  w.sample("bsandboxd_jobs_refused_total", "", std::to_string(m.refused));
  w.family("bsandboxd_events_total", "counter", "Kernel events delivered to job runners.");
  w.sample("bsandboxd_events_total", "", std::to_string(m.events));
  w.family("bsandboxd_events_per_second", "gauge", "Events per second of the running jobs, last second.");
  w.sample("bsandboxd_events_per_second", "", number(m.events_per_second));
  w.family("bsandboxd_ring_buffer_bytes", "gauge", "Size of each job's ring buffer.");
  w.sample("bsandboxd_ring_buffer_bytes", "", std::to_string(m.ring_bytes));
  w.family("bsandboxd_drops_total", "counter", "Events the kernel side dropped or could not make, by cause.");
  w.sample("bsandboxd_drops_total", "cause=\"ring_full\"", std::to_string(m.drops_ring_full));
  w.sample("bsandboxd_drops_total", "cause=\"untracked\"", std::to_string(m.drops_untracked));
  w.sample("bsandboxd_drops_total", "cause=\"too_big\"", std::to_string(m.drops_too_big));
  w.sample("bsandboxd_drops_total", "cause=\"recursion\"", std::to_string(m.recursion_misses));
  w.family("bsandboxd_uptime_seconds", "gauge", "Seconds since the agent started.");
  w.sample("bsandboxd_uptime_seconds", "", number(m.uptime_seconds));
  w.family("bsandboxd_bpf_program_stats_enabled", "gauge",
           "1 if the kernel counts BPF program run time (bsandboxd --bpf-stats, or kernel.bpf_stats_enabled).");
  w.sample("bsandboxd_bpf_program_stats_enabled", "", m.program_stats ? "1" : "0");
  w.family("bsandboxd_bpf_program_run_seconds_total", "counter", "Time the kernel spent in each BPF program.");
  for (const auto& p : m.programs)
    w.sample("bsandboxd_bpf_program_run_seconds_total", "program=\"" + p.name + "\"", number(static_cast<double>(p.run_ns) / 1e9));
  w.family("bsandboxd_bpf_program_runs_total", "counter", "Runs of each BPF program.");
  for (const auto& p : m.programs)
    w.sample("bsandboxd_bpf_program_runs_total", "program=\"" + p.name + "\"", std::to_string(p.runs));
  w.family("bsandboxd_job_events", "gauge", "Events delivered so far, per running or queued job.");
  for (const auto& j : m.jobs)
    w.sample("bsandboxd_job_events", "job=\"" + std::to_string(j.id) + "\",uid=\"" + std::to_string(j.uid) + "\"",
             std::to_string(j.events));
  w.family("bsandboxd_job_events_per_second", "gauge", "Events per second, per running job.");
  for (const auto& j : m.jobs)
    if (j.running)
      w.sample("bsandboxd_job_events_per_second", "job=\"" + std::to_string(j.id) + "\",uid=\"" + std::to_string(j.uid) + "\"",
               number(j.events_per_second));
  w.family("bsandboxd_job_ring_fill_bytes", "gauge", "Bytes waiting in the job's ring buffer.");
  for (const auto& j : m.jobs)
    if (j.running)
      w.sample("bsandboxd_job_ring_fill_bytes", "job=\"" + std::to_string(j.id) + "\",uid=\"" + std::to_string(j.uid) + "\"",
               std::to_string(j.ring_fill));
  w.family("bsandboxd_job_drops", "gauge", "Events dropped so far, per running job.");
  for (const auto& j : m.jobs)
    if (j.running)
      w.sample("bsandboxd_job_drops", "job=\"" + std::to_string(j.id) + "\",uid=\"" + std::to_string(j.uid) + "\"",
               std::to_string(j.drops));
  return w.take();
}

}  // namespace bsandbox
