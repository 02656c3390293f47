#!/usr/bin/env python3
"""cache_trust.py: a cache hit must be what running the command would have
produced. Differential tests of everyday workflows.

Each scenario is a workspace and a list of steps: changes to the tree (edit,
same-size edit, touch, chmod, rename, a new file, a deletion) and commands.
Before every command the workspace is saved; the command runs plainly, its
result (every file's kind, mode and content, symlink targets, exit code,
stdout, stderr) is kept; the workspace is put back exactly (times included)
and the command runs again through the cache. The two results must be equal.
The workspace then goes on from the cached run's state, so later steps see
what a user of the cache would see, and the cache fills as a user's would.

Scenarios: the four stale results the cache once gave (recursive make after
an edit; stat, read, then rewrite; a descriptor other than stdin; a server
outside the run; debug info from another checkout), make loops (edit,
same-size edit, touch, add, delete) with and without recursion, cp -u,
test -nt, find -newer, ar and ranlib, sed -i, descriptors 3 and up; and
random edit sequences on a small C project (`random_edits`, bounded here;
bench/cache_trust.sh runs it longer). A mismatch prints the seed and the
steps that reproduce it.

The mutation check runs the scenarios again with each of the cache's
safeguards switched off (BSANDBOX_CACHE_TEST_DROP, a knob for this test
alone) and requires each to be caught by at least one scenario.

  cache_trust.py NAME    run one check;  cache_trust.py --list    the names
Exit 0 pass, 1 fail, 77 skip.
"""
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, run_checks  # noqa: E402

WRAP = os.path.join(os.path.dirname(os.path.abspath(BSANDBOX)), "bsandbox-wrap")
CHECKS = {}
DROP = None  # the safeguard the mutation check switches off
ROOT_ONLY = os.geteuid() == 0


def trust_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def scratch(tag):
    d = os.path.realpath(tempfile.mkdtemp(prefix=f"bsandbox-trust-{tag}-"))
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d


# ---- workspace state ---------------------------------------------------------

def state(d):
    """Every path under d: (kind, mode, content or target)."""
    out = {}
    for dirpath, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, d)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode & 0o7777, hashlib.sha256(f.read()).hexdigest())
    return out


def save(d, to):
    """A copy of d with every time kept (directories' last)."""
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(d, to, symlinks=True, copy_function=shutil.copy2)
    for dirpath, dirs, _ in os.walk(d, topdown=False):
        for name in dirs:
            shutil.copystat(os.path.join(dirpath, name), os.path.join(to, os.path.relpath(dirpath, d), name),
                            follow_symlinks=False)
    shutil.copystat(d, to)


def restore(saved, d):
    """d becomes exactly saved again, in place (same path)."""
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    for name in os.listdir(saved):
        src, dst = os.path.join(saved, name), os.path.join(d, name)
        if os.path.isdir(src) and not os.path.islink(src):
            save(src, dst)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
    shutil.copystat(saved, d)


