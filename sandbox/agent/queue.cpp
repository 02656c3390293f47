// queue.cpp: see queue.h. The shares are JobShares' (limits.h), asked with
// the uids of the jobs waiting and running as they are at each decision;
// the queues are short (at most --max-queued and --max-jobs), so nothing
// is kept per user between decisions.
#include "sandbox/agent/queue.h"

#include <algorithm>

namespace bsandbox {

void Job::progress(uint64_t delivered, int64_t now_ns) {
  if (now_ns > rate_at_ns)
    rate = static_cast<double>(delivered - rate_events) * 1e9 / static_cast<double>(now_ns - rate_at_ns);
  rate_at_ns = now_ns;
  rate_events = delivered;
  events = delivered;
}

Result<void> JobQueue::admit(uid_t uid) const { return shares_.admit(uid, queued_uids(), running_uids()); }

void JobQueue::push(std::shared_ptr<Job> job) {
  job->state = Job::kQueued;
  queued_.push_back(std::move(job));
}

std::shared_ptr<Job> JobQueue::take_next() {
  auto next = shares_.next(queued_uids(), running_uids());
  if (!next) return nullptr;
  auto job = queued_[*next];
  queued_.erase(queued_.begin() + static_cast<std::ptrdiff_t>(*next));
  return job;
}

void JobQueue::started(const std::shared_ptr<Job>& job, int64_t now_ns) {
  job->state = Job::kRunning;
  job->since_ns = now_ns;
  job->rate_at_ns = now_ns;
  running_.insert(job);
}

void JobQueue::forget(const std::shared_ptr<Job>& job) {
  queued_.erase(std::remove(queued_.begin(), queued_.end(), job), queued_.end());
  running_.erase(job);
}

std::deque<std::shared_ptr<Job>> JobQueue::take_queued() { return std::exchange(queued_, {}); }

std::vector<uid_t> JobQueue::queued_uids() const {
  std::vector<uid_t> out;
  for (const auto& j : queued_) out.push_back(j->uid);
  return out;
}

std::vector<uid_t> JobQueue::running_uids() const {
  std::vector<uid_t> out;
  for (const auto& j : running_) out.push_back(j->uid);
  return out;
}

}  // namespace bsandbox
