// cache_traffic_test.cpp: the per-uid table of reported remote cache
// traffic: counts add up per uid, sums saturate instead of wrapping, at most
// kMaxUids uids get rows and later ones share the other row, nothing to add
// takes no row; a report's counts to and from its message; what counters
// grew by.
#include "sandbox/agent/cache_traffic.h"

#include <doctest/doctest.h>

#include <limits>

using namespace bsandbox;

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

CacheTraffic traffic(uint64_t hits, uint64_t bytes_down = 0) {
  CacheTraffic t;
  t.hits = hits;
  t.bytes_down = bytes_down;
  return t;
}

}  // namespace

TEST_CASE("counts add up per uid, each apart") {
  CacheTrafficTable table;
  table.add(1000, CacheTraffic{1, 2, 3, 4, 5, 6, 7});
  table.add(1001, traffic(10));
  table.add(1000, CacheTraffic{1, 1, 1, 1, 1, 1, 1});
  auto rows = table.rows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].uid == 1000u);
  CHECK(rows[0].traffic == CacheTraffic{2, 3, 4, 5, 6, 7, 8});
  CHECK(rows[1].uid == 1001u);
  CHECK(rows[1].traffic == traffic(10));
  CHECK(table.total() == CacheTraffic{12, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("sums saturate: a count at its largest stays there, the others still count") {
  CacheTrafficTable table;
  table.add(1000, traffic(kMax - 1, 7));
  table.add(1000, traffic(5, 1));
  table.add(1000, traffic(kMax, 1));
  auto rows = table.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].traffic.hits == kMax);
  CHECK(rows[0].traffic.bytes_down == 9);
  CacheTraffic t = traffic(kMax);
  t += traffic(kMax);
  CHECK(t.hits == kMax);
  // The total of saturated rows saturates too.
  table.add(1001, traffic(kMax));
  CHECK(table.total().hits == kMax);
}

TEST_CASE("at most kMaxUids uids get rows; later ones share the other row") {
  CacheTrafficTable table;
  for (uid_t uid = 0; uid < CacheTrafficTable::kMaxUids; ++uid) table.add(10000 + uid, traffic(1));
  CHECK(table.uids() == CacheTrafficTable::kMaxUids);
  CHECK(table.rows().size() == CacheTrafficTable::kMaxUids);  // no other row yet
  for (uid_t uid = 0; uid < 5000; ++uid) table.add(50000 + uid, traffic(2));
  CHECK(table.uids() == CacheTrafficTable::kMaxUids);
  auto rows = table.rows();
  REQUIRE(rows.size() == CacheTrafficTable::kMaxUids + 1);
  CHECK_FALSE(rows.back().uid);
  CHECK(rows.back().traffic.hits == 10000);
  // A uid with a row keeps counting in it, not in the other row.
  table.add(10000, traffic(3));
  rows = table.rows();
  CHECK(rows.front().uid == 10000u);
  CHECK(rows.front().traffic.hits == 4);
  CHECK(rows.back().traffic.hits == 10000);
  CHECK(table.total().hits == CacheTrafficTable::kMaxUids + 3 + 10000);
}

TEST_CASE("a report of nothing takes no row") {
  CacheTrafficTable table;
  for (uid_t uid = 0; uid < 1000; ++uid) table.add(uid, CacheTraffic{});
  CHECK(table.uids() == 0);
  CHECK(table.rows().empty());
  CHECK(table.total().empty());
}

TEST_CASE("a report's counts to its message and back; a negative one reads as 0") {
  CacheTraffic t{1, 2, 3, 4, 5, 6, 7};
  CHECK(traffic_of(to_message(t)) == t);
  agent::CacheTraffic m = to_message(t);
  m.set_misses(-5);
  CHECK(traffic_of(m).misses == 0);
  CHECK(traffic_of(m).hits == 1);
  // Beyond what the message can say: its largest.
  CHECK(to_message(traffic(kMax)).hits() == std::numeric_limits<int64_t>::max());
}

TEST_CASE("growth: what each count grew by; one that went down grew by 0") {
  CacheTraffic before{10, 10, 10, 100, 100, 0, 4}, after{12, 10, 11, 4000, 50, 1, 9};
  CHECK(growth(before, after) == CacheTraffic{2, 0, 1, 3900, 0, 1, 5});
  CHECK(growth(after, after).empty());
}