def diff(a, b):
    keys = sorted(set(a) | set(b))
    return [f"  {k}: plain {a.get(k)} / cached {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


# ---- the differential runner -------------------------------------------------

class Workspace:
    """A directory holding one or more checkouts, a cache beside it, and the
    history of steps (for a report that reproduces a mismatch)."""

    def __init__(self, tag, under_exec=False, drop=None):
        self.dir = scratch(tag)
        self.cache = scratch(tag + "-cache")
        self.saved = scratch(tag + "-saved")
        self.tag = tag
        self.under_exec = under_exec and ROOT_ONLY
        self.drop = drop or DROP
        self.steps = []
        self.hits = 0
        self.misses = 0

    def path(self, rel=""):
        return os.path.join(self.dir, rel) if rel else self.dir

    def write(self, rel, text, mode=None):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(p, mode)
        self.steps.append(f"write {rel} ({len(text)} bytes)")

    def change(self, what, fn):
        fn()
        self.steps.append(what)

    def env(self, root, extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BSANDBOX_")}
        env.update(BSANDBOX_CACHE=self.cache, BSANDBOX_CACHE_ROOT=root, BSANDBOX_EXPLAIN="1")
        if self.drop:
            env["BSANDBOX_CACHE_TEST_DROP"] = self.drop
        env.update(extra or {})
        return env

    def _run(self, argv, cwd, env, fds):
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=600, pass_fds=fds() if fds else ())
        return p.returncode, p.stdout, p.stderr

    def command(self, shell, cwd="", root="", env=None, fds=None, make=False, args=()):
        """Runs `sh -c shell` (or make with args) plainly and cached from the
        same state; the results must be equal."""
        cwd_abs, root_abs = self.path(cwd), self.path(root)
        what = f"make {' '.join(args)}" if make else shell
        self.steps.append(f"run in {cwd or '.'}: {what}")
        save(self.dir, self.saved)
        plain_env = {k: v for k, v in os.environ.items() if not k.startswith("BSANDBOX_")}
        plain_env.update(env or {})
        if make:
            plain = self._run(["make", "-s", *args], cwd_abs, plain_env, fds)
        else:
            plain = self._run(["sh", "-c", shell], cwd_abs, plain_env, fds)
        want = state(self.dir)
        restore(self.saved, self.dir)
        cenv = self.env(root_abs, env)
        if make:
            argv = ["make", "-s", f"SHELL={WRAP}", *args]
            if self.under_exec:
                argv = [BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--", *argv]
            cached = self._run(argv, cwd_abs, cenv, fds)
        else:
            cached = self._run([BSANDBOX, "exec", "-q", "--no-journal", f"--cache={self.cache}",
                                f"--cache-root={root_abs}", "--explain", "--", "sh", "-c", shell],
                               cwd_abs, cenv, fds)
        notes = [line for line in cached[2].split(b"\n") if line.startswith(b"bsandbox: cache ")]
        self.hits += sum(b"cache hit" in n for n in notes)
        self.misses += sum(b"cache miss" in n for n in notes)
        cached = (cached[0], cached[1], b"\n".join(
            line for line in cached[2].split(b"\n") if not line.startswith(b"bsandbox: ")))
        got = state(self.dir)
        problems = []
        if plain[0] != cached[0]:
            problems.append(f"  exit code: plain {plain[0]} / cached {cached[0]}")
        if plain[1] != cached[1]:
            problems.append(f"  stdout: plain {plain[1][:300]!r} / cached {cached[1][:300]!r}")
        if plain[2] != cached[2]:
            problems.append(f"  stderr: plain {plain[2][:300]!r} / cached {cached[2][:300]!r}")
        problems += diff(want, got)
        if problems:
            history = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.steps))
            raise AssertionError(f"{self.tag}: the cached run of `{what}` differs from the plain run:\n" +
                                 "\n".join(problems) + f"\nsteps so far:\n{history}\ncache said:\n" +
                                 b"\n".join(notes).decode(errors="replace"))
        return cached


def touch(ws, rel, wait=0.02):
    """A newer modification time (now, after a short wait, as a person
    editing would give it) without a content change."""
    def go():
        import time
        time.sleep(wait)
        os.utime(ws.path(rel))
    ws.change(f"touch {rel}", go)


# ---- scenarios ---------------------------------------------------------------

def recursive_make(ws, recursive=True):
    """The everyday loop on a make project, with `$(MAKE) -C sub` or not."""
    sub = "sub/" if recursive else ""
    if recursive:
        ws.write("Makefile", "all:\n\t$(MAKE) -C sub\nclean:\n\t$(MAKE) -C sub clean\n")
    ws.write(f"{sub}Makefile", "SRCS = $(sort $(wildcard *.c))\n"
                               "prog: $(SRCS:.c=.o)\n\tgcc -o prog $^\n"
                               "%.o: %.c\n\tgcc -c $< -o $@\n"
                               "clean:\n\trm -f prog *.o\n")
    ws.write(f"{sub}main.c", "int helper(void);\nint main(void){return helper();}\n")
    ws.write(f"{sub}helper.c", "int helper(void){return 1;}\n")
    build = lambda: ws.command("", make=True)  # noqa: E731
    build()
    build()  # no-op
    ws.write(f"{sub}helper.c", "int helper(void){return 2;}\n")  # same size, newer
    touch(ws, f"{sub}helper.c")
    build()
    check(open(ws.path(f"{sub}prog"), "rb").read() != b"", "prog exists")
    touch(ws, f"{sub}helper.c")  # only newer
    build()
    build()
    ws.write(f"{sub}helper.c", "int helper(void){return 3 + 4;}\n")  # another size
    build()
    ws.write(f"{sub}extra.c", "int extra(void){return 5;}\n")  # a new source
    build()
    ws.change(f"rm {sub}extra.c", lambda: os.unlink(ws.path(f"{sub}extra.c")))
    build()
    ws.command("", make=True, args=("clean",))
    build()  # a clean build: every recipe was stored before


