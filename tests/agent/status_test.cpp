// status_test.cpp: what bsandboxd says of itself: the snapshot's counts
// (running before queued, events of running jobs added to the finished
// ones', finished jobs' drops kept), and the Status reply listing a caller's
// own jobs only (root sees all); the remote cache traffic clients reported,
// per uid in the snapshot and summed in the reply.
#include "sandbox/agent/status.h"

#include <doctest/doctest.h>

using namespace bsandbox;

namespace {

std::shared_ptr<Job> job_of(uid_t uid, uint64_t id, const char* argv0) {
  auto j = std::make_shared<Job>();
  j->uid = uid;
  j->id = id;
  j->submit.add_argv(argv0);
  return j;
}

struct Fixture {
  JobQueue jobs{JobShares{2, 4, 1, 2}};
  AgentTotals totals;
  std::shared_ptr<Job> a = job_of(1000, 1, "make"), b = job_of(1001, 2, "cargo"), c = job_of(1000, 3, "ninja");
  Fixture() {
    totals.max_jobs = 2;
    totals.finished = 5;
    totals.events_done = 100;
    totals.dropped.ring_full = 3;
    for (auto& j : {a, b, c}) jobs.push(j);
    jobs.started(jobs.take_next(), 10);  // a: uid 1000 at its share of 1
    jobs.started(jobs.take_next(), 20);  // b
    a->events = 40;
    a->rate = 4;
    b->events = 60;
    b->rate = 6;
  }
};

}  // namespace

TEST_CASE("the snapshot: running then queued, events of running jobs added, finished drops kept") {
  Fixture f;
  TracerReading tracer;
  tracer.ring_bytes = 1 << 20;
  AgentMetrics m = snapshot(f.totals, f.jobs, tracer, 12.5);
  CHECK(m.running == 2);
  CHECK(m.queued == 1);
  CHECK(m.finished == 5);
  CHECK(m.events == 200);
  CHECK(m.events_per_second == doctest::Approx(10));
  CHECK(m.drops_ring_full == 3);
  CHECK(m.ring_bytes == 1u << 20);
  REQUIRE(m.jobs.size() == 3);
  CHECK(m.jobs[0].id == 1);
  CHECK(m.jobs[1].id == 2);
  CHECK(m.jobs[2].id == 3);
  CHECK_FALSE(m.jobs[2].running);
}

TEST_CASE("the Status reply lists the caller's own jobs; root's lists all") {
  Fixture f;
  AgentMetrics m = snapshot(f.totals, f.jobs, TracerReading{}, 1);
  auto mine = status_reply(m, f.jobs, 1000, "limits", 7);
  REQUIRE(mine.has_status());
  CHECK(mine.status().running() == 2);  // the counts are everyone's
  CHECK(mine.status().queued() == 1);
  REQUIRE(mine.status().jobs_size() == 2);
  CHECK(mine.status().jobs(0).job() == 1);
  CHECK(mine.status().jobs(0).state() == "running");
  CHECK(mine.status().jobs(1).job() == 3);
  CHECK(mine.status().jobs(1).state() == "queued");
  CHECK(mine.status().jobs(1).argv(0) == "ninja");
  CHECK(status_reply(m, f.jobs, 1001, "limits", 7).status().jobs_size() == 1);
  CHECK(status_reply(m, f.jobs, 4242, "limits", 7).status().jobs_size() == 0);
  CHECK(status_reply(m, f.jobs, 0, "limits", 7).status().jobs_size() == 3);
  CHECK(mine.status().limits() == "limits");
}

TEST_CASE("describe_limits") {
  CHECK(describe_limits("cgroup v2 at /sys/fs/cgroup", true, 3600, 4096) ==
        "cgroup v2 at /sys/fs/cgroup; wall time 3600 s; 4096 processes");
  CHECK(describe_limits("none", false, 0, 4096) == "none; wall time unlimited; processes unlimited");
}

TEST_CASE("reported remote cache traffic: per uid in the snapshot, every uid's summed in the Status reply") {
  Fixture f;
  f.totals.remote_cache.add(1000, CacheTraffic{2, 1, 1, 500, 300, 0});
  f.totals.remote_cache.add(1001, CacheTraffic{3, 0, 0, 700, 0, 1, 2});
  AgentMetrics m = snapshot(f.totals, f.jobs, TracerReading{}, 1);
  REQUIRE(m.remote_cache.size() == 2);
  CHECK(m.remote_cache[0].uid == 1000u);
  CHECK(m.remote_cache[1].traffic.bytes_down == 700);
  auto r = status_reply(m, f.jobs, 1000, "limits", 7);
  REQUIRE(r.status().has_remote_cache());
  const agent::CacheTraffic& all = r.status().remote_cache();
  CHECK(all.hits() == 5);
  CHECK(all.misses() == 1);
  CHECK(all.uploads() == 1);
  CHECK(all.bytes_down() == 1200);
  CHECK(all.bytes_up() == 300);
  CHECK(all.errors() == 1);
  CHECK(all.prefetched() == 2);
}
