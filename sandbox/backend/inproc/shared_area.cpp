// shared_area.cpp: see shared_area.h. The area is one memfd: the header,
// the rings (each a page of header and ring_bytes of data) and the table of
// tids. Pages no thread touched take no memory. The supervisor gives each
// traced thread a ring as it marks it, the one freed last first: the
// rings of the few threads that live at a time keep their pages, and a
// new process maps pages that exist instead of making the kernel allocate
// and clear them (a page fault costs 6-13 us on these VMs). Rings beyond
// kResidentRings are given back to the kernel (hole punched) when freed.
#include "sandbox/backend/inproc/shared_area.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/base/io.h"

namespace bsandbox {
namespace {

static_assert(sizeof(bs_ip_ring) == 64);
static_assert(sizeof(bs_ip_file) % 8 == 0);
static_assert(sizeof(bs_ip_area) < BS_IP_RING_DATA * 64);

constexpr uint64_t kPage = 4096;

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// The runtime writes these words from other processes (inproc_abi.h).
template <typename T>
T load_acquire(const T& v) {
  return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}
template <typename T, typename U>
void store_release(T& v, U x) {
  __atomic_store_n(&v, static_cast<T>(x), __ATOMIC_RELEASE);
}

uint32_t pid_max() {
  auto text = read_file("/proc/sys/kernel/pid_max");
  unsigned long n = text ? std::strtoul(text->c_str(), nullptr, 10) : 0;
  if (n < 32768) n = 32768;
  if (n > (1u << 22)) n = 1u << 22;
  return static_cast<uint32_t>(n);
}

}  // namespace

Result<SharedArea> SharedArea::create(uint32_t nrings, uint32_t ring_bytes) {
  if (nrings == 0 || ring_bytes < 65536 || (ring_bytes & (ring_bytes - 1)) != 0)
    return fail("in-process area: rings must be a power of two of at least 64 KiB");
  SharedArea a;
  uint32_t max_tid = pid_max() + 1;
  uint64_t header = round_up(sizeof(bs_ip_area), kPage);
  uint64_t stride = BS_IP_RING_DATA + uint64_t{ring_bytes};
  uint64_t tids = header + stride * nrings;
  uint64_t size = round_up(tids + uint64_t{max_tid} * sizeof(uint32_t), kPage);
  a.fd_ = UniqueFd(static_cast<int>(::syscall(SYS_memfd_create, "bsandbox-inproc", MFD_CLOEXEC)));
  if (!a.fd_.valid()) return fail_errno("in-process area: memfd_create", errno);
  if (::ftruncate(a.fd_.get(), static_cast<off_t>(size)) != 0)
    return fail_errno("in-process area: sizing it", errno);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd_.get(), 0);
  if (p == MAP_FAILED) return fail_errno("in-process area: mmap", errno);
  a.area_ = static_cast<bs_ip_area*>(p);
  a.size_ = size;
  bs_ip_area& h = *a.area_;
  h.magic = BS_IP_MAGIC;
  h.version = BS_IP_VERSION;
  h.size = size;
  h.nrings = nrings;
  h.ring_bytes = ring_bytes;
  h.rings_offset = header;
  h.ring_stride = stride;
  h.tids_offset = tids;
  h.max_tid = max_tid;
  h.supervisor = static_cast<uint32_t>(::getpid());
  struct stat root {};
  if (::stat("/", &root) != 0) return fail_errno("in-process area: stat /", errno);
  h.root_dev = root.st_dev;
  h.root_ino = root.st_ino;
  a.path_ = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(a.fd_.get());
  a.free_.reserve(nrings);
  for (uint32_t i = nrings; i-- > 0;) a.free_.push_back(i);
  a.in_free_.assign(nrings, true);
  return a;
}

