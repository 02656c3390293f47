// ebpf_backend.cpp: open -> set rodata -> load -> attach -> ring buffer
// poll, with one cleanup path (the RAII owners below).
//
// Before loading, the kernel is probed for what the programs need, so that a
// missing feature is reported as that feature ("this kernel lacks bpf_loop,
// Linux 5.17+") rather than as a verifier log. libbpf's own messages go to
// stderr only with -v.
#include "sandbox/ebpf_backend.h"

#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/events.h"
#include "sandbox/event_decoder.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/syscall_table.h"
#include "sandbox/unique_fd.h"

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

struct SkeletonDeleter {
  void operator()(bsandbox_bpf* s) const { bsandbox_bpf__destroy(s); }
};
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
  EbpfSource(std::unique_ptr<bsandbox_bpf, SkeletonDeleter> skel,
             std::unique_ptr<ring_buffer, RingDeleter> ring)
      : skel_(std::move(skel)), ring_(std::move(ring)) {}

  static Result<std::unique_ptr<EbpfSource>> open(const EbpfOptions& options);

  std::string_view name() const override { return "ebpf"; }

  // The top process gets an entry in bs_procs (by tgid) and a bs_task in
  // task storage, which is keyed by a pidfd.
  Result<void> trace_root(pid_t pid) override {
    __u32 key = static_cast<__u32>(pid);
    uint64_t proc[1] = {0};  // struct bs_proc
    if (bpf_map__update_elem(skel_->maps.bs_procs, &key, sizeof key, proc, sizeof proc,
                             BPF_ANY) != 0)
      return fail_errno("eBPF backend: adding the top process to the traced set", errno);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) return fail_errno("eBPF backend: pidfd_open of the top process", errno);
    int fd = pidfd.get();
    std::vector<uint8_t> task(bpf_map__value_size(skel_->maps.bs_tasks), 0);
    if (bpf_map__update_elem(skel_->maps.bs_tasks, &fd, sizeof fd, task.data(), task.size(),
                             BPF_NOEXIST) != 0)
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

  std::unique_ptr<bsandbox_bpf, SkeletonDeleter> skel_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  EventSink* sink_ = nullptr;
  SourceHealth health_;
};

SourceHealth EbpfSource::health() {
  SourceHealth h = health_;
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
  auto total = [&](uint32_t counter) -> uint64_t {
    if (bpf_map__lookup_elem(skel_->maps.bs_counters, &counter, sizeof counter, values.data(),
                             values.size() * sizeof(uint64_t), 0) != 0)
      return 0;
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;
    return sum;
  };
  uint64_t ring_full = total(BS_CNT_RINGBUF_FULL);
  uint64_t untracked = total(BS_CNT_UNTRACKED);
  uint64_t too_big = total(BS_CNT_TOO_BIG);
  if (ring_full)
    h.problems.push_back(std::to_string(ring_full) +
                         " events dropped because the ring buffer was full (try a larger "
                         "--buffer-size)");
  if (untracked)
    h.problems.push_back(std::to_string(untracked) +
                         " threads or processes could not be traced (kernel out of memory for "
                         "their state, or the process table is full)");
  if (too_big)
    h.problems.push_back(std::to_string(too_big) +
                         " paths left out of events that would have exceeded " +
                         std::to_string(BS_EVENT_MAX) + " bytes");
  // A program that fires while the same program is running on that CPU is
  // skipped by the kernel; we cannot tell whose event that was, so any such
  // miss makes the record incomplete.
  uint64_t misses = 0;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
      misses += info.recursion_misses;
  }
  if (misses)
    h.problems.push_back(std::to_string(misses) +
                         " program runs skipped by the kernel (recursion): events may be lost");
  h.lost += ring_full + untracked + misses;
  return h;
}

Result<std::unique_ptr<EbpfSource>> EbpfSource::open(const EbpfOptions& options) {
  g_libbpf_verbose = options.verbose;
  libbpf_set_print(libbpf_print);
  if (auto probed = probe_kernel(); !probed) return tl::unexpected(probed.error());

  std::unique_ptr<bsandbox_bpf, SkeletonDeleter> skel(bsandbox_bpf__open());
  if (!skel) return fail_errno("eBPF backend: opening the BPF object", errno);

  auto table = kernel_syscall_table();
  static_assert(sizeof(skel->rodata->bs_sc_table) == sizeof(table));
  std::memcpy(const_cast<bs_sc_desc*>(skel->rodata->bs_sc_table), table.data(), sizeof(table));
  skel->rodata->bs_wakeup_bytes = std::max<uint64_t>(options.ring_bytes / 16, 64 << 10);

  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return fail("eBPF backend: cannot count the CPUs");
  if (bpf_map__set_max_entries(skel->maps.bs_scratch, static_cast<__u32>(ncpu) * 2) != 0 ||
      bpf_map__set_max_entries(skel->maps.bs_events, static_cast<__u32>(options.ring_bytes)) != 0)
    return fail("eBPF backend: sizing the maps failed");

  if (int rc = bsandbox_bpf__load(skel.get()); rc != 0) {
    if (rc == -EPERM) return tl::unexpected(not_permitted());
    if (rc == -ENOMEM || rc == -E2BIG)
      return fail("eBPF backend: the kernel could not allocate the maps (" +
                  std::string(std::strerror(-rc)) + "): try a smaller --buffer-size");
    return fail("eBPF backend: the kernel rejected the BPF programs (" +
                std::string(std::strerror(-rc)) + "); rerun with -v for the verifier's log");
  }
  if (int rc = bsandbox_bpf__attach(skel.get()); rc != 0)
    return fail("eBPF backend: attaching to the kernel's tracepoints failed (" +
                std::string(std::strerror(-rc)) + "); rerun with -v for details");

  auto source = std::make_unique<EbpfSource>(std::move(skel), nullptr);
  source->ring_.reset(ring_buffer__new(bpf_map__fd(source->skel_->maps.bs_events),
                                       &EbpfSource::on_record, source.get(), nullptr));
  if (!source->ring_) return fail_errno("eBPF backend: opening the ring buffer", errno);
  return source;
}

}  // namespace

Result<std::unique_ptr<EventSource>> open_ebpf_backend(const EbpfOptions& options) {
  if (options.ring_bytes < 4096 || (options.ring_bytes & (options.ring_bytes - 1)) != 0)
    return fail("eBPF backend: the buffer size must be a power of two of at least 4 KiB");
  auto source = EbpfSource::open(options);
  if (!source) return tl::unexpected(source.error());
  return std::unique_ptr<EventSource>(std::move(*source));
}

}  // namespace bsandbox
