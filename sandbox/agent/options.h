// options.h: what bsandboxd is started with (cli/bsandboxd.cpp parses them;
// startup.h checks them before anything is set up). Apart from agent.h so
// that the startup steps need not include the agent.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "sandbox/agent/limits.h"

namespace bsandbox {

struct AgentOptions {
  std::string socket;                 // kDefaultAgentSocket unless given
  std::optional<std::string> group;   // the socket's group (who may connect)
  unsigned mode = 0660;               // the socket's mode
  unsigned max_jobs = 4;              // running at once; more wait in a queue
  unsigned max_queued = 64;           // waiting; more are refused
  unsigned time_limit_s = 3600;       // wall time per job (0: none)
  unsigned max_processes = 4096;      // per job, where cgroups can limit it (0: none)
  size_t ring_bytes = 16 << 20;       // per job
  unsigned drain_timeout_s = 30;      // after SIGTERM, before running jobs are killed
  std::optional<std::string> metrics; // serve /metrics over HTTP here (HOST:PORT, loopback)
  bool bpf_stats = false;             // have the kernel time every BPF program run (costs each run two clock reads)
  AgentLimits limits;                 // what one client and one user may hold (limits.h)
  bool foreground = false;
  bool verbose = false;
};

}  // namespace bsandbox
