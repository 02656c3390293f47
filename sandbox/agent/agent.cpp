// agent.cpp: bsandboxd's event loop (connections, the job queue, runners)
// and the job runner a job is forked into. What a client may hold is counted
// by agent_limits.h; the sockets are made by agent_socket.h, accepting out of
// descriptors is paced by agent_accept.h, /metrics is served by agent_http.h.
#include "sandbox/agent/agent.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <utility>  // before Boost.Asio 1.74, which forgets it
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include <linux/types.h>

#include "bpf/events.h"
#include "sandbox/agent/accept.h"
#include "sandbox/agent/http.h"
#include "sandbox/agent/limits.h"
#include "sandbox/agent/metrics.h"
#include "sandbox/agent/protocol.h"
#include "sandbox/agent/socket.h"
#include "sandbox/base/dir.h"
#include "sandbox/base/io.h"
#include "sandbox/agent/cgroup.h"
#include "sandbox/backend/ebpf/ebpf_backend.h"
#include "sandbox/run/supervisor.h"
#include "sandbox/base/text.h"
#include "sandbox/run/traced_run.h"
#include "sandbox/run/tracer_service.h"

namespace bsandbox {
namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

bool g_verbose = false;

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

// ---------------------------------------------------------------- runner

// Everything a job runner needs, prepared by the agent before fork.
struct RunnerSpec {
  std::shared_ptr<EbpfTracer> tracer;
  const EbpfJob* ebpf = nullptr;
  int control = -1;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
  int in = -1, out = -1, err = -1, cwd_fd = -1;
  Credentials credentials;
  const JobCgroup* cgroup = nullptr;
  int64_t time_limit_ns = 0;
  bool priors = false;
  int umask = 022;
  size_t max_record = kMaxReplyBytes;  // the result frame's limit
  rlim_t nofile = RLIM_INFINITY;       // the descriptor limit jobs get (the agent's own is raised)
};

// Closes every descriptor but keep (the agent's other clients and jobs are
// none of this job's business).
void close_all_but(const std::set<int>& keep) {
  std::vector<int> doomed;
  {
    auto d = Dir::open("/proc/self/fd");
    if (!d) return;
    while (const dirent* e = d->next()) {
      int fd = std::atoi(e->d_name);
      if (fd > 2 && fd != d->fd() && !keep.count(fd)) doomed.push_back(fd);
    }
  }
  for (int fd : doomed) ::close(fd);
}

[[noreturn]] void run_job(RunnerSpec& spec) {
  ::prctl(PR_SET_NAME, "bsandboxd-job", 0, 0, 0);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) ::signal(s, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  std::set<int> keep{spec.control, spec.ebpf->ring.get(), spec.in, spec.out, spec.err, spec.cwd_fd};
  for (int fd : spec.tracer->fds()) keep.insert(fd);
  for (int fd : spec.cgroup->procs_fds()) keep.insert(fd);
  close_all_but(keep);
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = std::min(spec.nofile, nofile.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  auto finish = [&](const agent::Reply& reply) {
    // The agent holds a result until its caller takes it: a job cannot make
    // it hold more than --max-record (a job decides its record's size).
    size_t size = reply.ByteSizeLong();
    if (size > spec.max_record)
      (void)send_frame(spec.control, error_reply("the job's record is " + format_size(size) + ", over the agent's limit of " +
                                                 format_size(spec.max_record) + " (bsandboxd --max-record)"));
    else
      (void)send_frame(spec.control, reply);
    _exit(0);
  };
  auto source = spec.tracer->source(*spec.ebpf, spec.tracer);
  if (!source) finish(error_reply(source.error().message));

  // Cached commands inside the job (bsandbox-wrap) borrow this tracer.
  std::unique_ptr<TracerService> service;
  if (auto s = TracerService::listen()) {
    service = std::move(*s);
    spec.env.push_back(std::string(kTracerEnv) + "=" + service->address());
  }

  SuperviseOptions so;
  so.spawn.stdio = {spec.in, spec.out, spec.err};
  so.spawn.cwd_fd = spec.cwd_fd;
  so.spawn.env = &spec.env;
  so.spawn.credentials = spec.credentials;
  so.spawn.cgroup_procs = spec.cgroup->procs_fds();
  so.spawn.umask = spec.umask;
  so.service = service.get();
  so.stop_fd = spec.control;
  so.stop_reason = [&]() -> std::string {
    char why = 0;
    ssize_t n = ::read(spec.control, &why, 1);
    if (n == 0) return "the agent exited";
    if (n < 0) return errno == EAGAIN || errno == EINTR ? "" : "the agent's connection failed";
    if (why == 'c') return "the client went away";
    if (why == 't') return "the agent is shutting down";
    return "";
  };
  so.time_limit_ns = spec.time_limit_ns;
  so.kill_tree = [&] { spec.cgroup->kill(); };
  auto last = std::chrono::steady_clock::now();
  so.tick = [&] {
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) return;
    last = now;
    agent::Reply r;
    r.mutable_progress()->set_events((*source)->health().delivered);
    (void)send_frame(spec.control, r);
  };
  // A caller that asks for the first accesses stores the run in its cache.
  auto run = run_traced(**source, spec.argv, spec.cwd, so, /*for_cache=*/spec.priors);
  if (!run) finish(error_reply(run.error().message));
  agent::Reply reply;
  *reply.mutable_finished() = to_finished(*run, spec.priors);
  finish(reply);
  _exit(0);
}

// ---------------------------------------------------------------- agent

class Agent;

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
  std::unique_ptr<Local::socket> control;
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
  std::weak_ptr<struct Connection> connection;
};

