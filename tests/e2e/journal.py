#!/usr/bin/env python3
"""journal.py: journaled runs in a project (bsandbox init): repeatability,
isolation, conflicts, every kind of file, crashes at each step (kill -9 at a
test-only pause point, then `bsandbox recover`), a full disk, and the log,
diff, undo, recover and gc commands.

Trees are compared as snapshots: every path below the root (but .bsandbox)
with its kind, permission bits, content hash or link target, and which
paths share an inode.

  journal.py NAME    run one check;  journal.py --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, need_root, run_checks, skip  # noqa: E402

CHECKS = {}
NOBODY = (65534, 65534)


def journal_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def project(tag="journal", owner=None):
    """A fresh initialised project directory (owned by owner if given)."""
    d = os.path.realpath(tempfile.mkdtemp(prefix=f"bsandbox-{tag}-"))
    import atexit
    atexit.register(shutil.rmtree, d, True)
    if owner:
        os.chown(d, *owner)
    p = bs(d, "init", user=owner)
    check(p.returncode == 0, f"init: {p.stderr!r}")
    return d


def bs(cwd, *args, user=None, env=None, timeout=300):
    kw = dict(user=user[0], group=user[1], extra_groups=[]) if user else {}
    return subprocess.run([BSANDBOX, *args], cwd=cwd, capture_output=True, timeout=timeout,
                          env=env, **kw)


def run_ok(cwd, *args, **kw):
    p = bs(cwd, *args, **kw)
    check(p.returncode == 0, f"bsandbox {' '.join(map(str, args))}: exit {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')}")
    return p


def sh(cwd, script, user=None):
    kw = dict(user=user[0], group=user[1], extra_groups=[]) if user else {}
    subprocess.run(["sh", "-c", script], cwd=cwd, check=True, **kw)


def snapshot(root):
    """{relative path (bytes): description}, the state directory left out."""
    root = os.fsencode(root)
    out = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root and b".bsandbox" in dirnames:
            dirnames.remove(b".bsandbox")
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            mode = st.st_mode & 0o7777
            if os.path.islink(path):
                out[rel] = ("symlink", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", oct(mode))
            elif not os.path.isfile(path):
                out[rel] = ("special", oct(st.st_mode))
            else:
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                inodes.setdefault(st.st_ino, []).append(rel)
                out[rel] = ("file", oct(mode), st.st_size, h.hexdigest()[:16])
    for paths in inodes.values():
        if len(paths) > 1:
            for p in paths:
                out[p] = out[p] + ("linked to " + repr(sorted(paths)),)
    return out


def same_tree(got, want, what):
    if got == want:
        return
    lines = [f"{what}: trees differ"]
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            lines.append(f"  {k!r}: now {got.get(k)}, expected {want.get(k)}")
    raise AssertionError("\n".join(lines[:30]))


def one_line_error(p, *words):
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 125, f"exit {p.returncode}, expected 125: {err!r}")
    lines = [line for line in err.splitlines() if line.startswith("bsandbox: error")]
    check(len(lines) == 1, f"expected one error line, got {err!r}")
    for w in words:
        check(w in lines[0], f"the error should mention {w!r}: {lines[0]!r}")
    return lines[0]


SCRIPT = "echo x >> log; mv a b; rm c; mkdir d; chmod 600 e"


def seed(d, user=None):
    sh(d, "echo a > a; echo c > c; echo e > e; echo log0 > log", user)


def backends():
    """(label, options, user) for each way a journaled run can go here."""
    need_root()
    return [("ebpf", ["--backend=ebpf"], None), ("ptrace", ["--backend=ptrace"], None),
            ("unprivileged", [], NOBODY)]


@journal_check
def repeatable():
    """The issue's script run twice leaves the tree of one run, for every backend."""
    for label, opts, user in backends():
        d = project(label, user)
        seed(d, user)
        run_ok(d, "exec", "-q", *opts, "--", "sh", "-c", SCRIPT, user=user)
        once = snapshot(d)
        run_ok(d, "exec", "-q", *opts, "--", "sh", "-c", SCRIPT, user=user)
        same_tree(snapshot(d), once, f"{label}: second run")
        log = run_ok(d, "log", user=user).stdout.decode()
        check("undo of 1 (re-execution)" in log, f"{label}: the log shows the rollback: {log}")
        # --no-rollback appends again; undo takes it back.
        p = bs(d, "exec", "-q", "--no-rollback", *opts, "--", "sh", "-c", SCRIPT, user=user)
        check(b"mv: cannot stat" in p.stderr, f"{label}: without rollback mv a b fails (a is gone)")
        with open(os.path.join(d, "log")) as f:
            check(f.read() == "log0\nx\nx\n", f"{label}: --no-rollback ran on the committed tree")
        run_ok(d, "undo", user=user)
        same_tree(snapshot(d), once, f"{label}: after undo of the --no-rollback run")


