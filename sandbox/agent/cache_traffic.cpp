// cache_traffic.cpp: see cache_traffic.h.
#include "sandbox/agent/cache_traffic.h"

#include <limits>

namespace bsandbox {
namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<uint64_t>::max() : sum;
}

uint64_t count_of(int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

int64_t message_count(uint64_t v) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  return static_cast<int64_t>(v > kMax ? kMax : v);
}

}  // namespace

CacheTraffic& CacheTraffic::operator+=(const CacheTraffic& more) {
  hits = saturating_add(hits, more.hits);
  misses = saturating_add(misses, more.misses);
  uploads = saturating_add(uploads, more.uploads);
  bytes_down = saturating_add(bytes_down, more.bytes_down);
  bytes_up = saturating_add(bytes_up, more.bytes_up);
  errors = saturating_add(errors, more.errors);
  prefetched = saturating_add(prefetched, more.prefetched);
  return *this;
}

CacheTraffic traffic_of(const agent::CacheTraffic& r) {
  return {count_of(r.hits()),       count_of(r.misses()),   count_of(r.uploads()),   count_of(r.bytes_down()),
          count_of(r.bytes_up()),   count_of(r.errors()),   count_of(r.prefetched())};
}

agent::CacheTraffic to_message(const CacheTraffic& t) {
  agent::CacheTraffic m;
  m.set_hits(message_count(t.hits));
  m.set_misses(message_count(t.misses));
  m.set_uploads(message_count(t.uploads));
  m.set_bytes_down(message_count(t.bytes_down));
  m.set_bytes_up(message_count(t.bytes_up));
  m.set_errors(message_count(t.errors));
  m.set_prefetched(message_count(t.prefetched));
  return m;
}

CacheTraffic growth(const CacheTraffic& before, const CacheTraffic& after) {
  auto grew = [](uint64_t b, uint64_t a) { return a > b ? a - b : 0; };
  return {grew(before.hits, after.hits),         grew(before.misses, after.misses),
          grew(before.uploads, after.uploads),   grew(before.bytes_down, after.bytes_down),
          grew(before.bytes_up, after.bytes_up), grew(before.errors, after.errors),
          grew(before.prefetched, after.prefetched)};
}

void CacheTrafficTable::add(uid_t uid, const CacheTraffic& traffic) {
  if (traffic.empty()) return;
  if (auto it = by_uid_.find(uid); it != by_uid_.end()) {
    it->second += traffic;
  } else if (by_uid_.size() < kMaxUids) {
    by_uid_[uid] = traffic;
  } else {
    if (!other_) other_.emplace();
    *other_ += traffic;
  }
}

std::vector<CacheTrafficTable::Row> CacheTrafficTable::rows() const {
  std::vector<Row> out;
  out.reserve(by_uid_.size() + 1);
  for (const auto& [uid, traffic] : by_uid_) out.push_back({uid, traffic});
  if (other_) out.push_back({std::nullopt, *other_});
  return out;
}

CacheTraffic CacheTrafficTable::total() const {
  CacheTraffic sum;
  for (const auto& [uid, traffic] : by_uid_) sum += traffic;
  if (other_) sum += *other_;
  return sum;
}

}  // namespace bsandbox
