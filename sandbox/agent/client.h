// client.h: the caller's side of bsandboxd (`bsandbox exec --agent`,
// `bsandbox agent status`).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"
#include "sandbox/run/spawn.h"
#include "sandbox/run/run_result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

// $BSANDBOX_AGENT, else /run/bsandbox/agent.sock.
std::string default_agent_socket();

// Connects, or says why not in terms of what to do.
Result<UniqueFd> connect_agent(const std::string& socket);

// Submits argv (with environ, the cwd, and stdio's descriptors, -1 meaning
// ours) to the agent connected on fd at socket, and waits for the result.
// note() gets the agent's progress lines (queued, started). for_cache: as
// run_traced's (the record says cache "miss", the first accesses come back).
Result<TracedRun> run_via_agent(int fd, const std::string& socket, const std::vector<std::string>& argv,
                                const std::string& cwd, const ChildStdio& stdio, bool for_cache,
                                const std::function<void(const std::string&)>& note);

// `bsandbox agent status [--agent=SOCKET]`: prints the agent's state.
int run_agent_status(const std::string& socket);

}  // namespace bsandbox
