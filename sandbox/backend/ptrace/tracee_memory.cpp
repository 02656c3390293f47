// tracee_memory.cpp: see tracee_memory.h. Short reads first: most paths
// are short, and a page copied for each would cost more than the call.
#include "sandbox/backend/ptrace/tracee_memory.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "sandbox/base/unique_fd.h"

namespace bsandbox {

// process_vm_readv first; what it cannot read the kernel still could (a
// page mapped write-only: the tracee's syscall reads it, a remote read
// without FOLL_FORCE does not), so then /proc/TID/mem, which reads as the
// tracer may.
ssize_t read_remote(pid_t tid, uint64_t addr, void* buf, size_t n) {
  iovec local{buf, n};
  iovec remote{reinterpret_cast<void*>(addr), n};
  ssize_t got = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
  if (got > 0) return got;
  char mem[64];
  std::snprintf(mem, sizeof mem, "/proc/%d/mem", static_cast<int>(tid));
  UniqueFd fd(::open(mem, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return -1;
  return ::pread(fd.get(), buf, n, static_cast<off_t>(addr));
}

void read_user_string(pid_t tid, uint64_t addr, size_t max, UserString& out) {
  out.text.clear();
  out.flags = 0;
  out.present = addr != 0;
  if (!addr) return;
  char buf[4096];
  size_t want = 256;  // most paths are short: do not copy a page for them
  while (out.text.size() < max) {
    size_t to_page_end = 4096 - (addr & 4095);
    size_t chunk = std::min({want, to_page_end, max - out.text.size()});
    ssize_t n = read_remote(tid, addr, buf, chunk);
    if (n <= 0) {
      out.flags |= BS_SF_FAULT;
      return;
    }
    const void* nul = std::memchr(buf, 0, static_cast<size_t>(n));
    if (nul) {
      out.text.append(buf, static_cast<const char*>(nul) - buf);
      return;
    }
    out.text.append(buf, static_cast<size_t>(n));
    addr += static_cast<uint64_t>(n);
    want = sizeof buf;
  }
  out.flags |= BS_SF_TRUNCATED;
}

bool read_sockaddr(pid_t tid, const bs_sc_desc& d, const uint64_t* args, UserString& out) {
  out = UserString{};
  uint64_t addr = args[d.path1 - 1u];
  uint64_t len = d.path2 ? args[d.path2 - 1u] : 0;
  if ((d.desc_flags & BS_DESC_MSGHDR) && addr) {
    struct {
      uint64_t name;
      uint32_t namelen;
    } mh{};
    if (read_remote(tid, addr, &mh, sizeof mh) != sizeof mh) mh = {};
    addr = mh.name;
    len = mh.namelen;
  }
  if (!addr || !len) return false;
  out.present = true;
  out.text.resize(std::min<uint64_t>(len, BS_SOCKADDR_MAX));
  if (read_remote(tid, addr, out.text.data(), out.text.size()) != static_cast<ssize_t>(out.text.size())) {
    out.text.clear();
    out.flags = BS_SF_FAULT;
  }
  return true;
}

}  // namespace bsandbox
