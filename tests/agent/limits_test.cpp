// limits_test.cpp: the counts that keep one bsandboxd client from
// starving the others: connections, requests under way and their bytes per
// user and in all, the job shares, the accept backoff.
#include "sandbox/agent/limits.h"

#include <doctest/doctest.h>

#include <vector>

using namespace bsandbox;

namespace {

bool says(const Result<void>& r, const std::string& word) { return !r && r.error().message.find(word) != std::string::npos; }

}  // namespace

TEST_CASE("the shares left to the defaults follow --max-jobs and --max-queued") {
  AgentLimits l = resolve_limits({}, 4, 64);
  CHECK(l.max_jobs_per_user == 2);
  CHECK(l.max_queued_per_user == 16);
  CHECK(resolve_limits({}, 5, 3).max_jobs_per_user == 3);
  CHECK(resolve_limits({}, 1, 3).max_jobs_per_user == 1);
  CHECK(resolve_limits({}, 1, 3).max_queued_per_user == 1);
  CHECK(resolve_limits({}, 1, 0).max_queued_per_user == 0);
  AgentLimits given;
  given.max_jobs_per_user = 7;
  given.max_queued_per_user = 9;
  CHECK(resolve_limits(given, 4, 64).max_jobs_per_user == 7);
  CHECK(resolve_limits(given, 4, 64).max_queued_per_user == 9);
  // The defaults fit the descriptors the unit gives (LimitNOFILE=65536) and
  // a login's hard limit with room to spare.
  CHECK(descriptors_needed(l, 4) > l.max_connections * 5u);
  CHECK(descriptors_needed(l, 4) < 4096);
}

TEST_CASE("one user's connections are capped, and the others still get in") {
  AgentLimits l;
  l.max_connections = 10;
  l.max_connections_per_user = 3;
  l.max_startups_per_user = 2;
  ClientLedger ledger(l);
  std::vector<ClientLedger::Ticket> a;
  for (int i = 0; i < 2; ++i) a.push_back(*ledger.admit(1000));
  auto third = ledger.admit(1000);
  REQUIRE_FALSE(third);
  CHECK(third.error().message.find("uid 1000 has 2 requests to the agent under way") != std::string::npos);
  CHECK(third.error().message.find("--max-startups-per-user") != std::string::npos);
  a[0].settle();  // its request came whole: a connection, no longer a startup
  a.push_back(*ledger.admit(1000));
  auto fourth = ledger.admit(1000);
  REQUIRE_FALSE(fourth);
  CHECK(fourth.error().message.find("3 connections to the agent open") != std::string::npos);
  CHECK(ledger.admit(1001));  // another user is untouched
  CHECK(ledger.of(1000).connections == 3);
  CHECK(ledger.of(1001).connections == 0);  // that ticket went at once
  a.clear();
  CHECK(ledger.connections() == 0);
  CHECK(ledger.of(1000).connections == 0);
}

TEST_CASE("all connections are capped") {
  AgentLimits l;
  l.max_connections = 2;
  ClientLedger ledger(l);
  auto x = ledger.admit(1), y = ledger.admit(2);
  auto z = ledger.admit(3);
  REQUIRE_FALSE(z);
  CHECK(z.error().message.find("2 connections open, its limit (bsandboxd --max-connections)") != std::string::npos);
  x->release();
  CHECK(ledger.admit(3));
}

TEST_CASE("bytes held of requests under way are capped per user and in all") {
  AgentLimits l;
  l.max_pending_bytes_per_user = 100;
  l.max_pending_bytes = 150;
  ClientLedger ledger(l);
  auto a1 = *ledger.admit(1), a2 = *ledger.admit(1), b = *ledger.admit(2);
  CHECK(a1.hold(60));
  CHECK(says(a2.hold(41), "uid 1's requests under way would hold more than the 100 B one user may"));
  CHECK(a2.hold(40));
  CHECK(ledger.of(1).bytes == 100);
  CHECK(says(b.hold(51), "would hold more than the agent's 150 B; try again later"));
  CHECK(b.hold(50));
  a1.settle();  // a whole request holds nothing
  CHECK(ledger.of(1).bytes == 40);
  CHECK(ledger.bytes() == 90);
  {
    auto moved = std::move(a2);
    CHECK(ledger.bytes() == 90);
  }
  CHECK(ledger.bytes() == 50);
  CHECK(ledger.of(1).connections == 1);
}

TEST_CASE("a user runs and queues at most its share; the others pass it") {
  JobShares s{4, 8, 2, 3};
  std::vector<uid_t> running{1, 1};
  CHECK_FALSE(s.may_start(1, running));
  CHECK(s.may_start(2, running));
  std::vector<uid_t> queued{1, 1, 2, 1};
  REQUIRE(s.next(queued, running));
  CHECK(*s.next(queued, running) == 2);  // uid 2's job, behind two of uid 1's
  CHECK(s.admit(2, queued, running));
  CHECK(says(s.admit(1, queued, running), "uid 1 has 3 jobs waiting, the most one user may"));
  std::vector<uid_t> full{1, 1, 2, 2};
  CHECK_FALSE(s.next({3}, full));  // every slot busy
  CHECK(says(s.admit(3, {2, 2, 4, 4, 5, 5, 6, 6}, full), "the agent's queue is full (8 jobs waiting)"));
  JobShares no_queue{1, 0, 1, 0};
  CHECK(no_queue.admit(1, {}, {}));
  CHECK(says(no_queue.admit(1, {}, {2}), "queue is full"));
}

TEST_CASE("accepting out of descriptors backs off to a second, and starts over") {
  AcceptBackoff b;
  CHECK_FALSE(b.failing());
  std::vector<long> delays;
  for (int i = 0; i < 9; ++i) delays.push_back(b.failed().count());
  CHECK(delays == std::vector<long>{10, 20, 40, 80, 160, 320, 640, 1000, 1000});
  CHECK(b.failing());
  b.succeeded();
  CHECK_FALSE(b.failing());
  CHECK(b.failed().count() == 10);
}
