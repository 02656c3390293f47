// ebpf_backend.cpp: open -> set rodata -> load -> attach -> ring buffer
// poll, with one cleanup path (the RAII owners below).
//
// Before loading, the kernel is probed for what the programs need, so that a
// missing feature is reported as that feature ("this kernel lacks bpf_loop,
// Linux 5.17+") rather than as a verifier log. libbpf's own messages go to
// stderr only with -v.
#include "sandbox/backend/ebpf/ebpf_backend.h"

#include <linux/types.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/events.h"
#include "sandbox/backend/ebpf/event_decoder.h"
#include "sandbox/backend/seccomp_filter.h"
#include "sandbox/backend/syscall_table.h"
#include "sandbox/base/unique_fd.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "bsandbox.skel.h"
#pragma GCC diagnostic pop

namespace bsandbox {
namespace {

std::atomic<bool> g_libbpf_verbose{false};

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (!g_libbpf_verbose.load() || level == LIBBPF_DEBUG) return 0;
  return std::vfprintf(stderr, format, args);
}

struct RingDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};

std::string unprivileged_bpf_setting() {
  std::ifstream in("/proc/sys/kernel/unprivileged_bpf_disabled");
  std::string value;
  in >> value;
  return value.empty() ? "unknown" : value;
}

Error not_permitted() {
  return Error{
      "eBPF backend: not permitted to load BPF programs (kernel.unprivileged_bpf_disabled=" +
      unprivileged_bpf_setting() + "): run bsandbox as root, or with CAP_BPF and CAP_PERFMON"};
}

// What the programs need from the kernel, checked one by one.
Result<void> probe_kernel() {
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return fail(
        "eBPF backend: this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): it "
        "needs CONFIG_DEBUG_INFO_BTF=y");
  // libbpf's feature probes report "unsupported" when the cause is a lack of
  // privilege, so ask the kernel for the simplest thing first.
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
  if (fd < 0 && (errno == EPERM || errno == EACCES)) return tl::unexpected(not_permitted());
  if (fd < 0) return fail_errno("eBPF backend: the kernel refused a BPF map", errno);
  ::close(fd);
  int rc = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
  if (rc == 0) return fail("eBPF backend: this kernel lacks BPF ring buffers (Linux 5.8+)");
  struct Helper {
    bpf_func_id id;
    const char* name;
    const char* since;
  };
  for (const Helper& h : {Helper{BPF_FUNC_loop, "bpf_loop", "5.17"},
                          Helper{BPF_FUNC_task_storage_get, "bpf_task_storage_get", "5.11"},
                          Helper{BPF_FUNC_find_vma, "bpf_find_vma", "5.17"},
                          Helper{BPF_FUNC_task_pt_regs, "bpf_task_pt_regs", "5.15"},
                          Helper{BPF_FUNC_get_current_task_btf, "bpf_get_current_task_btf",
                                 "5.11"}}) {
    rc = libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, h.id, nullptr);
    if (rc == 0)
      return fail(std::string("eBPF backend: this kernel lacks the BPF helper ") + h.name +
                  " (Linux " + h.since + "+)");
  }
  return {};
}

class EbpfSource final : public EventSource {
 public:
  EbpfSource(std::shared_ptr<EbpfTracer> tracer, uint32_t slot, int ring_fd)
      : tracer_(std::move(tracer)), slot_(slot), ring_fd_(ring_fd),
        misses_at_start_(tracer_->recursion_misses()) {}
  // A forked copy (a child that calls exit()) must not unhook the ring of
  // the process that made it: the maps are shared kernel state.
  ~EbpfSource() override {
    if (owned_ && ::getpid() == owner_) tracer_->remove_job(slot_);
  }

  Result<void> open_ring() {
    ring_.reset(ring_buffer__new(ring_fd_, &EbpfSource::on_record, this, nullptr));
    if (!ring_) return fail_errno("eBPF backend: opening the ring buffer", errno);
    return {};
  }
  // A source made by open_ebpf_backend owns its job and frees the slot.
  void own(EbpfJob job) {
    owned_ring_ = std::move(job.ring);
    owned_ = true;
  }

