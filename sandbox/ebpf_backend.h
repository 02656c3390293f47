// ebpf_backend.h: the eBPF event source.
//
// Loads the kernel programs of bpf/ (one libbpf skeleton), hands them the
// syscall table, attaches them, and reads their ring buffer. See
// bpf/process.bpf.c and bpf/files.bpf.c for what the kernel side does.
#pragma once

#include <memory>

#include "sandbox/event_source.h"

namespace bsandbox {

struct EbpfOptions {
  size_t ring_bytes = 16 << 20;  // a power of two
  bool verbose = false;          // pass libbpf's messages (and verifier logs) to stderr
};

// Opens the backend, or says in one line what is missing and what to do.
Result<std::unique_ptr<EventSource>> open_ebpf_backend(const EbpfOptions& options);

}  // namespace bsandbox
