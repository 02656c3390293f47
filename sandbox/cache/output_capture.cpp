// output_capture.cpp: see output_capture.h. One thread per stream copies
// from its pipe to bsandbox's own descriptor and to a memfd as it reads, so
// the command's output reaches the terminal as it comes and a later hit can
// replay it byte for byte.
#include "sandbox/cache/output_capture.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "sandbox/storage/fs.h"
#include "sandbox/base/unique_fd.h"

namespace bsandbox {

struct OutputCapture::Impl {
  struct Stream {
    UniqueFd read_end, write_end, file;
    int target = -1;
    std::thread pump;
  };
  Stream streams[2];

  static void drain(Stream* s) {
    sigset_t pipe;  // a closed terminal or pipe gives EPIPE here, not a signal for bsandbox
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    bool forward = true;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(s->read_end.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::string_view chunk(buf, static_cast<size_t>(n));
      if (forward && !write_all(s->target, chunk, "output")) forward = false;
      (void)write_all(s->file.get(), chunk, "captured output");
    }
  }

  void finish() {
    for (auto& s : streams) s.write_end.reset();
    for (auto& s : streams)
      if (s.pump.joinable()) s.pump.join();
  }
  ~Impl() { finish(); }
};

OutputCapture::OutputCapture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OutputCapture::OutputCapture(OutputCapture&&) noexcept = default;
OutputCapture& OutputCapture::operator=(OutputCapture&&) noexcept = default;
OutputCapture::~OutputCapture() = default;

Result<OutputCapture> OutputCapture::start() {
  auto impl = std::make_unique<Impl>();
  for (int i = 0; i < 2; ++i) {
    auto& s = impl->streams[i];
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
    s.read_end.reset(fds[0]);
    s.write_end.reset(fds[1]);
    s.file.reset(::memfd_create(i == 0 ? "bsandbox-stdout" : "bsandbox-stderr", MFD_CLOEXEC));
    if (!s.file.valid()) return fail_errno("memfd_create", errno);
    s.target = i + 1;
  }
  for (auto& s : impl->streams) s.pump = std::thread(Impl::drain, &s);
  return OutputCapture(std::move(impl));
}

int OutputCapture::child_out() const { return impl_->streams[0].write_end.get(); }
int OutputCapture::child_err() const { return impl_->streams[1].write_end.get(); }
void OutputCapture::finish() { impl_->finish(); }
int OutputCapture::out_file() const { return impl_->streams[0].file.get(); }
int OutputCapture::err_file() const { return impl_->streams[1].file.get(); }

}  // namespace bsandbox
