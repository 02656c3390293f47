"""scenarios.py: one end-to-end scenario per behaviour bsandbox must get right.

A scenario is a function of a fresh work directory W: it prepares files in W
and returns a Case, the command to run and a check of the record. The runner
(run.py) uses each scenario twice: `expect` runs it under bsandbox and checks
the exact ops on the exact paths below W; `oracle` runs it under strace -f too
and checks that bsandbox saw every path strace saw.
"""
import atexit
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from harness import (Run, check, expect_files, prog, under, write)

SCENARIOS = {}


@dataclass
class Case:
    argv: List[str]
    check: Callable[[Run], None]
    cwd: Optional[str] = None
    exit_code: int = 0
    read_only: bool = False  # no write/create/delete anywhere in the record
    extra: List[str] = field(default_factory=list)  # bsandbox options


# Scenarios whose comparison with strace says nothing (see each for why).
NOT_FOR_ORACLE = set()


def scenario(fn=None, *, oracle=True):
    def register(f):
        SCENARIOS[f.__name__] = f
        if not oracle:
            NOT_FOR_ORACLE.add(f.__name__)
        return f
    return register(fn) if fn else register


def one_process_with(run, exe):
    procs = run.by_exe(exe)
    check(len(procs) == 1, f"expected one process running {exe}, found {len(procs)}")
    return procs[0]


@scenario
def dirfd_relative_open(w):
    write(f"{w}/d/x")
    return Case([prog("dirfd_open"), f"{w}/d", "x"], read_only=True,
                check=lambda r: expect_files(r, w, {"d": {"stat"}, "d/x": {"read"}}))


@scenario
def chdir_and_fchdir(w):
    write(f"{w}/a/f")
    write(f"{w}/b/g")
    return Case([prog("chdir_fchdir"), f"{w}/a", f"{w}/b"], read_only=True,
                check=lambda r: expect_files(
                    r, w, {"a": {"stat"}, "a/f": {"read"}, "b": {"stat"}, "b/g": {"read"}}))


@scenario
def vfork_and_exec(w):
    write(f"{w}/f")

    def verify(r):
        child = one_process_with(r, prog("read_file"))
        parent = one_process_with(r, prog("vfork_exec"))
        check(child["parent"] == parent["id"], "the exec'd child's parent is the vfork caller")
        check(child["exit_code"] == 0, "child exit code")
        expect_files(r, w, {"f": {"read"}}, process=child)
        expect_files(r, w, {}, process=parent)
    return Case([prog("vfork_exec"), prog("read_file"), f"{w}/f"], read_only=True, check=verify)


@scenario
def threads_open_files(w):
    def verify(r):
        p = one_process_with(r, prog("threads_open"))
        check(len(r.processes) == 1, "threads are not processes")
        expect_files(r, w, {f"t{i}": {"create", "write"} for i in range(8)}, process=p)
    return Case([prog("threads_open"), w, "8"], check=verify)


@scenario
def fexecve_by_fd(w):
    write(f"{w}/f")

    def verify(r):
        p = r.top
        check(p["exe"] == os.path.realpath(prog("read_file")), f"exe is the program run by fd: {p['exe']}")
        check("exec" in r.files(p)[os.fsencode(os.path.realpath(prog("read_file")))], "exec recorded")
        expect_files(r, w, {"f": {"read"}})
    return Case([prog("fexecve"), prog("read_file"), f"{w}/f"], read_only=True, check=verify)


@scenario
def openat2_beneath(w):
    write(f"{w}/d/x")
    return Case([prog("openat2"), f"{w}/d", "x"], read_only=True,
                check=lambda r: expect_files(r, w, {"d": {"stat"}, "d/x": {"read"}}))


@scenario
def rename_files(w):
    write(f"{w}/a")
    return Case([prog("rename_twice"), f"{w}/a", f"{w}/b", f"{w}/c"],
                check=lambda r: expect_files(r, w, {
                    "a": {"delete"}, "b": {"create", "delete"}, "c": {"create", "write"}}))


