// shared_area_test.cpp: the supervisor's reading of the rings, against a
// producer written here by the rules of inproc_abi.h: records in order, a
// PAD at the end of the ring, a record not yet committed stops the reading,
// a malformed one is counted and never read past, a ring released after
// its thread died is free for the next, which never reads the old bytes,
// and marking a thread gives it a ring.
#include "sandbox/backend/inproc/shared_area.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace bsandbox;

namespace {

struct Producer {
  SharedArea& area;
  uint32_t tid;
  uint32_t index = 0;

  bs_ip_ring* ring() {
    bs_ip_area& h = area.header();
    return reinterpret_cast<bs_ip_ring*>(reinterpret_cast<char*>(&h) + h.rings_offset + uint64_t{index} * h.ring_stride);
  }
  char* data() { return reinterpret_cast<char*>(ring()) + BS_IP_RING_DATA; }
  void claim(uint32_t i) {
    index = i;
    bs_ip_area& h = area.header();
    ring()->owner = tid;
    if (h.high_water < i + 1) h.high_water = i + 1;
    auto* tids = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&h) + h.tids_offset);
    tids[tid] = i + 1;
  }
  // Appends a file record with path1 = path; returns it (for later commit).
  bs_ip_file* append(const std::string& path, int64_t ret, bool commit = true) {
    const uint64_t bytes = area.header().ring_bytes;
    uint32_t size = static_cast<uint32_t>((sizeof(bs_ip_file) + path.size() + 1 + 4 + 7) / 8 * 8);
    bs_ip_ring* r = ring();
    if (r->head % bytes + size > bytes) {  // PAD to the end
      auto* pad = reinterpret_cast<bs_ip_rec*>(data() + r->head % bytes);
      pad->size = static_cast<uint32_t>(bytes - r->head % bytes);
      pad->type = BS_IP_REC_PAD;
      pad->state = BS_IP_COMMITTED;
      r->head += pad->size;
    }
    auto* f = reinterpret_cast<bs_ip_file*>(data() + r->head % bytes);
    std::memset(f, 0, size);
    f->rec.size = size;
    f->rec.type = BS_IP_REC_FILE;
    f->tid = tid;
    f->nr = 257;
    f->ret = ret;
    f->present = 1;
    f->len[BS_IP_PATH1] = static_cast<uint32_t>(path.size());
    std::memcpy(reinterpret_cast<char*>(f) + sizeof *f, path.c_str(), path.size() + 1);
    r->head += size;
    if (commit) f->rec.state = BS_IP_COMMITTED;
    return f;
  }
};

std::string path1(const bs_ip_file& f) {
  return std::string(reinterpret_cast<const char*>(&f) + sizeof f, f.len[BS_IP_PATH1]);
}

}  // namespace

TEST_CASE("records come out in order, across the end of the ring, and stop at one not committed") {
  auto area = SharedArea::create(4, 65536);
  REQUIRE(area);
  CHECK(area->header().magic == BS_IP_MAGIC);
  CHECK(area->path().find("/proc/") == 0);
  Producer p{*area, 4242};
  p.claim(2);
  std::vector<std::string> got;
  auto take = [&](const bs_ip_file& f) { got.push_back(path1(f)); };
  int next = 0;
  for (int round = 0; round < 40; ++round) {  // ~40 x 20 records of ~200 bytes: the ring wraps
    for (int i = 0; i < 20; ++i) p.append("/file/" + std::to_string(next++) + std::string(50, 'x'), 3);
    area->drain(take);
  }
  REQUIRE(got.size() == 800);
  for (int i = 0; i < 800; ++i) CHECK(got[i] == "/file/" + std::to_string(i) + std::string(50, 'x'));
  CHECK(area->corrupt() == 0);

  got.clear();
  bs_ip_file* pending = p.append("/pending", 0, false);
  p.append("/after", 0);
  CHECK(area->drain(take) == 0);  // the first is still being written
  pending->rec.state = BS_IP_COMMITTED;
  CHECK(area->drain_thread(4242, take) == 2);
  CHECK(got == std::vector<std::string>{"/pending", "/after"});
  CHECK(area->drain_thread(4243, take) == 0);  // no ring for that thread
}

