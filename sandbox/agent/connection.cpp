// connection.cpp: see connection.h. What is particular to the
// implementation: a connection waits for readability and then reads with
// recvmsg itself (receive_with_fds), since Asio's reads would drop the
// descriptors that come with a request; while its job runs it keeps reading,
// only to see the caller go away (end of stream), which the host hears as
// on_closed.
#include "sandbox/agent/connection.h"

#include <cerrno>
#include <chrono>

namespace bsandbox {
namespace {

namespace asio = boost::asio;

agent::Reply error_reply(const std::string& message) {
  agent::Reply r;
  r.mutable_error()->set_message(message);
  return r;
}

}  // namespace

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
  expire_after(host.limits().request_timeout_s);
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
    self->host.note("uid " + std::to_string(self->peer.uid) + " took no reply for " + std::to_string(seconds) + " s: closing");
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
    host.on_status(shared_from_this());
    return;
  }
  if (r.has_cache_report()) {
    host.on_cache_report(shared_from_this(), r.cache_report());
    return;
  }
  host.on_submit(shared_from_this(), std::move(*r.mutable_submit()));
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
  expire_after(host.limits().send_timeout_s);
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

void Connection::pass_on(std::string payload, bool last) {
  send_raw(frame_header(static_cast<uint32_t>(payload.size())));
  send_raw(std::move(payload));
  if (last) closing = true;  // close once the result is written
}

void Connection::answer(const agent::Reply& reply) {
  closing = true;
  send(reply);
}

void Connection::refuse(const std::string& message) {
  if (closed) return;
  host.on_refused(peer.uid, message);
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
  host.on_closed(shared_from_this());
}

}  // namespace bsandbox
