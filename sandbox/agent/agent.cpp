// agent.cpp: bsandboxd's startup and its event loop. What is particular to
// the implementation: one Agent object owns everything the loop touches
// (the listening socket, connections, the job queue, runners' control
// sockets, timers, signals) and wires them: an accepted socket becomes a
// Connection (connection.h) if its user may open one (limits.h); a request
// becomes a Job in the JobQueue (queue.h); a job starts by taking a tracer
// slot and a cgroup (cgroup.h) and forking its runner (runner.h), whose
// frames it passes on to the caller; a job ends when its runner's control
// socket closes, and its slot is reused only once its cgroup is empty.
// SIGTERM drains: queued jobs are refused, running ones get
// --drain-timeout. A cache_report adds to its caller's remote cache counts
// (cache_traffic.h). /metrics (http.h, metrics.h) and the status reply
// (status.h) read a snapshot. Startup checks the options, raises the
// descriptor limit, locks the socket (socket.h), loads the tracer once and
// sweeps what a crashed agent left, in that order, before it listens.
#include "sandbox/agent/agent.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <set>

#include "sandbox/agent/accept.h"
#include "sandbox/agent/cache_traffic.h"
#include "sandbox/agent/cgroup.h"
#include "sandbox/agent/connection.h"
#include "sandbox/agent/http.h"
#include "sandbox/agent/metrics.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/agent/queue.h"
#include "sandbox/agent/runner.h"
#include "sandbox/agent/socket.h"
#include "sandbox/agent/startup.h"
#include "sandbox/agent/status.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/base/clocks.h"
#include "sandbox/base/text.h"

namespace bsandbox {
namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

void log_line(const std::string& line) {
  std::string out = "bsandboxd: " + line + "\n";
  (void)!::write(2, out.data(), out.size());
}

int64_t wall_now() { return Clocks::wall_now(); }

std::string shown(const google::protobuf::RepeatedPtrField<std::string>& argv) {
  std::vector<std::string> v(argv.begin(), argv.end());
  std::string line = command_line(v);
  return line.size() <= 80 ? line : line.substr(0, 77) + "...";
}

agent::Reply error_reply(const std::string& message) {
  agent::Reply r;
  r.mutable_error()->set_message(message);
  return r;
}

// ---------------------------------------------------------------- agent

class Agent : public ConnectionHost {
 public:
  Agent(const AgentOptions& o, const AgentLimits& limits, const AgentSocket& socket, rlim_t jobs_nofile,
        std::shared_ptr<EbpfTracer> tracer, Cgroups cgroups, UniqueFd listen_fd, UniqueFd metrics_fd)
      : options_(o), limits_(limits), socket_(socket), jobs_nofile_(jobs_nofile), ledger_(limits_),
        tracer_(std::move(tracer)), cgroups_(std::move(cgroups)), acceptor_(io_),
        pacer_(io_, "connections", frame(error_reply("the agent is out of file descriptors; try again later")), log_line),
        signals_(io_, SIGTERM, SIGINT), children_(io_, SIGCHLD), drain_timer_(io_), retry_timer_(io_),
        jobs_(JobShares{o.max_jobs, o.max_queued, limits.max_jobs_per_user, limits.max_queued_per_user}),
        started_ns_(wall_now()) {
    totals_.max_jobs = o.max_jobs;
    acceptor_.assign(Local(), listen_fd.release());
    if (metrics_fd.valid())
      metrics_.emplace(io_, std::move(metrics_fd), limits_, [this] { return format_metrics(snapshot()); }, log_line);
  }

  int run() {
    if (metrics_) metrics_->start();
    accept();
    wait_signal();
    wait_children();
    io_.run();
    return 0;
  }

  // From connections.
  const AgentLimits& limits() const override { return limits_; }
  void on_submit(const std::shared_ptr<Connection>& c, agent::Submit submit) override;
  void on_status(const std::shared_ptr<Connection>& c) override;
  void on_cache_report(const std::shared_ptr<Connection>& c, const agent::CacheTraffic& report) override;
  void on_refused(uid_t uid, const std::string& why) override {
    ++totals_.refused;
    log_refusal(uid, why);
  }
  void on_closed(const std::shared_ptr<Connection>& c) override;
  void note(const std::string& line) override {
    if (options_.verbose) log_line(line);
  }