struct Connection : std::enable_shared_from_this<Connection> {
  Connection(Agent& a, Local::socket s, ucred p, ClientLedger::Ticket t)
      : agent(a), sock(std::move(s)), peer(p), ticket(std::move(t)), deadline(sock.get_executor()) {}
  void start();
  void wait_readable();
  void on_readable();
  void on_request(agent::Request request);
  void send(const agent::Reply& reply) { send_raw(frame(reply)); }
  void send_raw(std::string bytes);
  void write_next();
  // Sends an error and closes once it is written.
  void refuse(const std::string& message);
  void close();
  // What the connection waits for (its request, or the client taking a
  // reply) must happen within seconds, or it is refused or closed.
  void expire_after(unsigned seconds);

  Agent& agent;
  Local::socket sock;
  ucred peer{};
  std::vector<gid_t> groups;
  ClientLedger::Ticket ticket;  // its share of the per-user and total counts
  asio::steady_timer deadline;
  RequestReader request;
  std::vector<UniqueFd> fds;  // the request's, until its job takes them
  std::shared_ptr<Job> job;
  std::deque<std::string> out;
  bool writing = false, closing = false, closed = false;
};

class Agent {
 public:
  Agent(const AgentOptions& o, const AgentLimits& limits, const AgentSocket& socket, rlim_t jobs_nofile,
        std::shared_ptr<EbpfTracer> tracer, Cgroups cgroups, UniqueFd listen_fd, UniqueFd metrics_fd)
      : options_(o), limits_(limits), socket_(socket), jobs_nofile_(jobs_nofile), ledger_(limits_),
        shares_{o.max_jobs, o.max_queued, limits.max_jobs_per_user, limits.max_queued_per_user},
        tracer_(std::move(tracer)), cgroups_(std::move(cgroups)), acceptor_(io_),
        pacer_(io_, "connections", frame(error_reply("the agent is out of file descriptors; try again later")), log_line),
        signals_(io_, SIGTERM, SIGINT), children_(io_, SIGCHLD), drain_timer_(io_), retry_timer_(io_),
        started_ns_(wall_now()) {
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
  void submit(const std::shared_ptr<Connection>& c, agent::Submit submit);
  void status(const std::shared_ptr<Connection>& c);
  void count_refused() { ++refused_; }
  // Logs a refusal, at most kRefusalLines a second (a flood of them must
  // not become a flood of log lines).
  void log_refusal(uid_t uid, const std::string& why);
  void connection_closed(const std::shared_ptr<Connection>& c);
  void maybe_exit();
  bool draining() const { return draining_; }
  const AgentLimits& limits() const { return limits_; }

 private:
  void accept();
  void admit(Local::socket s);
  std::vector<uid_t> queued_uids() const;
  std::vector<uid_t> running_uids() const;
  void runner_failed(const std::shared_ptr<Job>& job, const std::string& why);
  AgentMetrics snapshot();
  void wait_signal();
  void wait_children();
  void start_next();
  void start(const std::shared_ptr<Job>& job);
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
  JobShares shares_;
  int64_t refusal_second_ = 0;
  unsigned refusal_lines_ = 0, refusals_unlogged_ = 0;
  std::shared_ptr<EbpfTracer> tracer_;
  Cgroups cgroups_;
  asio::io_context io_;
  std::set<std::shared_ptr<Connection>> connections;  // after io_: their sockets go first
  Local::acceptor acceptor_;
  AcceptPacer pacer_;
  std::optional<MetricsServer> metrics_;
  EbpfJobCounters dropped_;  // of finished jobs, by cause
  uint64_t events_done_ = 0;  // delivered to finished jobs
  uint64_t refused_ = 0;
  asio::signal_set signals_, children_;
  asio::steady_timer drain_timer_, retry_timer_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::set<std::shared_ptr<Job>> running_;
  std::vector<std::shared_ptr<Job>> cleaning_;  // done, waiting for their cgroup to empty
  uint64_t next_id_ = 1;
  uint64_t finished_ = 0;
  int64_t started_ns_;
  bool draining_ = false;
  bool program_stats_ = false;

 public:
  void set_program_stats(bool on) { program_stats_ = on; }

  friend struct Connection;
};

// ------------------------------------------------------------- connection

void Connection::start() {
  // SO_PEERGROUPS (Linux 4.13+): the caller's supplementary groups.
  std::vector<gid_t> g(64);
  for (;;) {
    socklen_t glen = static_cast<socklen_t>(g.size() * sizeof(gid_t));
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERGROUPS, g.data(), &glen) == 0) {
      g.resize(glen / sizeof(gid_t));
      groups = std::move(g);
      break;
    }
    if (errno != ERANGE || g.size() > 65536) {
      groups.clear();
      break;
    }
    g.resize(glen / sizeof(gid_t) + 1);
  }
  expire_after(agent.limits().request_timeout_s);
  wait_readable();
}