@trust_check
def recursive_make_under_exec():
    recursive_make(Workspace("recmake-exec", under_exec=True))


@trust_check
def recursive_make_wrappers_alone():
    recursive_make(Workspace("recmake"))


@trust_check
def make_loops_without_recursion():
    recursive_make(Workspace("flatmake", under_exec=True), recursive=False)


@trust_check
def make_itself_cached():
    """make run directly under --cache: it decides on times it only stat'ed."""
    ws = Workspace("make-direct")
    ws.write("Makefile", "out: in\n\tcp in out\n")
    ws.write("in", "one\n")
    ws.command("make -s")
    ws.command("make -s")
    ws.write("in", "two\n")
    touch(ws, "in")
    ws.command("make -s")
    touch(ws, "out")
    ws.command("make -s")
    ws.write("out", "hand-edited\n")
    touch(ws, "out")
    ws.command("make -s")


@trust_check
def stat_read_rewrite():
    ws = Workspace("rewrite")
    cmd = "test -s g.txt && tr a-z A-Z < g.txt > g.tmp && mv g.tmp g.txt"
    ws.write("g.txt", "one\n")
    ws.command(cmd)
    ws.write("g.txt", "two\n")
    ws.command(cmd)
    ws.write("f.txt", "alpha\n")
    ws.command("sed -i s/alpha/beta/ f.txt")
    ws.write("f.txt", "alpha alpha\n")
    ws.command("sed -i s/alpha/beta/ f.txt")
    ws.command("echo line >> log.txt")
    ws.command("echo line >> log.txt")


@trust_check
def ar_and_ranlib():
    ws = Workspace("ar")
    ws.write("a.c", "int a(void){return 1;}\n")
    ws.write("b.c", "int b(void){return 2;}\n")
    ws.command("gcc -c a.c && gcc -c b.c")
    ws.command("ar rc lib.a a.o && ranlib lib.a")
    ws.command("ar rc lib.a b.o && ranlib lib.a")
    ws.write("a.c", "int a(void){return 10;}\n")
    ws.command("gcc -c a.c")
    ws.command("ranlib lib.a")
    ws.command("ar rc lib.a a.o")
    ws.command("ranlib lib.a")
    ws.command("ar t lib.a")


@trust_check
def times_decide():
    """cp -u, test -nt, find -newer: programs that compare times they only stat'ed."""
    ws = Workspace("times")
    ws.write("src", "v1\n")
    ws.command("cp src dst")
    for step in range(2):
        ws.write("src", f"v{step + 2}\n")
        touch(ws, "src")
        ws.command("cp -u src dst")
        ws.command("cp -u src dst")
        touch(ws, "dst")
        ws.command("if test src -nt dst; then echo newer; else echo older; fi")
        ws.command("find . -newer src -name 'd*' | sort")
        ws.write("dst", "XX\n")  # a hand edit, the size cp -u copied before
        touch(ws, "dst")
        ws.command("cp -u src dst")
        touch(ws, "src")
        ws.command("cp -u src dst")
        ws.command("if [ src -nt dst ]; then echo newer; fi; ls")
        # what stat prints is the time itself, not only its order
        ws.command("stat -c '%y %s' src > stamp")
        touch(ws, "src")
        ws.command("stat -c '%y %s' src > stamp")


@trust_check
def descriptors_besides_stdin():
    ws = Workspace("fds")
    ws.write("in.txt", "in1\n")

    def with_fd(rel, mode):
        def fds():
            fd = os.open(ws.path(rel), mode)
            os.set_inheritable(fd, True)
            if fd != 3:
                os.dup2(fd, 3)
                os.close(fd)
            return (3,)
        return fds
    ws.command("cat <&3 > out.txt", fds=with_fd("in.txt", os.O_RDONLY))
    ws.write("in.txt", "in2\n")
    ws.command("cat <&3 > out.txt", fds=with_fd("in.txt", os.O_RDONLY))
    ws.command("cat <&3 > out.txt", fds=with_fd("in.txt", os.O_RDONLY))
    ws.write("log.txt", "")
    ws.command("echo hello >&3", fds=with_fd("log.txt", os.O_WRONLY | os.O_APPEND))
    ws.command("echo hello >&3", fds=with_fd("log.txt", os.O_WRONLY | os.O_APPEND))


