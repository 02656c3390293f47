// report.cpp: see report.h.
#include "cli/report.h"

#include <fcntl.h>

#include <cstdlib>

#include "cli/exec_command.h"
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

}  // namespace bsandbox