  std::string_view name() const override { return "ebpf"; }

  // The top process gets an entry in bs_procs (by tgid) and a bs_task in
  // task storage (keyed by a pidfd) that names its job.
  Result<void> trace_root(pid_t pid) override {
    bsandbox_bpf* skel = tracer_->skeleton();
    __u32 key = static_cast<__u32>(pid);
    uint64_t proc[1] = {0};  // struct bs_proc
    if (bpf_map__update_elem(skel->maps.bs_procs, &key, sizeof key, proc, sizeof proc, BPF_ANY) != 0)
      return fail_errno("eBPF backend: adding the top process to the traced set", errno);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) return fail_errno("eBPF backend: pidfd_open of the top process", errno);
    int fd = pidfd.get();
    bs_task task{};
    task.job = slot_;
    static_assert(sizeof task == 64);
    if (bpf_map__value_size(skel->maps.bs_tasks) != sizeof task)
      return fail("eBPF backend: the programs' thread state does not match bsandbox's");
    if (bpf_map__update_elem(skel->maps.bs_tasks, &fd, sizeof fd, &task, sizeof task, BPF_NOEXIST) != 0)
      return fail_errno("eBPF backend: marking the top process as traced", errno);
    return {};
  }

  int wait_fd() const override { return ring_buffer__epoll_fd(ring_.get()); }

  size_t drain(EventSink& sink) override {
    sink_ = &sink;
    size_t before = health_.delivered;
    int rc = ring_buffer__consume(ring_.get());
    sink_ = nullptr;
    if (rc < 0 && health_.problems.size() < 8)
      health_.problems.push_back("reading the ring buffer failed: " +
                                 std::string(std::strerror(-rc)));
    return health_.delivered - before;
  }

  SourceHealth health() override;

  Result<std::vector<sock_filter>> child_filter() override { return io_uring_refusal_filter(); }

 private:
  static int on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EbpfSource*>(ctx);
    Result<Event> event = decode_record(data, size);
    if (!event) {
      if (self->health_.corrupt++ == 0) self->health_.problems.push_back(event.error().message);
      return 0;
    }
    ++self->health_.delivered;
    self->sink_->on_event(*event);
    return 0;
  }

  std::shared_ptr<EbpfTracer> tracer_;
  uint32_t slot_;
  int ring_fd_;
  uint64_t misses_at_start_;
  UniqueFd owned_ring_;
  bool owned_ = false;
  pid_t owner_ = ::getpid();
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  EventSink* sink_ = nullptr;
  SourceHealth health_;
};

SourceHealth EbpfSource::health() {
  SourceHealth h = health_;
  EbpfJobCounters c = tracer_->counters(slot_);
  if (c.ring_full)
    h.problems.push_back(std::to_string(c.ring_full) +
                         " events dropped because the ring buffer was full (try a larger "
                         "--buffer-size)");
  if (c.untracked)
    h.problems.push_back(std::to_string(c.untracked) +
                         " threads or processes could not be traced (kernel out of memory for "
                         "their state, or the process table is full)");
  if (c.too_big)
    h.problems.push_back(std::to_string(c.too_big) + " paths left out of events that would have exceeded " +
                         std::to_string(BS_EVENT_MAX) + " bytes");
  // A program that fires while the same program is running on that CPU is
  // skipped by the kernel; we cannot tell whose event that was, so any such
  // miss while this job ran makes its record incomplete.
  uint64_t misses = tracer_->recursion_misses() - misses_at_start_;
  if (misses)
    h.problems.push_back(std::to_string(misses) +
                         " program runs skipped by the kernel (recursion): events may be lost");
  h.lost += c.ring_full + c.untracked + misses;
  return h;
}

}  // namespace

EbpfTracer::~EbpfTracer() { bsandbox_bpf__destroy(skel_); }

size_t EbpfTracer::jobs() const {
  size_t n = 0;
  for (bool u : used_) n += u;
  return n;
}