class Server:
    """An HTTP server on loopback, outside the runs, serving a directory."""

    def __init__(self, d):
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=d)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@trust_check
def network_input():
    ws = Workspace("net")
    served = scratch("served")
    server = Server(served)
    with open(os.path.join(served, "data"), "w") as f:
        f.write("v1\n")
    cmd = f"curl -s 127.0.0.1:{server.port}/data > out"
    if not shutil.which("curl"):
        cmd = (f"python3 -c 'import urllib.request,sys; "
               f"sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:{server.port}/data\").read().decode())' > out")
    ws.command(cmd)
    with open(os.path.join(served, "data"), "w") as f:
        f.write("v2\n")
    ws.command(cmd)
    # A server the run starts itself is part of the run: cacheable.
    own = ("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 47811)); s.listen(); "
           "c=socket.create_connection((\"127.0.0.1\", 47811)); a,_=s.accept(); c.send(b\"hi\"); "
           "print(a.recv(2).decode())' > own")
    ws.command(own)
    ws.command(own)  # python lists its directory: `own` is new there, a miss
    hits = ws.hits
    ws.command(own)
    check(ws.hits == hits + 1, "a run that talks only to its own server is cached")


@trust_check
def two_checkouts_with_debug_info():
    ws = Workspace("checkouts")
    for c in ("a", "b"):
        ws.write(f"{c}/x.c", "int f(void){return 1;}\n")
    ws.command("gcc -g -c x.c", cwd="a", root="a")
    ws.command("gcc -g -c x.c", cwd="b", root="b")
    ws.command("gcc -c -O1 x.c -o y.o", cwd="a", root="a")
    hits = ws.hits
    ws.command("gcc -c -O1 x.c -o y.o", cwd="b", root="b")
    check(ws.hits == hits + 1, "without -g the second checkout hits the first's entry")
    ws.write("b/x.c", "int f(void){return 2;}\n")
    ws.command("gcc -g -c x.c", cwd="b", root="b")
    ws.write("b/x.c", "int f(void){return 1;}\n")
    ws.change("rm b/x.o", lambda: os.unlink(ws.path("b/x.o")))
    ws.command("gcc -g -c x.c", cwd="b", root="b")


# ---- random edit sequences ----------------------------------------------------

PROJECT = {
    "Makefile": (
        "CFLAGS ?= -O1\nINCLUDES = -Ioverride -Iinclude\n"
        "SRCS = $(sort $(wildcard src/*.c))\nOBJS = $(SRCS:src/%.c=build/%.o)\n"
        "HEADERS = $(wildcard include/*.h override/*.h)\n"
        "all: build/prog\n"
        "build/%.o: src/%.c $(HEADERS)\n\tmkdir -p build\n\t$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@\n"
        "build/lib.a: $(filter-out build/main.o,$(OBJS))\n\trm -f $@\n\tar rcs $@ $^\n"
        "build/prog: build/main.o build/lib.a\n\t$(CC) -o $@ build/main.o build/lib.a\n"
        "check: build/prog\n\t./build/prog > build/out.txt\n\tcp -u build/out.txt result.txt\n"
        "clean:\n\trm -rf build\n"),
    "include/util.h": "#define SCALE 3\nint util(int);\n",
    "src/main.c": '#include <stdio.h>\n#include "util.h"\nint main(void){printf("%d\\n", util(2));return 0;}\n',
    "src/util.c": '#include "util.h"\nint util(int x){return x*SCALE;}\n',
    "src/more.c": "int more(void){return 7;}\n",
}