void Connection::expire_after(unsigned seconds) {
  deadline.expires_after(std::chrono::seconds(seconds));
  deadline.async_wait([self = shared_from_this(), seconds](const boost::system::error_code& ec) {
    if (ec || self->closed) return;
    if (self->ticket.startup() && !self->closing) {
      self->refuse("no whole request came within " + std::to_string(seconds) + " s (bsandboxd --request-timeout)");
      return;
    }
    if (g_verbose) log_line("uid " + std::to_string(self->peer.uid) + " took no reply for " + std::to_string(seconds) + " s: closing");
    self->close();
  });
}

void Connection::wait_readable() {
  if (closed) return;
  auto self = shared_from_this();
  sock.async_wait(Local::socket::wait_read, [self](const boost::system::error_code& ec) {
    if (ec) {
      self->close();
      return;
    }
    self->on_readable();
  });
}

void Connection::on_readable() {
  if (closed) return;
  char buf[65536];
  std::vector<UniqueFd> got;  // closed at the end of this call unless the request takes them
  ssize_t n = receive_with_fds(sock.native_handle(), buf, sizeof buf, got);
  if (n == -EAGAIN || n == -EINTR) {
    wait_readable();
    return;
  }
  if (n <= 0) {
    // The caller went away (or shut down its side).
    if (request.partial() && !closing) {
      refuse("the message was cut short (the connection closed in the middle of it)");
      return;
    }
    close();
    return;
  }
  if (closing) {  // refusing: ignore what else comes
    wait_readable();
    return;
  }
  if (auto fed = request.feed(std::string_view(buf, static_cast<size_t>(n)), std::move(got)); !fed) {
    refuse(fed.error().message);
    return;
  }
  if (ticket.startup()) {
    if (auto held = ticket.hold(request.buffered()); !held) {
      refuse(held.error().message);
      return;
    }
  }
  auto next = request.next();
  if (!next) {
    refuse(next.error().message);
    return;
  }
  if (*next) {
    ticket.settle();
    deadline.cancel();
    on_request(std::move(**next));
    if (closing || closed) return;
  }
  wait_readable();
}

void Connection::on_request(agent::Request r) {
  fds = request.take_fds();
  if (r.has_status()) {
    agent.status(shared_from_this());
    return;
  }
  agent.submit(shared_from_this(), std::move(*r.mutable_submit()));
}

void Connection::send_raw(std::string bytes) {
  if (closed) return;
  out.push_back(std::move(bytes));
  if (!writing) write_next();
}