TEST_CASE("a malformed record is counted and nothing after it is read") {
  auto area = SharedArea::create(2, 65536);
  REQUIRE(area);
  Producer p{*area, 77};
  p.claim(0);
  bs_ip_file* f = p.append("/a", 0);
  f->len[BS_IP_PATH1] = 60000;  // strings said to run past the record
  p.append("/b", 0);
  size_t n = area->drain([](const bs_ip_file&) {});
  CHECK(n == 1);  // "/b" is whole; the bad one is skipped by its size
  CHECK(area->corrupt() == 1);
  bs_ip_rec* huge = &p.append("/c", 0)->rec;
  huge->size = 1u << 30;
  p.append("/d", 0);
  CHECK(area->drain([](const bs_ip_file&) {}) == 0);  // a size past the ring: the ring is not read on
  CHECK(area->corrupt() == 2);
}

TEST_CASE("a released ring is free and empty; a record left half-written is counted") {
  auto area = SharedArea::create(2, 65536);
  REQUIRE(area);
  Producer p{*area, 900};
  p.claim(1);
  p.append("/done", 0);
  p.append("/half", 0, false);
  CHECK(area->drain_thread(900, [](const bs_ip_file&) {}) == 1);
  area->release_thread(900);
  CHECK(area->abandoned() == 1);
  CHECK(p.ring()->owner == 0);
  CHECK(p.ring()->head == 0);
  CHECK(p.ring()->tail == 0);
  // A resident ring keeps its pages: the old records are still there,
  // committed, but past head, and never read.
  auto* first = reinterpret_cast<const bs_ip_rec*>(p.data());
  CHECK(first->state == BS_IP_COMMITTED);
  CHECK(area->drain([](const bs_ip_file&) {}) == 0);
  Producer q{*area, 901};
  q.claim(1);
  CHECK(area->drain([](const bs_ip_file&) {}) == 0);
  q.append("/next", 0);
  std::vector<std::string> got;
  area->drain([&](const bs_ip_file& f) { got.push_back(path1(f)); });
  CHECK(got == std::vector<std::string>{"/next"});
}

TEST_CASE("marking a thread gives it a ring: the one freed last first, never one a thread claimed itself") {
  auto area = SharedArea::create(SharedArea::kResidentRings + 2, 65536);
  REQUIRE(area);
  bs_ip_area& h = area->header();
  auto* tids = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&h) + h.tids_offset);
  auto owner = [&](uint32_t i) {
    return reinterpret_cast<bs_ip_ring*>(reinterpret_cast<char*>(&h) + h.rings_offset + uint64_t{i} * h.ring_stride)
        ->owner;
  };
  area->mark_traced(700);
  CHECK(tids[700] == (BS_IP_TID_TRACED | 1));
  CHECK(owner(0) == 700);
  area->mark_traced(700);  // again (announced, then exec'd): the same ring
  CHECK(tids[700] == (BS_IP_TID_TRACED | 1));
  // A thread that got none claims ring 1 itself, as the runtime does.
  Producer self{*area, 702};
  self.claim(1);
  area->mark_traced(701);  // ring 1 is taken: the next free one
  CHECK(tids[701] == (BS_IP_TID_TRACED | 3));
  CHECK(owner(2) == 701);
  CHECK(h.high_water == 3);
  area->release_thread(700);
  area->mark_traced(703);  // the ring freed last
  CHECK(tids[703] == (BS_IP_TID_TRACED | 1));
  area->release_thread(702);
  area->release_thread(702);  // twice: still once in the free list
  area->mark_traced(704);
  area->mark_traced(705);
  CHECK(tids[704] == (BS_IP_TID_TRACED | 2));
  CHECK(tids[705] == (BS_IP_TID_TRACED | 4));
  // Every ring taken: marked, without a ring (the runtime leaves its calls
  // to the tracer or claims one freed since).
  for (uint32_t t = 800; t < 800 + SharedArea::kResidentRings; ++t) area->mark_traced(static_cast<pid_t>(t));
  area->mark_traced(900);
  CHECK(tids[900] == BS_IP_TID_TRACED);
  // A ring past the resident ones gives its pages back when freed.
  uint32_t last = SharedArea::kResidentRings + 1;
  uint32_t holder = owner(last);
  REQUIRE(holder != 0);
  auto* data = reinterpret_cast<char*>(&h) + h.rings_offset + uint64_t{last} * h.ring_stride + BS_IP_RING_DATA;
  std::memset(data, 0x5a, 64);
  area->release_thread(static_cast<pid_t>(holder));
  CHECK(data[0] == 0);
}

TEST_CASE("bad sizes are refused") {
  CHECK(!SharedArea::create(4, 1000));
  CHECK(!SharedArea::create(0, 65536));
  CHECK(!SharedArea::create(4, 65536 * 3));
}
