#!/usr/bin/env python3
"""behaviour.py: a traced program behaves exactly as untraced.

Each check runs `behave MODE` (tests/progs/behave.c) bare and under
`bsandbox exec` with each backend, and compares exit status (a death by
signal N is 128+N from bsandbox, as from a shell), stdout and stderr byte
for byte. As root, the in-process backend also runs as an unprivileged
user (compared with that user's bare run).

  behaviour.py MODE    one mode, both backends;  behaviour.py --list
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import BSANDBOX, check, dispatch, fresh_dir, prog  # noqa: E402

MODES = ["exit", "signal", "segv", "stop", "tstp", "sigchld", "thread-exec", "vfork", "alarm",
         "thread-signal", "output", "interrupted-read", "lookups"]


def shell_code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def first_difference(traced, bare):
    t, b = traced.splitlines(), bare.splitlines()
    for i, (x, y) in enumerate(zip(t, b)):
        if x != y:
            return f"  line {i + 1}:\n  traced {x[:300]!r}\n  bare   {y[:300]!r}"
    return f"  traced has {len(t)} lines, bare {len(b)}"


def run_one(args):
    if len(args) != 1 or args[0] not in MODES:
        raise LookupError(args)
    mode = args[0]
    argv = [prog("behave"), mode]
    cwd = fresh_dir("behaviour")
    bare = subprocess.run(argv, capture_output=True, timeout=60, cwd=cwd)
    runs = [("ptrace", bare, {}), ("inproc", bare, {})]
    out = fresh_dir("behaviour")
    if os.geteuid() == 0:
        runs.append(("ebpf", bare, {}))
        uid, gid = harness.test_user()
        as_user = dict(user=uid, group=gid, extra_groups=[])
        os.chown(cwd, uid, gid)
        os.chown(out, uid, gid)
        bare_user = subprocess.run(argv, capture_output=True, timeout=60, cwd=cwd, **as_user)
        runs.append(("inproc as an unprivileged user", bare_user, as_user))
    for name, bare, as_user in runs:
        backend = name.split()[0]
        traced = subprocess.run([BSANDBOX, "exec", f"--backend={backend}", "--json",
                                 os.path.join(out, "r.json"), "--", *argv],
                                capture_output=True, timeout=60, cwd=cwd, **as_user)
        what = f"behave {mode} under {name}"
        check(traced.returncode == shell_code(bare.returncode),
              f"{what}: exit {traced.returncode}, bare {bare.returncode}; "
              f"stderr {traced.stderr[-300:]!r}")
        check(traced.stdout == bare.stdout, f"{what}: stdout differs:\n{first_difference(traced.stdout, bare.stdout)}")
        check(traced.stderr == bare.stderr,
              f"{what}: stderr differs:\n  traced {traced.stderr[:300]!r}\n  bare   {bare.stderr[:300]!r}")
    return f"{mode}: same exit ({bare.returncode}), stdout ({len(bare.stdout)} bytes) and stderr " \
           f"under {', '.join(name for name, _, _ in runs)}"


if __name__ == "__main__":
    sys.exit(dispatch(__doc__, run_one, MODES))
