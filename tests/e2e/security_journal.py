#!/usr/bin/env python3
"""security_journal.py: the journal under attack (issue 17). A project's
owner (an unprivileged user) plants symlinks and files in the project; root,
the victim, runs bsandbox there. Each check fails on the code before the fix:

  the store linked a kept copy through a symlink at .bsandbox/objects/ab;
  apply chmodded a directory by name, through a symlink swapped in;
  recover killed whatever process runs/NAME/mntns and the marker named;
  undo as root dropped setuid and setgid bits;
  --contain called writes it discarded writes it refuses;
  a re-run used what it saw before later runs without a word;
  kill -9 of a journaled run, then `bsandbox log` (the issue's loop);
and the rule over them: root refuses another user's project unless
--trust-owner, and then works there as that user.

  security_journal.py NAME    run one check;  --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, need_root, run_checks  # noqa: E402

CHECKS = {}
ATTACKER = (65534, 65534)  # nobody: owns the project, plants the traps
SYSTEM_PYTHON = "/usr/bin/python3"  # one the attacker may run (ours may be in root's home)


def security_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def scratch(tag, owner=None, where=None):
    """A fresh directory (its real path), owned by owner if given, removed at exit."""
    d = os.path.realpath(tempfile.mkdtemp(prefix=f"bsandbox-sec-{tag}-", dir=where))
    import atexit
    atexit.register(shutil.rmtree, d, True)
    if owner:
        os.chown(d, *owner)
    return d


def bs(cwd, *args, user=None, timeout=300):
    kw = dict(user=user[0], group=user[1], extra_groups=[]) if user else {}
    return subprocess.run([BSANDBOX, *args], cwd=cwd, capture_output=True, timeout=timeout, **kw)


def text(p):
    return p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")


def run_ok(cwd, *args, **kw):
    p = bs(cwd, *args, **kw)
    check(p.returncode == 0, f"bsandbox {' '.join(args)}: exit {p.returncode}: {text(p)}")
    return p


def refused(p, *words):
    """p failed with exit 125 and one `bsandbox: error:` line holding words."""
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 125, f"exit {p.returncode}, expected 125: {err!r}")
    lines = [line for line in err.splitlines() if line.startswith("bsandbox: error:")]
    check(len(lines) == 1, f"expected one error line, got {err!r}")
    for w in words:
        check(w in lines[0], f"the error should mention {w!r}: {lines[0]!r}")


def as_attacker(script, cwd):
    subprocess.run(["sh", "-c", script], cwd=cwd, check=True, user=ATTACKER[0], group=ATTACKER[1],
                   extra_groups=[])


def attacker_project(tag):
    """A project the attacker made, as the attacker."""
    d = scratch(tag, ATTACKER)
    run_ok(d, "init", user=ATTACKER)
    return d


def alive(pid):
    """Whether pid still runs (a zombie is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@security_check
def root_refuses_another_users_project():
    """Every command refuses, in one line naming --trust-owner; trusted,
    root works there as the owner (what it makes is theirs)."""
    need_root()
    d = attacker_project("refuse")
    as_attacker("echo mine > f", d)
    for args in (["log"], ["diff", "1"], ["undo"], ["recover"], ["gc"], ["init"],
                 ["exec", "--", "sh", "-c", "echo x > f"]):
        refused(bs(d, *args), "--trust-owner", str(ATTACKER[0]))
    with open(os.path.join(d, "f")) as f:
        check(f.read() == "mine\n", "a refused exec changed nothing")
    run_ok(d, "exec", "-q", "--trust-owner", "--", "sh", "-c", "id -u > who")
    who = os.path.join(d, "who")
    with open(who) as f:
        check(f.read().strip() == str(ATTACKER[0]), "the command ran as the owner")
    check(os.lstat(who).st_uid == ATTACKER[0], "what it made is the owner's")
    check(b"id -u > who" in run_ok(d, "log", "--trust-owner").stdout, "log, trusted")
    run_ok(d, "undo", "--trust-owner")
    check(not os.path.exists(who), "undo, trusted")
    # init in another user's directory, too.
    e = scratch("refuse-init", ATTACKER)
    refused(bs(e, "init"), "--trust-owner")
    run_ok(e, "init", "--trust-owner")
    check(os.lstat(os.path.join(e, ".bsandbox")).st_uid == ATTACKER[0], "init as the owner")


@security_check
def store_symlink_cannot_place_a_root_file():
    """The owner links .bsandbox/objects/ab (ab: the hash of a file a run
    will overwrite) to a directory of root's; root runs exec, recover and
    undo there. Nothing appears in that directory."""
    need_root()
    d = attacker_project("store")
    target = scratch("cron-d")  # root's, like /etc/cron.d
    line = "* * * * * root touch /tmp/pwned\n"
    as_attacker(f"printf '{line}' > victimfile", d)
    import hashlib
    sub = hashlib.sha256(line.encode()).hexdigest()[:2]
    as_attacker(f"ln -s {target} .bsandbox/objects/{sub}", d)
    attempts = [["exec", "--", "sh", "-c", "echo x > victimfile"], ["recover"], ["undo"],
                ["exec", "--trust-owner", "--", "sh", "-c", "echo x > victimfile"],
                ["recover", "--trust-owner"], ["undo", "--trust-owner"]]
    for args in attempts:
        p = bs(d, *args)
        check(os.listdir(target) == [], f"after bsandbox {' '.join(args)} (exit {p.returncode}: {text(p)!r}), "
                                        f"{target} holds {os.listdir(target)}")
    refused(bs(d, "exec", "--", "true"), "--trust-owner")


@security_check
def apply_does_not_chmod_through_a_swapped_symlink():
    """Root's project holds pub/, a directory of the attacker's. A run makes
    pub/d 0700 and deletes large files; while undo restores them, the
    attacker swaps pub/d for a symlink to a root-only 0600 file. Undo must
    not make that file 0755 (it fails instead, naming pub/d)."""
    need_root()
    d = scratch("race")
    os.chmod(d, 0o755)  # the attacker may look in (and watch for undo's temporaries)
    run_ok(d, "init")
    pub = os.path.join(d, "pub")
    os.mkdir(pub)
    os.mkdir(os.path.join(pub, "d"), 0o755)
    for path in (pub, os.path.join(pub, "d")):
        os.chown(path, *ATTACKER)
    for i in range(3):
        with open(os.path.join(d, f"big{i}"), "wb") as f:
            for _ in range(128):
                f.write(os.urandom(1 << 20))
    secret_dir = scratch("secret")
    os.chmod(secret_dir, 0o700)
    secret = os.path.join(secret_dir, "secret")
    with open(secret, "w") as f:
        f.write("root only\n")
    os.chmod(secret, 0o600)
    run_ok(d, "exec", "-q", "--", "sh", "-c", "chmod 700 pub/d; rm big0 big1 big2")
    # The attacker waits for undo's first temporary (step 2 restoring the
    # large files), then puts the symlink in place before step 3 sets modes.
    swapper = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", f"""
import os, time
root, pub, secret = {d!r}, {pub!r}, {secret!r}
deadline = time.time() + 120
while not any(n.startswith(".bsandbox.") for n in os.listdir(root)):
    if time.time() > deadline:
        raise SystemExit("undo never started restoring")
os.rename(os.path.join(pub, "d"), os.path.join(pub, "d.moved"))
os.symlink(secret, os.path.join(pub, "d"))
"""], user=ATTACKER[0], group=ATTACKER[1], extra_groups=[])
    p = bs(d, "undo")
    check(swapper.wait(timeout=150) == 0, "the attacker swapped pub/d during the undo")
    mode = stat.S_IMODE(os.stat(secret).st_mode)
    check(mode == 0o600, f"undo made root's 0600 file {oct(mode)} through the symlink ({text(p)!r})")
    refused(p, "pub/d")


@security_check
def recover_kills_only_what_it_started():
    """The owner writes runs/NAME/mntns naming a root process's mount
    namespace, and the marker the run's view would hold into the real state
    directory. recover (refused; trusted, as the owner) must not kill it.
    Nor may the owner's own recover kill the owner's process that way: only
    a process that shows the marker bsandbox itself mounted is the run's."""
    need_root()
    for victim_user in (None, ATTACKER):
        d = attacker_project("kill")
        kw = dict(user=victim_user[0], group=victim_user[1], extra_groups=[]) if victim_user else {}
        victim = subprocess.Popen(["unshare", "-Urm" if victim_user else "-m", "sleep", "600"], **kw)
        try:
            deadline = time.time() + 10
            while os.readlink(f"/proc/{victim.pid}/exe").endswith("/unshare"):
                check(time.time() < deadline, "unshare never ran sleep")
                time.sleep(0.01)
            ino = os.stat(f"/proc/{victim.pid}/ns/mnt").st_ino
            name = "1700000000000.4242"
            as_attacker(f"mkdir -p .bsandbox/runs/{name}/upper && echo {ino} > .bsandbox/runs/{name}/mntns && "
                        f"printf {name} > .bsandbox/bsandbox-run", d)
            if victim_user:
                p = bs(d, "recover", user=ATTACKER)
            else:
                refused(bs(d, "recover"), "--trust-owner")
                check(alive(victim.pid), "a refused recover killed nothing")
                p = bs(d, "recover", "--trust-owner")
            time.sleep(0.2)
            who = "the owner's own" if victim_user else "root's"
            check(alive(victim.pid), f"recover killed {who} process {victim.pid}: {text(p)!r}")
            check(p.returncode == 0 and b"killed" not in p.stdout, f"recover: {text(p)!r}")
        finally:
            victim.kill()
            victim.wait()


@security_check
def undo_as_root_keeps_setuid_and_setgid():
    need_root()
    d = scratch("suid")
    run_ok(d, "init")
    files = {"suid": (0o4755, (0, 0)), "sgid": (0o2755, ATTACKER), "both": (0o6750, (0, ATTACKER[1]))}
    for name, (mode, owner) in files.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chown(path, *owner)
        os.chmod(path, mode)
    command = ["exec", "-q", "--", "sh", "-c", "{ test -u suid && test -g sgid && test -u both && test -g both; } "
               "|| echo lost > lost; echo more >> suid; echo more >> sgid; rm both"]
    run_ok(d, *command)
    run_ok(d, "undo")
    for name, (mode, owner) in files.items():
        st = os.lstat(os.path.join(d, name))
        check((stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)) == (mode, owner),
              f"{name}: undo left {oct(stat.S_IMODE(st.st_mode))} {st.st_uid}:{st.st_gid}, "
              f"expected {oct(mode)} {owner[0]}:{owner[1]}")
    # The rollback before a re-run restores them the same way: the run sees them.
    run_ok(d, *command)
    run_ok(d, *command)
    check(not os.path.exists(os.path.join(d, "lost")), "the re-run found the bits in place")