 private:
  // Logs a refusal, at most kRefusalLines a second (a flood of them must
  // not become a flood of log lines).
  void log_refusal(uid_t uid, const std::string& why);
  void maybe_exit();
  void accept();
  void admit(Local::socket s);
  void runner_failed(const std::shared_ptr<Job>& job, const std::string& why);
  AgentMetrics snapshot();
  void wait_signal();
  void wait_children();
  void start_next();
  void start(const std::shared_ptr<Job>& job);
  Result<StartedRunner> fork_runner_for(const Job& job);
  void read_control(const std::shared_ptr<Job>& job);
  void on_control_frame(const std::shared_ptr<Job>& job, std::string payload);
  void control_closed(const std::shared_ptr<Job>& job);
  void clean_up(const std::shared_ptr<Job>& job);
  void stop(const std::shared_ptr<Job>& job, char why);
  void shut_down();

  const AgentOptions& options_;
  const AgentLimits limits_;
  const AgentSocket& socket_;
  rlim_t jobs_nofile_;
  ClientLedger ledger_;  // before io_: connections io_ destroys give their counts back
  int64_t refusal_second_ = 0;
  unsigned refusal_lines_ = 0, refusals_unlogged_ = 0;
  std::shared_ptr<EbpfTracer> tracer_;
  Cgroups cgroups_;
  asio::io_context io_;
  std::set<std::shared_ptr<Connection>> connections;  // after io_: their sockets go first
  Local::acceptor acceptor_;
  AcceptPacer pacer_;
  std::optional<MetricsServer> metrics_;
  AgentTotals totals_;
  asio::signal_set signals_, children_;
  asio::steady_timer drain_timer_, retry_timer_;
  JobQueue jobs_;  // after io_: their control sockets go first
  std::vector<std::shared_ptr<Job>> cleaning_;  // done, waiting for their cgroup to empty
  uint64_t next_id_ = 1;
  int64_t started_ns_;
  bool draining_ = false;

 public:
  void set_program_stats(bool on) { totals_.program_stats = on; }

};

// ------------------------------------------------------------------ agent

void Agent::log_refusal(uid_t uid, const std::string& why) {
  constexpr unsigned kRefusalLines = 20;
  if (!options_.verbose) return;
  int64_t second = wall_now() / 1000000000;
  if (second != refusal_second_) {
    refusal_second_ = second;
    refusal_lines_ = 0;
  }
  if (refusal_lines_ >= kRefusalLines) {
    ++refusals_unlogged_;
    return;
  }
  ++refusal_lines_;
  std::string more = refusals_unlogged_ ? " (and " + std::to_string(refusals_unlogged_) + " refusals not logged)" : "";
  refusals_unlogged_ = 0;
  log_line("refused a request of uid " + std::to_string(uid) + ": " + why + more);
}

void Agent::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, Local::socket s) {
    if (ec == asio::error::operation_aborted || draining_) return;
    if (ec) {
      pacer_.failed(ec, acceptor_.native_handle(), [this] { accept(); });
      return;
    }
    pacer_.succeeded();
    admit(std::move(s));
    accept();
  });
}

// Who the caller is decides what it may still open: refused here, the
// connection never holds more than its socket, for a moment.
void Agent::admit(Local::socket s) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return;
  auto ticket = ledger_.admit(peer.uid);
  if (!ticket) {
    on_refused(peer.uid, ticket.error().message);
    std::string bytes = frame(error_reply(ticket.error().message));
    (void)!::send(s.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return;
  }
  auto c = std::make_shared<Connection>(*this, std::move(s), peer, std::move(*ticket));
  connections.insert(c);
  c->start();
}

AgentMetrics Agent::snapshot() {
  return bsandbox::snapshot(totals_, jobs_, read_tracer(*tracer_), static_cast<double>(wall_now() - started_ns_) / 1e9);
}

void Agent::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (draining_) {
      log_line("second signal: killing running jobs now");
      for (const auto& j : jobs_.running()) stop(j, 't');
    } else {
      log_line(std::string("got ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
      shut_down();
    }
    wait_signal();
  });
}

