// shared_area.h: the supervisor's side of the area it shares with the
// in-process runtime (inproc_abi.h): creating it, saying which syscalls the
// runtime may handle, and reading the rings.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/backend/inproc/inproc_abi.h"
#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

class SharedArea {
 public:
  // An area of nrings rings of ring_bytes each (a power of two, at least
  // 64 KiB), backed by a memfd the supervisor keeps open.
  static Result<SharedArea> create(uint32_t nrings = 1024, uint32_t ring_bytes = 256 * 1024);

  SharedArea(SharedArea&&) noexcept;
  SharedArea& operator=(SharedArea&&) noexcept;
  ~SharedArea();

  bs_ip_area& header() { return *area_; }
  // What the runtime is given in BS_IP_ENV: a path it can open (the memfd
  // through /proc/<supervisor>/fd/N).
  const std::string& path() const { return path_; }
  // Lets the runtime handle syscall nr in process, read as d says.
  void handle(long nr, const bs_sc_desc& d);

  // Hands every committed record of every claimed ring to f, ring by ring,
  // each ring's in order, and frees what it consumed. Returns how many.
  size_t drain(const std::function<void(const bs_ip_file&)>& f);
  // The same for the ring of one thread.
  size_t drain_thread(pid_t tid, const std::function<void(const bs_ip_file&)>& f);
  // tid is traced (before it runs): the runtime may handle its calls, in
  // the ring given to it here (the free ring used last), so that a new
  // thread neither searches for one nor touches other threads' pages.
  void mark_traced(pid_t tid);
  // After tid is dead and drained: its ring is free for another thread,
  // and the tid is no longer marked. The first kResidentRings rings keep
  // their pages for the next thread; the others give them back.
  // Records it left half-written are counted in abandoned().
  void release_thread(pid_t tid);
  uint64_t abandoned() const { return abandoned_; }
  static constexpr uint32_t kResidentRings = 64;
  uint64_t corrupt() const { return corrupt_; }

 private:
  SharedArea() = default;
  bs_ip_ring* ring(uint32_t i);
  size_t drain_ring(uint32_t i, const std::function<void(const bs_ip_file&)>& f);

  UniqueFd fd_;
  bs_ip_area* area_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  uint64_t abandoned_ = 0, corrupt_ = 0;
  // Rings no thread holds, the lowest last (used first); in_free_[i]: i is
  // in free_ (a runtime may have claimed it since: checked when taken).
  std::vector<uint32_t> free_;
  std::vector<bool> in_free_;
};

}  // namespace bsandbox
