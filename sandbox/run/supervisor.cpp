// supervisor.cpp: one loop, whatever the backend. Each turn waits as the
// source asks (a Waiter: epoll over a signalfd, the source's fd and the
// stop fd with a short timeout; or, for a tracer, a blocking waitpid woken
// by a 20 ms timer), then drains the source, applies a stop or the time
// limit, serves the tracer service, forwards signals and reaps. The loop
// ends when no child is left.
#include "sandbox/run/supervisor.h"

#include "sandbox/run/tracer_service.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <memory>
#include <poll.h>

#include "sandbox/base/unique_fd.h"

namespace bsandbox {
namespace {

constexpr int kPollMs = 20;

// Blocks the signals the supervisor reads, and restores the mask after.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&handled_);
    for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&handled_, s);
    ::sigprocmask(SIG_BLOCK, &handled_, &previous_);
  }
  ~SignalGuard() { ::sigprocmask(SIG_SETMASK, &previous_, nullptr); }
  const sigset_t& handled() const { return handled_; }
  const sigset_t& previous() const { return previous_; }

 private:
  sigset_t handled_;
  sigset_t previous_;
};

// A tracer blocks in waitpid, which wakes at every stop; no signalfd or
// sigtimedwait is read on the way. The signals it forwards are taken by
// handlers instead (waitpid returns EINTR and the loop reads them), and an
// interval timer bounds how long one that lands just before the wait can
// sit unread.
constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

struct Caught {
  volatile sig_atomic_t set, code, from;
};
Caught g_caught[NSIG];

void on_caught(int signo, siginfo_t* si, void*) {
  g_caught[signo].code = si->si_code;
  g_caught[signo].from = si->si_pid;
  g_caught[signo].set = 1;
}
void on_tick(int) {}

class TracerSignals {
 public:
  TracerSignals() {
    struct sigaction sa {};
    sa.sa_sigaction = on_caught;
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid returns EINTR
    sigemptyset(&sa.sa_mask);
    sigemptyset(&unblocked_);
    for (size_t i = 0; i < std::size(kForwarded); ++i) {
      g_caught[kForwarded[i]].set = 0;
      ::sigaction(kForwarded[i], &sa, &old_[i]);
      sigaddset(&unblocked_, kForwarded[i]);
    }
    struct sigaction tick {};
    tick.sa_handler = on_tick;
    sigemptyset(&tick.sa_mask);
    ::sigaction(SIGALRM, &tick, &old_alarm_);
    sigaddset(&unblocked_, SIGALRM);
    itimerval every{{0, kTickUs}, {0, kTickUs}};
    ::setitimer(ITIMER_REAL, &every, &old_timer_);
    ::sigprocmask(SIG_UNBLOCK, &unblocked_, &mask_);
  }
  ~TracerSignals() {
    ::sigprocmask(SIG_SETMASK, &mask_, nullptr);
    ::setitimer(ITIMER_REAL, &old_timer_, nullptr);
    ::sigaction(SIGALRM, &old_alarm_, nullptr);
    for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &old_[i], nullptr);
  }
  TracerSignals(const TracerSignals&) = delete;
  TracerSignals& operator=(const TracerSignals&) = delete;

  template <class F>
  void take(F&& on_signal) {
    for (int s : kForwarded) {
      if (!g_caught[s].set) continue;
      g_caught[s].set = 0;
      on_signal(s, static_cast<int>(g_caught[s].code), static_cast<pid_t>(g_caught[s].from));
    }
  }

 private:
  static constexpr long kTickUs = 20000;
  sigset_t unblocked_, mask_;
  struct sigaction old_[std::size(kForwarded)] {};
  struct sigaction old_alarm_ {};
  itimerval old_timer_{};
};


// How one turn of the loop waits, as the source asks (EventSource::waiting()).
class Waiter {
 public:
  using OnSignal = std::function<void(int signo, int code, pid_t from)>;
  using OnReport = std::function<void(pid_t pid, int status)>;
  virtual ~Waiter() = default;
  // Until something may need doing.
  virtual Result<void> wait() = 0;
  // The stop fd is readable.
  virtual bool stop_ready() = 0;
  virtual void forget_stop() = 0;  // stopped once: stop asking
  // The forwardable signals received since the last call.
  virtual void take_signals(const OnSignal& on_signal) = 0;
  // The wait reports ready, each to on_report; true once no child is left.
  virtual bool reap(const OnReport& on_report) = 0;
};