void Connection::write_next() {
  if (closed) return;
  if (out.empty()) {
    writing = false;
    if (closing) close();
    else if (!ticket.startup()) deadline.cancel();
    return;
  }
  writing = true;
  // A client that does not take its replies would have the agent hold them.
  expire_after(agent.limits().send_timeout_s);
  auto self = shared_from_this();
  asio::async_write(sock, asio::buffer(out.front()), [self](const boost::system::error_code& ec, size_t) {
    if (ec) {
      self->close();
      return;
    }
    self->out.pop_front();
    self->write_next();
  });
}

void Connection::refuse(const std::string& message) {
  if (closed) return;
  agent.count_refused();
  agent.log_refusal(peer.uid, message);
  fds.clear();
  request = RequestReader();  // what it held goes now, not at close
  ticket.settle();
  closing = true;
  send(error_reply(message));
}

void Connection::close() {
  if (closed) return;
  closed = true;
  boost::system::error_code ignored;
  sock.close(ignored);
  deadline.cancel();
  out.clear();
  fds.clear();
  request = RequestReader();
  ticket.release();
  agent.connection_closed(shared_from_this());
}

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
    count_refused();
    log_refusal(peer.uid, ticket.error().message);
    std::string bytes = frame(error_reply(ticket.error().message));
    (void)!::send(s.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return;
  }
  auto c = std::make_shared<Connection>(*this, std::move(s), peer, std::move(*ticket));
  connections.insert(c);
  c->start();
}

AgentMetrics Agent::snapshot() {
  AgentMetrics m;
  m.running = static_cast<uint32_t>(running_.size());
  m.queued = static_cast<uint32_t>(queue_.size());
  m.max_jobs = options_.max_jobs;
  m.finished = finished_;
  m.refused = refused_;
  m.ring_bytes = tracer_->ring_bytes();
  m.uptime_seconds = static_cast<double>(wall_now() - started_ns_) / 1e9;
  m.events = events_done_;
  m.drops_ring_full = dropped_.ring_full;
  m.drops_untracked = dropped_.untracked;
  m.drops_too_big = dropped_.too_big;
  m.recursion_misses = tracer_->recursion_misses();
  m.program_stats = program_stats_;
  for (const auto& p : tracer_->program_stats()) m.programs.push_back({p.name, p.run_ns, p.runs});
  auto add = [&](const std::shared_ptr<Job>& j) {
    AgentMetrics::Job job;
    job.id = j->id;
    job.uid = j->uid;
    job.running = j->state == Job::kRunning;
    job.events = j->events;
    job.events_per_second = j->rate;
    if (j->ebpf) {
      EbpfJobCounters c = tracer_->counters(j->ebpf->slot);
      job.drops = c.ring_full + c.untracked;
      job.ring_fill = EbpfTracer::ring_fill(j->ebpf->ring.get(), tracer_->ring_bytes());
      m.drops_ring_full += c.ring_full;
      m.drops_untracked += c.untracked;
      m.drops_too_big += c.too_big;
    }
    if (job.running) {
      m.events += j->events;
      m.events_per_second += j->rate;
    }
    m.jobs.push_back(job);
  };
  for (const auto& j : running_) add(j);
  for (const auto& j : queue_) add(j);
  return m;
}

void Agent::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (draining_) {
      log_line("second signal: killing running jobs now");
      for (const auto& j : running_) stop(j, 't');
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
  for (const auto& j : queue_) {
    if (auto c = j->connection.lock()) c->refuse("the agent is shutting down; the job did not start");
    j->state = Job::kDone;
  }
  queue_.clear();
  if (!running_.empty()) {
    log_line("waiting up to " + std::to_string(options_.drain_timeout_s) + " s for " +
             std::to_string(running_.size()) + " running jobs");
    drain_timer_.expires_after(std::chrono::seconds(options_.drain_timeout_s));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      log_line("drain timeout: killing " + std::to_string(running_.size()) + " running jobs");
      for (const auto& j : running_) stop(j, 't');
    });
  }
  maybe_exit();
}

void Agent::maybe_exit() {
  if (!draining_ || !running_.empty() || !cleaning_.empty()) return;
  for (const auto& c : connections)
    if (!c->out.empty()) return;  // still writing someone's result
  log_line("drained: exiting");
  io_.stop();
}

