// limits.h: what one client of bsandboxd may hold, so that no local
// user can starve the others (the agent serves every user of its socket as
// a stranger: sshd's MaxStartups, nginx's timeouts and connection caps).
//
// AgentLimits are the numbers (bsandboxd's options). ClientLedger counts
// connections, in all and per uid, and per uid the connections whose request
// has not arrived whole ("startups") and the bytes held of those requests;
// each connection holds a Ticket that gives its counts back when it goes.
// JobShares is the queue's rule: a user runs at most its share of the job
// slots and keeps at most its share of the queue, and a freed slot goes to
// the oldest waiting job whose user is below its share. AcceptBackoff paces
// accepting while the agent is out of descriptors. Plain counting, no I/O
// (tests/agent/limits_test.cpp); agent.cpp and queue.cpp apply it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/base/result.h"

namespace bsandbox {

struct AgentLimits {
  unsigned max_connections = 256;                // open connections, all users
  unsigned max_connections_per_user = 32;        // open connections of one uid
  unsigned max_startups_per_user = 16;           // of those, with a request not yet whole
  size_t max_pending_bytes_per_user = 16 << 20;  // bytes held of one uid's incomplete requests
  size_t max_pending_bytes = 64 << 20;           // the same, all users
  unsigned request_timeout_s = 10;               // from connecting to the whole request; /metrics too
  unsigned send_timeout_s = 60;                  // for each reply frame to be taken by the client
  unsigned max_jobs_per_user = 0;                // running; 0: half of --max-jobs, rounded up
  unsigned max_queued_per_user = 0;              // waiting; 0: a quarter of --max-queued (at least 1)
  size_t max_record_bytes = 256 << 20;           // a job's result frame (the record)
  unsigned metrics_connections = 8;              // /metrics exchanges at once
};

// The shares that 0 leaves to the defaults, made explicit.
AgentLimits resolve_limits(AgentLimits limits, unsigned max_jobs, unsigned max_queued);

// Descriptors the agent may need at its limits: each connection with the
// descriptors of its request, each running job's ring, control socket and
// cgroup files, /metrics, and the tracer's own (maps, programs).
size_t descriptors_needed(const AgentLimits& limits, unsigned max_jobs);

class ClientLedger {
 public:
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept { *this = std::move(other); }
    Ticket& operator=(Ticket&& other) noexcept;
    ~Ticket() { release(); }
    // The bytes held of the incomplete request are now `bytes`; refused
    // (the counts unchanged) if that is more than the user or all may hold.
    Result<void> hold(size_t bytes);
    // The request is whole or refused: no longer a startup, nothing held.
    void settle();
    // Gives every count back (the connection closed).
    void release();
    bool startup() const { return startup_; }

   private:
    friend class ClientLedger;
    ClientLedger* ledger_ = nullptr;
    uid_t uid_ = 0;
    bool startup_ = false;
    size_t bytes_ = 0;
  };

  explicit ClientLedger(const AgentLimits& limits) : limits_(limits) {}
  ClientLedger(const ClientLedger&) = delete;
  ClientLedger& operator=(const ClientLedger&) = delete;
  // A new connection of uid, counted as a startup; or why it is refused.
  Result<Ticket> admit(uid_t uid);

  struct Counts {
    unsigned connections = 0, startups = 0;
    size_t bytes = 0;
  };
  Counts of(uid_t uid) const;
  unsigned connections() const { return connections_; }
  size_t bytes() const { return bytes_; }

 private:
  const AgentLimits& limits_;
  std::map<uid_t, Counts> users_;  // only users with a connection
  unsigned connections_ = 0;
  size_t bytes_ = 0;
};

struct JobShares {
  unsigned max_jobs = 4, max_queued = 64, per_user_running = 2, per_user_queued = 16;
  // A job of uid may start now (a slot is free and uid is below its share).
  bool may_start(uid_t uid, const std::vector<uid_t>& running) const;
  // Which queued job starts next (an index into queued), if any.
  std::optional<size_t> next(const std::vector<uid_t>& queued, const std::vector<uid_t>& running) const;
  // A new job of uid is taken (to start now or to wait), or why not.
  Result<void> admit(uid_t uid, const std::vector<uid_t>& queued, const std::vector<uid_t>& running) const;
};

// While accept fails (out of descriptors), the pause before the next try:
// 10 ms doubling to 1 s; an accept that works starts over.
class AcceptBackoff {
 public:
  std::chrono::milliseconds failed();
  void succeeded() { delay_ = std::chrono::milliseconds(0); }
  // The last accept failed (to log an episode once, not every retry).
  bool failing() const { return delay_.count() != 0; }

 private:
  std::chrono::milliseconds delay_{0};
};

}  // namespace bsandbox