void Agent::wait_children() {
  children_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    int status;
    while (::waitpid(-1, &status, WNOHANG) > 0) {
    }
    wait_children();
  });
}

void Agent::shut_down() {
  draining_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pacer_.cancel();
  if (metrics_) metrics_->close();
  socket_.remove();
  for (const auto& j : jobs_.take_queued()) {
    if (auto c = j->connection.lock()) c->refuse("the agent is shutting down; the job did not start");
    j->state = Job::kDone;
  }
  if (!jobs_.running().empty()) {
    log_line("waiting up to " + std::to_string(options_.drain_timeout_s) + " s for " +
             std::to_string(jobs_.running().size()) + " running jobs");
    drain_timer_.expires_after(std::chrono::seconds(options_.drain_timeout_s));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      log_line("drain timeout: killing " + std::to_string(jobs_.running().size()) + " running jobs");
      for (const auto& j : jobs_.running()) stop(j, 't');
    });
  }
  maybe_exit();
}

void Agent::maybe_exit() {
  if (!draining_ || !jobs_.running().empty() || !cleaning_.empty()) return;
  for (const auto& c : connections)
    if (!c->out.empty()) return;  // still writing someone's result
  log_line("drained: exiting");
  io_.stop();
}

void Agent::on_closed(const std::shared_ptr<Connection>& c) {
  connections.erase(c);
  if (auto j = c->job) {
    if (j->state == Job::kQueued) {
      jobs_.forget(j);
      j->state = Job::kDone;
      if (options_.verbose) log_line("job " + std::to_string(j->id) + ": caller left while queued");
    } else if (j->state == Job::kRunning && !j->finished) {
      log_line("job " + std::to_string(j->id) + ": caller went away, killing the job");
      stop(j, 'c');
    }
  }
  maybe_exit();
}