void Agent::connection_closed(const std::shared_ptr<Connection>& c) {
  connections.erase(c);
  if (auto j = c->job) {
    if (j->state == Job::kQueued) {
      queue_.erase(std::remove(queue_.begin(), queue_.end(), j), queue_.end());
      j->state = Job::kDone;
      if (options_.verbose) log_line("job " + std::to_string(j->id) + ": caller left while queued");
    } else if (j->state == Job::kRunning && !j->finished) {
      log_line("job " + std::to_string(j->id) + ": caller went away, killing the job");
      stop(j, 'c');
    }
  }
  maybe_exit();
}

void Agent::submit(const std::shared_ptr<Connection>& c, agent::Submit submit) {
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
  auto running = running_uids();
  if (auto taken = shares_.admit(c->peer.uid, queued_uids(), running); !taken) {
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
  accepted.mutable_accepted()->set_ahead(static_cast<uint32_t>(queue_.size()));
  accepted.mutable_accepted()->set_waits(!shares_.may_start(j->uid, running));
  c->send(accepted);
  if (options_.verbose)
    log_line("job " + std::to_string(j->id) + " (uid " + std::to_string(j->uid) + "): queued: " + shown(j->submit.argv()));
  queue_.push_back(j);
  start_next();
}

std::vector<uid_t> Agent::queued_uids() const {
  std::vector<uid_t> out;
  for (const auto& j : queue_) out.push_back(j->uid);
  return out;
}

std::vector<uid_t> Agent::running_uids() const {
  std::vector<uid_t> out;
  for (const auto& j : running_) out.push_back(j->uid);
  return out;
}

// The oldest waiting job whose user is below its share goes first: a user
// at its share waits for its own jobs, not everyone else.
void Agent::start_next() {
  while (!draining_) {
    auto next = shares_.next(queued_uids(), running_uids());
    if (!next) break;
    auto j = queue_[*next];
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(*next));
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
  // What the caller did not send of stdin, stdout and stderr is /dev/null.
  const uint32_t bits = j->submit.fds(), stdio = kFdStdin | kFdStdout | kFdStderr;
  UniqueFd null_fd;
  if ((bits & stdio) != stdio) null_fd.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
  int pair[2];
  if (((bits & stdio) != stdio && !null_fd.valid()) || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    int e = errno;
    tracer_->remove_job(j->ebpf->slot);
    j->cgroup.remove();
    c->refuse(std::string("starting the job: ") + std::strerror(e));
    return;
  }
  RunnerSpec spec;
  spec.tracer = tracer_;
  spec.ebpf = &*j->ebpf;
  spec.control = pair[1];
  spec.argv.assign(j->submit.argv().begin(), j->submit.argv().end());
  for (const auto& e : j->submit.env()) {
    // The caller's own tracer (an outer bsandbox exec) is not this job's.
    if (e.rfind(std::string(kTracerEnv) + "=", 0) == 0 || e.rfind("BSANDBOX_WRAPPED=", 0) == 0) continue;
    spec.env.push_back(e);
  }
  spec.cwd = j->submit.cwd();
  size_t next = 0;
  if (bits & kFdStdin) spec.in = j->fds[next++].get();
  if (bits & kFdStdout) spec.out = j->fds[next++].get();
  if (bits & kFdStderr) spec.err = j->fds[next++].get();
  spec.cwd_fd = j->fds[next].get();
  if (spec.in < 0) spec.in = null_fd.get();
  if (spec.out < 0) spec.out = null_fd.get();
  if (spec.err < 0) spec.err = null_fd.get();
  spec.credentials = Credentials{j->uid, j->gid, j->groups};
  spec.cgroup = &j->cgroup;
  uint32_t limit = j->submit.time_limit_s() ? j->submit.time_limit_s() : options_.time_limit_s;
  spec.time_limit_ns = static_cast<int64_t>(limit) * 1000000000;
  spec.priors = j->submit.priors();
  spec.umask = static_cast<int>(j->submit.umask() & 0777);
  spec.max_record = limits_.max_record_bytes;
  spec.nofile = jobs_nofile_;

  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pair[0]);
    run_job(spec);
  }
  ::close(pair[1]);
  if (pid < 0) {
    ::close(pair[0]);
    tracer_->remove_job(j->ebpf->slot);
    j->cgroup.remove();
    c->refuse(std::string("fork: ") + std::strerror(errno));
    return;
  }
  // The runner holds the job's descriptors now.
  j->fds.clear();
  j->cgroup.close_procs();
  j->runner = pid;
  j->state = Job::kRunning;
  j->since_ns = wall_now();
  j->rate_at_ns = j->since_ns;
  j->control = std::make_unique<Local::socket>(io_, Local(), pair[0]);
  running_.insert(j);
  log_line("job " + std::to_string(j->id) + " (uid " + std::to_string(j->uid) + "): started: " + shown(j->submit.argv()));
  agent::Reply started;
  started.mutable_started()->set_job(j->id);
  c->send(started);
  read_control(j);
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
    int64_t now = wall_now();
    uint64_t events = r.progress().events();
    if (now > j->rate_at_ns) j->rate = static_cast<double>(events - j->rate_events) * 1e9 / static_cast<double>(now - j->rate_at_ns);
    j->rate_at_ns = now;
    j->rate_events = events;
    j->events = events;
  } else if (r.has_finished()) {
    j->finished = true;
    j->events = r.finished().events();
  } else if (r.has_error()) {
    j->finished = true;
  }
  if (c && !c->closed) {
    // The payload as it came (a record can be large: no second copy).
    c->send_raw(frame_header(static_cast<uint32_t>(payload.size())));
    c->send_raw(std::move(payload));
    if (j->finished) c->closing = true;  // close once the result is written
    if (j->finished && !c->writing) c->write_next();
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
      running_.erase(j);
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
    dropped_.ring_full += counters.ring_full;
    dropped_.untracked += counters.untracked;
    dropped_.too_big += counters.too_big;
    tracer_->remove_job(j->ebpf->slot);
    j->ebpf.reset();
  }
  running_.erase(j);
  j->state = Job::kDone;
  events_done_ += j->events;
  ++finished_;
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
void Agent::status(const std::shared_ptr<Connection>& c) {
  AgentMetrics m = snapshot();
  agent::Reply r;
  agent::Status* s = r.mutable_status();
  s->set_running(m.running);
  s->set_queued(m.queued);
  s->set_max_jobs(m.max_jobs);
  s->set_finished(m.finished);
  s->set_ring_bytes(m.ring_bytes);
  s->set_uptime_ns(wall_now() - started_ns_);
  s->set_events_per_second(m.events_per_second);
  s->set_drops(m.drops_ring_full + m.drops_untracked);
  s->set_limits(cgroups_.describe() + "; wall time " +
                (options_.time_limit_s ? std::to_string(options_.time_limit_s) + " s" : std::string("unlimited")) +
                "; " + (options_.max_processes && cgroups_.can_limit_pids() ? std::to_string(options_.max_processes) + " processes" : std::string("processes unlimited")));
  // snapshot() lists running jobs, then queued ones, in this order.
  std::vector<std::shared_ptr<Job>> jobs(running_.begin(), running_.end());
  jobs.insert(jobs.end(), queue_.begin(), queue_.end());
  for (size_t i = 0; i < jobs.size() && i < m.jobs.size(); ++i) {
    const Job& j = *jobs[i];
    const AgentMetrics::Job& mj = m.jobs[i];
    if (c->peer.uid != 0 && c->peer.uid != j.uid) continue;  // only the caller's own
    agent::JobStatus* js = s->add_jobs();
    js->set_job(j.id);
    js->set_uid(j.uid);
    js->set_state(mj.running ? "running" : "queued");
    for (const auto& a : j.submit.argv()) js->add_argv(a);
    js->set_since_ns(j.since_ns);
    js->set_events(mj.events);
    js->set_events_per_second(mj.events_per_second);
    js->set_ring_fill(mj.ring_fill);
    js->set_drops(mj.drops);
  }
  c->closing = true;
  c->send(r);
}

}  // namespace

