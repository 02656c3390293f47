// tracer_service.cpp: see tracer_service.h. A request is two words (a
// magic number, the child's pid); the reply is one frame (base/framing.h)
// holding a pb::SubtreeReply. Clients are answered one at a time from the
// supervisor's loop, with short socket timeouts so a stuck one cannot
// hold the build.
#include "sandbox/run/tracer_service.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "sandbox/base/clocks.h"
#include "sandbox/base/framing.h"
#include "sandbox/core/provenance.pb.h"

namespace bsandbox {
namespace {

constexpr uint32_t kMagic = 0x42535452;  // "BSTR"
constexpr uint32_t kMaxReply = 1u << 30;

sockaddr_un address_of(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // "@name": the abstract namespace (no file, gone with the socket).
  size_t n = std::min(name.size(), sizeof a.sun_path - 1);
  std::memcpy(a.sun_path, name.data(), n);
  if (name.starts_with("@")) a.sun_path[0] = '\0';
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  return a;
}

Result<void> read_exact(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail_errno("tracer service", errno);
    if (got == 0) return fail("tracer service: connection closed");
    p += got;
    n -= static_cast<size_t>(got);
  }
  return {};
}

Result<void> send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("tracer service", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

void set_timeout(int fd, int opt, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

}  // namespace

Result<std::unique_ptr<TracerService>> TracerService::listen() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail_errno("tracer service socket", errno);
  std::random_device rd;
  std::string name = "@bsandbox-tracer-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  socklen_t len;
  sockaddr_un a = address_of(name, &len);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return fail_errno("tracer service bind", errno);
  if (::listen(fd.get(), 64) != 0) return fail_errno("tracer service listen", errno);
  return std::unique_ptr<TracerService>(new TracerService(std::move(fd), name));
}

void TracerService::serve(EventSource& source, ProcessTree& tree, int64_t boot_to_wall) {
  for (;;) {
    UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: none waiting
    }
    // A client sends its request as it connects: a short wait at most.
    set_timeout(client.get(), SO_RCVTIMEO, 1);
    set_timeout(client.get(), SO_SNDTIMEO, 30);
    answer(client.get(), source, tree, boot_to_wall);
  }
}

void TracerService::answer(int client, EventSource& source, ProcessTree& tree, int64_t boot_to_wall) {
  ucred peer{};
  socklen_t plen = sizeof peer;
  uint32_t request[2];
  if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &plen) != 0) return;
  // Everything the kernel has written so far, the child's exit included.
  source.drain(tree);
  auto running = tree.running_pids();
  if (std::find(running.begin(), running.end(), peer.pid) == running.end()) return;  // not ours
  if (!read_exact(client, request, sizeof request) || request[0] != kMagic) return;
  pb::SubtreeReply reply;
  if (auto sub = tree.subtree(static_cast<pid_t>(request[1]), peer.pid, boot_to_wall, Clocks::boot_now())) {
    SourceHealth sh = source.health();
    Record rec;
    rec.backend = std::string(source.name());
    rec.lost_events = sh.lost;
    rec.complete = completeness(sh, tree.health(), Extent::kSubtree).complete;
    rec.processes = std::move(sub->processes);
    reply.set_record(to_protobuf(rec));
    FirstAccesses(std::move(sub->priors)).write_to(reply);
  } else {
    reply.set_error("no process " + std::to_string(request[1]) + " started by process " + std::to_string(peer.pid) +
                    " was seen");
  }
  (void)send_all(client, frame(reply));
}

Result<UniqueFd> connect_tracer(const std::string& address) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail_errno("tracer service socket", errno);
  socklen_t len;
  sockaddr_un a = address_of(address, &len);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
    return fail_errno("connecting to the tracer service " + address, errno);
  return fd;
}

Result<TracedRun> request_subtree(int fd, pid_t child, RunFacts facts) {
  uint32_t request[2] = {kMagic, static_cast<uint32_t>(child)};
  if (auto w = send_all(fd, {reinterpret_cast<const char*>(request), sizeof request}); !w)
    return tl::unexpected(w.error());
  // Framed as bsandboxd's messages are (base/framing.h).
  auto bytes = read_frame(fd, kMaxReply);
  if (!bytes) return fail("tracer service: " + bytes.error().message);
  if (!*bytes) return fail("tracer service: connection closed");
  pb::SubtreeReply reply;
  if (!reply.ParseFromString(**bytes)) return fail("tracer service: reply does not parse");
  if (!reply.error().empty()) return fail("tracer service: " + reply.error());
  auto rec = from_protobuf(reply.record(), "tracer service reply");
  if (!rec) return tl::unexpected(rec.error());
  TracedRun out;
  out.record = std::move(*rec);
  set_facts(out.record, std::move(facts));
  out.first_accesses = FirstAccesses::read_from(reply);
  return out;
}

}  // namespace bsandbox
