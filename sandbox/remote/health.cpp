// health.cpp: see health.h. The state is one fixed-size record, read and
// rewritten under an exclusive flock; a file that cannot be used (a
// read-only cache) leaves every server usable and every failure warned.
#include "sandbox/remote/health.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/base/clocks.h"

namespace bsandbox {

template <typename F>
void RemoteHealth::update(F&& f) {
  State s;
  if (!file_.valid()) {
    f(s);
    return;
  }
  while (::flock(file_.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  State disk;
  if (::pread(file_.get(), &disk, sizeof disk, 0) == static_cast<ssize_t>(sizeof disk) && disk.magic == s.magic &&
      disk.url == url_)
    s = disk;
  s.url = url_;
  if (f(s)) (void)!::pwrite(file_.get(), &s, sizeof s, 0);
  ::flock(file_.get(), LOCK_UN);
}

bool RemoteHealth::usable() {
  bool ok = true;
  int64_t now = Clocks::wall_now();
  update([&](State& s) {
    ok = s.down_until_ns <= now;
    return false;
  });
  return ok;
}

bool RemoteHealth::failed() {
  bool warn = false;
  int64_t now = Clocks::wall_now();
  update([&](State& s) {
    s.down_until_ns = now + kBackoffNs;
    warn = s.warned_ns == 0 || now - s.warned_ns > kWarnEveryNs;
    if (warn) s.warned_ns = now;
    return true;
  });
  return warn;
}

void RemoteHealth::succeeded() {
  update([&](State& s) {
    if (s.down_until_ns == 0) return false;
    s.down_until_ns = 0;
    return true;
  });
}

void RemoteHealth::new_build() {
  update([&](State& s) {
    s.warned_ns = 0;
    s.down_until_ns = 0;
    return true;
  });
}

}  // namespace bsandbox