@security_check
def contain_says_what_it_does_wherever_the_project_is():
    """With --contain nothing outside the project changes: a write fails,
    but in the scratch directories, where it succeeds privately and is
    discarded, and bsandbox says so. The same under /tmp and elsewhere."""
    need_root()
    elsewhere = "/srv" if os.path.isdir("/srv") else "/var/lib"
    for where in ("/tmp", elsewhere):
        d = scratch("contain", where=where)
        run_ok(d, "init")
        tag = f"bsandbox-contain-{os.getpid()}-{random.randrange(1 << 30)}"
        tmp_write, etc_write = f"/tmp/{tag}", f"/etc/{tag}"
        p = bs(d, "exec", "--contain", "--", "sh", "-c",
               f"echo t > {tmp_write}; cat {tmp_write} > seen; echo e > {etc_write}; echo i > inside")
        err = p.stderr.decode(errors="replace")
        check(os.path.exists(os.path.join(d, "inside")), f"{where}: the write inside landed: {err!r}")
        with open(os.path.join(d, "seen")) as f:
            check(f.read() == "t\n", f"{where}: the run reads back what it wrote in its /tmp")
        check(not os.path.exists(tmp_write), f"{where}: the /tmp write stays the run's own")
        check(not os.path.exists(etc_write) and "Read-only file system" in err,
              f"{where}: the /etc write fails: {err!r}")
        check("refuses" not in err, f"{where}: nothing is said to be refused that was not: {err!r}")
        check(tmp_write in err and "discarded" in err, f"{where}: the discarded write is named: {err!r}")
        diff = run_ok(d, "diff", "1").stdout.decode(errors="replace")
        check(tmp_write in diff and "discarded" in diff, f"{where}: diff names it: {diff!r}")
        p = bs(d, "exec", "--", "sh", "-c", f"echo t > {tmp_write}")
        err = p.stderr.decode(errors="replace")
        check(os.path.exists(tmp_write) and "not journaled" in err and "discarded" in err,
              f"{where}: without --contain the write happens, and the warning says what --contain does: {err!r}")
        os.unlink(tmp_write)


