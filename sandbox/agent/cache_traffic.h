// cache_traffic.h: the remote cache traffic of bsandboxd's users, as their
// clients report it (agent.proto: Request.cache_report), counted per uid for
// /metrics and the status reply.
//
// The cache is the caller's, not the agent's: bsandbox exec and the
// wrappers inside its job read and write it as the caller, so the agent sees
// no byte of that traffic and can only count what a caller says of its own.
// Who said it comes from the socket (SO_PEERCRED), never from the message,
// so a caller changes its own counts alone; each count of a report is
// bounded (protocol.h, kMaxReportedCount) and the sums saturate, so a
// hostile caller can make its own counts large, never wrap them. The table
// keeps the first kMaxUids uids that report; later ones share one "other"
// row, so no number of users grows the agent's memory, or /metrics, past
// it. Plain counting, no I/O (tests/agent/cache_traffic_test.cpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "sandbox/agent/agent.pb.h"

namespace bsandbox {

// A remote cache's counts (the cache part's CacheStats remote_* fields).
struct CacheTraffic {
  uint64_t hits = 0, misses = 0, uploads = 0, bytes_down = 0, bytes_up = 0, errors = 0;
  uint64_t prefetched = 0;  // entries fetched ahead (a hit on one is local)

  // Saturating: a count at its largest stays there.
  CacheTraffic& operator+=(const CacheTraffic& more);
  bool empty() const { return *this == CacheTraffic{}; }
  bool operator==(const CacheTraffic&) const = default;
};

// From a report parse_request accepted (a negative count, which it refuses,
// would be 0), and back.
CacheTraffic traffic_of(const agent::CacheTraffic& report);
agent::CacheTraffic to_message(const CacheTraffic& traffic);

// What each count grew by from before to after; one that went down (the
// cache's stats cleared in between) grew by 0.
CacheTraffic growth(const CacheTraffic& before, const CacheTraffic& after);

class CacheTrafficTable {
 public:
  static constexpr size_t kMaxUids = 256;

  // Adds traffic to uid's counts (to the other row once kMaxUids other uids
  // have counts). Nothing to add takes no row.
  void add(uid_t uid, const CacheTraffic& traffic);

  struct Row {
    std::optional<uid_t> uid;  // none: the other row
    CacheTraffic traffic;
  };
  // By uid, then the other row if any uid went there.
  std::vector<Row> rows() const;
  // Every uid's, saturating.
  CacheTraffic total() const;
  size_t uids() const { return by_uid_.size(); }

 private:
  std::map<uid_t, CacheTraffic> by_uid_;
  std::optional<CacheTraffic> other_;
};

}  // namespace bsandbox