void Agent::on_submit(const std::shared_ptr<Connection>& c, agent::Submit submit) {
  if (draining_) {
    c->refuse("the agent is shutting down");
    return;
  }
  if (options_.time_limit_s && submit.time_limit_s() > options_.time_limit_s) {
    c->refuse("a time limit of " + std::to_string(submit.time_limit_s()) + " s is above the agent's " +
              std::to_string(options_.time_limit_s) + " s");
    return;
  }
  // The working directory must be one (it is the last descriptor).
  struct stat st {};
  if (::fstat(c->fds.back().get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    c->refuse("the working directory descriptor is not a directory");
    return;
  }
  if (auto taken = jobs_.admit(c->peer.uid); !taken) {
    c->refuse(taken.error().message);
    return;
  }
  auto j = std::make_shared<Job>();
  j->reader = FrameReader(static_cast<uint32_t>(limits_.max_record_bytes));
  j->id = next_id_++;
  j->uid = c->peer.uid;
  j->gid = c->peer.gid;
  j->groups = c->groups;
  j->submit = std::move(submit);
  j->fds = std::move(c->fds);
  c->fds.clear();
  j->since_ns = wall_now();
  j->connection = c;
  c->job = j;
  agent::Reply accepted;
  accepted.mutable_accepted()->set_job(j->id);
  accepted.mutable_accepted()->set_ahead(static_cast<uint32_t>(jobs_.queued().size()));
  accepted.mutable_accepted()->set_waits(jobs_.would_wait(j->uid));
  c->send(accepted);
  if (options_.verbose)
    log_line("job " + std::to_string(j->id) + " (uid " + std::to_string(j->uid) + "): queued: " + shown(j->submit.argv()));
  jobs_.push(j);
  start_next();
}

// The oldest waiting job whose user is below its share goes first: a user
// at its share waits for its own jobs, not everyone else.
void Agent::start_next() {
  while (!draining_) {
    auto j = jobs_.take_next();
    if (!j) break;
    start(j);
  }
}

void Agent::start(const std::shared_ptr<Job>& j) {
  auto c = j->connection.lock();
  if (!c) return;
  auto ebpf = tracer_->add_job();
  if (!ebpf) {
    c->refuse(ebpf.error().message);
    return;
  }
  j->ebpf.emplace(std::move(*ebpf));
  if (cgroups_.can_group()) {
    auto g = cgroups_.create("job-" + std::to_string(j->id), options_.max_processes);
    if (!g) {
      log_line("job " + std::to_string(j->id) + ": no cgroup: " + g.error().message);
    } else {
      j->cgroup = std::move(*g);
    }
  }
  auto runner = fork_runner_for(*j);
  if (!runner) {
    tracer_->remove_job(j->ebpf->slot);
    j->cgroup.remove();
    c->refuse(runner.error().message);
    return;
  }
  // The runner holds the job's descriptors now.
  j->fds.clear();
  j->cgroup.close_procs();
  j->runner = runner->pid;
  j->control = std::make_unique<Local::socket>(io_, Local(), runner->control.release());
  jobs_.started(j, wall_now());
  log_line("job " + std::to_string(j->id) + " (uid " + std::to_string(j->uid) + "): started: " + shown(j->submit.argv()));
  agent::Reply started;
  started.mutable_started()->set_job(j->id);
  c->send(started);
  read_control(j);
}

// The runner gets the job's command, slot, cgroup and descriptors; it
// holds them alone once forked.
Result<StartedRunner> Agent::fork_runner_for(const Job& j) {
  auto null_fd = null_for_unsent(j.submit);
  if (!null_fd) return tl::unexpected(null_fd.error());
  RunnerSpec spec;
  spec.tracer = tracer_;
  spec.ebpf = &*j.ebpf;
  spec.job = job_command(j.submit, j.fds, null_fd->get(), options_.time_limit_s);
  spec.job.credentials = Credentials{j.uid, j.gid, j.groups};
  spec.job.cgroup = &j.cgroup;
  spec.max_record = limits_.max_record_bytes;
  spec.nofile = jobs_nofile_;
  return fork_runner(spec);
}

void Agent::read_control(const std::shared_ptr<Job>& j) {
  j->buf.resize(1 << 16);
  j->control->async_read_some(asio::buffer(j->buf), [this, j](const boost::system::error_code& ec, size_t n) {
    if (ec) {
      control_closed(j);
      return;
    }
    j->reader.feed(std::string_view(j->buf.data(), n));
    for (;;) {
      auto next = j->reader.next();
      if (!next) {
        runner_failed(j, next.error().message);
        return;
      }
      if (!*next) break;
      on_control_frame(j, std::move(**next));
    }
    read_control(j);
  });
}

// The runner checks its result's size itself; this is the agent not
// trusting that (a result it cannot take would otherwise be read forever).
void Agent::runner_failed(const std::shared_ptr<Job>& j, const std::string& why) {
  log_line("job " + std::to_string(j->id) + ": refused its runner's result (" + why + "): killing the job");
  if (auto c = j->connection.lock()) c->refuse("the job's result was refused: " + why);
  j->finished = true;  // the caller has its answer
  control_closed(j);
}

void Agent::on_control_frame(const std::shared_ptr<Job>& j, std::string payload) {
  agent::Reply r;
  if (!r.ParseFromString(payload)) return;
  auto c = j->connection.lock();
  if (r.has_progress()) {
    j->progress(r.progress().events(), wall_now());
  } else if (r.has_finished()) {
    j->finished = true;
    j->events = r.finished().events();
  } else if (r.has_error()) {
    j->finished = true;
  }
  if (c && !c->closed) {
    c->pass_on(std::move(payload), j->finished);
  }
}

void Agent::control_closed(const std::shared_ptr<Job>& j) {
  if (j->control_closed) return;
  j->control_closed = true;
  boost::system::error_code ignored;
  j->control->close(ignored);
  if (!j->finished) {
    log_line("job " + std::to_string(j->id) + ": its runner ended without a result");
    if (auto c = j->connection.lock()) c->refuse("the job's runner ended without a result (killed?); the job was killed");
  }
  clean_up(j);
}

// A job's slot is reused only once nothing of it can still send events.
void Agent::clean_up(const std::shared_ptr<Job>& j) {
  if (j->cgroup.valid()) {
    j->cgroup.kill();
    if (!j->cgroup.remove()) {
      if (std::find(cleaning_.begin(), cleaning_.end(), j) == cleaning_.end()) cleaning_.push_back(j);
      jobs_.forget(j);
      retry_timer_.expires_after(std::chrono::milliseconds(20));
      retry_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        auto pending = cleaning_;
        cleaning_.clear();
        for (const auto& p : pending) clean_up(p);
      });
      return;
    }
  }
  cleaning_.erase(std::remove(cleaning_.begin(), cleaning_.end(), j), cleaning_.end());
  if (j->ebpf) {
    EbpfJobCounters counters = tracer_->counters(j->ebpf->slot);
    j->drops = counters.ring_full + counters.untracked;
    totals_.dropped.ring_full += counters.ring_full;
    totals_.dropped.untracked += counters.untracked;
    totals_.dropped.too_big += counters.too_big;
    tracer_->remove_job(j->ebpf->slot);
    j->ebpf.reset();
  }
  jobs_.forget(j);
  j->state = Job::kDone;
  totals_.events_done += j->events;
  ++totals_.finished;
  log_line("job " + std::to_string(j->id) + ": done" + (j->drops ? ", " + std::to_string(j->drops) + " events dropped" : ""));
  start_next();
  maybe_exit();
}

