// syscall_table_test.cpp: the table the kernel programs index.
#include "sandbox/backend/syscall_table.h"

#include <doctest/doctest.h>
#include <sys/syscall.h>

#include <set>

using namespace bsandbox;

TEST_CASE("every kind of file syscall appears, once per syscall number") {
  std::set<long> numbers;
  std::set<int> kinds;
  for (const auto& s : file_syscalls()) {
    CAPTURE(s.name);
    CHECK(numbers.insert(s.nr).second);
    CHECK(s.nr >= 0);
    CHECK(s.nr < BS_SC_TABLE_SIZE);
    kinds.insert(s.desc.sys);
  }
  // Kinds this architecture has no syscall for (fchmodat2 on older headers).
  int expected = BS_SYS_COUNT - 1;
#ifndef SYS_fchmodat2
  expected -= 1;
#endif
  CHECK(static_cast<int>(kinds.size()) == expected);
}

TEST_CASE("argument positions match the syscalls' signatures") {
  auto table = kernel_syscall_table();
  const bs_sc_desc& openat = table[SYS_openat];
  CHECK(openat.sys == BS_SYS_OPENAT);
  CHECK(openat.dirfd1 == 1);
  CHECK(openat.path1 == 2);
  CHECK(openat.flags == 3);
  CHECK(openat.resolve == BS_RESOLVE_RETFD);
  const bs_sc_desc& renameat2 = table[SYS_renameat2];
  CHECK(renameat2.path1 == 2);
  CHECK(renameat2.dirfd2 == 3);
  CHECK(renameat2.path2 == 4);
  CHECK(renameat2.flags == 5);
  CHECK((renameat2.desc_flags & BS_DESC_BUMP_GEN) != 0);
  const bs_sc_desc& symlinkat = table[SYS_symlinkat];
  CHECK(symlinkat.path1 == 3);  // the new name
  CHECK(symlinkat.dirfd1 == 2);
  CHECK(symlinkat.path2 == 1);  // the target text
  CHECK((symlinkat.desc_flags & BS_DESC_PATH2_IS_TEXT) != 0);
  CHECK((table[SYS_openat2].desc_flags & BS_DESC_FLAGS_IN_OPEN_HOW) != 0);
  CHECK((table[SYS_newfstatat].desc_flags & BS_DESC_SKIP_EMPTY_PATH) != 0);
  CHECK((table[SYS_getdents64].desc_flags & BS_DESC_ONCE_PER_FILE) != 0);
}

TEST_CASE("syscalls that are not file syscalls are not traced") {
  auto table = kernel_syscall_table();
  for (long nr : {SYS_read, SYS_write, SYS_close, SYS_fstat, SYS_mmap, SYS_getpid, SYS_clone}) {
    CAPTURE(nr);
    CHECK(table[nr].sys == BS_SYS_NONE);
  }
}

TEST_CASE("names") {
  CHECK(sys_name(BS_SYS_OPENAT) == "openat");
  CHECK(sys_name(BS_SYS_RENAMEAT2) == "renameat2");
}
