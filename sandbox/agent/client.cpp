// client.cpp: see client.h. What is particular to the implementation: a
// request whose sending fails is followed by one read, since an agent that
// refuses a connection at once (one of its limits) writes why and closes
// before it reads, and that reason says more than "Broken pipe".
#include "sandbox/agent/client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sandbox/agent/protocol.h"
#include "sandbox/base/text.h"

extern char** environ;

namespace bsandbox {

namespace {

// Sends the request; if that fails, the agent may have refused the
// connection before reading it (one of its limits): its reason is then
// waiting to be read, and says more than "Broken pipe".
Result<void> send_request(int fd, const agent::Request& request, const std::vector<int>& fds = {}) {
  auto sent = send_frame(fd, request, fds);
  if (sent) return sent;
  auto payload = read_frame(fd, kMaxRequestBytes);
  agent::Reply reply;
  if (payload && *payload && reply.ParseFromString(**payload) && reply.has_error())
    return fail("the agent: " + reply.error().message());
  return sent;
}

// One request and its one reply (read up to max_bytes), an Error reply
// made a failure.
Result<agent::Reply> exchange(int fd, const agent::Request& request, size_t max_bytes) {
  if (auto sent = send_request(fd, request); !sent) return tl::unexpected(sent.error());
  auto payload = read_frame(fd, max_bytes);
  if (!payload) return fail("the agent: " + payload.error().message);
  if (!*payload) return fail("the agent closed the connection without answering");
  agent::Reply reply;
  if (!reply.ParseFromString(**payload)) return fail("the agent's answer does not parse");
  if (reply.has_error()) return fail("the agent: " + reply.error().message());
  return reply;
}

}  // namespace

Result<UniqueFd> connect_agent(const std::string& socket, int timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path) return fail("the agent socket path " + socket + " is too long");
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail_errno("socket", errno);
  if (timeout_ms > 0) {
    // A Unix socket's connect waits (for room in the backlog) as long as its
    // send timeout allows.
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
      return fail_errno("setting the agent socket's timeouts", errno);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  int e = errno;
  if (e == ENOENT || e == ECONNREFUSED)
    return fail("no bsandboxd is listening on " + socket + " (start it as root: bsandboxd)");
  if (e == EACCES || e == EPERM)
    return fail("not allowed to connect to the agent at " + socket +
                " (its mode and group decide who may: see bsandboxd --group)");
  return fail_errno("connecting to the agent at " + socket, e);
}

Result<TracedRun> run_via_agent(int fd, const std::string& socket, const std::vector<std::string>& argv,
                                const std::string& cwd, const ChildStdio& stdio, bool for_cache,
                                const std::function<void(const std::string&)>& note) {
  agent::Request request;
  agent::Submit* s = request.mutable_submit();
  for (const auto& a : argv) s->add_argv(a);
  for (char** e = environ; *e; ++e) s->add_env(*e);
  s->set_cwd(cwd);
  s->set_fds(kFdStdin | kFdStdout | kFdStderr);
  s->set_priors(for_cache);
  mode_t mask = ::umask(022);
  ::umask(mask);
  s->set_umask(mask);
  UniqueFd dir(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return fail_errno("opening the working directory", errno);
  std::vector<int> fds{stdio.in >= 0 ? stdio.in : 0, stdio.out >= 0 ? stdio.out : 1,
                       stdio.err >= 0 ? stdio.err : 2, dir.get()};
  if (auto sent = send_request(fd, request, fds); !sent) return tl::unexpected(sent.error());
  dir.reset();
  for (;;) {
    auto payload = read_frame(fd, kMaxReplyBytes);
    if (!payload) return fail("the agent: " + payload.error().message + " (did bsandboxd exit?)");
    if (!*payload) return fail("the agent closed the connection before the job finished (did bsandboxd exit?)");
    agent::Reply reply;
    if (!reply.ParseFromString(**payload)) return fail("the agent sent a reply that does not parse");
    switch (reply.kind_case()) {
      case agent::Reply::kAccepted:
        if (reply.accepted().waits())
          note("job " + std::to_string(reply.accepted().job()) + " waits for a free slot (" +
               std::to_string(reply.accepted().ahead()) + " queued ahead of it)");
        break;
      case agent::Reply::kStarted:
        note("job " + std::to_string(reply.started().job()) + " started");
        break;
      case agent::Reply::kProgress:
        break;
      case agent::Reply::kFinished:
        return from_finished(reply.finished(), socket);
      case agent::Reply::kError:
        return fail("the agent: " + reply.error().message());
      default:
        return fail("the agent sent a reply this bsandbox does not know");
    }
  }
}

Result<void> report_cache_traffic(const std::string& socket, const CacheTraffic& traffic, int timeout_ms) {
  auto fd = connect_agent(socket, timeout_ms);
  if (!fd) return tl::unexpected(fd.error());
  agent::Request request;
  *request.mutable_cache_report() = to_message(traffic);
  auto reply = exchange(fd->get(), request, kMaxRequestBytes);
  if (!reply) return tl::unexpected(reply.error());
  if (!reply->has_reported()) return fail("the agent answered something else than Reported");
  return {};
}

Result<agent::Status> ask_status(int fd) {
  agent::Request request;
  request.mutable_status();
  auto reply = exchange(fd, request, kMaxReplyBytes);
  if (!reply) return tl::unexpected(reply.error());
  if (!reply->has_status()) return fail("the agent answered something else than its status");
  return reply->status();
}

Result<agent::Status> agent_status(const std::string& socket) {
  auto fd = connect_agent(socket);
  if (!fd) return tl::unexpected(fd.error());
  return ask_status(fd->get());
}

std::string format_agent_status(const std::string& socket, const agent::Status& st) {
  std::string out;
  auto line = [&out](const char* format, auto... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, format, args...);
    out += buf;
  };
  line("agent %s: up %lld s\n", socket.c_str(), static_cast<long long>(st.uptime_ns() / 1000000000));
  line("jobs: %u running, %u queued (at most %u at once), %llu finished\n", st.running(), st.queued(), st.max_jobs(),
       static_cast<unsigned long long>(st.finished()));
  line("events: %.0f/s; ring buffer %s per job; drops: %llu\n", st.events_per_second(),
       format_size(st.ring_bytes()).c_str(), static_cast<unsigned long long>(st.drops()));
  out += "limits: " + st.limits() + "\n";
  if (st.has_remote_cache()) {
    const agent::CacheTraffic& r = st.remote_cache();
    line("remote cache (as clients reported): %lld hits, %lld misses, %lld fetched ahead, %lld uploads, %s down, "
         "%s up, %lld errors\n",
         static_cast<long long>(r.hits()), static_cast<long long>(r.misses()), static_cast<long long>(r.prefetched()),
         static_cast<long long>(r.uploads()), format_size(static_cast<uint64_t>(r.bytes_down())).c_str(),
         format_size(static_cast<uint64_t>(r.bytes_up())).c_str(), static_cast<long long>(r.errors()));
  }
  for (const auto& j : st.jobs()) {
    std::vector<std::string> argv(j.argv().begin(), j.argv().end());
    std::string command = command_line(argv);
    if (command.size() > 60) command = command.substr(0, 57) + "...";
    double fill = st.ring_bytes() ? 100.0 * static_cast<double>(j.ring_fill()) / static_cast<double>(st.ring_bytes()) : 0;
    line("  job %llu uid %u %s: %llu events (%.0f/s), buffer %.1f%% full, %llu drops: ",
         static_cast<unsigned long long>(j.job()), j.uid(), j.state().c_str(), static_cast<unsigned long long>(j.events()),
         j.events_per_second(), fill, static_cast<unsigned long long>(j.drops()));
    out += command + "\n";
  }
  return out;
}

}  // namespace bsandbox
