// metrics_test.cpp: bsandboxd's /metrics text from a snapshot (the remote
// cache traffic clients reported among it, per uid).
#include "sandbox/agent/metrics.h"

#include <doctest/doctest.h>

using namespace bsandbox;

TEST_CASE("every family once, per-job series only for live jobs, drops by cause") {
  AgentMetrics m;
  m.running = 1;
  m.queued = 1;
  m.max_jobs = 4;
  m.finished = 7;
  m.events = 1234;
  m.events_per_second = 250.5;
  m.drops_ring_full = 3;
  m.programs = {{"bs_sys_exit", 1500000000, 42}};
  m.program_stats = true;
  AgentMetrics::Job running{11, 1000, true, 99, 12.5, 4096, 2};
  AgentMetrics::Job queued{12, 1001, false, 0, 0, 0, 0};
  m.jobs = {running, queued};
  std::string t = format_metrics(m);
  auto has = [&](const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  CHECK(has("bsandboxd_jobs_running 1"));
  CHECK(has("bsandboxd_jobs_queued 1"));
  CHECK(has("bsandboxd_jobs_finished_total 7"));
  CHECK(has("# TYPE bsandboxd_jobs_finished_total counter"));
  CHECK(has("bsandboxd_events_per_second 250.5"));
  CHECK(has("bsandboxd_drops_total{cause=\"ring_full\"} 3"));
  CHECK(has("bsandboxd_drops_total{cause=\"recursion\"} 0"));
  CHECK(has("bsandboxd_bpf_program_run_seconds_total{program=\"bs_sys_exit\"} 1.5"));
  CHECK(has("bsandboxd_bpf_program_runs_total{program=\"bs_sys_exit\"} 42"));
  CHECK(has("bsandboxd_job_events{job=\"11\",uid=\"1000\"} 99"));
  CHECK(has("bsandboxd_job_events{job=\"12\",uid=\"1001\"} 0"));
  CHECK(has("bsandboxd_job_ring_fill_bytes{job=\"11\",uid=\"1000\"} 4096"));
  CHECK(t.find("bsandboxd_job_ring_fill_bytes{job=\"12\"") == std::string::npos);  // queued: no ring yet
  size_t families = 0;
  for (size_t at = 0; (at = t.find("# TYPE ", at)) != std::string::npos; ++at) ++families;
  CHECK(families == 24);
  // The remote cache families are there with no uid reported yet.
  CHECK(has("# TYPE bsandboxd_remote_cache_hits_total counter"));
  CHECK(t.find("bsandboxd_remote_cache_hits_total{") == std::string::npos);
}

TEST_CASE("remote cache traffic: seven counters per uid that reported, and the other row") {
  AgentMetrics m;
  m.remote_cache = {{1000, CacheTraffic{3, 4, 5, 6000, 7000, 1, 8}}, {std::nullopt, CacheTraffic{1, 0, 0, 0, 0, 0, 0}}};
  std::string t = format_metrics(m);
  auto has = [&](const std::string& line) { return t.find(line + "\n") != std::string::npos; };
  CHECK(has("# TYPE bsandboxd_remote_cache_bytes_down_total counter"));
  CHECK(has("bsandboxd_remote_cache_hits_total{uid=\"1000\"} 3"));
  CHECK(has("bsandboxd_remote_cache_misses_total{uid=\"1000\"} 4"));
  CHECK(has("bsandboxd_remote_cache_uploads_total{uid=\"1000\"} 5"));
  CHECK(has("bsandboxd_remote_cache_bytes_down_total{uid=\"1000\"} 6000"));
  CHECK(has("bsandboxd_remote_cache_bytes_up_total{uid=\"1000\"} 7000"));
  CHECK(has("bsandboxd_remote_cache_errors_total{uid=\"1000\"} 1"));
  CHECK(has("bsandboxd_remote_cache_prefetched_total{uid=\"1000\"} 8"));
  CHECK(has("bsandboxd_remote_cache_hits_total{uid=\"other\"} 1"));
  CHECK(has("bsandboxd_remote_cache_errors_total{uid=\"other\"} 0"));
}