// A source with an fd (eBPF): epoll over the signalfd, the source's fd, the
// tracer service's and the stop fd, at most kPollMs (the kernel batches
// its wakeups); reports are reaped without blocking.
class PollWaiter : public Waiter {
 public:
  // Wakes when the source's fd, the service's or the stop fd polls readable.
  static Result<std::unique_ptr<Waiter>> open(const sigset_t& handled, int source_fd, int service_fd, int stop_fd) {
    auto w = std::unique_ptr<PollWaiter>(new PollWaiter);
    w->signals_.reset(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!w->signals_.valid()) return fail_errno("signalfd", errno);
    w->ep_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!w->ep_.valid()) return fail("epoll_create1 failed");
    w->stop_fd_ = stop_fd;
    for (int fd : {w->signals_.get(), source_fd, service_fd, stop_fd}) {
      if (fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(w->ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return fail("epoll_ctl failed");
    }
    return std::unique_ptr<Waiter>(std::move(w));
  }
  Result<void> wait() override {
    stop_ready_ = false;
    epoll_event evs[4];
    int n = ::epoll_wait(ep_.get(), evs, 4, kPollMs);
    if (n < 0 && errno != EINTR) return fail("epoll_wait failed");
    for (int i = 0; i < n; ++i) stop_ready_ |= stop_fd_ >= 0 && evs[i].data.fd == stop_fd_;
    return {};
  }
  bool stop_ready() override { return stop_ready_; }
  void forget_stop() override {
    if (stop_fd_ >= 0) ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, stop_fd_, nullptr);
    stop_fd_ = -1;
  }
  void take_signals(const OnSignal& on_signal) override {
    signalfd_siginfo si;
    while (::read(signals_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
      on_signal(static_cast<int>(si.ssi_signo), si.ssi_code, static_cast<pid_t>(si.ssi_pid));
  }
  bool reap(const OnReport& on_report) override {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG | __WALL);
      if (pid > 0) {
        on_report(pid, status);
        continue;
      }
      if (pid < 0 && errno == EINTR) continue;
      return pid < 0 && errno == ECHILD;
    }
  }

 private:
  PollWaiter() = default;
  UniqueFd signals_, ep_;
  int stop_fd_ = -1;
  bool stop_ready_ = false;
};

// A tracer (ptrace): every wait report is a stop to handle at once, so the
// wait is waitpid itself, woken by TracerSignals' timer at least every
// 20 ms; the stop fd is polled without waiting on each turn.
class WaitpidWaiter : public Waiter {
 public:
  explicit WaitpidWaiter(int stop_fd) : stop_fd_(stop_fd) {}
  Result<void> wait() override {
    status_ = 0;
    pid_ = ::waitpid(-1, &status_, __WALL);
    errno_ = pid_ < 0 ? errno : 0;
    return {};
  }
  bool stop_ready() override {
    pollfd p{stop_fd_, POLLIN, 0};
    return stop_fd_ >= 0 && ::poll(&p, 1, 0) > 0;
  }
  void forget_stop() override { stop_fd_ = -1; }
  void take_signals(const OnSignal& on_signal) override { caught_.take(on_signal); }
  bool reap(const OnReport& on_report) override {
    if (pid_ > 0) on_report(pid_, status_);
    return pid_ < 0 && errno_ != EINTR;  // ECHILD: the whole tree is gone
  }

 private:
  TracerSignals caught_;
  int stop_fd_;
  pid_t pid_ = 0;
  int status_ = 0, errno_ = 0;
};

Result<std::unique_ptr<Waiter>> open_waiter(const EventSource& source, const sigset_t& handled,
                                            const SuperviseOptions& options) {
  switch (source.waiting()) {
    case EventSource::Waiting::kPoll:
      return PollWaiter::open(handled, source.wait_fd(), options.service ? options.service->fd() : -1,
                              options.stop_fd);
    case EventSource::Waiting::kWaitpid:
      break;
  }
  return std::unique_ptr<Waiter>(new WaitpidWaiter(options.stop_fd));
}

// The environment base (the caller's, or this process's when null) with
// extra's variables set; an LD_PRELOAD among them goes before the one the
// environment has.
std::vector<std::string> with_variables(const std::vector<std::string>* base, const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  if (base) {
    env = *base;
  } else {
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
  }
  for (const std::string& var : extra) {
    std::string_view name(var.data(), var.find('='));
    auto same = [&](const std::string& e) { return e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '='; };
    auto it = std::find_if(env.begin(), env.end(), same);
    if (it == env.end()) {
      env.push_back(var);
    } else if (name == "LD_PRELOAD" && it->size() > name.size() + 1) {
      *it = var + ":" + it->substr(name.size() + 1);
    } else {
      *it = var;
    }
  }
  return env;
}

// One supervision, from spawn to the last reap; supervise() runs its steps.
class Supervisor {
 public:
  Supervisor(const std::vector<std::string>& argv, EventSource& source, ProcessTree& tree, const std::string& cwd,
             const SuperviseOptions& options)
      : argv_(argv), source_(source), tree_(tree), cwd_(cwd), options_(options) {}
  ~Supervisor() {
    if (!finished_ && child_) {  // abandoned: the command is not left running
      ::kill(child_->pid(), SIGKILL);
      ::waitpid(child_->pid(), nullptr, 0);
    }
  }

