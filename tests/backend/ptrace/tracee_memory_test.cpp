// tracee_memory_test.cpp: reading "the tracee's" memory, with this process
// as the tracee (process_vm_readv and /proc/PID/mem work on oneself):
// plain reads, a page the remote read may not see (PROT_NONE, which
// /proc/PID/mem reads as a debugger does), strings cut at a page boundary,
// too long, unterminated into an unmapped page, and socket addresses.
#include "sandbox/backend/ptrace/tracee_memory.h"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

using namespace bsandbox;

namespace {

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Two pages: the first readable and writable, the second unmapped.
struct Pages {
  char* base;
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  Pages() {
    void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    base = static_cast<char*>(p);
    REQUIRE(::munmap(base + page, page) == 0);
  }
  ~Pages() { ::munmap(base, page); }
  char* end() const { return base + page; }
};

}  // namespace

TEST_CASE("read_remote reads memory, also a page only the kernel's own access may read") {
  pid_t me = ::getpid();
  const char text[] = "hello tracee";
  char out[sizeof text] = {};
  CHECK(read_remote(me, ptr(text), out, sizeof text) == static_cast<ssize_t>(sizeof text));
  CHECK(std::string(out) == text);

  Pages pages;
  std::strcpy(pages.base, "hidden");
  REQUIRE(::mprotect(pages.base, pages.page, PROT_NONE) == 0);
  std::memset(out, 0, sizeof out);
  CHECK(read_remote(me, ptr(pages.base), out, 7) == 7);  // through /proc/PID/mem
  CHECK(std::string(out) == "hidden");
  REQUIRE(::mprotect(pages.base, pages.page, PROT_READ | PROT_WRITE) == 0);
  CHECK(read_remote(me, ptr(pages.end()), out, 4) < 0);  // unmapped: neither can
}

TEST_CASE("read_user_string: NULL, short, up to a page's end, too long, unterminated") {
  pid_t me = ::getpid();
  UserString s;
  read_user_string(me, 0, 4096, s);
  CHECK_FALSE(s.present);
  CHECK(s.flags == 0);

  std::string path = "/usr/include/stdio.h";
  read_user_string(me, ptr(path.c_str()), 4096, s);
  CHECK(s.present);
  CHECK(s.text == path);
  CHECK(s.flags == 0);

  Pages pages;
  // Ends just before the unmapped page: read without touching it.
  char* tail = pages.end() - 4;
  std::memcpy(tail, "abc", 4);
  read_user_string(me, ptr(tail), 4096, s);
  CHECK(s.text == "abc");
  CHECK(s.flags == 0);
  // A long string crossing reads of 256 and then of pages.
  std::memset(pages.base, 'x', pages.page - 1);
  pages.base[pages.page - 1] = '\0';
  read_user_string(me, ptr(pages.base), 8192, s);
  CHECK(s.text.size() == pages.page - 1);
  CHECK(s.flags == 0);
  // Longer than max: cut at max, flagged.
  read_user_string(me, ptr(pages.base), 100, s);
  CHECK(s.text == std::string(100, 'x'));
  CHECK(s.flags == BS_SF_TRUNCATED);
  // No NUL before the unmapped page: a fault, keeping what was read.
  pages.base[pages.page - 1] = 'x';
  read_user_string(me, ptr(pages.base + pages.page - 10), 4096, s);
  CHECK(s.flags == BS_SF_FAULT);
  CHECK(s.text == std::string(10, 'x'));
}

TEST_CASE("read_sockaddr: a connect's address, a sendmsg's msg_name, none, a fault") {
  pid_t me = ::getpid();
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/run/x.sock");
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + std::strlen(un.sun_path) + 1);
  // connect(fd, addr, len): path1 is argument 2, path2 (the length) argument 3.
  bs_sc_desc connect{};
  connect.path1 = 2;
  connect.path2 = 3;
  connect.desc_flags = BS_DESC_SOCKADDR;
  uint64_t args[6] = {3, ptr(&un), len};
  UserString s;
  REQUIRE(read_sockaddr(me, connect, args, s));
  CHECK(s.present);
  CHECK(s.flags == 0);
  CHECK(s.text == std::string(reinterpret_cast<const char*>(&un), len));

  uint64_t none[6] = {3, 0, 0};  // a send on a connected socket
  CHECK_FALSE(read_sockaddr(me, connect, none, s));
  CHECK_FALSE(s.present);

  uint64_t bad[6] = {3, 8, 16};  // an address that is not mapped
  REQUIRE(read_sockaddr(me, connect, bad, s));
  CHECK(s.present);
  CHECK(s.flags == BS_SF_FAULT);
  CHECK(s.text.empty());

  // sendmsg(fd, msg, flags): path1 is the msghdr; its msg_name is the address.
  msghdr mh{};
  mh.msg_name = &un;
  mh.msg_namelen = len;
  bs_sc_desc sendmsg{};
  sendmsg.path1 = 2;
  sendmsg.desc_flags = BS_DESC_MSGHDR;
  uint64_t margs[6] = {3, ptr(&mh), 0};
  REQUIRE(read_sockaddr(me, sendmsg, margs, s));
  CHECK(s.text == std::string(reinterpret_cast<const char*>(&un), len));
  mh.msg_name = nullptr;
  CHECK_FALSE(read_sockaddr(me, sendmsg, margs, s));

  // A length past the largest address is cut to it.
  char big[1024] = {};
  uint64_t bargs[6] = {3, ptr(big), sizeof big};
  REQUIRE(read_sockaddr(me, connect, bargs, s));
  CHECK(s.text.size() == BS_SOCKADDR_MAX);
}
