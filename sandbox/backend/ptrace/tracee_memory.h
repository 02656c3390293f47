// tracee_memory.h: reading a stopped tracee's memory.
//
// A syscall's arguments are registers; what they point to (a path, an
// open_how, a socket address, a msghdr) is in the tracee's memory. It is
// read with process_vm_readv, one copy per call and no stop of its own, and
// where that cannot (a page mapped write-only, which the tracee's syscall
// reads but a remote read without FOLL_FORCE does not) with /proc/TID/mem.
// Strings are read up to their NUL a page at a time, never past a page
// boundary that might not be mapped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "sandbox/backend/syscall_table.h"

namespace bsandbox {

// A string in the tracee's memory, read page by page up to its NUL.
struct UserString {
  std::string text;
  bool present = false;  // the pointer was not NULL
  uint8_t flags = 0;     // BS_SF_FAULT, BS_SF_TRUNCATED
};

// Reads n bytes of the tracee's memory at addr into buf. Returns the bytes
// read, or -1.
ssize_t read_remote(pid_t tid, uint64_t addr, void* buf, size_t n);

// The NUL-terminated string at addr, at most max bytes (longer: truncated,
// flagged). A NULL addr is "not present"; an unreadable one is BS_SF_FAULT.
void read_user_string(pid_t tid, uint64_t addr, size_t max, UserString& out);

// The socket address of a connect, bind or send (bs_sc_desc's
// BS_DESC_SOCKADDR / BS_DESC_MSGHDR), as raw bytes. false: there is none
// (a send on a connected socket), nothing to report.
bool read_sockaddr(pid_t tid, const bs_sc_desc& d, const uint64_t* args, UserString& out);

}  // namespace bsandbox
