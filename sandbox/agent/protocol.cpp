// protocol.cpp: SCM_RIGHTS, and the checks a Request and its descriptors
// must pass before the agent acts on it.
#include "sandbox/agent/protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

namespace bsandbox {
namespace {

constexpr int kMaxArgs = 1 << 16;

Result<void> check_submit(const agent::Submit& s, size_t fds) {
  if (s.argv_size() == 0) return fail("no command given");
  if (s.argv_size() > kMaxArgs || s.env_size() > kMaxArgs) return fail("too many arguments or variables");
  if (s.argv(0).empty()) return fail("an empty command name");
  for (const auto& a : s.argv())
    if (a.find('\0') != std::string::npos) return fail("an argument contains a NUL byte");
  for (const auto& e : s.env()) {
    if (e.find('\0') != std::string::npos) return fail("an environment variable contains a NUL byte");
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) return fail("an environment entry is not NAME=VALUE");
  }
  if (s.cwd().find('\0') != std::string::npos) return fail("the directory name contains a NUL byte");
  if (s.fds() & ~uint32_t(kFdStdin | kFdStdout | kFdStderr)) return fail("unknown descriptor bits");
  size_t want = static_cast<size_t>(std::popcount(s.fds())) + 1;
  if (fds != want)
    return fail("the request names " + std::to_string(want) + " descriptors (the working directory last) but " +
                std::to_string(fds) + " came with it");
  return {};
}

// Every count of a report: not negative, not above what one run could move.
Result<void> check_cache_report(const agent::CacheTraffic& t) {
  for (auto [name, value] : {std::pair{"hits", t.hits()}, std::pair{"misses", t.misses()},
                             std::pair{"uploads", t.uploads()}, std::pair{"bytes_down", t.bytes_down()},
                             std::pair{"bytes_up", t.bytes_up()}, std::pair{"errors", t.errors()},
                             std::pair{"prefetched", t.prefetched()}}) {
    if (value < 0) return fail(std::string("a negative count of ") + name);
    if (value > kMaxReportedCount)
      return fail(std::string(name) + " is above the " + std::to_string(kMaxReportedCount) + " one report may carry");
  }
  return {};
}

}  // namespace

Result<void> RequestReader::feed(std::string_view bytes, std::vector<UniqueFd> fds) {
  // A refused request's descriptors close here and now, whatever happens.
  auto refuse = [this](std::string why) {
    failed_ = true;
    fds_.clear();
    return fail(std::move(why));
  };
  if (failed_) return refuse("the request was already refused");
  if (done_) return refuse("a connection carries one request, and this one already has one");
  for (const auto& fd : fds)
    if (!fd.valid())
      return refuse("more than " + std::to_string(kMaxRequestFds) + " descriptors came with the request");
  if (!fds.empty() && started_) return refuse("descriptors came after the request's first byte (they come with it)");
  if (!bytes.empty()) started_ = true;
  if (!fds.empty()) fds_ = std::move(fds);
  frames_.feed(bytes);
  return {};
}

Result<std::optional<agent::Request>> RequestReader::next() {
  if (failed_) return fail("the request was already refused");
  auto payload = frames_.next();
  if (!payload) {
    failed_ = true;
    fds_.clear();
    return tl::unexpected(payload.error());
  }
  if (!*payload) return std::optional<agent::Request>();
  done_ = true;
  if (frames_.partial()) {
    failed_ = true;
    fds_.clear();
    return fail("a connection carries one request, and this one sent more");
  }
  auto request = parse_request(**payload, fds_.size());
  if (!request) {
    failed_ = true;
    fds_.clear();
    return tl::unexpected(request.error());
  }
  return std::optional<agent::Request>(std::move(*request));
}

Result<agent::Request> parse_request(std::string_view payload, size_t fds) {
  agent::Request request;
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size())))
    return fail("the message is not a request (it does not parse)");
  switch (request.kind_case()) {
    case agent::Request::kSubmit:
      if (auto ok = check_submit(request.submit(), fds); !ok) return fail("bad job: " + ok.error().message);
      break;
    case agent::Request::kStatus:
      if (fds) return fail("a status request came with descriptors");
      break;
    case agent::Request::kCacheReport:
      if (fds) return fail("a cache report came with descriptors");
      if (auto ok = check_cache_report(request.cache_report()); !ok)
        return fail("bad cache report: " + ok.error().message);
      break;
    default:
      return fail("the request asks for nothing this agent knows");
  }
  return request;
}

Result<void> send_frame(int fd, const google::protobuf::MessageLite& message, const std::vector<int>& fds) {
  std::string bytes = frame(message);
  size_t done = 0;
  while (done < bytes.size()) {
    iovec iov{bytes.data() + done, bytes.size() - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)];
    if (done == 0 && !fds.empty()) {
      if (fds.size() > kMaxRequestFds) return fail("too many descriptors for one message");
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("sending to the agent", errno);
    done += static_cast<size_t>(n);
  }
  return {};
}

ssize_t receive_with_fds(int fd, char* buf, size_t len, std::vector<UniqueFd>& fds) {
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for what one request carries: the kernel closes any more (and
  // says MSG_CTRUNC), so a message never makes the agent hold more.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      fds.emplace_back(got);
    }
  }
  // Descriptors beyond what fit were closed by the kernel: say so by
  // making the count wrong (the request then fails validation).
  if (msg.msg_flags & MSG_CTRUNC) fds.emplace_back(-1);
  return n;
}

agent::Finished to_finished(const TracedRun& run, bool with_priors) {
  agent::Finished f;
  f.set_record(to_protobuf(run.record));
  for (const auto& p : run.problems) f.add_problems(p);
  f.set_exec_error(run.exec_error);
  f.set_stopped(run.stopped);
  f.set_events(run.events);
  if (with_priors) run.first_accesses.write_to(f);
  return f;
}

Result<TracedRun> from_finished(const agent::Finished& f, const std::string& agent_socket) {
  auto rec = from_protobuf(f.record(), "the agent's record");
  if (!rec) return tl::unexpected(rec.error());
  TracedRun run;
  // The job's facts, and the one its caller adds: which agent ran it.
  RunFacts facts = facts_of(*rec);
  facts.agent = agent_socket;
  run.record = std::move(*rec);
  set_facts(run.record, std::move(facts));
  run.problems.assign(f.problems().begin(), f.problems().end());
  run.first_accesses = FirstAccesses::read_from(f);
  run.exec_error = f.exec_error();
  run.stopped = f.stopped();
  run.events = f.events();
  return run;
}

}  // namespace bsandbox