@journal_check
def isolated():
    """A reads f and writes g; B overwrites f; A again sees the f that A saw."""
    for label, opts, user in backends():
        d = project(label, user)
        sh(d, "echo f1 > f", user)
        a = ["exec", "-q", *opts, "--", "sh", "-c", "cat f > g; ls > listing"]
        run_ok(d, *a, user=user)
        run_ok(d, "exec", "-q", *opts, "--", "sh", "-c", "echo f2 > f; echo n > new", user=user)
        run_ok(d, *a, user=user)
        with open(os.path.join(d, "g")) as f:
            check(f.read() == "f1\n", f"{label}: A saw B's f")
        with open(os.path.join(d, "listing")) as f:
            names = f.read().split()
        check("new" not in names, f"{label}: A saw what B created: {names}")
        with open(os.path.join(d, "f")) as f:
            check(f.read() == "f2\n", f"{label}: B's write stays in the tree")


@journal_check
def read_only_directories():
    """A user's read-only directory that a run writes in (chmod u+w, write,
    chmod u-w): the commit and the undo get in and leave it read-only."""
    for label, opts, user in backends():
        d = project(label, user)
        sh(d, "mkdir ro; echo old > ro/old; chmod 555 ro", user)
        before = snapshot(d)
        run_ok(d, "exec", "-q", *opts, "--", "sh", "-c",
               "chmod u+w ro; echo x > ro/new; rm ro/old; chmod u-w ro", user=user)
        after = snapshot(d)
        check(b"ro/new" in after and b"ro/old" not in after and after[b"ro"] == ("dir", "0o555"),
              f"{label}: committed into the read-only directory: {after}")
        run_ok(d, "undo", user=user)
        same_tree(snapshot(d), before, f"{label}: undo")
        sh(d, "chmod -R u+w ro", user)


@journal_check
def conflicts_refuse_and_force_keeps():
    need_root()
    d = project()
    sh(d, "echo in > in")
    cmd = ["exec", "-q", "--", "sh", "-c", "cat in in > out; echo more >> in"]
    run_ok(d, *cmd)
    sh(d, "echo edited by hand > out")
    before = snapshot(d)
    p = bs(d, *cmd)
    one_line_error(p, "out", "changed since run 1")
    same_tree(snapshot(d), before, "a refused rollback changes nothing")
    p = bs(d, "undo")
    one_line_error(p, "out")
    same_tree(snapshot(d), before, "a refused undo changes nothing")
    said = run_ok(d, "undo", "--force").stdout.decode()
    forced = said.split(" as entry ")[1].split(":")[0]
    check(not os.path.exists(os.path.join(d, "out")), "undo removed out")
    with open(os.path.join(d, "in")) as f:
        check(f.read() == "in\n", "undo restored in")
    one_line_error(bs(d, "undo"), "nothing to undo")  # the default is the newest run
    run_ok(d, "undo", forced)  # the forced undo: brings the hand-edited version back
    same_tree(snapshot(d), before, "undo of the forced undo")


