// report.cpp: see report.h. $BSANDBOX_DIAG_FD is read once per process
// and used only if it names an open descriptor above 2.
#include "cli/report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "sandbox/base/io.h"

namespace bsandbox {

int diag_fd() {
  static const int fd = [] {
    const char* v = std::getenv("BSANDBOX_DIAG_FD");
    int n = v ? std::atoi(v) : 2;
    return n > 2 && ::fcntl(n, F_GETFD) >= 0 ? n : 2;
  }();
  return fd;
}

void say(const std::string& line) { (void)write_all(diag_fd(), "bsandbox: " + line + "\n", "stderr"); }

int error_exit(const std::string& line) {
  say("error: " + line);
  return kExitOwnError;
}

void hand_down_diagnostics() {
  int fd = diag_fd();
  if (fd == 2) fd = ::dup(2);  // not close-on-exec: the command tree inherits it
  if (fd >= 0) ::setenv("BSANDBOX_DIAG_FD", std::to_string(fd).c_str(), 1);
}

}  // namespace bsandbox