def random_sequence(seed, steps, under_exec, drop=None):
    rng = random.Random(seed)
    ws = Workspace(f"random-{seed}", under_exec=under_exec, drop=drop)
    for rel, text in PROJECT.items():
        ws.write(rel, text)
    ws.steps.append(f"(seed {seed}, under exec: {ws.under_exec})")

    def sources():
        return sorted(os.path.relpath(os.path.join(dp, f), ws.dir)
                      for sub in ("src", "include", "override") if os.path.isdir(ws.path(sub))
                      for dp, _, fs in os.walk(ws.path(sub)) for f in fs)

    def edit_content():
        rel = rng.choice(sources())
        with open(ws.path(rel)) as f:
            text = f.read()
        ws.write(rel, text + f"/* {rng.randrange(10**6)} */\n")

    def edit_same_size():
        rel = rng.choice(sources())
        with open(ws.path(rel)) as f:
            text = f.read()
        digits = [i for i, ch in enumerate(text) if ch.isdigit()]
        if not digits:
            return edit_content()
        i = rng.choice(digits)
        ws.write(rel, text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
        touch(ws, rel)

    def mtime_only():
        touch(ws, rng.choice(sources()), rng.choice([0.0, 0.02, 0.3]))

    def mode():
        rel = rng.choice(sources())
        ws.change(f"chmod {rel}", lambda: os.chmod(ws.path(rel), rng.choice([0o600, 0o644, 0o664])))

    def rename():
        cs = [s for s in sources() if s.startswith("src/") and s != "src/main.c" and s != "src/util.c"]
        if not cs:
            return new_file()
        rel = rng.choice(cs)
        new = f"src/r{rng.randrange(1000)}.c"
        ws.change(f"mv {rel} {new}", lambda: os.rename(ws.path(rel), ws.path(new)))

    def new_file():
        choice = rng.randrange(3)
        if choice == 0:
            ws.write("override/util.h", f"#define SCALE {rng.randrange(2, 9)}\nint util(int);\n")
        elif choice == 1:
            ws.write(f"src/n{rng.randrange(100)}.c", f"int n{rng.randrange(100)}(void){{return 1;}}\n")
        else:
            ws.write("include/extra.h", "#define EXTRA 1\n")

    def delete():
        cs = [s for s in sources() if s not in ("src/main.c", "src/util.c", "include/util.h")]
        if not cs:
            return new_file()
        rel = rng.choice(cs)
        ws.change(f"rm {rel}", lambda: os.unlink(ws.path(rel)))

    edits = [edit_content, edit_same_size, mtime_only, mode, rename, new_file, delete]
    for _ in range(steps):
        r = rng.random()
        if r < 0.6:
            rng.choice(edits)()
        elif r < 0.9:
            ws.command("", make=True, args=(rng.choice(["all", "check"]),))
        else:
            ws.command("", make=True, args=("clean",))
    ws.command("", make=True, args=("check",))
    return ws


@trust_check
def random_edits():
    """A bounded number of random sequences (BSANDBOX_TRUST_SEQUENCES,
    BSANDBOX_TRUST_STEPS, BSANDBOX_TRUST_SEED to reproduce one)."""
    seed0 = int(os.environ.get("BSANDBOX_TRUST_SEED", random.randrange(10**6)))
    count = int(os.environ.get("BSANDBOX_TRUST_SEQUENCES", "3"))
    steps = int(os.environ.get("BSANDBOX_TRUST_STEPS", "14"))
    for i in range(count):
        seed = seed0 + i
        try:
            ws = random_sequence(seed, steps, under_exec=i % 2 == 0)
        except AssertionError as e:
            raise AssertionError(f"{e}\nreproduce: BSANDBOX_TRUST_SEED={seed} BSANDBOX_TRUST_SEQUENCES=1 "
                                 f"BSANDBOX_TRUST_STEPS={steps} {sys.argv[0]} random_edits") from None
        print(f"seed {seed}: {len(ws.steps)} steps, {ws.hits} hits, {ws.misses} misses")


# ---- mutation check ----------------------------------------------------------

# Each safeguard, and scenarios that must catch its absence.
MUTATIONS = {
    "mtime": [make_itself_cached, recursive_make_wrappers_alone, times_decide],
    "order": [times_decide, make_itself_cached],
    "before": [times_decide, make_itself_cached, stat_read_rewrite],
    "prior": [stat_read_rewrite, ar_and_ranlib],
    "fds": [descriptors_besides_stdin],
    "sockets": [network_input],
    "root": [two_checkouts_with_debug_info],
}


@trust_check
def mutation_check():
    """Switching off one safeguard at a time, some scenario must fail."""
    global DROP
    caught = {}
    for key, scenarios in MUTATIONS.items():
        caught[key] = []
        for fn in scenarios:
            DROP = key
            try:
                fn()
            except AssertionError as e:
                caught[key].append(f"{fn.__name__}: {str(e).splitlines()[0]}")
            finally:
                DROP = None
        check(caught[key], f"with '{key}' switched off no scenario failed: the tests cannot see it")
    for key, how in caught.items():
        print(f"without {key}: {how[0]}")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
