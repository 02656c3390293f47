#!/usr/bin/env python3
"""run.py: runs one end-to-end scenario of scenarios.py.

  run.py expect NAME   run under bsandbox; check the exact ops on the exact
                       paths, the exit code, completeness, and (for read-only
                       scenarios) that nothing was recorded as written.
  run.py oracle NAME   run under `strace -f` and under bsandbox (same paths,
                       fresh state each time); every path strace saw a file
                       syscall reach must be in bsandbox's record with an
                       agreeing op, and bsandbox must also see what strace is
                       blind to (the ELF interpreter the kernel loads).
  run.py ptrace NAME   as expect, under --backend=ptrace.
  run.py inproc NAME   as expect, under --backend=inproc (the in-process
                       runtime and ptrace for the rest).
  run.py differential NAME
                       under both backends (fresh state each time): per
                       process, the (path, ops) sets must be equal. No
                       scenario needs an exception.
  run.py differential-inproc NAME
                       the same, eBPF against --backend=inproc.
  run.py user-inproc NAME
                       as user, with --backend=inproc.
  run.py user NAME     as expect, run by an unprivileged user the test
                       creates, with no options (--backend=auto): the record
                       must say ptrace.
  run.py --list        the scenario names (for meson).
  run.py --list-oracle those compared with strace.
  run.py --list-user   those run unprivileged (NEEDS_ROOT says why not the rest).

Exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (bsandbox, dispatch, expect_complete, expect_no_mutation, fresh_dir,  # noqa: E402
                     need_root, skip)
from scenarios import NOT_FOR_ORACLE, SCENARIOS  # noqa: E402

HEX_STRING = re.compile(rb'"((?:\\x[0-9a-f]{2})*)"')
TOKEN = re.compile(rb'(AT_FDCWD|-?\d+)<((?:\\x[0-9a-f]{2})*)>|"((?:\\x[0-9a-f]{2})*)"|NULL')
RESULT = re.compile(rb'\) += (-?\d+)(?:<((?:\\x[0-9a-f]{2})*)>)?(?: (E[A-Z0-9]+))?')

# The syscalls bsandbox records, and how many path arguments each has.
TWO_PATHS = {b"rename", b"renameat", b"renameat2", b"link", b"linkat"}
LINK_TEXT_FIRST = {b"symlink", b"symlinkat"}  # first string is the target text
OPENS = {b"open", b"openat", b"openat2", b"creat"}
COMPARED = OPENS | TWO_PATHS | LINK_TEXT_FIRST | {
    b"execve", b"execveat", b"stat", b"lstat", b"newfstatat", b"statx", b"access", b"faccessat",
    b"faccessat2", b"readlink", b"readlinkat", b"unlink", b"unlinkat", b"mkdir", b"mkdirat",
    b"rmdir", b"mknod", b"mknodat", b"truncate", b"chdir", b"chroot", b"chmod", b"fchmodat",
    b"chown", b"lchown", b"fchownat", b"utime", b"utimes", b"utimensat", b"futimesat",
    b"setxattr", b"lsetxattr", b"removexattr", b"lremovexattr", b"getxattr", b"lgetxattr",
    b"listxattr", b"llistxattr", b"getdents64", b"getdents"}


def unhex(s):
    return bytes.fromhex(s.replace(b"\\x", b"").decode())


def normalize(path):
    parts = []
    for c in path.split(b"/"):
        if c in (b"", b"."):
            continue
        if c == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return b"/" + b"/".join(parts)


def pseudo(path):
    def within(p):
        return path == p or path.startswith(p + b"/")
    if within(b"/dev"):
        return not within(b"/dev/shm")
    return within(b"/proc") or within(b"/sys")


def strace_paths(prefix):
    """{path: set of classes} from strace -ff output files; classes are
    'missing', 'present' and 'readdir'."""
    seen = {}
    uncompared = 0
    directory = os.path.dirname(prefix)
    for name in os.listdir(directory):
        if not name.startswith(os.path.basename(prefix) + "."):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            for line in f:
                m = re.match(rb"(\w+)\(", line)
                r = RESULT.search(line)
                if not m or not r or m.group(1) not in COMPARED:
                    continue
                call = m.group(1)
                ret, ret_path, errno_name = int(r.group(1)), r.group(2), r.group(3)
                args = line[m.end():r.start()]
                if call == b"execve":  # only the program, not argv's strings
                    args = args.split(b"[", 1)[0]
                paths = []  # (base or None, name bytes or None)
                base = None
                strings = 0
                for t in TOKEN.finditer(args):
                    if t.group(2) is not None:
                        base = unhex(t.group(2))
                        if call in (b"getdents64", b"getdents"):
                            paths.append((None, base))
                        continue
                    if t.group(0) == b"NULL":
                        if call == b"utimensat" and base is not None:
                            paths.append((None, base))
                        continue
                    strings += 1
                    if call in LINK_TEXT_FIRST and strings == 1:
                        continue
                    limit = 2 if call in TWO_PATHS else 1
                    if len(paths) < limit:
                        paths.append((base, unhex(t.group(3))))
                    base = None
                resolved = []
                for b, p in paths:
                    if p == b"" and b is not None and call != b"getdents64":
                        continue  # AT_EMPTY_PATH: the fd itself (fstat-like)
                    if p.startswith(b"/"):
                        resolved.append(normalize(p))
                    elif b is not None and b.startswith(b"/"):
                        resolved.append(normalize(b + b"/" + p))
                    else:
                        uncompared += 1
                if ret < 0:
                    if errno_name in (b"ENOENT", b"ENOTDIR") and resolved:
                        seen.setdefault(resolved[0], set()).add("missing")
                    continue
                if call in OPENS:
                    if b"O_TMPFILE" in args:
                        continue  # anonymous until linkat names it (strace shows "#inode")
                    if ret_path is not None and unhex(ret_path).startswith(b"/"):
                        resolved = [normalize(unhex(ret_path))]
                    else:
                        resolved = []
                if call == b"chdir":
                    resolved = [os.fsencode(os.path.realpath(p)) for p in resolved]
                cls = "readdir" if call in (b"getdents64", b"getdents") else "present"
                for p in resolved:
                    seen.setdefault(p, set()).add(cls)
    return {p: c for p, c in seen.items() if not pseudo(p)}, uncompared


def run_expect(name, backend="ebpf"):
    need_root()
    harness.OPTIONS = [f"--backend={backend}"]
    w = fresh_dir(name)
    case = SCENARIOS[name](w)
    check_case(case, bsandbox(case.argv, cwd=case.cwd or w, extra=case.extra), backend)


def check_case(case, run, backend):
    if run.returncode != case.exit_code:
        raise AssertionError(f"bsandbox exited {run.returncode}, expected {case.exit_code}: "
                             f"{run.stderr.decode(errors='replace')}")
    if run.record["exit_code"] != case.exit_code:
        raise AssertionError(f"record exit_code {run.record['exit_code']}, expected {case.exit_code}")
    if run.record["backend"] != backend:
        raise AssertionError(f"record says backend {run.record['backend']}, expected {backend}")
    expect_complete(run)
    if case.read_only:
        expect_no_mutation(run)
    case.check(run)


# Scenarios that cannot run unprivileged, and why.
NEEDS_ROOT = {
    "new_pid_namespace": "unshare(CLONE_NEWPID) needs CAP_SYS_ADMIN: the program fails unprivileged",
    "new_mount_namespace": "clone(CLONE_NEWNS) needs CAP_SYS_ADMIN: the program fails unprivileged",
}
def run_user(name, agent=None, backend=None):
    """As an unprivileged user with no options: ptrace, or (agent) the eBPF
    backend through a bsandboxd of the test's own, found by $BSANDBOX_AGENT."""
    need_root()
    harness.RUN_AS = harness.test_user()
    harness.OPTIONS = [f"--backend={backend}"] if backend else []
    w = fresh_dir(name)
    case = SCENARIOS[name](w)
    harness.give(w, harness.RUN_AS)
    env = dict(os.environ, BSANDBOX_AGENT=agent.socket) if agent else None
    run = bsandbox(case.argv, cwd=case.cwd or w, extra=case.extra, env=env)
    check_case(case, run, "ebpf" if agent else backend or "ptrace")
    if agent and run.record.get("agent") != agent.socket:
        raise AssertionError(f"the record does not name the agent: {run.record.get('agent')!r}")


