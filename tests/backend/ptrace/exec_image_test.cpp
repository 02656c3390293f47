// exec_image_test.cpp: the names of an exec, found from outside: the name
// as the kernel spells it, #! interpreters (nested, relative, malformed),
// the ELF interpreter in a maps text, and an ExecImage read of this process
// (which has exec'd: its own exe, cmdline and loader are what a tracer
// would find at its exec stop).
#include "sandbox/backend/ptrace/exec_image.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "sandbox/base/io.h"
#include "tests/temp_dir.h"

using namespace bsandbox;
using bsandbox::testing::TempDir;

TEST_CASE("exec_name: as given, or under /dev/fd/N for a name relative to a dirfd") {
  CHECK(exec_name("/bin/sh", AT_FDCWD) == "/bin/sh");
  CHECK(exec_name("sh", AT_FDCWD) == "sh");
  CHECK(exec_name("/bin/sh", 5) == "/bin/sh");  // absolute: the dirfd is not used
  CHECK(exec_name("sh", 5) == "/dev/fd/5/sh");
  CHECK(exec_name("", 5) == "/dev/fd/5");  // AT_EMPTY_PATH: the fd itself
}

TEST_CASE("script_interp: the #! interpreter, nested to the last, relative to the cwd") {
  TempDir d("execimage");
  pid_t me = ::getpid();
  testing::put_file(d / "plain", "\x7f" "ELF...");
  testing::put_file(d / "inner", "#!/bin/sh -e\necho\n", 0755);
  testing::put_file(d / "outer", "#! " + (d / "inner") + " arg\n", 0755);
  testing::put_file(d / "blank", "#!   \n", 0755);
  testing::put_file(d / "short", "#!", 0755);
  CHECK(script_interp(me, d / "inner") == "/bin/sh");
  CHECK(script_interp(me, d / "outer") == "/bin/sh");
  CHECK(script_interp(me, d / "plain") == "");
  CHECK(script_interp(me, d / "blank") == "");
  CHECK(script_interp(me, d / "short") == "");
  CHECK(script_interp(me, d / "missing") == "");
  CHECK(script_interp(me, "") == "");
  // A loop ends after four levels, with the last interpreter named.
  testing::put_file(d / "loop", "#!" + (d / "loop") + "\n", 0755);
  CHECK(script_interp(me, d / "loop") == d / "loop");
  // Relative: through the cwd.
  std::string was(4096, '\0');
  REQUIRE(::getcwd(was.data(), was.size()) != nullptr);
  REQUIRE(::fchdir(d.fd.get()) == 0);
  CHECK(script_interp(me, "inner") == "/bin/sh");
  REQUIRE(::chdir(was.c_str()) == 0);
}

TEST_CASE("mapping_at: the file mapped at the entry point, unless it is the program itself") {
  std::string maps =
      "555555554000-555555556000 r-xp 00000000 08:01 100 /usr/bin/prog\n"
      "7ffff7fc3000-7ffff7fef000 r-xp 00001000 08:01 200 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n"
      "7ffff7ff0000-7ffff7ff1000 rw-p 00000000 00:00 0 \n"
      "7ffff7ff2000-7ffff7ff3000 r-xp 00000000 08:01 300 /tmp/old ld.so (deleted)\n";
  auto ld = mapping_at(maps, 0x7ffff7fc3100, "/usr/bin/prog");
  REQUIRE(ld);
  CHECK(ld->path == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  CHECK(ld->flags == 0);
  CHECK_FALSE(mapping_at(maps, 0x555555554100, "/usr/bin/prog"));  // a static program
  CHECK_FALSE(mapping_at(maps, 0x7ffff7ff0100, "/usr/bin/prog"));  // anonymous memory
  CHECK_FALSE(mapping_at(maps, 0x1000, "/usr/bin/prog"));          // nothing mapped
  CHECK_FALSE(mapping_at(maps, 0x7ffff7fef000, "/usr/bin/prog"));  // the end is not inside
  auto gone = mapping_at(maps, 0x7ffff7ff2000, "/usr/bin/prog");
  REQUIRE(gone);
  CHECK(gone->path == "/tmp/old ld.so");
  CHECK(gone->flags == BS_SF_DELETED);
  CHECK_FALSE(mapping_at("", 0x1000, "x"));
}

TEST_CASE("ExecImage of this process: its exe, its argv; an execve's own name comes first") {
  pid_t me = ::getpid();
  ProcReader proc;
  ExecImage image;
  auto exe = read_link("/proc/self/exe");
  REQUIRE(exe);
  image.read(me, proc, nullptr, 0);
  ExecEvent e;
  image.fill(e);
  CHECK(e.filename == *exe);  // no call known: the executable's path
  CHECK(e.interp == e.filename);
  REQUIRE(e.exe);
  CHECK(e.exe->path == *exe);
  CHECK_FALSE(e.ldso);  // nothing mapped at 0
  CHECK(e.argv == *read_file("/proc/self/cmdline"));
  CHECK(image.needs_root());
  CHECK_FALSE(image.needs_cwd());

  // execveat(dirfd 7, "prog"): spelt as the kernel spells it.
  SyscallSpec spec{};
  spec.desc.sys = BS_SYS_EXECVEAT;
  spec.desc.path1 = 2;
  spec.desc.dirfd1 = 1;
  FileCall call;
  call.spec = &spec;
  call.args = {7, 0};
  call.path1.present = true;
  call.path1.text = "prog";
  image.read(me, proc, &call, 0);
  ExecEvent named;
  image.fill(named);
  CHECK(named.filename == "/dev/fd/7/prog");
  CHECK(image.needs_root());
  call.args[0] = static_cast<uint64_t>(AT_FDCWD);
  image.read(me, proc, &call, 0);
  CHECK(image.needs_cwd());  // a relative name, from the cwd
  CHECK_FALSE(image.needs_root());
}
