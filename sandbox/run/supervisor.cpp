// supervisor.cpp: one epoll loop over a signalfd and the source's fd, or
// for a tracer, one blocking waitpid loop.
#include "sandbox/run/supervisor.h"

#include "sandbox/run/tracer_service.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>

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

}  // namespace

Result<Supervision> supervise(const std::vector<std::string>& argv, EventSource& source,
                              ProcessTree& tree, const std::string& cwd, const SuperviseOptions& options) {
  auto filter = source.child_filter();
  if (!filter) return tl::unexpected(filter.error());

  SignalGuard signals;
  UniqueFd sfd(::signalfd(-1, &signals.handled(), SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd.valid()) return fail_errno("signalfd", errno);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return fail_errno("becoming a child subreaper", errno);

  auto child = spawn_paused(argv, signals.previous(), *filter, options.spawn);
  if (!child) return tl::unexpected(child.error());
  pid_t root = child->pid();
  auto abandon = [&](Error e) -> Result<Supervision> {
    ::kill(root, SIGKILL);
    ::waitpid(root, nullptr, 0);
    return tl::unexpected(std::move(e));
  };
  if (auto traced = source.trace_root(root); !traced) return abandon(traced.error());

  // The fallback identity, used only if no event ever names the top process.
  tree.set_root(static_cast<uint32_t>(root), Clocks::boot_now(), argv, cwd);

  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return abandon(Error{"epoll_create1 failed"});
  int service_fd = options.service && source.wait_fd() >= 0 ? options.service->fd() : -1;
  int stop_fd = source.wait_fd() >= 0 ? options.stop_fd : -1;
  for (int fd : {sfd.get(), source.wait_fd(), service_fd, stop_fd}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
      return abandon(Error{"epoll_ctl failed"});
  }

  Supervision out;
  out.start_wall = Clocks::wall_now();
  if (auto released = child->release(); !released) return abandon(released.error());

  bool root_alive = true;
  auto forward = [&](int sig) {
    if (root_alive) {
      ::kill(root, sig);
      return;
    }
    for (pid_t pid : tree.running_pids()) ::kill(pid, sig);
  };
  auto on_signal = [&](int signo, int code, pid_t from) {
    if (signo == SIGCHLD) return;
    bool from_process = code == SI_USER || code == SI_QUEUE;
    if (from_process && from != root) forward(signo);
  };
  auto reaped = [&](pid_t pid, int status) {
    if (source.on_wait(pid, status, tree)) return;
    if (pid == root) {
      root_alive = false;
      out.wait_status = status;
      tree.set_root_exit(status, Clocks::boot_now());
    }
  };

  if (source.wait_fd() < 0) {
    // A tracer: every report is a stop to handle at once.
    TracerSignals caught;
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, __WALL);
      caught.take(on_signal);
      if (pid > 0) {
        reaped(pid, status);
      } else if (errno != EINTR) {
        break;  // ECHILD: the whole tree is gone
      }
    }
  } else {
    // A source with an fd (eBPF) is drained when it polls readable.
    uint64_t deadline = options.time_limit_ns > 0 ? Clocks::boot_now() + static_cast<uint64_t>(options.time_limit_ns) : 0;
    auto stop = [&](std::string why) {
      if (out.stopped.empty()) out.stopped = std::move(why);
      if (root_alive) ::kill(root, SIGKILL);
      for (pid_t pid : tree.running_pids()) ::kill(pid, SIGKILL);
      if (options.kill_tree) options.kill_tree();
    };
    for (;;) {
      epoll_event evs[5];
      int n = ::epoll_wait(ep.get(), evs, 5, kPollMs);
      if (n < 0 && errno != EINTR) return abandon(Error{"epoll_wait failed"});
      source.drain(tree);
      for (int i = 0; i < n; ++i) {
        if (stop_fd < 0 || evs[i].data.fd != stop_fd) continue;
        std::string why = options.stop_reason ? options.stop_reason() : "stopped";
        if (why.empty()) break;
        stop(std::move(why));
        ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, stop_fd, nullptr);  // once is enough
        stop_fd = -1;
        break;
      }
      if (deadline && out.stopped.empty() && Clocks::boot_now() >= deadline)
        stop("the wall time limit of " + std::to_string(options.time_limit_ns / 1000000000) + " s was reached");
      // Killed processes may have forked on the way: keep killing.
      else if (!out.stopped.empty()) stop(out.stopped);
      if (options.tick) options.tick();
      if (service_fd >= 0) options.service->serve(source, tree, options.boot_to_wall);
      signalfd_siginfo si;
      while (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
        on_signal(static_cast<int>(si.ssi_signo), si.ssi_code, static_cast<pid_t>(si.ssi_pid));

      bool none_left = false;
      for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG | __WALL);
        if (pid > 0) {
          reaped(pid, status);
          continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        none_left = pid < 0 && errno == ECHILD;
        break;
      }
      if (none_left) break;
    }
  }
  source.drain(tree);
  out.end_boot = Clocks::boot_now();
  out.end_wall = Clocks::wall_now();
  out.exec_failure = child->exec_failure();
  ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
  return out;
}

}  // namespace bsandbox