@scenario
def read_through_symlink(w):
    write(f"{w}/target")
    os.symlink("target", f"{w}/link")
    return Case([prog("read_file"), f"{w}/link"], read_only=True,
                check=lambda r: expect_files(r, w, {"target": {"read"}, "link": {"stat"}}))


@scenario
def tmpfile_then_linkat(w):
    def verify(r):
        expect_files(r, w, {"final": {"create"}})
        with open(f"{w}/final") as f:
            check(f.read() == "data\n", "linked file has its content")
    return Case([prog("tmpfile_linkat"), w, "final"], check=verify)


@scenario
def mkdir_rmdir_unlink(w):
    return Case([prog("mkdir_rmdir_unlink"), w],
                check=lambda r: expect_files(r, w, {
                    "d": {"create", "delete"}, "f": {"create", "write", "delete"}}))


@scenario
def truncate_file(w):
    write(f"{w}/f", "some contents\n")
    return Case([prog("truncate_file"), f"{w}/f"],
                check=lambda r: expect_files(r, w, {"f": {"write"}}))


@scenario
def sockets_reached(w):
    def verify(r):
        expect_files(r, w, {"": {"stat"}, "s.sock": {"create", "delete"}, "none.sock": {"missing"}})
        p = one_process_with(r, prog("sockets"))
        got = sorted((s["op"], s["address"]) for s in p.get("sockets", []))
        want = sorted([("bind", f"unix:{w}/s.sock"), ("connect", f"unix:{w}/s.sock"),
                       ("connect", "inet:127.0.0.1:9"), ("send", "inet:127.0.0.1:9")])
        check(got == want, f"sockets recorded {got}, expected {want}")
    return Case([prog("sockets"), w], check=verify)


@scenario
def stat_missing_file(w):
    return Case([prog("stat_path"), f"{w}/nope"], read_only=True,
                check=lambda r: expect_files(r, w, {"nope": {"missing"}}))


# strace's io_uring_setup succeeds: it does not refuse io_uring.
@scenario(oracle=False)
def io_uring_refused(w):
    def verify(r):
        out = r.stdout.decode().strip()
        check(out == "ENOSYS", f"io_uring_setup inside the tree must fail with ENOSYS, got {out!r}")
        # Outside bsandbox the same program gets io_uring if the kernel allows
        # it: the refusal is bsandbox's doing, not the kernel's.
        outside = subprocess.run([prog("io_uring")], capture_output=True).stdout.decode().strip()
        try:
            disabled = open("/proc/sys/kernel/io_uring_disabled").read().strip()
        except OSError:
            disabled = "0"
        if disabled == "0":
            check(outside == "ok", f"io_uring works outside bsandbox here, got {outside!r}")
    return Case([prog("io_uring")], read_only=True, check=verify)


@scenario
def static_binary(w):
    write(f"{w}/f")

    def verify(r):
        p = one_process_with(r, prog("static_read"))
        execs = [path for path, ops in r.files(p).items() if "exec" in ops]
        check(execs == [os.fsencode(os.path.realpath(prog("static_read")))],
              f"a static binary execs only itself (no ld.so): {execs}")
        expect_files(r, w, {"f": {"read"}})
    return Case([prog("static_read"), f"{w}/f"], read_only=True, check=verify)


@scenario
def orphan_writes_late(w):
    def verify(r):
        with open(f"{w}/late") as f:
            check(f.read() == "late\n", "bsandbox returned only after the orphan wrote")
        expect_files(r, w, {"late": {"create", "write"}})
        writer = [p for p in r.processes if under(r.files(p), w)]
        check(len(writer) == 1, "one process wrote")
        middle = r.process(writer[0]["parent"])
        check(middle["parent"] == r.top["id"], "the writer is the top's grandchild")
        check(len(r.processes) == 3, f"three processes, got {len(r.processes)}")
        check(all(p["exit_code"] == 0 for p in r.processes), "all exited 0")
        check(writer[0]["end_ns"] > r.top["end_ns"], "the orphan outlived the top process")
    return Case([prog("orphan"), f"{w}/late"], check=verify)


