// agent.h: bsandboxd, the root-run agent that gives local users' jobs the
// eBPF tracer.
//
// One process, one Boost.Asio event loop on one thread. At start it loads
// the BPF programs once (EbpfTracer), sweeps job cgroups a crashed agent
// left, and listens on a Unix socket (agent.proto is the protocol). Who may
// connect is the socket's mode and group; who a caller is comes from
// SO_PEERCRED and SO_PEERGROUPS, never from what it says.
//
// Each job runs in a job runner: a child of the agent forked for it, which
// keeps only the descriptors the job needs, reads the job's own ring buffer
// (a slot of the shared tracer), and runs the ordinary supervisor on the
// caller's command, which starts in the job's cgroup, in the directory the
// caller sent as an fd, with the caller's environment, uid, gid and groups,
// and with the caller's stdin, stdout and stderr. The runner sends progress
// and the finished record to the agent on a socketpair; the agent passes
// them to the caller. The runner is the job's subreaper, so the record is
// whole and nothing of the job outlives it.
//
// Every client is a stranger: a connection holds the descriptors its one
// request needs and no more, connections, requests under way and their bytes
// are counted per user and in all, a request must arrive within a time
// limit and a reply be taken within another, a user runs and queues at most
// its share of the jobs (limits.h), and running out of descriptors
// pauses accepting instead of spinning.
//
// Kills: the caller going away (its connection closes), the wall time limit,
// and the agent's end (SIGTERM past the drain timeout, or the agent dying,
// which the runner sees as its socketpair closing) all kill the job's whole
// tree; the job's cgroup is killed too where the host has one, which also
// covers a runner that died.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sandbox/agent/options.h"

namespace bsandbox {


// Runs the agent until SIGTERM/SIGINT has drained it; returns the exit code.
int run_agent(const AgentOptions& options);

}  // namespace bsandbox
