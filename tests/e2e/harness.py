"""harness.py: running the built bsandbox on programs and reading its records.

Paths in a record are bytes (JSON strings with surrogate escapes); the harness
turns them back into bytes with os.fsencode, so checks compare exact bytes.
A check failure raises AssertionError with a message that says what differs.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BSANDBOX = os.environ.get("BSANDBOX", "bsandbox")
BSANDBOXD = os.environ.get("BSANDBOXD", "bsandboxd")
PROGS = os.environ.get("BSANDBOX_PROGS", "")

MUTATING = {"write", "create", "delete"}


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def need_root():
    if os.geteuid() != 0:
        skip("the eBPF backend needs root")


def prog(name):
    return os.path.join(PROGS, name)


def fresh_dir(tag="e2e"):
    """A new empty directory, its real path (symlinks resolved), removed at exit."""
    d = os.path.realpath(tempfile.mkdtemp(prefix=f"bsandbox-{tag}-"))
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d


def write(path, data="data\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    return path


class Run:
    """One `bsandbox exec --json` run: its record, exit code and output."""

    def __init__(self, record, completed):
        self.record = record
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    @property
    def processes(self):
        return self.record["processes"]

    @property
    def top(self):
        return self.processes[0]

    def files(self, process=None):
        """{path bytes: set of ops} for one process, or the union of all."""
        out = {}
        for p in [process] if process else self.processes:
            for f in p["files"]:
                out.setdefault(os.fsencode(f["path"]), set()).update(f["ops"])
        return out

    def by_exe(self, exe):
        want = os.fsencode(os.path.realpath(exe))
        return [p for p in self.processes if p["exe"] is not None and os.fsencode(p["exe"]) == want]

    def process(self, pid_at):
        for p in self.processes:
            if p["id"] == pid_at:
                return p
        raise AssertionError(f"no process {pid_at} in the record")


# How every bsandbox() call of a test runs: options added to each (the
# backend) and the user to run as (None: as we are).
OPTIONS = []
RUN_AS = None  # (uid, gid)


def bsandbox(argv, cwd=None, extra=(), env=None, timeout=120):
    """Runs argv under `bsandbox exec --json` and returns the Run."""
    with tempfile.TemporaryDirectory(prefix="bsandbox-out-") as out_dir:
        out = os.path.join(out_dir, "record.json")
        cmd = [BSANDBOX, "exec", "--json", out, *OPTIONS, *extra, "--", *argv]
        as_user = {}
        if RUN_AS:
            os.chown(out_dir, *RUN_AS)
            as_user = dict(user=RUN_AS[0], group=RUN_AS[1], extra_groups=[])
        completed = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout,
                                   **as_user)
        if not os.path.exists(out):
            raise AssertionError(
                f"no record written by {cmd}: exit {completed.returncode}, "
                f"stderr {completed.stderr.decode(errors='replace')!r}")
        with open(out, "rb") as f:
            record = json.loads(f.read().decode("utf-8"))
    return Run(record, completed)


def process_files(record, rename=lambda name: name):
    """{(argv, exe): sorted list of frozen (path, ops) sets}, one per process
    of a record; rename maps each path and argument (names made at random)."""
    out = {}
    for p in record["processes"]:
        files = frozenset((os.fsencode(rename(f["path"])), tuple(sorted(f["ops"]))) for f in p["files"])
        argv = tuple(rename(a) for a in p["argv"])
        out.setdefault((argv, p["exe"]), []).append(files)
    return {k: sorted(v, key=sorted) for k, v in out.items()}


def differences(a, b, name_a, name_b):
    """What differs between two process_files() results, a line each."""
    problems = []
    for key in sorted(set(a) | set(b), key=repr):
        xs, ys = a.get(key, []), b.get(key, [])
        if len(xs) != len(ys):
            problems.append(f"{len(xs)} processes {key} under {name_a}, {len(ys)} under {name_b}")
            continue
        for x, y in zip(xs, ys):
            for path, ops in sorted(x ^ y):
                side = f"{name_a} only" if (path, ops) in x else f"{name_b} only"
                shown = path if len(path) < 160 else path[:70] + b"..." + path[-70:]
                problems.append(f"{key[0][:3]}: {shown!r} {list(ops)} ({side})")
    return problems


def under(files, root):
    """The entries of files below root (bytes), keyed by path relative to root."""
    root = os.fsencode(root)
    out = {}
    for path, ops in files.items():
        if path == root:
            out[b""] = ops
        elif path.startswith(root + b"/"):
            out[path[len(root) + 1:]] = ops
    return out


def expect_files(run, root, expected, process=None):
    """The files below root must be exactly expected ({relative: set of ops})."""
    want = {os.fsencode(k): set(v) for k, v in expected.items()}
    got = under(run.files(process), root)
    if got != want:
        lines = ["files below %s differ from what was expected:" % root]
        for k in sorted(set(got) | set(want)):
            if got.get(k) != want.get(k):
                lines.append(f"  {k!r}: recorded {sorted(got.get(k, []))}, expected {sorted(want.get(k, []))}")
        raise AssertionError("\n".join(lines))


def expect_no_mutation(run):
    for p in run.processes:
        for f in p["files"]:
            bad = MUTATING & set(f["ops"])
            if bad:
                raise AssertionError(f"read-only run recorded {sorted(bad)} on {f['path']!r} by {p['argv']}")


def expect_complete(run):
    r = run.record
    if not r["complete"] or r["lost_events"] != 0:
        raise AssertionError(
            f"record incomplete (lost {r['lost_events']}): {run.stderr.decode(errors='replace')}")


TEST_USER = "bsandbox-e2e"


def test_user(name=TEST_USER):
    """(uid, gid) of a system user made for the tests (root only)."""
    import pwd
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        user = pwd.getpwnam(name)
    return user.pw_uid, user.pw_gid


def give(tree, owner):
    """chown -R tree to owner (uid, gid)."""
    for root, dirs, files in os.walk(tree):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            os.lchown(n, *owner)


class Agent:
    """A bsandboxd of the test's own on a socket in a fresh directory,
    open to every user (mode 0666); stopped (SIGTERM) on exit."""

    def __init__(self, *options, mode="0666"):
        import time
        self.dir = fresh_dir("agent")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "agent.sock")
        self.log = os.path.join(self.dir, "agent.log")
        self.proc = subprocess.Popen([BSANDBOXD, "--foreground", "--socket", self.socket, "--mode", mode,
                                      "-v", *options], stderr=open(self.log, "wb"))
        # Ready once it says it listens (the socket appears already listening,
        # with its mode; an older agent made the file before setting it).
        deadline = time.time() + 20
        while "listening on" not in self.text():
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"bsandboxd did not start: {self.text()}")
            time.sleep(0.02)

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self, sig=15, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run_checks(doc, checks):
    """main() of a runner whose tests are the functions in checks (name ->
    function): `--list`, or NAME to run one."""
    def run_one(args):
        if len(args) != 1 or args[0] not in checks:
            raise LookupError(args)
        checks[args[0]]()
        return args[0]
    return dispatch(doc, run_one, checks)


def dispatch(doc, run_one, names):
    """The main() of a test runner: `--list` prints names; NAME runs one
    (run_one raises AssertionError to fail). Returns the exit code."""
    args = sys.argv[1:]
    if args == ["--list"]:
        print("\n".join(names))
        return 0
    try:
        label = run_one(args)
    except AssertionError as e:
        print(f"FAIL: {' '.join(args)}: {e}")
        return 1
    except LookupError:
        print(doc, file=sys.stderr)
        return 2
    print(f"ok: {label}")
    return 0
