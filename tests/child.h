// child.h: runs a check in a forked child, for tests of code that changes
// the calling process for good (namespaces, identity), and brings back what
// it said: "" when it passed, else why not.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

namespace bsandbox::testing {

inline std::string in_child(const std::function<std::string()>& check) {
  int p[2];
  if (::pipe(p) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(p[0]);
    std::string said = check();
    (void)!::write(p[1], said.data(), said.size());
    _exit(said.empty() ? 0 : 1);
  }
  ::close(p[1]);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "the child died: status " + std::to_string(status);
  return said;
}

}  // namespace bsandbox::testing
