// ebpf_backend.h: the eBPF event source.
//
// EbpfTracer loads the kernel programs of bpf/ (one libbpf skeleton), hands
// them the syscall table and attaches them, once. Each job traced through it
// gets a slot: its own ring buffer (a map the programs find in bs_rings by
// the slot number every traced thread carries, inherited at fork) and its own
// loss counters, so one job's storm of events can fill only its own ring.
// `bsandbox exec` as root loads a tracer for its single job; bsandboxd loads
// one and shares it among all its jobs. See bpf/process.bpf.c and
// bpf/files.bpf.c for what the kernel side does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/core/event_source.h"
#include "sandbox/base/unique_fd.h"

struct bsandbox_bpf;

namespace bsandbox {

struct EbpfOptions {
  size_t ring_bytes = 16 << 20;  // per job; a power of two
  bool verbose = false;          // pass libbpf's messages (and verifier logs) to stderr
};

// The ring and slot of one job. Destroying it does not free the slot: the
// tracer's remove_job() does, once the job's processes are gone.
struct EbpfJob {
  uint32_t slot = 0;
  UniqueFd ring;  // the BPF_MAP_TYPE_RINGBUF map
};

// Loss counters of one job, summed over CPUs (bpf/events.h bs_counter).
struct EbpfJobCounters {
  uint64_t ring_full = 0, untracked = 0, too_big = 0;
};

class EbpfTracer {
 public:
  ~EbpfTracer();
  EbpfTracer(const EbpfTracer&) = delete;
  EbpfTracer& operator=(const EbpfTracer&) = delete;

  // Probes the kernel, loads and attaches, or says in one line what is
  // missing and what to do.
  static Result<std::shared_ptr<EbpfTracer>> load(const EbpfOptions& options);

  size_t ring_bytes() const { return ring_bytes_; }
  // A free slot with a fresh ring and zeroed counters.
  Result<EbpfJob> add_job();
  // Unhooks the slot's ring and frees the slot.
  void remove_job(uint32_t slot);
  size_t jobs() const;
  EbpfJobCounters counters(uint32_t slot) const;
  // Program runs the kernel skipped (recursion), all jobs together.
  uint64_t recursion_misses() const;
  // Asks the kernel to count each program's run time (BPF_ENABLE_STATS,
  // held while the tracer lives); false if it may not.
  bool enable_run_stats();
  struct ProgramStats {
    std::string name;
    uint64_t run_ns = 0, runs = 0;
  };
  std::vector<ProgramStats> program_stats() const;
  // Bytes waiting in a job's ring (for status), or 0 if it cannot tell.
  static uint64_t ring_fill(int ring_fd, size_t ring_bytes);

  // The event source of a job (the caller keeps job.ring open for as long as
  // the source lives). Safe to call in a forked child: it maps the ring there.
  Result<std::unique_ptr<EventSource>> source(const EbpfJob& job, std::shared_ptr<EbpfTracer> self);

  bsandbox_bpf* skeleton() const { return skel_; }
  // Every map and program fd: what a forked job runner must keep open.
  std::vector<int> fds() const;

 private:
  EbpfTracer() = default;
  bsandbox_bpf* skel_ = nullptr;
  size_t ring_bytes_ = 0;
  std::vector<bool> used_;
  UniqueFd stats_;
};

// A tracer of its own with one job: what `bsandbox exec` uses.
Result<std::unique_ptr<EventSource>> open_ebpf_backend(const EbpfOptions& options);

}  // namespace bsandbox