@scenario
def shebang_script(w):
    write(f"{w}/data")
    script = os.path.realpath(prog("script.sh"))

    def verify(r):
        files = r.files()
        check("exec" in files.get(os.fsencode(script), set()), "the script is exec'd")
        sh = os.fsencode(os.path.realpath("/bin/sh"))
        check("exec" in files.get(sh, set()), f"the #! interpreter {sh!r} is exec'd")
        if os.path.islink("/bin/sh"):
            check("stat" in files.get(b"/bin/sh", set()) or "stat" in files.get(b"/bin", set()),
                  "the symlink to the interpreter is stat'ed")
        # dash checks its cwd (W) against $PWD when it starts.
        expect_files(r, w, {"": {"stat"}, "data": {"read"}})
    return Case([script, f"{w}/data"], read_only=True, check=verify)


WEIRD = [b"new\nline", b"\xff\xfe.bin", "caf\u00e9".encode(), b'q"b\\s']


@scenario
def weird_names(w):
    return Case([prog("weird_names"), w],
                check=lambda r: expect_files(
                    r, w, {os.fsdecode(n): {"create", "write"} for n in WEIRD}))


@scenario
def hard_link(w):
    write(f"{w}/a")
    return Case([prog("hardlink"), f"{w}/a", f"{w}/b"],
                check=lambda r: expect_files(r, w, {"a": {"stat"}, "b": {"create", "read"}}))


@scenario
def list_directory(w):
    for name in ("x", "y", "z"):
        write(f"{w}/{name}")

    def verify(r):
        check(r.stdout.decode().strip() == "5", "the listing saw 3 files plus . and ..")
        expect_files(r, w, {"": {"stat", "readdir"}})
    return Case([prog("list_dir"), w], read_only=True, check=verify)


@scenario
def list_directories_one_after_another(w):
    # ls opens, lists and closes each in turn: the kernel hands the next
    # directory the struct file the last one freed, which once made a
    # listing look like the previous one's continuation.
    for d in ("d1", "d2", "d3"):
        write(f"{w}/{d}/f")

    def verify(r):
        check(r.stdout.decode().count("f\n") == 3, f"ls listed three directories: {r.stdout!r}")
        expect_files(r, w, {d: {"stat", "readdir"} for d in ("d1", "d2", "d3")}, process=one_process_with(r, "/usr/bin/ls"))
    return Case(["/usr/bin/ls", f"{w}/d1", f"{w}/d2", f"{w}/d3"], read_only=True, check=verify)


@scenario
def five_hundred_processes(w):
    def verify(r):
        check(len(r.processes) == 501, f"501 processes, got {len(r.processes)}")
        check(all(p["exit_code"] == 0 for p in r.processes), "all exited 0")
        check(len({p["id"] for p in r.processes}) == 501, "identities are unique")
        expect_files(r, w, {f"p{i}": {"create", "write"} for i in range(500)})
        for p in r.processes[1:]:
            check(p["parent"] == r.top["id"], "each child's parent is the top process")
            check(len(under(r.files(p), w)) == 1, "each child created one file")
    return Case([prog("many_procs"), w, "500"], check=verify)


# Exit codes are not file accesses.
@scenario(oracle=False)
def exit_codes_and_signals(w):
    def verify(r):
        check(r.returncode == 3 and r.record["exit_code"] == 3 and r.top["exit_code"] == 3,
              f"exit 3 passes through: {r.returncode}")
        from harness import bsandbox
        s = bsandbox([prog("exit_with"), f"-{int(signal.SIGSEGV)}"])
        check(s.returncode == 139 and s.record["exit_code"] == 139 and s.top["exit_code"] == 139,
              f"death by SIGSEGV is 139: {s.returncode}")
        k = bsandbox(["sh", "-c", f"{prog('exit_with')} -9; exit 4"])
        killed = one_process_with(k, prog("exit_with"))
        check(killed["exit_code"] == 137, f"a child killed by SIGKILL records 137: {killed['exit_code']}")
        check(k.returncode == 4, "the top's code is bsandbox's")
    return Case([prog("exit_with"), "3"], exit_code=3, read_only=True, check=verify)


