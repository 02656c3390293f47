// accept.cpp: the reserve descriptor and the paused accept
// (agent_accept.h).
#include "sandbox/agent/accept.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>

namespace bsandbox {

AcceptPacer::AcceptPacer(boost::asio::io_context& io, std::string what, std::string busy, Log log)
    : what_(std::move(what)), busy_(std::move(busy)), log_(std::move(log)),
      reserve_(::open("/dev/null", O_RDONLY | O_CLOEXEC)), timer_(io) {}

void AcceptPacer::failed(const boost::system::error_code& ec, int listen_fd, std::function<void()> again) {
  if (ec == boost::asio::error::no_descriptors || ec.value() == ENFILE) {
    reserve_.reset();
    UniqueFd late(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (late.valid()) (void)!::send(late.get(), busy_.data(), busy_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    late.reset();
    reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  if (!backoff_.failing()) log_("cannot accept " + what_ + " (" + ec.message() + "): pausing, up to 1 s at a time");
  timer_.expires_after(backoff_.failed());
  timer_.async_wait([again = std::move(again)](const boost::system::error_code& e) {
    if (!e) again();
  });
}

void AcceptPacer::succeeded() {
  if (backoff_.failing()) log_("accepting " + what_ + " again");
  backoff_.succeeded();
}

}  // namespace bsandbox