SharedArea::SharedArea(SharedArea&& o) noexcept
    : fd_(std::move(o.fd_)),
      area_(std::exchange(o.area_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      path_(std::move(o.path_)),
      abandoned_(o.abandoned_),
      corrupt_(o.corrupt_),
      free_(std::move(o.free_)),
      in_free_(std::move(o.in_free_)) {}

SharedArea& SharedArea::operator=(SharedArea&& o) noexcept {
  if (this != &o) {
    if (area_) ::munmap(area_, size_);
    fd_ = std::move(o.fd_);
    area_ = std::exchange(o.area_, nullptr);
    size_ = std::exchange(o.size_, 0);
    path_ = std::move(o.path_);
    abandoned_ = o.abandoned_;
    corrupt_ = o.corrupt_;
    free_ = std::move(o.free_);
    in_free_ = std::move(o.in_free_);
  }
  return *this;
}

SharedArea::~SharedArea() {
  if (area_) ::munmap(area_, size_);
}

void SharedArea::handle(long nr, const bs_sc_desc& d) {
  if (nr < 0 || nr >= BS_IP_MAX_NR) return;
  area_->desc[nr] = d;
  area_->handled[nr] = 1;
}

bs_ip_ring* SharedArea::ring(uint32_t i) {
  auto* base = reinterpret_cast<char*>(area_);
  return reinterpret_cast<bs_ip_ring*>(base + area_->rings_offset + uint64_t{i} * area_->ring_stride);
}

// Reads ring i from tail to the first record not committed. A record the
// producer claims to be larger than the space it could have written, or
// one of unknown type, ends the ring's reading for good (counted corrupt):
// the supervisor never reads outside the ring.
size_t SharedArea::drain_ring(uint32_t i, const std::function<void(const bs_ip_file&)>& f) {
  bs_ip_ring* r = ring(i);
  if (load_acquire(r->owner) == 0) return 0;
  const uint64_t bytes = area_->ring_bytes;
  const char* data = reinterpret_cast<const char*>(r) + BS_IP_RING_DATA;
  uint64_t head = load_acquire(r->head);
  uint64_t tail = r->tail;
  size_t n = 0;
  while (tail < head && head - tail <= bytes) {
    uint64_t at = tail % bytes;
    const auto* rec = reinterpret_cast<const bs_ip_rec*>(data + at);
    if (load_acquire(rec->state) != BS_IP_COMMITTED) break;
    uint32_t size = rec->size;
    if (size < sizeof(bs_ip_rec) || size % 8 != 0 || size > bytes - at || size > head - tail) {
      ++corrupt_;
      tail = head;  // nothing after it can be trusted
      break;
    }
    if (rec->type == BS_IP_REC_FILE || rec->type == BS_IP_REC_EXEC) {
      const auto* file = reinterpret_cast<const bs_ip_file*>(rec);
      uint64_t need = sizeof(bs_ip_file);
      for (uint32_t len : file->len) need += uint64_t{len} + 1;
      if (size < sizeof(bs_ip_file) || need > size) {
        ++corrupt_;
      } else {
        f(*file);
        ++n;
      }
    } else if (rec->type != BS_IP_REC_PAD) {
      ++corrupt_;
    }
    tail += size;
  }
  store_release(r->tail, tail);
  return n;
}

size_t SharedArea::drain(const std::function<void(const bs_ip_file&)>& f) {
  uint32_t high = std::min(load_acquire(area_->high_water), area_->nrings);
  size_t n = 0;
  for (uint32_t i = 0; i < high; ++i) n += drain_ring(i, f);
  return n;
}

size_t SharedArea::drain_thread(pid_t tid, const std::function<void(const bs_ip_file&)>& f) {
  if (tid <= 0 || static_cast<uint32_t>(tid) >= area_->max_tid) return 0;
  auto* tids = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(area_) + area_->tids_offset);
  uint32_t slot = load_acquire(tids[tid]) & ~BS_IP_TID_TRACED;
  if (slot == 0 || slot > area_->nrings) return 0;
  if (load_acquire(ring(slot - 1)->owner) != static_cast<uint32_t>(tid)) return 0;
  return drain_ring(slot - 1, f);
}

void SharedArea::mark_traced(pid_t tid) {
  if (tid <= 0 || static_cast<uint32_t>(tid) >= area_->max_tid) return;
  auto* tids = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(area_) + area_->tids_offset);
  uint32_t slot = load_acquire(tids[tid]) & ~BS_IP_TID_TRACED;
  if (slot != 0 && slot <= area_->nrings && load_acquire(ring(slot - 1)->owner) == static_cast<uint32_t>(tid)) {
    __atomic_fetch_or(&tids[tid], BS_IP_TID_TRACED, __ATOMIC_RELEASE);
    return;
  }
  while (!free_.empty()) {
    uint32_t i = free_.back();
    free_.pop_back();
    in_free_[i] = false;
    uint32_t zero = 0;
    // A thread the supervisor gave no ring may have claimed this one.
    if (!__atomic_compare_exchange_n(&ring(i)->owner, &zero, static_cast<uint32_t>(tid), false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      continue;
    uint32_t hw = load_acquire(area_->high_water);
    while (hw < i + 1 && !__atomic_compare_exchange_n(&area_->high_water, &hw, i + 1, true, __ATOMIC_RELEASE,
                                                      __ATOMIC_RELAXED)) {
    }
    store_release(tids[tid], BS_IP_TID_TRACED | (i + 1));
    return;
  }
  __atomic_fetch_or(&tids[tid], BS_IP_TID_TRACED, __ATOMIC_RELEASE);  // it claims one, if any is left
}

void SharedArea::release_thread(pid_t tid) {
  if (tid <= 0 || static_cast<uint32_t>(tid) >= area_->max_tid) return;
  auto* tids = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(area_) + area_->tids_offset);
  uint32_t slot = load_acquire(tids[tid]) & ~BS_IP_TID_TRACED;
  store_release(tids[tid], 0);
  if (slot == 0 || slot > area_->nrings) return;
  bs_ip_ring* r = ring(slot - 1);
  if (load_acquire(r->owner) != static_cast<uint32_t>(tid)) return;
  if (r->tail != load_acquire(r->head)) ++abandoned_;
  r->head = r->tail = 0;
  if (slot - 1 >= kResidentRings) {
    // Give the ring's pages back; the next owner starts from zeros.
    off_t at = static_cast<off_t>(area_->rings_offset + uint64_t{slot - 1} * area_->ring_stride +
                                  BS_IP_RING_DATA);
    ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, area_->ring_bytes);
  }
  store_release(r->owner, 0);
  if (!in_free_[slot - 1]) {
    in_free_[slot - 1] = true;
    free_.push_back(slot - 1);
  }
}

}  // namespace bsandbox
