// status.cpp: see status.h. Jobs are listed running first, then queued, in
// the order JobQueue holds them; status_reply relies on snapshot having
// listed them so, pairing each job with its metrics by position.
#include "sandbox/agent/status.h"

namespace bsandbox {
namespace {

// Running, then queued: the order both snapshot and status_reply use.
std::vector<std::shared_ptr<Job>> listed(const JobQueue& jobs) {
  std::vector<std::shared_ptr<Job>> out(jobs.running().begin(), jobs.running().end());
  out.insert(out.end(), jobs.queued().begin(), jobs.queued().end());
  return out;
}

}  // namespace

TracerReading read_tracer(const EbpfTracer& tracer) {
  TracerReading r;
  r.ring_bytes = tracer.ring_bytes();
  r.recursion_misses = tracer.recursion_misses();
  for (const auto& p : tracer.program_stats()) r.programs.push_back({p.name, p.run_ns, p.runs});
  r.slot = [&tracer](const EbpfJob& job) {
    return SlotReading{tracer.counters(job.slot), EbpfTracer::ring_fill(job.ring.get(), tracer.ring_bytes())};
  };
  return r;
}

AgentMetrics snapshot(const AgentTotals& totals, const JobQueue& jobs, const TracerReading& tracer,
                      double uptime_seconds) {
  AgentMetrics m;
  m.running = static_cast<uint32_t>(jobs.running().size());
  m.queued = static_cast<uint32_t>(jobs.queued().size());
  m.max_jobs = totals.max_jobs;
  m.finished = totals.finished;
  m.refused = totals.refused;
  m.ring_bytes = tracer.ring_bytes;
  m.uptime_seconds = uptime_seconds;
  m.events = totals.events_done;
  m.drops_ring_full = totals.dropped.ring_full;
  m.drops_untracked = totals.dropped.untracked;
  m.drops_too_big = totals.dropped.too_big;
  m.recursion_misses = tracer.recursion_misses;
  m.program_stats = totals.program_stats;
  m.programs = tracer.programs;
  m.remote_cache = totals.remote_cache.rows();
  for (const auto& j : listed(jobs)) {
    AgentMetrics::Job job;
    job.id = j->id;
    job.uid = j->uid;
    job.running = j->state == Job::kRunning;
    job.events = j->events;
    job.events_per_second = j->rate;
    if (j->ebpf && tracer.slot) {
      SlotReading s = tracer.slot(*j->ebpf);
      job.drops = s.counters.ring_full + s.counters.untracked;
      job.ring_fill = s.ring_fill;
      m.drops_ring_full += s.counters.ring_full;
      m.drops_untracked += s.counters.untracked;
      m.drops_too_big += s.counters.too_big;
    }
    if (job.running) {
      m.events += j->events;
      m.events_per_second += j->rate;
    }
    m.jobs.push_back(job);
  }
  return m;
}

agent::Reply status_reply(const AgentMetrics& m, const JobQueue& jobs, uid_t caller, const std::string& limits,
                          int64_t uptime_ns) {
  agent::Reply r;
  agent::Status* s = r.mutable_status();
  s->set_running(m.running);
  s->set_queued(m.queued);
  s->set_max_jobs(m.max_jobs);
  s->set_finished(m.finished);
  s->set_ring_bytes(m.ring_bytes);
  s->set_uptime_ns(uptime_ns);
  s->set_events_per_second(m.events_per_second);
  s->set_drops(m.drops_ring_full + m.drops_untracked);
  s->set_limits(limits);
  CacheTraffic remote;
  for (const auto& row : m.remote_cache) remote += row.traffic;
  *s->mutable_remote_cache() = to_message(remote);
  auto all = listed(jobs);
  for (size_t i = 0; i < all.size() && i < m.jobs.size(); ++i) {
    const Job& j = *all[i];
    const AgentMetrics::Job& mj = m.jobs[i];
    if (caller != 0 && caller != j.uid) continue;  // only the caller's own
    agent::JobStatus* js = s->add_jobs();
    js->set_job(j.id);
    js->set_uid(j.uid);
    js->set_state(mj.running ? "running" : "queued");
    for (const auto& a : j.submit.argv()) js->add_argv(a);
    js->set_since_ns(j.since_ns);
    js->set_events(mj.events);
    js->set_events_per_second(mj.events_per_second);
    js->set_ring_fill(mj.ring_fill);
    js->set_drops(mj.drops);
  }
  return r;
}

std::string describe_limits(const std::string& cgroups, bool can_limit_pids, unsigned time_limit_s,
                            unsigned max_processes) {
  return cgroups + "; wall time " + (time_limit_s ? std::to_string(time_limit_s) + " s" : std::string("unlimited")) +
         "; " +
         (max_processes && can_limit_pids ? std::to_string(max_processes) + " processes"
                                          : std::string("processes unlimited"));
}

}  // namespace bsandbox