int run_agent(const AgentOptions& options) {
  g_verbose = options.verbose;
  auto error = [](const std::string& line) {
    log_line("error: " + line);
    return 1;
  };
  if (::geteuid() != 0) return error("bsandboxd runs as root (it loads BPF programs and runs jobs as their callers)");
  if (options.max_jobs == 0 || options.max_jobs > BS_JOBS_MAX)
    return error("--max-jobs must be between 1 and " + std::to_string(BS_JOBS_MAX));
  if (options.limits.max_record_bytes > kMaxReplyBytes)
    return error("--max-record must be at most " + format_size(kMaxReplyBytes));
  std::optional<MetricsAddress> metrics;
  if (options.metrics) {
    auto m = parse_metrics_address(*options.metrics);
    if (!m) return error(m.error().message);
    metrics = *m;
  }
  gid_t gid = 0;
  if (options.group) {
    group* g = ::getgrnam(options.group->c_str());
    if (!g) return error("no group named '" + *options.group + "'");
    gid = g->gr_gid;
  }
  AgentLimits limits = resolve_limits(options.limits, options.max_jobs, options.max_queued);
  // Request buffers (up to 4 MiB each, filled by strangers) go back to the
  // system when freed: glibc would raise its mmap threshold after the first
  // such free and keep later ones in the heap, where they stay resident.
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);
  // Descriptors: the agent takes its hard limit (connections, jobs' rings,
  // BPF maps); jobs get the soft one it was started with, as a login would.
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  rlim_t jobs_nofile = nofile.rlim_cur;
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  if (size_t need = descriptors_needed(limits, options.max_jobs); nofile.rlim_cur < need)
    log_line("warning: at its limits the agent may need " + std::to_string(need) + " descriptors, more than its " +
             std::to_string(nofile.rlim_cur) + " (LimitNOFILE, ulimit -n): lower --max-connections or raise it");
  // One agent per socket: a lock beside it.
  auto socket = AgentSocket::lock(options.socket);
  if (!socket) return error(socket.error().message);

  EbpfOptions eo;
  eo.ring_bytes = options.ring_bytes;
  eo.verbose = options.verbose;
  auto tracer = EbpfTracer::load(eo);
  if (!tracer) return error(tracer.error().message);
  // The agent's cgroup directory is named after its socket (FNV-1a: the
  // same name from one version to the next, so a new agent sweeps an old one's).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : options.socket) h = (h ^ ch) * 1099511628211ULL;
  char name[32];
  std::snprintf(name, sizeof name, "agent-%016llx", static_cast<unsigned long long>(h));
  Cgroups cgroups = Cgroups::probe(name);
  if (size_t swept = cgroups.sweep()) log_line("removed " + std::to_string(swept) + " job cgroups an earlier agent left");
  UniqueFd metrics_fd;
  if (metrics) {
    auto m = listen_metrics(*metrics);
    if (!m) return error(m.error().message);
    metrics_fd = std::move(*m);
  }
  // Program run times: the kernel keeps them while someone holds
  // BPF_ENABLE_STATS or kernel.bpf_stats_enabled is 1.
  bool program_stats = options.bpf_stats && (*tracer)->enable_run_stats();
  if (auto sysctl = read_file("/proc/sys/kernel/bpf_stats_enabled"); sysctl && sysctl->rfind("1", 0) == 0)
    program_stats = true;
  if (options.bpf_stats && !program_stats) log_line("warning: the kernel refused BPF_ENABLE_STATS: no program run times");
  auto listening = socket->listen(gid, options.mode);
  if (!listening) return error(listening.error().message);

  if (!options.foreground) {
    // Ready once the parent returns: the socket already accepts.
    pid_t pid = ::fork();
    if (pid < 0) return error(std::string("fork: ") + std::strerror(errno));
    if (pid > 0) _exit(0);
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
      if (null_fd > 2) ::close(null_fd);
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  log_line("listening on " + options.socket + " (pid " + std::to_string(::getpid()) + "); up to " +
           std::to_string(options.max_jobs) + " jobs at once, " + format_size(options.ring_bytes) +
           " ring each; " + cgroups.describe());
  log_line("per user: " + std::to_string(limits.max_jobs_per_user) + " jobs running, " +
           std::to_string(limits.max_queued_per_user) + " waiting, " + std::to_string(limits.max_connections_per_user) +
           " connections (" + std::to_string(limits.max_startups_per_user) + " with a request under way); " +
           std::to_string(limits.max_connections) + " connections in all; " + std::to_string(nofile.rlim_cur) +
           " descriptors");
  if (options.metrics) log_line("serving /metrics on http://" + *options.metrics + "/metrics");
  Agent agent(options, limits, *socket, jobs_nofile, std::move(*tracer), std::move(cgroups), std::move(*listening),
              std::move(metrics_fd));
  agent.set_program_stats(program_stats);
  int rc = agent.run();
  socket->remove();
  return rc;
}

}  // namespace bsandbox
