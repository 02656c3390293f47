// queue_test.cpp: the job queue with its shares: which waiting job starts
// next, what is refused, what a caller leaving or a job ending frees, and a
// job's event rate from its runner's progress.
#include "sandbox/agent/queue.h"

#include <doctest/doctest.h>

using namespace bsandbox;

namespace {

std::shared_ptr<Job> job_of(uid_t uid, uint64_t id) {
  auto j = std::make_shared<Job>();
  j->uid = uid;
  j->id = id;
  return j;
}

// Two slots, one per user running, two per user waiting, four waiting in all.
JobShares small() { return JobShares{2, 4, 1, 2}; }

}  // namespace

TEST_CASE("a freed slot goes to the oldest waiting job whose user is below its share") {
  JobQueue q(small());
  auto a1 = job_of(1000, 1), a2 = job_of(1000, 2), b1 = job_of(2000, 3);
  q.push(a1);
  q.push(a2);
  q.push(b1);
  CHECK(q.take_next() == a1);
  q.started(a1, 10);
  CHECK(q.take_next() == b1);  // a2 is older, but uid 1000 is at its share
  q.started(b1, 20);
  CHECK(q.take_next() == nullptr);  // both slots taken
  CHECK(q.queued().size() == 1);
  q.forget(a1);  // a1 ended
  CHECK(q.take_next() == a2);
  CHECK(q.queued().empty());
}

TEST_CASE("started: the job runs from then, counted as running") {
  JobQueue q(small());
  auto j = job_of(1000, 7);
  q.push(j);
  CHECK(j->state == Job::kQueued);
  REQUIRE(q.take_next() == j);
  q.started(j, 123);
  CHECK(j->state == Job::kRunning);
  CHECK(j->since_ns == 123);
  CHECK(j->rate_at_ns == 123);
  CHECK(q.running().count(j) == 1);
  q.forget(j);
  CHECK(q.running().empty());
}

TEST_CASE("admit: a job that can start is taken; one that would wait needs room in the queue") {
  JobQueue q(small());
  CHECK(q.admit(1000));
  CHECK_FALSE(q.would_wait(1000));
  auto a1 = job_of(1000, 1);
  q.push(a1);
  q.started(q.take_next(), 1);
  CHECK(q.would_wait(1000));  // at its share of running jobs
  CHECK_FALSE(q.would_wait(2000));
  q.push(job_of(1000, 2));
  q.push(job_of(1000, 3));
  auto refused = q.admit(1000);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "uid 1000 has 2 jobs waiting, the most one user may (bsandboxd --max-queued-per-user)");
  CHECK(q.admit(2000));  // another user still may
}

TEST_CASE("admit: a full queue refuses everyone whose job would wait") {
  JobQueue q(JobShares{1, 2, 1, 2});
  q.push(job_of(1000, 1));
  q.started(q.take_next(), 1);
  q.push(job_of(2000, 2));
  q.push(job_of(3000, 3));
  auto refused = q.admit(4000);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "the agent's queue is full (2 jobs waiting)");
}

TEST_CASE("forget: a caller that leaves takes its waiting job out of the queue") {
  JobQueue q(small());
  auto a = job_of(1000, 1), b = job_of(2000, 2);
  q.push(a);
  q.push(b);
  q.forget(a);
  REQUIRE(q.queued().size() == 1);
  CHECK(q.queued().front() == b);
  q.forget(a);  // twice is harmless
  CHECK(q.queued().size() == 1);
}

TEST_CASE("take_queued: every waiting job, in order, and the queue empty") {
  JobQueue q(JobShares{1, 4, 1, 4});
  auto r = job_of(1, 1);
  q.push(r);
  q.started(q.take_next(), 1);
  auto a = job_of(1000, 2), b = job_of(2000, 3);
  q.push(a);
  q.push(b);
  auto taken = q.take_queued();
  REQUIRE(taken.size() == 2);
  CHECK(taken[0] == a);
  CHECK(taken[1] == b);
  CHECK(q.queued().empty());
  CHECK(q.running().size() == 1);  // running jobs are not the queue's to drop
}

TEST_CASE("progress: events so far, and their rate since the last progress") {
  Job j;
  j.rate_at_ns = 1000000000;
  j.progress(500, 1500000000);  // 500 events in half a second
  CHECK(j.events == 500);
  CHECK(j.rate == doctest::Approx(1000.0));
  j.progress(800, 2500000000);  // 300 more in a second
  CHECK(j.events == 800);
  CHECK(j.rate == doctest::Approx(300.0));
  j.progress(900, 2500000000);  // no time passed: the rate stays
  CHECK(j.events == 900);
  CHECK(j.rate == doctest::Approx(300.0));
}