@security_check
def rerun_says_what_it_saw_as_before_later_runs():
    need_root()
    d = scratch("rerun")
    run_ok(d, "init")
    with open(os.path.join(d, "f"), "w") as f:
        f.write("f1\n")
    a = ["exec", "--", "sh", "-c", "cat f > g"]
    run_ok(d, *a)
    run_ok(d, "exec", "-q", "--", "sh", "-c", "echo f2 > f")
    p = run_ok(d, *a)
    err = p.stderr.decode(errors="replace")
    check("as they were before later runs" in err and "f (as before run 2)" in err,
          f"the re-run names f and the run it saw f before: {err!r}")
    with open(os.path.join(d, "g")) as f:
        check(f.read() == "f1\n", "and saw f as before run 2")
    diff = run_ok(d, "diff", "4").stdout.decode(errors="replace")
    check("=  f  (the run saw it as it was before run 2)" in diff, f"diff keeps it: {diff!r}")
    check("saw 1 paths as before later runs" in run_ok(d, "log").stdout.decode(), "log says it")


@security_check
def kill_9_then_log_loop():
    """The issue's loop, for each way a run can go (eBPF, ptrace, a user
    without privileges): exec, kill -9 of bsandbox while the command runs,
    then `bsandbox log` must find the project and point at recover, every
    time, and recover must kill what the run left."""
    need_root()
    for label, opts, user in (("ebpf", ["--backend=ebpf"], None), ("ptrace", ["--backend=ptrace"], None),
                              ("unprivileged", [], ATTACKER)):
        kw = dict(user=user[0], group=user[1], extra_groups=[]) if user else {}
        for i in range(6):
            d = scratch("kill9", user)
            run_ok(d, "init", user=user)
            marker = f"{30 + i}.{random.randrange(10000, 99999)}"
            proc = subprocess.Popen([BSANDBOX, "exec", *opts, "--", "sh", "-c",
                                     f"echo partial > crash.txt; sleep {marker}"],
                                    cwd=d, stderr=subprocess.DEVNULL, **kw)
            deadline = time.time() + 60
            while not sleeping(marker):  # the command runs: bsandbox is supervising it
                check(time.time() < deadline and proc.poll() is None, f"{label} {i}: the command never started")
                time.sleep(0.01)
            time.sleep(random.uniform(0, 0.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            for _ in range(4):
                check(os.path.exists(os.path.join(d, ".bsandbox/format")), f"{label} {i}: .bsandbox is there")
                refused(bs(d, "log", user=user), "recover")
                time.sleep(0.25)
            said = run_ok(d, "recover", user=user).stdout.decode()
            check("discarded" in said, f"{label} {i}: recover: {said!r}")
            check(not sleeping(marker), f"{label} {i}: the run's processes are gone ({said!r})")
            run_ok(d, "log", user=user)


def sleeping(marker):
    """The pids of processes running `sleep MARKER` (read from /proc, which
    a process may leave between listing and reading)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read() == b"sleep\0" + marker.encode() + b"\0":
                    out.append(int(pid))
        except OSError:
            pass
    return out


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