def run_agent(name):
    need_root()
    with harness.Agent() as agent:
        run_user(name, agent)
        if agent.stop() != 0:
            raise AssertionError(f"bsandboxd exited {agent.proc.returncode} on SIGTERM: {agent.text()}")


def run_differential(name, other="ptrace"):
    need_root()
    runs = {}
    for backend in ("ebpf", other):
        harness.OPTIONS = [f"--backend={backend}"]
        # The same path under both backends (records are compared by path);
        # another per comparison, which may run at the same time.
        w = f"/tmp/bsandbox-differential-{other}-{name}"
        shutil.rmtree(w, ignore_errors=True)
        os.mkdir(w)
        case = SCENARIOS[name](w)
        run = bsandbox(case.argv, cwd=case.cwd or w, extra=case.extra)
        if run.record["backend"] != backend:
            raise AssertionError(f"asked for {backend}, the record says {run.record['backend']}")
        runs[backend] = (run, harness.process_files(run.record))
        shutil.rmtree(w, ignore_errors=True)
    (a_run, a), (b_run, b) = runs["ebpf"], runs[other]
    problems = []
    if a_run.returncode != b_run.returncode:
        problems.append(f"exit code: ebpf {a_run.returncode}, {other} {b_run.returncode}")
    problems += harness.differences(a, b, "ebpf", other)
    if problems:
        raise AssertionError("the backends disagree:\n  " + "\n  ".join(problems[:40]))
    print(f"{name}: {sum(len(v) for v in a.values())} processes, same files and ops under both backends")