  // Spawns the command paused, arms tracing, then lets it run.
  Result<void> start() {
    auto filter = source_.child_filter();
    if (!filter) return tl::unexpected(filter.error());
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return fail_errno("becoming a child subreaper", errno);
    SpawnOptions spawn = options_.spawn;
    if (auto extra = source_.child_environment(); !extra.empty()) {
      env_ = with_variables(options_.spawn.env, extra);
      spawn.env = &env_;
    }
    auto child = spawn_paused(argv_, signals_.previous(), *filter, spawn);
    if (!child) return tl::unexpected(child.error());
    child_.emplace(std::move(*child));
    root_ = child_->pid();
    if (auto traced = source_.trace_root(root_); !traced) return traced;
    // The fallback identity, used only if no event ever names the top process.
    tree_.set_root(static_cast<uint32_t>(root_), Clocks::boot_now(), argv_, cwd_);
    auto waiter = open_waiter(source_, signals_.handled(), options_);
    if (!waiter) return tl::unexpected(waiter.error());
    waiter_ = std::move(*waiter);
    if (options_.time_limit_ns > 0) deadline_ = Clocks::boot_now() + static_cast<uint64_t>(options_.time_limit_ns);
    out_.start_wall = Clocks::wall_now();
    return child_->release();
  }

  // Turns until the tree is gone.
  Result<void> loop() {
    for (;;) {
      if (auto waited = waiter_->wait(); !waited) return waited;
      source_.drain(tree_);
      apply_stops();
      if (options_.tick) options_.tick();
      if (options_.service) options_.service->serve(source_, tree_, options_.boot_to_wall);
      waiter_->take_signals([this](int signo, int code, pid_t from) { on_signal(signo, code, from); });
      if (waiter_->reap([this](pid_t pid, int status) { on_report(pid, status); })) return {};
    }
  }

  // The last drain: every exit event was written before its process was
  // reaped, so this one sees the rest.
  Supervision finish() {
    source_.drain(tree_);
    out_.end_boot = Clocks::boot_now();
    out_.end_wall = Clocks::wall_now();
    out_.exec_failure = child_->exec_failure();
    ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    finished_ = true;
    return std::move(out_);
  }

 private:
  // A stop asked on the stop fd, or the time limit reached, kills the tree;
  // killed processes may have forked on the way, so it is killed again on
  // every later turn.
  void apply_stops() {
    if (waiter_->stop_ready()) {
      std::string why = options_.stop_reason ? options_.stop_reason() : "stopped";
      if (!why.empty()) {
        stop(std::move(why));
        waiter_->forget_stop();  // once is enough
      }
    }
    if (deadline_ && out_.stopped.empty() && Clocks::boot_now() >= deadline_)
      stop("the wall time limit of " + std::to_string(options_.time_limit_ns / 1000000000) + " s was reached");
    else if (!out_.stopped.empty())
      stop(out_.stopped);
  }
  void stop(std::string why) {
    if (out_.stopped.empty()) out_.stopped = std::move(why);
    if (root_alive_) ::kill(root_, SIGKILL);
    for (pid_t pid : tree_.running_pids()) ::kill(pid, SIGKILL);
    if (options_.kill_tree) options_.kill_tree();
  }
  // Signals sent by another process go to the top process, or once it has
  // exited to the tree's running processes; the terminal's own reached the
  // whole group already.
  void on_signal(int signo, int code, pid_t from) {
    if (signo == SIGCHLD) return;
    bool from_process = code == SI_USER || code == SI_QUEUE;
    if (!from_process || from == root_) return;
    if (root_alive_) {
      ::kill(root_, signo);
      return;
    }
    for (pid_t pid : tree_.running_pids()) ::kill(pid, signo);
  }
  // Every wait report goes to the source first (a tracer consumes stops).
  void on_report(pid_t pid, int status) {
    if (source_.on_wait(pid, status, tree_)) return;
    if (pid == root_) {
      root_alive_ = false;
      out_.wait_status = status;
      tree_.set_root_exit(status, Clocks::boot_now());
    }
  }

  const std::vector<std::string>& argv_;
  EventSource& source_;
  ProcessTree& tree_;
  const std::string& cwd_;
  const SuperviseOptions& options_;
  SignalGuard signals_;
  std::optional<PausedChild> child_;
  pid_t root_ = -1;
  bool finished_ = false, root_alive_ = true;
  std::unique_ptr<Waiter> waiter_;
  std::vector<std::string> env_;
  uint64_t deadline_ = 0;
  Supervision out_;
};

}  // namespace

Result<Supervision> supervise(const std::vector<std::string>& argv, EventSource& source, ProcessTree& tree,
                              const std::string& cwd, const SuperviseOptions& options) {
  Supervisor supervisor(argv, source, tree, cwd, options);
  if (auto started = supervisor.start(); !started) return tl::unexpected(started.error());
  if (auto looped = supervisor.loop(); !looped) return tl::unexpected(looped.error());
  return supervisor.finish();
}

}  // namespace bsandbox