def make_kinds(d, big):
    """Every kind of thing, before a run changes them."""
    os.makedirs(os.path.join(d, "dir/sub"))
    os.makedirs(os.path.join(d, "empty-old"))
    with open(os.path.join(d, "exe"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(d, "exe"), 0o755)
    with open(os.path.join(d, "dir/sub/deep"), "w") as f:
        f.write("deep\n")
    os.symlink("exe", os.path.join(d, "link"))
    os.symlink("nowhere", os.path.join(d, "dangling"))
    with open(os.path.join(d, "pair1"), "w") as f:
        f.write("linked\n")
    os.link(os.path.join(d, "pair1"), os.path.join(d, "pair2"))
    weird = os.path.join(os.fsencode(d), b"new\nline \xff\xfe name")
    with open(weird, "w") as f:
        f.write("weird\n")
    if big:
        with open(os.path.join(d, "sparse"), "wb") as f:
            f.truncate(1 << 30)
            f.seek(512 << 20)
            f.write(b"middle")


KINDS_SCRIPT = r"""
set -e
chmod 700 exe; chmod 2750 dir
ln -sfn dir link; rm dangling; ln -s exe newlink
rmdir empty-old; mkdir empty-new; mkdir -p new/a/b
rm -r dir/sub; echo now-a-file > dir/sub
echo more >> pair1; ln pair1 pair3; echo n > nf; ln nf nf2
printf 'x' | dd of=sparse bs=1 seek=1073741823 conv=notrunc 2>/dev/null
truncate -s 2G big-new; printf 'end' >> big-new
mv "$(printf 'new\nline \377\376 name')" "$(printf 'renamed\n\001x')"
mkfifo fifo
"""


@journal_check
def every_kind_of_file():
    """Modes, symlinks, empty directories, hard links, newlines and invalid
    UTF-8 in names, fifos and 1-2 GiB sparse files: run, undo, run again."""
    need_root()
    d = project()
    make_kinds(d, big=True)
    before = snapshot(d)
    run_ok(d, "exec", "-q", "--", "sh", "-c", KINDS_SCRIPT)
    after = snapshot(d)
    check(after[b"dir/sub"][0] == "file" and after[b"link"] == ("symlink", b"dir"), "the run's changes landed")
    check(any(b"renamed" in k for k in after), "the rename of the odd name landed")
    check("linked to" in after[b"nf2"][-1], "hard links made by the run stay links")
    check(after[b"fifo"][0] == "special", "the fifo landed")
    state = os.path.join(d, ".bsandbox")
    used = int(subprocess.run(["du", "-sk", state], capture_output=True, check=True).stdout.split()[0])
    check(used < 64 * 1024, f"sparse files stay sparse in the store: {used} KiB")
    diff = run_ok(d, "diff", "1").stdout
    check(b"renamed\\n\\x01x" in diff and b"new\\nline \\xff\\xfe name" in diff, f"diff escapes names: {diff!r}")
    run_ok(d, "undo")
    same_tree(snapshot(d), before, "undo of every kind")
    run_ok(d, "exec", "-q", "--", "sh", "-c", KINDS_SCRIPT)
    same_tree(snapshot(d), after, "the run again")


CRASH_SCRIPT = SCRIPT + "; for i in $(seq 1 40); do echo $i > out$i; done"


def crash_at(phase, prepare=None, command=None, abort=False, undo=False):
    """Kills bsandbox -9 at phase; returns (tree before, tree after an
    uninterrupted run, tree after recover, recover's output)."""
    need_root()
    command = command or ["sh", "-c", CRASH_SCRIPT]
    trees = []
    for interrupted in (False, True):
        d = project("crash")
        seed(d)
        if prepare:
            prepare(d)
        before = snapshot(d)
        args = ["undo"] if undo else ["exec", "-q", "--", *command]
        if not interrupted:
            run_ok(d, *args)
            trees.append(before)
            trees.append(snapshot(d))
            continue
        env = dict(os.environ, BSANDBOX_TEST_PAUSE=phase)
        proc = subprocess.Popen([BSANDBOX, *args], cwd=d, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 60
        seen = b""
        if phase == "command":
            time.sleep(1.0)
        else:
            while b"paused at " + phase.encode() not in seen:
                line = proc.stderr.readline()
                check(time.time() < deadline, f"bsandbox never paused at {phase}: {seen!r}")
                if not line:
                    raise AssertionError(f"bsandbox ended without pausing at {phase}: {seen!r}, "
                                         f"exit {proc.wait()}")
                seen += line
        proc.kill()
        proc.wait()
        refused = bs(d, "log")
        one_line_error(refused, "recover")
        refused = bs(d, "exec", "--", "true")
        one_line_error(refused, "recover")
        rec = run_ok(d, *(["recover", "--abort"] if abort else ["recover"]))
        trees.append(snapshot(d))
        trees.append(rec.stdout.decode())
        after_recover = bs(d, "recover")
        check(b"nothing to recover" in after_recover.stdout, "a second recover has nothing to do")
        run_ok(d, "log")
    return trees


def crash_check(phase, abort=False, expect=None):
    before, after, recovered, said = crash_at(phase, abort=abort)
    if recovered == before:
        got = "before"
    else:
        same_tree(recovered, after, f"kill -9 at {phase}, then recover{' --abort' if abort else ''}")
        got = "after"
    if expect:
        check(got == expect, f"kill -9 at {phase}: recover left the tree as {got} the run, "
                             f"expected {expect} ({said!r})")


@journal_check
def crash_before_command():
    crash_check("before-command", expect="before")


@journal_check
def crash_during_command():
    """The command is still running when bsandbox dies: recover kills it."""
    need_root()
    marker = "31.4159"
    before, after, recovered, said = crash_at(
        "command", command=["sh", "-c", "echo x >> log; sleep " + marker])
    same_tree(recovered, before, "kill -9 during the command")
    check("killed" in said, f"recover killed the leftover processes: {said!r}")
    left = subprocess.run(["pgrep", "-f", "sleep " + marker], capture_output=True)
    check(left.returncode == 1, f"no process of the run is left: {left.stdout!r}")


def crash_both_ways(phase):
    """kill -9 at phase: recover finishes the run, recover --abort undoes it."""
    def check_phase():
        crash_check(phase, expect="after")
        crash_check(phase, abort=True, expect="before")
    return check_phase


for _name, _phase in (("crash_while_keeping_before_states", "store-before"),
                      ("crash_after_journaling", "commit-journaled"),
                      ("crash_in_the_middle_of_a_commit", "commit-applying"),
                      ("crash_after_applying", "commit-applied")):
    CHECKS[_name] = crash_both_ways(_phase)


@journal_check
def crash_in_the_middle_of_an_undo():
    def prepare(d):
        run_ok(d, "exec", "-q", "--", "sh", "-c", CRASH_SCRIPT)
    for abort, expect in ((False, "after"), (True, "before")):
        before, after, recovered, said = crash_at("commit-applying", prepare=prepare, undo=True, abort=abort)
        want = after if expect == "after" else before
        same_tree(recovered, want, f"kill -9 in the middle of an undo, recover {'--abort' if abort else ''}")


@journal_check
def crash_in_the_middle_of_a_rollback_before_reexecution():
    def prepare(d):
        run_ok(d, "exec", "-q", "--", "sh", "-c", CRASH_SCRIPT)
    before, after, recovered, said = crash_at("commit-applying", prepare=prepare, abort=True)
    same_tree(recovered, before, "kill -9 while rolling back before re-execution, recover --abort")


@journal_check
def full_disk_during_commit():
    """A 4 MiB tmpfs: keeping a 2.5 MiB file's before state does not fit.
    Nothing changes, the run's output is kept, recover commits it once there
    is room, or recover --abort drops it."""
    need_root()
    for abort in (False, True):
        mnt = tempfile.mkdtemp(prefix="bsandbox-enospc-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)
        try:
            run_ok(mnt, "init")
            with open(os.path.join(mnt, "big"), "wb") as f:
                f.write(os.urandom(int(1.2 * (1 << 20))))
            with open(os.path.join(mnt, "ballast"), "wb") as f:
                f.write(os.urandom(int(1.5 * (1 << 20))))
            before = snapshot(mnt)
            p = bs(mnt, "exec", "-q", "--", "sh", "-c", "rm ballast; head -c 100000 big > big.new && mv big.new big")
            line = one_line_error(p, "No space left on device")
            check("nothing was changed" in line, line)
            same_tree(snapshot(mnt), before, "ENOSPC while keeping before states")
            one_line_error(bs(mnt, "log"), "recover")
            if abort:
                run_ok(mnt, "recover", "--abort")
                same_tree(snapshot(mnt), before, "recover --abort after ENOSPC")
            else:
                os.unlink(os.path.join(mnt, "ballast"))
                rec = run_ok(mnt, "recover")
                check(b"committed" in rec.stdout, rec.stdout)
                now = snapshot(mnt)
                check(now[b"big"][2] == 100000 and b"ballast" not in now, f"the run committed: {now}")
        finally:
            subprocess.run(["umount", "-l", mnt])
            os.rmdir(mnt)


@journal_check
def contain_refuses_writes_outside():
    need_root()
    d = project()
    outside = tempfile.mkdtemp(prefix="bsandbox-outside-")
    target = os.path.join(outside, "written")
    p = bs(d, "exec", "--", "sh", "-c", f"echo x > {target}; echo y > inside")
    check(p.returncode == 0 and os.path.exists(target), "without --contain the write happens")
    check(b"not journaled" in p.stderr and target.encode() in p.stderr, f"and is reported: {p.stderr!r}")
    check(target.encode() in run_ok(d, "diff", "1").stdout, "diff lists it")
    os.unlink(target)
    p = bs(d, "exec", "-q", "--contain", "--", "sh", "-c", f"echo x > {target}; echo y > inside2")
    check(p.returncode == 0, p.stderr)
    check(not os.path.exists(target), "with --contain a write to /tmp stays private")
    check(os.path.exists(os.path.join(d, "inside2")), "writes inside the root still land")
    p = bs(d, "exec", "-q", "--contain", "--", "sh", "-c", "echo x > /etc/bsandbox-contain-test")
    check(p.returncode != 0 and not os.path.exists("/etc/bsandbox-contain-test"),
          "with --contain a write elsewhere fails")
    shutil.rmtree(outside)


@journal_check
def commands_outside_a_project_and_bad_input():
    need_root()
    plain = os.path.realpath(tempfile.mkdtemp(prefix="bsandbox-plain-"))
    for args in (["log"], ["undo"], ["recover"], ["gc"], ["diff", "1"]):
        one_line_error(bs(plain, *args), "not inside a bsandbox project")
    one_line_error(bs(plain, "exec", "--contain", "--", "true"), "bsandbox init")
    d = project()
    check(b"already" in run_ok(d, "init").stdout, "init twice is fine")
    one_line_error(bs(d, "diff", "7"), "00000007")
    one_line_error(bs(d, "diff", "x"), "not a journal entry")
    one_line_error(bs(d, "undo"), "nothing to undo")
    one_line_error(bs(d, "gc", "--keep", "x"), "--keep")
    check(b"nothing to recover" in run_ok(d, "recover").stdout, "recover with nothing to do")
    # A backend that cannot start leaves no interrupted run behind.
    u = project("journal-user", NOBODY)
    one_line_error(bs(u, "exec", "--backend=ebpf", "--", "true", user=NOBODY), "eBPF")
    run_ok(u, "log", user=NOBODY)
    run_ok(d, "exec", "-q", "--", "sh", "-c", "echo 1 > a")
    run_ok(d, "exec", "-q", "--", "sh", "-c", "echo 2 > a")
    # A damaged journal entry is reported, naming it.
    entry = os.path.join(d, ".bsandbox/journal/00000002")
    with open(entry, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xff]))
    one_line_error(bs(d, "log"), "00000002", "damaged")
    with open(entry, "r+b") as f:
        f.seek(40)
        f.write(b)
    # A damaged object: undo refuses, naming it, and changes nothing.
    objects = os.path.join(d, ".bsandbox/objects")
    for sub in os.listdir(objects):
        for name in os.listdir(os.path.join(objects, sub)):
            path = os.path.join(objects, sub, name)
            os.chmod(path, 0o644)
            with open(path, "r+b") as f:
                f.write(b"X")
    before = snapshot(d)
    p = bs(d, "undo")
    one_line_error(p, "corrupt")
    same_tree(snapshot(d), before, "an undo from a damaged store changes nothing")


@journal_check
def records_are_written_where_asked():
    """--json and --record files are bsandbox's, not the run's: written to
    the real tree (inside the root or out of it), never journaled."""
    need_root()
    d = project()
    out = tempfile.mkdtemp(prefix="bsandbox-records-")
    p = run_ok(d, "exec", "-q", "--json", "inside.json", "--record", f"{out}/outside.rec", "--",
               "sh", "-c", "echo y > made")
    check(os.path.exists(os.path.join(d, "inside.json")), "the JSON record inside the root")
    import json
    with open(os.path.join(d, "inside.json")) as f:
        rec = json.load(f)
    ops = {fe["path"]: fe["ops"] for pr in rec["processes"] for fe in pr["files"]}
    check("create" in ops.get(os.path.join(d, "made"), []),
          f"the record names the root's paths, not the overlay's layers: {sorted(ops)}")
    check(not any(".bsandbox" in path for path in ops), f"no state path in the record: {sorted(ops)}")
    check(os.path.exists(f"{out}/outside.rec"), "the binary record outside it")
    check(b"inside.json" not in run_ok(d, "diff", "1").stdout, "records are not part of the entry")
    run_ok(d, "show", f"{out}/outside.rec")
    shutil.rmtree(out)


@journal_check
def a_mount_inside_the_project_is_refused():
    """The overlay covers one file system: a mount below the root would
    vanish from the run's view, so the run is refused, naming it."""
    need_root()
    d = project()
    sub = os.path.join(d, "has space")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", sub], check=True)
    try:
        before = snapshot(d)
        one_line_error(bs(d, "exec", "--", "sh", "-c", "echo x > y"), sub, "--no-journal")
        same_tree(snapshot(d), before, "a refused run changes nothing")
        run_ok(d, "log")  # and leaves nothing to recover
        run_ok(d, "exec", "-q", "--no-journal", "--", "true")
    finally:
        subprocess.run(["umount", "-l", sub])


@journal_check
def concurrent_runs():
    """Journaled runs side by side in one project (make -j with a wrapper):
    each commits its own entry; where two wrote the same file the later
    commit wins and the earlier version is kept as its before state."""
    need_root()
    d = project()
    sh(d, "echo start > shared")
    procs = [subprocess.Popen([BSANDBOX, "exec", "-q", "--", "sh", "-c",
                               f"sleep 0.5; echo {i} > own{i}; echo {i} > shared"],
                              cwd=d, stderr=subprocess.PIPE) for i in range(6)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        check(p.returncode == 0, err)
    for i in range(6):
        with open(os.path.join(d, f"own{i}")) as f:
            check(f.read() == f"{i}\n", f"own{i}")
    log = run_ok(d, "log").stdout.decode().splitlines()
    check(len(log) == 6, f"six entries: {log}")
    with open(os.path.join(d, "shared")) as f:
        last = f.read()
    check(last in {f"{i}\n" for i in range(6)}, f"shared holds one run's write: {last!r}")
    # Undo them newest first: back to the start, every step refusing nothing.
    for _ in range(6):
        run_ok(d, "undo")
    with open(os.path.join(d, "shared")) as f:
        check(f.read() == "start\n", "undoing all of them restores the start")
    check(not any(n.startswith("own") for n in os.listdir(d)), "and removes what they made")


@journal_check
def gc_keeps_what_is_needed():
    need_root()
    d = project()
    for i in range(5):
        with open(os.path.join(d, "f"), "w") as f:
            f.write(f"version {i}\n" * 1000)
        run_ok(d, "exec", "-q", "--", "sh", "-c", f"echo {i} > f; echo {i} > g{i}")
    out = run_ok(d, "gc", "--keep", "2").stdout.decode()
    check("removed 3 journal entries" in out, out)
    log = run_ok(d, "log").stdout.decode().splitlines()
    check(len(log) == 2, f"two entries left: {log}")
    run_ok(d, "undo")  # the kept entries still have their before states
    with open(os.path.join(d, "f")) as f:
        check(f.read() == "version 4\n" * 1000, "undo after gc restored f")
    out = run_ok(d, "gc", "--max-size", "1").stdout.decode()
    check("kept 0 entries" in out, out)


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
