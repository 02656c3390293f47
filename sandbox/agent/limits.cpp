// limits.cpp: the ledger of connections and buffered bytes, the job
// shares and the accept backoff (agent_limits.h).
#include "sandbox/agent/limits.h"

#include <algorithm>
#include <utility>

#include "sandbox/agent/protocol.h"
#include "sandbox/base/text.h"

namespace bsandbox {

AgentLimits resolve_limits(AgentLimits l, unsigned max_jobs, unsigned max_queued) {
  if (l.max_jobs_per_user == 0) l.max_jobs_per_user = (max_jobs + 1) / 2;
  if (l.max_queued_per_user == 0) l.max_queued_per_user = max_queued ? std::max(1u, max_queued / 4) : 0;
  return l;
}

size_t descriptors_needed(const AgentLimits& l, unsigned max_jobs) {
  constexpr size_t kPerRunningJob = 6;  // ring, control socket, cgroup.procs files, runner's
  constexpr size_t kTracer = 64;        // BPF maps and programs, the listeners, the reserve, stdio
  return size_t(l.max_connections) * (1 + kMaxRequestFds) + size_t(max_jobs) * kPerRunningJob +
         l.metrics_connections + kTracer;
}

Result<ClientLedger::Ticket> ClientLedger::admit(uid_t uid) {
  const std::string who = "uid " + std::to_string(uid);
  if (connections_ >= limits_.max_connections)
    return fail("the agent has " + std::to_string(connections_) +
                " connections open, its limit (bsandboxd --max-connections); try again later");
  Counts& c = users_[uid];
  if (c.connections >= limits_.max_connections_per_user || c.startups >= limits_.max_startups_per_user) {
    bool all = c.connections >= limits_.max_connections_per_user;
    std::string text = all ? who + " has " + std::to_string(c.connections) +
                                 " connections to the agent open, the most one user may (bsandboxd --max-connections-per-user)"
                           : who + " has " + std::to_string(c.startups) +
                                 " requests to the agent under way, the most one user may (bsandboxd --max-startups-per-user)";
    if (c.connections == 0) users_.erase(uid);
    return fail(text);
  }
  ++c.connections;
  ++c.startups;
  ++connections_;
  Ticket t;
  t.ledger_ = this;
  t.uid_ = uid;
  t.startup_ = true;
  return t;
}

ClientLedger::Counts ClientLedger::of(uid_t uid) const {
  auto it = users_.find(uid);
  return it == users_.end() ? Counts{} : it->second;
}

ClientLedger::Ticket& ClientLedger::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    ledger_ = std::exchange(other.ledger_, nullptr);
    uid_ = other.uid_;
    startup_ = std::exchange(other.startup_, false);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Result<void> ClientLedger::Ticket::hold(size_t bytes) {
  if (!ledger_) return {};
  ClientLedger& l = *ledger_;
  Counts& c = l.users_[uid_];
  size_t user = c.bytes - bytes_ + bytes, all = l.bytes_ - bytes_ + bytes;
  if (bytes > bytes_ && user > l.limits_.max_pending_bytes_per_user)
    return fail("uid " + std::to_string(uid_) + "'s requests under way would hold more than the " +
                format_size(l.limits_.max_pending_bytes_per_user) + " one user may");
  if (bytes > bytes_ && all > l.limits_.max_pending_bytes)
    return fail("the requests under way would hold more than the agent's " + format_size(l.limits_.max_pending_bytes) +
                "; try again later");
  c.bytes = user;
  l.bytes_ = all;
  bytes_ = bytes;
  return {};
}

void ClientLedger::Ticket::settle() {
  if (!ledger_ || !startup_) return;
  (void)hold(0);
  --ledger_->users_[uid_].startups;
  startup_ = false;
}

void ClientLedger::Ticket::release() {
  if (!ledger_) return;
  settle();
  ClientLedger& l = *std::exchange(ledger_, nullptr);
  auto it = l.users_.find(uid_);
  if (--it->second.connections == 0) l.users_.erase(it);
  --l.connections_;
}

bool JobShares::may_start(uid_t uid, const std::vector<uid_t>& running) const {
  return running.size() < max_jobs &&
         static_cast<size_t>(std::count(running.begin(), running.end(), uid)) < per_user_running;
}

std::optional<size_t> JobShares::next(const std::vector<uid_t>& queued, const std::vector<uid_t>& running) const {
  for (size_t i = 0; i < queued.size(); ++i)
    if (may_start(queued[i], running)) return i;
  return std::nullopt;
}

Result<void> JobShares::admit(uid_t uid, const std::vector<uid_t>& queued, const std::vector<uid_t>& running) const {
  if (may_start(uid, running)) return {};
  if (queued.size() >= max_queued)
    return fail("the agent's queue is full (" + std::to_string(max_queued) + " jobs waiting)");
  size_t mine = static_cast<size_t>(std::count(queued.begin(), queued.end(), uid));
  if (mine >= per_user_queued)
    return fail("uid " + std::to_string(uid) + " has " + std::to_string(mine) +
                " jobs waiting, the most one user may (bsandboxd --max-queued-per-user)");
  return {};
}

std::chrono::milliseconds AcceptBackoff::failed() {
  using std::chrono::milliseconds;
  delay_ = delay_.count() == 0 ? milliseconds(10) : std::min(delay_ * 2, milliseconds(1000));
  return delay_;
}

}  // namespace bsandbox
