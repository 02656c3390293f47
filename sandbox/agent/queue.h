// queue.h: bsandboxd's jobs, those waiting for a slot and those running,
// and the rule that shares the slots between users.
//
// A Job is one accepted Submit from its caller's connection to its
// runner's end: what the caller asked for and sent, then, once started, its
// runner, control socket, tracer slot and cgroup, and what the runner said
// of it (events, their rate). JobQueue holds the jobs not yet done: waiting
// in arrival order, and running. JobShares (limits.h) decides: a user runs
// at most its share of the slots and keeps at most its share of the queue,
// and a freed slot goes to the oldest waiting job whose user is below its
// share, so a user at its share waits for its own jobs, not everyone else.
// Plain bookkeeping, no I/O: the agent starts and ends the jobs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <vector>

#include <boost/asio.hpp>

#include "sandbox/agent/agent.pb.h"
#include "sandbox/agent/cgroup.h"
#include "sandbox/agent/limits.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/base/framing.h"
#include "sandbox/base/result.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct Connection;

struct Job {
  uint64_t id = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  agent::Submit submit;
  std::vector<UniqueFd> fds;  // as received: [stdin] [stdout] [stderr] cwd
  enum State { kQueued, kRunning, kDone } state = kQueued;
  int64_t since_ns = 0;
  pid_t runner = -1;
  std::unique_ptr<boost::asio::local::stream_protocol::socket> control;
  FrameReader reader{kMaxReplyBytes};
  std::vector<char> buf;
  std::optional<EbpfJob> ebpf;
  JobCgroup cgroup;
  bool finished = false;  // the runner sent its result
  bool control_closed = false;
  char stop_sent = 0;
  uint64_t events = 0, drops = 0;
  double rate = 0;
  int64_t rate_at_ns = 0;
  uint64_t rate_events = 0;
  std::weak_ptr<Connection> connection;

  // The runner's progress: events delivered so far, at now_ns; the rate is
  // over the time since the last progress (or the start).
  void progress(uint64_t delivered, int64_t now_ns);
};

class JobQueue {
 public:
  explicit JobQueue(JobShares shares) : shares_(shares) {}

  // A new job of uid is taken (to start now or to wait), or why not.
  Result<void> admit(uid_t uid) const;
  // A job of uid taken now would wait (no free slot, or uid at its share).
  bool would_wait(uid_t uid) const { return !shares_.may_start(uid, running_uids()); }
  // Waits at the end of the queue.
  void push(std::shared_ptr<Job> job);
  // The job to start next, off the queue; null if none may start.
  std::shared_ptr<Job> take_next();
  // job, taken off the queue, runs from now_ns.
  void started(const std::shared_ptr<Job>& job, int64_t now_ns);
  // job is no longer waiting nor running (it ended, or its caller left).
  void forget(const std::shared_ptr<Job>& job);
  // Every waiting job, the queue left empty (the agent shutting down).
  std::deque<std::shared_ptr<Job>> take_queued();

  const std::deque<std::shared_ptr<Job>>& queued() const { return queued_; }
  const std::set<std::shared_ptr<Job>>& running() const { return running_; }

 private:
  std::vector<uid_t> queued_uids() const;
  std::vector<uid_t> running_uids() const;

  JobShares shares_;
  std::deque<std::shared_ptr<Job>> queued_;
  std::set<std::shared_ptr<Job>> running_;
};

}  // namespace bsandbox