Result<EbpfJob> EbpfTracer::add_job() {
  uint32_t slot = 0;
  while (slot < used_.size() && used_[slot]) ++slot;
  if (slot == used_.size()) return fail("eBPF backend: all " + std::to_string(used_.size()) + " job slots are in use");
  EbpfJob job;
  job.slot = slot;
  job.ring = UniqueFd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bs_job_ring", 0, 0,
                                     static_cast<__u32>(ring_bytes_), nullptr));
  if (!job.ring.valid()) return fail_errno("eBPF backend: creating a job's ring buffer", errno);
  // Fresh counters for the slot.
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> zeros(static_cast<size_t>(ncpu > 0 ? ncpu : 1), 0);
  for (uint32_t c = 0; c < BS_CNT_COUNT; ++c) {
    uint32_t key = slot * BS_CNT_COUNT + c;
    if (bpf_map__update_elem(skel_->maps.bs_counters, &key, sizeof key, zeros.data(),
                             zeros.size() * sizeof(uint64_t), BPF_ANY) != 0)
      return fail_errno("eBPF backend: resetting a job's counters", errno);
  }
  int fd = job.ring.get();
  if (bpf_map__update_elem(skel_->maps.bs_rings, &slot, sizeof slot, &fd, sizeof fd, BPF_ANY) != 0)
    return fail_errno("eBPF backend: installing a job's ring buffer", errno);
  used_[slot] = true;
  return job;
}

void EbpfTracer::remove_job(uint32_t slot) {
  if (slot >= used_.size() || !used_[slot]) return;
  bpf_map__delete_elem(skel_->maps.bs_rings, &slot, sizeof slot, 0);
  used_[slot] = false;
}

EbpfJobCounters EbpfTracer::counters(uint32_t slot) const {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
  auto total = [&](uint32_t counter) -> uint64_t {
    uint32_t key = slot * BS_CNT_COUNT + counter;
    if (bpf_map__lookup_elem(skel_->maps.bs_counters, &key, sizeof key, values.data(),
                             values.size() * sizeof(uint64_t), 0) != 0)
      return 0;
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;
    return sum;
  };
  return {total(BS_CNT_RINGBUF_FULL), total(BS_CNT_UNTRACKED), total(BS_CNT_TOO_BIG)};
}

std::vector<int> EbpfTracer::fds() const {
  std::vector<int> out;
  bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) out.push_back(bpf_map__fd(map));
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) out.push_back(bpf_program__fd(prog));
  return out;
}

bool EbpfTracer::enable_run_stats() {
  if (!stats_.valid()) stats_.reset(bpf_enable_stats(BPF_STATS_RUN_TIME));
  return stats_.valid();
}

std::vector<EbpfTracer::ProgramStats> EbpfTracer::program_stats() const {
  std::vector<ProgramStats> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_time_ns, info.run_cnt});
  }
  return out;
}

uint64_t EbpfTracer::recursion_misses() const {
  uint64_t misses = 0;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) misses += info.recursion_misses;
  }
  return misses;
}

uint64_t EbpfTracer::ring_fill(int ring_fd, size_t ring_bytes) {
  long page = ::sysconf(_SC_PAGESIZE);
  void* cons = ::mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, ring_fd, 0);
  if (cons == MAP_FAILED) return 0;
  void* prod = ::mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, ring_fd, page);
  uint64_t fill = 0;
  if (prod != MAP_FAILED) {
    uint64_t c = __atomic_load_n(static_cast<const uint64_t*>(cons), __ATOMIC_ACQUIRE);
    uint64_t p = __atomic_load_n(static_cast<const uint64_t*>(prod), __ATOMIC_ACQUIRE);
    fill = p >= c ? std::min<uint64_t>(p - c, ring_bytes) : 0;
    ::munmap(prod, static_cast<size_t>(page));
  }
  ::munmap(cons, static_cast<size_t>(page));
  return fill;
}