def run_oracle(name):
    need_root()
    if not shutil.which("strace"):
        skip("strace is not installed")
    w = fresh_dir(name)
    case = SCENARIOS[name](w)
    with tempfile.TemporaryDirectory(prefix="bsandbox-strace-") as out:
        prefix = os.path.join(out, "trace")
        subprocess.run(["strace", "-ff", "-qq", "-y", "-xx", "-s", "65535",
                        "-e", "trace=%file,getdents64,getdents", "-o", prefix, "--", *case.argv],
                       cwd=case.cwd or w, capture_output=True, timeout=120)
        traced, uncompared = strace_paths(prefix)
    # Same paths, fresh state: the scenario prepares W again for bsandbox.
    shutil.rmtree(w)
    os.mkdir(w)
    case = SCENARIOS[name](w)
    run = bsandbox(case.argv, cwd=case.cwd or w, extra=case.extra)
    ours = run.files()

    problems = []
    for path, classes in sorted(traced.items()):
        ops = ours.get(path)
        if ops is None:
            problems.append(f"strace saw {path!r} ({', '.join(sorted(classes))}); bsandbox did not")
            continue
        if "missing" in classes and "missing" not in ops:
            problems.append(f"{path!r}: strace saw a failed lookup, bsandbox recorded {sorted(ops)}")
        if "present" in classes and not (ops - {"missing"}):
            problems.append(f"{path!r}: strace saw it reached, bsandbox recorded {sorted(ops)}")
        if "readdir" in classes and "readdir" not in ops:
            problems.append(f"{path!r}: strace saw it listed, bsandbox recorded {sorted(ops)}")
    if problems:
        raise AssertionError("bsandbox disagrees with strace -f:\n  " + "\n  ".join(problems))

    # Where strace is blind: the ELF interpreter the kernel maps for exec.
    ldso = [p for p, ops in ours.items() if "exec" in ops and os.path.basename(p).startswith(b"ld-linux")]
    dynamic = any(p["exe"] and not p["exe"].endswith("static_read") for p in run.processes)
    if dynamic:
        if not ldso:
            raise AssertionError("bsandbox did not record the ELF interpreter of a dynamic program")
        if any(p in traced for p in ldso):
            raise AssertionError("strace unexpectedly reported the ELF interpreter")
    extra = len(set(ours) - set(traced))
    print(f"{name}: strace saw {len(traced)} paths, all in bsandbox's record; bsandbox saw {extra} "
          f"more ({len(ldso)} ELF interpreter); {uncompared} relative names without a base in strace's "
          "output were not compared")


def run_one(args):
    if args == ["--list-oracle"]:
        print("\n".join(n for n in SCENARIOS if n not in NOT_FOR_ORACLE))
        sys.exit(0)
    if args == ["--list-user"]:
        print("\n".join(n for n in SCENARIOS if n not in NEEDS_ROOT))
        sys.exit(0)
    modes = {"expect": run_expect, "oracle": run_oracle, "user": run_user,
             "differential": run_differential, "ptrace": lambda n: run_expect(n, "ptrace"),
             "agent": run_agent, "inproc": lambda n: run_expect(n, "inproc"),
             "differential-inproc": lambda n: run_differential(n, "inproc"),
             "user-inproc": lambda n: run_user(n, backend="inproc")}
    if len(args) != 2 or args[0] not in modes:
        raise LookupError(args)
    mode, name = args
    excluded = (NOT_FOR_ORACLE if mode == "oracle"
                else set(NEEDS_ROOT) if mode in ("user", "agent", "user-inproc") else set())
    if name not in set(SCENARIOS) - excluded:
        raise LookupError(args)
    modes[mode](name)
    return f"{mode} {name}"


if __name__ == "__main__":
    sys.exit(dispatch(__doc__, run_one, SCENARIOS))