void Agent::stop(const std::shared_ptr<Job>& j, char why) {
  if (j->stop_sent || j->control_closed) return;
  j->stop_sent = why;
  (void)!::write(j->control->native_handle(), &why, 1);
}

// The status reply: the /metrics snapshot, with the caller's own jobs listed.
void Agent::on_status(const std::shared_ptr<Connection>& c) {
  std::string limits =
      describe_limits(cgroups_.describe(), cgroups_.can_limit_pids(), options_.time_limit_s, options_.max_processes);
  c->answer(status_reply(snapshot(), jobs_, c->peer.uid, limits, wall_now() - started_ns_));
}

// A client's remote cache traffic, counted for the uid the socket names
// (not logged: reports come as fast as a user can connect).
void Agent::on_cache_report(const std::shared_ptr<Connection>& c, const agent::CacheTraffic& report) {
  totals_.remote_cache.add(c->peer.uid, traffic_of(report));
  agent::Reply r;
  r.mutable_reported();
  c->answer(r);
}

}  // namespace

int run_agent(const AgentOptions& options) {
  auto error = [](const std::string& line) {
    log_line("error: " + line);
    return 1;
  };
  auto checked = check_options(options, ::geteuid() == 0);
  if (!checked) return error(checked.error().message);
  const AgentLimits& limits = checked->limits;
  // Request buffers (up to 4 MiB each, filled by strangers) go back to the
  // system when freed: glibc would raise its mmap threshold after the first
  // such free and keep later ones in the heap, where they stay resident.
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);
  DescriptorLimits nofile = take_descriptor_limit(limits, options.max_jobs, log_line);
  // One agent per socket: a lock beside it.
  auto socket = AgentSocket::lock(options.socket);
  if (!socket) return error(socket.error().message);

  EbpfOptions eo;
  eo.ring_bytes = options.ring_bytes;
  eo.verbose = options.verbose;
  auto tracer = EbpfTracer::load(eo);
  if (!tracer) return error(tracer.error().message);
  Cgroups cgroups = Cgroups::probe(cgroup_dir_name(options.socket));
  if (size_t swept = cgroups.sweep()) log_line("removed " + std::to_string(swept) + " job cgroups an earlier agent left");
  UniqueFd metrics_fd;
  if (checked->metrics) {
    auto m = listen_metrics(*checked->metrics);
    if (!m) return error(m.error().message);
    metrics_fd = std::move(*m);
  }
  bool program_stats = program_stats_on(options.bpf_stats, **tracer, log_line);
  auto listening = socket->listen(checked->gid, options.mode);
  if (!listening) return error(listening.error().message);

  if (!options.foreground) {
    if (auto background = go_to_background(); !background) return error(background.error().message);
  }
  ::signal(SIGPIPE, SIG_IGN);
  for (const auto& line : listening_lines(options, limits, cgroups.describe(), nofile.agent, ::getpid())) log_line(line);
  Agent agent(options, limits, *socket, nofile.jobs, std::move(*tracer), std::move(cgroups), std::move(*listening),
              std::move(metrics_fd));
  agent.set_program_stats(program_stats);
  int rc = agent.run();
  socket->remove();
  return rc;
}

}  // namespace bsandbox
