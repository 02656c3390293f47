// tracer_service.h: a traced run lends its tracer to the cached commands
// inside it.
//
// `make SHELL=bsandbox-wrap` under `bsandbox exec` runs each recipe through
// the cache. Loading BPF programs for every recipe would cost more than many
// recipes take; instead the bsandbox tracing the whole build (eBPF) listens
// on an abstract Unix socket named in $BSANDBOX_TRACER. A wrapper connects,
// runs its command as its own child (traced already, as a descendant), and
// once it has reaped it asks for the record of that child's subtree. The
// service drains the kernel's events first: the child's exit event was
// written before its parent could reap it, so the answer is whole.
//
// Only processes of the traced tree are answered (SO_PEERCRED pid), and
// only about their own children. The answer is a TracedRun (run_result.h):
// the subtree's record, judged by the completeness rule for a subtree, and
// its first accesses; the wrapper adds its facts as the record is received.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"
#include "sandbox/core/event_source.h"
#include "sandbox/core/process_tree.h"
#include "sandbox/run/run_result.h"

namespace bsandbox {

inline constexpr const char* kTracerEnv = "BSANDBOX_TRACER";

class TracerService {
 public:
  static Result<std::unique_ptr<TracerService>> listen();
  // The socket's name for $BSANDBOX_TRACER ("@bsandbox-tracer-...").
  const std::string& address() const { return address_; }
  int fd() const { return listen_.get(); }
  // Accepts and answers every waiting client.
  void serve(EventSource& source, ProcessTree& tree, int64_t boot_to_wall);

 private:
  TracerService(UniqueFd fd, std::string address) : listen_(std::move(fd)), address_(std::move(address)) {}
  void answer(int client, EventSource& source, ProcessTree& tree, int64_t boot_to_wall);
  UniqueFd listen_;
  std::string address_;
};

// Connects to the service at address (from $BSANDBOX_TRACER). Connect only
// when ready to ask: the service answers each connection at once.
Result<UniqueFd> connect_tracer(const std::string& address);
// After reaping child: its subtree's run, its record built with the
// caller's facts (the service knows none of them).
Result<TracedRun> request_subtree(int fd, pid_t child, RunFacts facts);

}  // namespace bsandbox