Result<std::unique_ptr<EventSource>> EbpfTracer::source(const EbpfJob& job, std::shared_ptr<EbpfTracer> self) {
  auto source = std::make_unique<EbpfSource>(std::move(self), job.slot, job.ring.get());
  if (auto opened = source->open_ring(); !opened) return tl::unexpected(opened.error());
  return std::unique_ptr<EventSource>(std::move(source));
}

Result<std::shared_ptr<EbpfTracer>> EbpfTracer::load(const EbpfOptions& options) {
  if (options.ring_bytes < 4096 || (options.ring_bytes & (options.ring_bytes - 1)) != 0)
    return fail("eBPF backend: the buffer size must be a power of two of at least 4 KiB");
  g_libbpf_verbose = options.verbose;
  libbpf_set_print(libbpf_print);
  if (auto probed = probe_kernel(); !probed) return tl::unexpected(probed.error());

  std::shared_ptr<EbpfTracer> tracer(new EbpfTracer);
  tracer->skel_ = bsandbox_bpf__open();
  bsandbox_bpf* skel = tracer->skel_;
  if (!skel) return fail_errno("eBPF backend: opening the BPF object", errno);
  tracer->ring_bytes_ = options.ring_bytes;
  tracer->used_.assign(BS_JOBS_MAX, false);

  auto table = kernel_syscall_table();
  static_assert(sizeof(skel->rodata->bs_sc_table) == sizeof(table));
  std::memcpy(const_cast<bs_sc_desc*>(skel->rodata->bs_sc_table), table.data(), sizeof(table));
  skel->rodata->bs_wakeup_bytes = std::max<uint64_t>(options.ring_bytes / 16, 64 << 10);

  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return fail("eBPF backend: cannot count the CPUs");
  // Every job's ring has the size of the template the kernel checks inner
  // maps against (kernels before 5.10 compare sizes). libbpf 1.1 cannot
  // resize the template it would make from the definition, so hand it one.
  UniqueFd ring_template(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "bs_ring_tmpl", 0, 0,
                                        static_cast<__u32>(options.ring_bytes), nullptr));
  if (!ring_template.valid() && (errno == EPERM || errno == EACCES)) return tl::unexpected(not_permitted());
  if (!ring_template.valid())
    return fail("eBPF backend: the kernel could not allocate a ring buffer of " +
                std::to_string(options.ring_bytes) + " bytes (" + std::strerror(errno) +
                "): try a smaller --buffer-size");
  if (bpf_map__set_max_entries(skel->maps.bs_scratch, static_cast<__u32>(ncpu) * 2) != 0 ||
      bpf_map__set_inner_map_fd(skel->maps.bs_rings, ring_template.get()) != 0)
    return fail("eBPF backend: sizing the maps failed");

  if (int rc = bsandbox_bpf__load(skel); rc != 0) {
    if (rc == -EPERM) return tl::unexpected(not_permitted());
    if (rc == -ENOMEM || rc == -E2BIG)
      return fail("eBPF backend: the kernel could not allocate the maps (" +
                  std::string(std::strerror(-rc)) + "): try a smaller --buffer-size");
    return fail("eBPF backend: the kernel rejected the BPF programs (" +
                std::string(std::strerror(-rc)) + "); rerun with -v for the verifier's log");
  }
  if (int rc = bsandbox_bpf__attach(skel); rc != 0)
    return fail("eBPF backend: attaching to the kernel's tracepoints failed (" +
                std::string(std::strerror(-rc)) + "); rerun with -v for details");
  return tracer;
}

Result<std::unique_ptr<EventSource>> open_ebpf_backend(const EbpfOptions& options) {
  auto tracer = EbpfTracer::load(options);
  if (!tracer) return tl::unexpected(tracer.error());
  auto job = (*tracer)->add_job();
  if (!job) return tl::unexpected(job.error());
  auto source = std::make_unique<EbpfSource>(*tracer, job->slot, job->ring.get());
  source->own(std::move(*job));
  if (auto opened = source->open_ring(); !opened) return tl::unexpected(opened.error());
  return std::unique_ptr<EventSource>(std::move(source));
}

}  // namespace bsandbox
