// client.h: the caller's side of bsandboxd (`bsandbox exec --agent`,
// `bsandbox agent status`).
//
// A client connects to the agent's socket, sends one request (a Submit with
// its stdio and working directory as descriptors, a Status, or a report of
// remote cache traffic) and reads replies until the last: Finished or Error
// for a job, Status for a status, Reported for a report.
// Errors are Results, one line each saying what to do where it can (no
// agent listening, not allowed to connect); the caller prints them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sandbox/agent/agent.pb.h"
#include "sandbox/agent/cache_traffic.h"
#include "sandbox/base/result.h"
#include "sandbox/run/spawn.h"
#include "sandbox/run/run_result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

// Connects, or says why not in terms of what to do. timeout_ms > 0 bounds
// the connect and every later send and receive on the socket.
Result<UniqueFd> connect_agent(const std::string& socket, int timeout_ms = 0);

// Submits argv (with environ, the cwd, and stdio's descriptors, -1 meaning
// ours) to the agent connected on fd at socket, and waits for the result.
// note() gets the agent's progress lines (queued, started). for_cache: as
// run_traced's (the record says cache "miss", the first accesses come back).
Result<TracedRun> run_via_agent(int fd, const std::string& socket, const std::vector<std::string>& argv,
                                const std::string& cwd, const ChildStdio& stdio, bool for_cache,
                                const std::function<void(const std::string&)>& note);

// Tells the agent at socket what this user's remote cache traffic grew by
// (the agent counts it for the uid the socket names). Each step (connect,
// send, the answer) waits at most timeout_ms. The caller ignores a failure:
// a build is never failed or held up for a count.
Result<void> report_cache_traffic(const std::string& socket, const CacheTraffic& traffic, int timeout_ms = 1000);

// The agent's state: asked on a connected fd, or by connecting to socket.
Result<agent::Status> ask_status(int fd);
Result<agent::Status> agent_status(const std::string& socket);
// The state as `bsandbox agent status` shows it, one line per fact and per
// job (its command cut at 60 characters).
std::string format_agent_status(const std::string& socket, const agent::Status& status);

}  // namespace bsandbox