@scenario
def new_pid_namespace(w):
    def verify(r):
        check(len(r.processes) == 2, "two processes")
        child = r.processes[1]
        check(child["pid"] != 1, "pids are as seen from the root namespace")
        check(child["parent"] == r.top["id"], "the namespace's init is the top's child")
        expect_files(r, w, {"f": {"create", "write"}}, process=child)
    return Case([prog("pidns"), f"{w}/f"], check=verify)


@scenario
def new_mount_namespace(w):
    write(f"{w}/f")

    def verify(r):
        check(len(r.processes) == 2, "two processes")
        child = r.processes[1]
        expect_files(r, w, {"f": {"read"}}, process=child)
        expect_files(r, w, {"": {"stat"}}, process=r.top)  # chdir(W)
    return Case([prog("mntns"), w, "f"], read_only=True, check=verify)


# Every kind of lookup the ptrace backend answers in the tracer (stat,
# lstat, statx, access, readlink, an open of a missing name), on existing,
# missing, symlinked and /proc-relative names: what the top process looked
# up, with the op each backend must record. Not compared with strace: as
# root, a child looks up names inside a chroot, which strace prints as given.
@scenario(oracle=False)
def lookups_of_every_kind(w):
    def verify(r):
        created = {"create", "delete", "stat"}
        expect_files(r, w, {
            "lookups.d": created,
            "lookups.d/d": created,
            "lookups.d/d/f": created | {"read", "write"},
            "lookups.d/l": created,
            "lookups.d/pfd": created,
            "lookups.d/dangling": created | {"missing"},
            "lookups.d/missing": {"missing"},
            "lookups.d/d/missing": {"missing"},
            "lookups.d/nodir/x": {"missing"},
            "lookups.d/d/f/x": {"missing"},
            "lookups.d/pfd/x": {"missing"},
        }, process=r.top)
    return Case([prog("behave"), "lookups"], check=verify)


@scenario
def failed_exec_then_work(w):
    write(f"{w}/f")
    return Case([prog("exec_fail"), f"{w}/missing-prog", f"{w}/f"], read_only=True,
                check=lambda r: expect_files(r, w, {"missing-prog": {"missing"}, "f": {"read"}}))


# strace prints only the relative names here; it never sees the long paths.
@scenario(oracle=False)
def path_longer_than_path_max(w):
    depth = 30
    name = "d" * 200

    def verify(r):
        expected = {"": {"stat"}}  # chdir(W)
        rel = ""
        for _ in range(depth):
            rel = f"{rel}/{name}" if rel else name
            expected[rel] = {"create", "stat"}
        expected[f"{rel}/leaf"] = {"create", "write"}
        longest = max(len(os.fsencode(p)) for p in r.files())
        check(longest > 4096, f"the longest recorded path is {longest} bytes")
        expect_files(r, w, expected)
    return Case([prog("long_path"), w, str(depth)], check=verify)


@scenario
def dot_dot_components(w):
    write(f"{w}/f")
    os.mkdir(f"{w}/sub")
    return Case([prog("read_file"), "sub/../f", "./sub/./../f"], cwd=w, read_only=True,
                check=lambda r: expect_files(r, w, {"f": {"read"}}))


# About processes outside the tree, which strace does not follow either.
@scenario(oracle=False)
def busy_process_outside(w):
    write(f"{w}/inside")
    write(f"{w}/outside")
    busy = subprocess.Popen(["sh", "-c", f"while :; do cat {w}/outside >/dev/null; done"])
    atexit.register(busy.kill)
    time.sleep(0.2)

    def verify(r):
        try:
            pids = {p["pid"] for p in r.processes}
            check(busy.pid not in pids, "the busy process outside the tree is not recorded")
            expect_files(r, w, {"inside": {"read"}})
            check(len(r.processes) == 1, f"only the traced process: {len(r.processes)}")
        finally:
            busy.kill()
            busy.wait()
    return Case([prog("read_file"), f"{w}/inside"], read_only=True, check=verify)
