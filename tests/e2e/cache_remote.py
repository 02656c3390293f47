#!/usr/bin/python3
"""cache_remote.py: a cache shared between machines through a real server of
Bazel's HTTP cache protocol (Debian's nginx with WebDAV, nginx.py), on
loopback.

A "machine" is a local cache (BSANDBOX_CACHE) and a checkout of cache.py's C
project at a path of its own, built through bsandbox-wrap as make's SHELL
with BSANDBOX_CACHE_REMOTE set. Checks: two machines sharing results both
ways (also with make under bsandbox exec, and a CMake project at one
checkout path); a server stopped mid-build or never started, and a small
server of this file that is slow, trickles, or answers 500, garbage or a
truncated body (each: the build is right, one warning, bounded time, the
server left alone after); a blob corrupted (same size, shorter, longer) or
deleted on the server, and put back by the next machine that runs its
command; entries forged by another writer of the server, and a genuine one
replayed elsewhere, with signing on; read-only mode; Basic authentication
and bearer tokens; every kind of output through a URL with a path; and
every ActionResult the server holds parsed field by field (reapi.py) with
every blob it names present in /cas and uploaded before it.

Uploads may happen after a wrapper returns: before looking at the server,
a check waits until nginx has been idle for half a second (Nginx.settle).

  cache_remote.py NAME    run one check;  cache_remote.py --list    the names
Exit 0 pass, 1 fail, 77 skip.
"""
import hashlib
import hmac
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cache  # noqa: E402  (the C project, its Makefile and the output comparison)
from cache import WRAP, differing, new_project, outputs, scratch, tally, write  # noqa: E402
from harness import BSANDBOX, check, run_checks, skip  # noqa: E402
from nginx import Nginx, free_port  # noqa: E402
from reapi import WireError, encode_fields, parse_action_result, server_problems, wire_fields  # noqa: E402

CHECKS = {}
BOUND_S = 20  # how long the small project's build may take with a failing server


def remote_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def need_nginx():
    if not shutil.which("nginx"):
        skip("nginx is not installed")


# ---- machines -------------------------------------------------------------------

def base_env():
    """The environment without bsandbox's variables or pyenv's (a shim puts
    the directory it ran in there, which the cache keys)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("BSANDBOX_", "PYENV_"))}


def stats(cache_dir):
    """`bsandbox cache stats` as {name: number}: hits, misses, stored,
    remote hits, remote misses, remote uploads, remote errors..."""
    p = subprocess.run([BSANDBOX, "cache", "stats", f"--cache={cache_dir}"], capture_output=True, text=True,
                       env=base_env(), timeout=60)
    check(p.returncode == 0, f"cache stats: {p.stderr}")
    out = {"text": p.stdout}
    for line in p.stdout.splitlines():
        m = re.match(r"([a-z][a-z ,]*?)\s{2,}(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


class Machine:
    """A checkout (cache.py's C project unless dir is given) and a local
    cache of its own; remote holds the BSANDBOX_CACHE_REMOTE* variables."""

    def __init__(self, tag, url, dir=None, **remote):
        self.tag = tag
        self.dir = dir or new_project(tag)
        self.cache = scratch(tag + "-store")
        self.remote = {"BSANDBOX_CACHE_REMOTE": url, **remote} if url else dict(remote)

    def env(self, explain=True, **extra):
        env = base_env()
        env.update(BSANDBOX_CACHE=self.cache, BSANDBOX_CACHE_ROOT=self.dir, **self.remote, **extra)
        if explain:
            env.update(BSANDBOX_EXPLAIN="1", BSANDBOX_VERBOSE="1")
        return env

    def build(self, *args, explain=True, clean=True, expect_ok=True):
        """A (clean) make through bsandbox-wrap; the completed process, with
        .seconds. explain: stderr says hit or miss for each command."""
        if clean:
            cache.make(self.dir, "clean", env=base_env())
        start = time.monotonic()
        p = subprocess.run(["make", "-s", f"SHELL={WRAP}", *args], cwd=self.dir, env=self.env(explain),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        p.seconds = time.monotonic() - start
        if expect_ok:
            check(p.returncode == 0, f"{self.tag}: make through the cache: exit {p.returncode}: {p.stderr}")
        return p

    def stats(self):
        return stats(self.cache)

    def read(self, rel):
        with open(os.path.join(self.dir, rel), "rb") as f:
            return f.read()


def plain_build(tag, mutate=None):
    """Outputs of an uncached build of the project (mutated first)."""
    d = new_project(tag)
    if mutate:
        mutate(d)
    cache.make(d, env=base_env())
    return outputs(d)


def edit_util(d):
    write(os.path.join(d, "src/util.c"), '#include "util.h"\nint util(int x) { return x * SCALE + 1; }\n')


def compiles(stderr):
    """{source: "hit" | "miss"} for each compile the explained build did."""
    out = {}
    for line in stderr.splitlines():
        m = re.match(r"bsandbox: cache (hit|miss): .* -c (src/\S+\.c)", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def remote_lines(stderr):
    return [line for line in stderr.splitlines() if "remote cache" in line]


def same_outputs(m, want, what, stderr=""):
    got = outputs(m.dir)
    check(got == want, f"{m.tag}: {what}: the outputs differ from a plain build in {differing(got, want)}:\n{stderr}")


def all_hit(p, who):
    hits, misses = tally(p.stderr)
    check(hits > 0 and misses == 0, f"{who}: every command hits ({hits} hits, {misses} misses):\n{p.stderr}")


# ---- what the server holds ----------------------------------------------------------

def entry_results(n):
    """{ac path: ActionResult} of the entries (not the indexes) on n."""
    problems, results = server_problems(n.files())
    check(not problems, "the server holds valid ActionResults:\n  " + "\n  ".join(problems))
    return {p: ar for p, ar in results.items()
            if any(f["path"] == ".bsandbox/entry" for f in ar.get("output_files", []))}


def entry_producing(n, output, sealed_magic):
    """The ac path and ActionResult of the entry whose outputs include
    `output`, sealed (b"BSC1") or signed (b"BSM1")."""
    found = []
    for path, ar in entry_results(n).items():
        paths = {f["path"] for f in ar.get("output_files", [])}
        entry = next(f for f in ar["output_files"] if f["path"] == ".bsandbox/entry")
        if output in paths and entry.get("contents", b"").startswith(sealed_magic):
            found.append((path, ar))
    check(len(found) == 1, f"one {sealed_magic!r} entry on the server produces {output} ({len(found)})")
    return found[0]


# ---- a server that fails ----------------------------------------------------------

class FaultyServer:
    """A server on loopback that answers every request the same wrong way:
    slow (nothing for 30 s), trickling (a long body at 8 KiB/s, above
    the client's low-speed limit: only its whole-request timeout ends it),
    500, 200 with garbage, or 200 with a body shorter than its
    Content-Length (then the connection is closed); or "empty", a server
    that holds nothing and takes every upload (to see what is sent).
    requests: (method, path, Authorization header)."""

    def __init__(self, mode):
        self.mode = mode
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                outer.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if outer.mode == "slow":
                    time.sleep(30)
                    self.close_connection = True
                    return
                if outer.mode == "trickle":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 << 20))
                    self.end_headers()
                    try:
                        for _ in range(240):
                            self.wfile.write(b"\x0a" * 2048)
                            self.wfile.flush()
                            time.sleep(0.25)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                if self.command == "PUT":
                    self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.mode == "empty":
                    self.send_response(201 if self.command == "PUT" else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif outer.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif outer.mode == "garbage":
                    body = b"\xff\xfe garbage \x00\x07" * 50
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                elif outer.mode == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b"\x0a\x10" + b"x" * 98)
                    self.wfile.flush()
                    self.close_connection = True

            do_GET = do_PUT = do_HEAD = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def one_warning_build(tag, url, want, cause=None, uploads=False):
    """A fresh machine builds against a failing server at url: the build is
    right, stderr has exactly one line naming the remote cache (and cause),
    and it takes less than BOUND_S. Returns the machine and the process."""
    m = Machine(tag, url)
    p = m.build(explain=False)
    same_outputs(m, want, "a build with a failing server", p.stderr)
    lines = remote_lines(p.stderr)
    check(len(lines) == 1, f"{tag}: one line about the remote cache, {len(lines)} in:\n{p.stderr}")
    if cause:
        check(re.search(cause, lines[0], re.I), f"{tag}: the warning says what went wrong ({cause}): {lines[0]}")
    check(p.seconds < BOUND_S, f"{tag}: the build took {p.seconds:.1f} s (bound {BOUND_S} s):\n{p.stderr}")
    s = m.stats()
    check(s["remote errors"] >= 1, f"{tag}: the failure is counted:\n{s['text']}")
    check(uploads or s["remote uploads"] == 0, f"{tag}: nothing uploaded:\n{s['text']}")
    return m, p


def faulty(mode, cause):
    need_nginx()
    want = plain_build(f"{mode}-ref")
    server = FaultyServer(mode)
    try:
        one_warning_build(f"{mode}", server.url, want, cause)
        # The server is left alone after its first failure (30 s, longer
        # than the build): one request in all.
        check(len(server.requests) == 1, f"one request reached the {mode} server: {server.requests}")
    finally:
        server.close()


# ---- the checks -------------------------------------------------------------------

@remote_check
def two_machines():
    need_nginx()
    n = Nginx()
    a, b = Machine("A", n.url), Machine("B", n.url)
    # A plain build at B first, for reference; then B is clean again.
    cache.make(b.dir, env=base_env())
    want = outputs(b.dir)
    cache.make(b.dir, "clean", env=base_env())
    pa = a.build()
    same_outputs(a, want, "A's build", pa.stderr)
    n.settle()
    sa = a.stats()
    check(sa["remote uploads"] > 0 and n.files("cas") and n.files("ac"),
          f"A uploaded ({sorted(n.files())[:4]}...):\n{sa['text']}")
    check(not remote_lines(pa.stderr), f"A: no warning about the remote cache:\n{pa.stderr}")
    # B: an empty local cache, a checkout elsewhere; every command from the remote.
    check(not os.path.exists(os.path.join(b.cache, "entries")) or b.stats()["entries"] == 0, "B's cache is empty")
    pb = b.build()
    same_outputs(b, want, "B's build from the remote", pb.stderr)
    all_hit(pb, "B's clean build")
    sb = b.stats()
    check(sb["remote hits"] > 0 and sb["remote misses"] == 0 and sb["remote errors"] == 0,
          f"B's hits came from the remote:\n{sb['text']}")
    check(set(compiles(pb.stderr).values()) == {"hit"} and len(compiles(pb.stderr)) == 3,
          f"B ran no compile: {compiles(pb.stderr)}")
    # B edits util.c: its compile misses, the other two hit.
    edit_util(b.dir)
    want_edit = plain_build("edit-ref", edit_util)
    pb2 = b.build()
    same_outputs(b, want_edit, "B's build after an edit", pb2.stderr)
    got = compiles(pb2.stderr)
    check(got == {"src/main.c": "hit", "src/extra.c": "hit", "src/util.c": "miss"},
          f"after B's edit only util.c's compile misses: {got}\n{pb2.stderr}")
    n.settle()
    check(b.stats()["remote uploads"] > 0, "B uploaded what it ran")
    # A makes the same edit and gets B's results from the remote.
    before = a.stats()
    edit_util(a.dir)
    pa2 = a.build()
    same_outputs(a, want_edit, "A's build after the same edit", pa2.stderr)
    all_hit(pa2, "A's build after B's")
    after = a.stats()
    check(after["remote hits"] - before["remote hits"] >= 3,
          f"A's edited compile, archive and link came from the remote "
          f"({after['remote hits'] - before['remote hits']} remote hits):\n{pa2.stderr}")
    out = subprocess.run([os.path.join(a.dir, "build/prog")], capture_output=True, text=True).stdout
    check(out == "1.0 7 43 0\n", f"A's program prints the edited result: {out!r}")


@remote_check
def debug_info_names_the_checkout():
    """With -g the objects hold the checkout's path: another checkout must
    not get them from the server (its build equals a plain one there,
    its own path inside), while a machine at the same path hits."""
    need_nginx()
    n = Nginx()
    flags = "CFLAGS=-O1 -g"
    a, b = Machine("g-A", n.url), Machine("g-B", n.url)
    cache.make(b.dir, flags, env=base_env())
    want_b = outputs(b.dir)
    a.build(flags)
    n.settle()
    check(a.read("build/util.o").count(a.dir.encode()) > 0, "A's objects name A's checkout")
    p = b.build(flags)
    same_outputs(b, want_b, "B's -g build (a plain one at B)", p.stderr)
    check(set(compiles(p.stderr).values()) == {"miss"}, f"B's compiles miss: {compiles(p.stderr)}\n{p.stderr}")
    check(a.dir.encode() not in b.read("build/prog"), "B's program does not name A's checkout")
    # A machine at A's path (A moved away) hits.
    os.rename(a.dir, a.dir + "-moved")
    c = Machine("g-C", n.url, dir=a.dir)
    # (As cache.new_project makes it: mkdtemp's mode, the files in the same
    # order, since the order of their times is keyed.)
    os.mkdir(c.dir, 0o700)
    write(os.path.join(c.dir, "Makefile"), cache.MAKEFILE)
    for rel, text in cache.SOURCES.items():
        write(os.path.join(c.dir, rel), text)
    os.makedirs(os.path.join(c.dir, "override"))
    p = c.build(flags)
    check(set(compiles(p.stderr).values()) == {"hit"}, f"at A's path the compiles hit: {compiles(p.stderr)}\n{p.stderr}")
    with open(os.path.join(a.dir + "-moved", "build/prog"), "rb") as f:
        check(c.read("build/prog") == f.read(), "C's program is A's")


@remote_check
def under_exec():
    """The recommended form, make itself under bsandbox exec (whose tracer
    the wrappers use): machines share results the same way."""
    need_nginx()
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    n = Nginx()
    want = plain_build("exec-ref")
    for tag in ("exec-A", "exec-B"):
        m = Machine(tag, n.url)
        p = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--",
                            "make", "-s", f"SHELL={WRAP}"], cwd=m.dir, env=m.env(), capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=600)
        check(p.returncode == 0, f"{tag}: make under bsandbox exec: {p.stderr}")
        same_outputs(m, want, f"{tag} under bsandbox exec", p.stderr)
        check("backend:" not in p.stderr, f"{tag}: no wrapper loaded a tracer of its own: {p.stderr}")
        n.settle()
    all_hit(p, "B under bsandbox exec")
    s = m.stats()
    check(s["remote hits"] > 0 and s["remote misses"] == 0, f"B's hits came from the remote:\n{s['text']}")


@remote_check
def prefetch():
    """make under bsandbox exec publishes the build's manifest at its end;
    the same build on another machine (an empty local cache, a checkout at
    the same path) fetches every entry it lists as it starts, so its
    wrappers hit locally without asking the server; a manifest forged by
    another writer is ignored with signing on, and a build of another
    command finds none."""
    need_nginx()
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    n = Nginx()
    secrets = scratch("prefetch-secrets")
    key = secret_file(secrets, "key", "a-secret-of-more-than-16-bytes\n")
    want = plain_build("prefetch-ref")

    def at_same_path(tag, path):
        m = Machine(tag, n.url, dir=path, BSANDBOX_CACHE_REMOTE_KEY=key)
        os.mkdir(m.dir, 0o700)
        write(os.path.join(m.dir, "Makefile"), cache.MAKEFILE)
        for rel, text in cache.SOURCES.items():
            write(os.path.join(m.dir, rel), text)
        os.makedirs(os.path.join(m.dir, "override"))
        return m

    def build(m, **extra):
        # The prefetch has 3 s before make asks anything. The pause is the
        # same in every build: the environment is part of every weak key.
        return subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--", "sh", "-c",
                               f"sleep $PAUSE; make -s SHELL={WRAP}"], cwd=m.dir, env=m.env(PAUSE="3", **extra),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)

    path = os.path.join(scratch("prefetch-path"), "checkout")
    a = at_same_path("prefetch-A", path)
    p = build(a)
    check(p.returncode == 0, f"A: {p.stderr}")
    n.settle()
    check(n.files("ac"), "A uploaded")
    os.rename(path, path + "-A")
    b = at_same_path("prefetch-B", path)
    p = build(b)
    check(p.returncode == 0, f"B: {p.stderr}")
    same_outputs(b, want, "B's build, fetched ahead", p.stderr)
    s = b.stats()
    check(s["remote prefetch"] >= 3, f"B fetched A's entries ahead:\n{s['text']}")
    check(s["remote hits"] == 0 and s["remote misses"] == 0 and s["hits"] >= 3,
          f"B's wrappers hit locally, asking the server nothing:\n{s['text']}\n{p.stderr}")
    check(set(compiles(p.stderr).values()) == {"hit"}, f"B's compiles hit: {compiles(p.stderr)}")
    n.settle()
    # Another command (another build key): no manifest, nothing ahead.
    os.rename(path, path + "-B")
    c = at_same_path("prefetch-C", path)
    p = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--", "sh", "-c",
                        f"sleep $PAUSE; make -s SHELL={WRAP} all"], cwd=c.dir, env=c.env(PAUSE="3"),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    check(p.returncode == 0, f"C: {p.stderr}")
    s = c.stats()
    check(s["remote prefetch"] == 0 and s["remote hits"] >= 3, f"C: nothing ahead, hits from lookups:\n{s['text']}")
    # A forged manifest: the same build unsigned, by a writer without the
    # key, overwritten onto the signed one's name is ignored.
    n.settle()
    forged = 0
    for rel, body in n.files("ac").items():
        try:
            ar, _ = parse_action_result(body)
        except WireError:
            continue
        if any(f["path"] == ".bsandbox/manifest" for f in ar["output_files"]):
            manifest = [f for f in ar["output_files"] if f["path"] == ".bsandbox/manifest"][0]
            blob = manifest["contents"]
            check(blob.startswith(b"BSM1"), "the manifest is signed")
            unsigned = seal_bsc1(blob[36:])
            ar_body = encode_fields([(2, 2, encode_fields([(1, 2, b".bsandbox/manifest"),
                                                           (2, 2, digest_msg_of(unsigned)),
                                                           (5, 2, unsigned)]))])
            with open(os.path.join(n.data, rel), "wb") as f:
                f.write(ar_body)
            with open(os.path.join(n.data, "cas", hashlib.sha256(unsigned).hexdigest()), "wb") as f:
                f.write(unsigned)
            forged += 1
    check(forged >= 1, "a manifest was on the server to forge")
    os.rename(path, path + "-C")
    d = at_same_path("prefetch-D", path)
    p = build(d)
    check(p.returncode == 0, f"D: {p.stderr}")
    s = d.stats()
    check(s["remote prefetch"] == 0, f"D took nothing from a forged manifest:\n{s['text']}")
    check("a manifest not signed" in p.stderr, f"D was warned of the forgery: {p.stderr}")
    # D's build published a signed manifest again; E says no to fetching ahead.
    n.settle()
    os.rename(path, path + "-D")
    e = at_same_path("prefetch-E", path)
    p = build(e, BSANDBOX_CACHE_REMOTE_PREFETCH="no")
    check(p.returncode == 0, f"E: {p.stderr}")
    s = e.stats()
    check(s["remote prefetch"] == 0 and s["remote hits"] >= 3, f"E fetched nothing ahead:\n{s['text']}")


def digest_msg_of(blob):
    return encode_fields([(1, 2, hashlib.sha256(blob).hexdigest().encode()), (2, 0, len(blob))])


CMAKE_FILES = {
    "CMakeLists.txt": "cmake_minimum_required(VERSION 3.13)\nproject(demo C)\n"
                      "add_library(util STATIC util.c)\nadd_executable(demo main.c)\n"
                      "target_link_libraries(demo util)\n",
    "util.h": "int util(void);\n",
    "util.c": '#include "util.h"\nint util(void) { return 6; }\n',
    "main.c": '#include <stdio.h>\n#include "util.h"\nint main(void) { printf("%d\\n", util()); return 0; }\n',
}
CMAKE_OBJECTS = ("CMakeFiles/util.dir/util.c.o", "CMakeFiles/demo.dir/main.c.o")


@remote_check
def cmake():
    """CMake writes absolute source paths into each compile's argv, which
    the key holds: machines share a CMake build at the same checkout path
    (as CI runners do). A's checkout is moved away while B's is at that
    path, then back."""
    need_nginx()
    if not shutil.which("cmake"):
        skip("cmake is not installed")
    n = Nginx()
    ws = scratch("cmake-ws")
    here = os.path.join(ws, "checkout")

    def checkout(path, launcher):
        for rel, text in CMAKE_FILES.items():
            write(os.path.join(path, rel), text)
        args = ["cmake", "-S", path, "-B", os.path.join(path, "build"), "-G", "Unix Makefiles"]
        if launcher:
            args.append(f"-DCMAKE_C_COMPILER_LAUNCHER={WRAP}")
        p = subprocess.run(args, capture_output=True, text=True, env=base_env(), timeout=300)
        check(p.returncode == 0, f"cmake: {p.stderr}")

    def build(m):
        b = os.path.join(m.dir, "build")
        subprocess.run(["cmake", "--build", b, "--target", "clean"], capture_output=True, env=base_env())
        p = subprocess.run(["cmake", "--build", b], capture_output=True, text=True, env=m.env(),
                           stdin=subprocess.DEVNULL, timeout=300)
        check(p.returncode == 0, f"{m.tag}: cmake --build: {p.stderr}")
        return p

    def objects(path):
        out = {}
        for rel in CMAKE_OBJECTS:
            with open(os.path.join(path, "build", rel), "rb") as f:
                out[rel] = f.read()
        out["demo prints"] = subprocess.run([os.path.join(path, "build/demo")], capture_output=True).stdout
        return out

    plain = scratch("cmake-plain")
    checkout(plain, False)
    cache.make(os.path.join(plain, "build"), env=base_env())
    want = objects(plain)

    a = Machine("cmake-A", n.url, dir=here)
    checkout(here, True)
    pa = build(a)
    check(objects(here) == want, f"A's objects equal a plain build's:\n{pa.stderr}")
    check(tally(pa.stderr) == (0, 2), f"A's two compiles miss: {pa.stderr}")
    n.settle()
    check(a.stats()["remote uploads"] == 2, f"A uploaded both compiles:\n{a.stats()['text']}")
    os.rename(here, here + "-A")

    b = Machine("cmake-B", n.url, dir=here)
    checkout(here, True)
    pb = build(b)
    check(objects(here) == want, f"B's objects equal a plain build's:\n{pb.stderr}")
    check(tally(pb.stderr) == (2, 0), f"B's two compiles hit from the remote:\n{pb.stderr}")
    check(b.stats()["remote hits"] == 2, f"from the remote:\n{b.stats()['text']}")
    # B edits util.c: that compile misses, main.c's hits.
    write(os.path.join(here, "util.c"), '#include "util.h"\nint util(void) { return 7; }\n')
    write(os.path.join(plain, "util.c"), '#include "util.h"\nint util(void) { return 7; }\n')
    cache.make(os.path.join(plain, "build"), env=base_env())
    want_edit = objects(plain)
    pb2 = build(b)
    check(objects(here) == want_edit and want_edit["demo prints"] == b"7\n",
          f"B's build after the edit is right:\n{pb2.stderr}")
    check(compiles_cmake(pb2.stderr) == {"util.c": "miss", "main.c": "hit"},
          f"after B's edit only util.c misses: {pb2.stderr}")
    n.settle()
    os.rename(here, here + "-B")
    os.rename(here + "-A", here)
    # A makes the same edit: both compiles hit, util.c's from the remote.
    write(os.path.join(here, "util.c"), '#include "util.h"\nint util(void) { return 7; }\n')
    before = a.stats()["remote hits"]
    pa2 = build(a)
    check(objects(here) == want_edit, f"A's build after the edit is right:\n{pa2.stderr}")
    check(tally(pa2.stderr) == (2, 0), f"A's compiles hit after the edit:\n{pa2.stderr}")
    check(a.stats()["remote hits"] - before == 1, f"util.c's from B through the remote:\n{a.stats()['text']}")


def compiles_cmake(stderr):
    out = {}
    for line in stderr.splitlines():
        m = re.match(r"bsandbox: cache (hit|miss): .*-MT CMakeFiles/\w+\.dir/(\w+\.c)\.o", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


@remote_check
def server_down():
    need_nginx()
    want = plain_build("down-ref")
    # Stopped mid-build: once the first command's result has reached it
    # (its entry and its index: two ActionResults).
    n = Nginx()
    stopped = []

    def stop_after_first_upload():
        deadline = time.time() + 60
        while time.time() < deadline:
            if sum(method == "PUT" and uri.startswith("/ac/") for method, uri, _ in n.requests()) >= 2:
                n.stop()
                stopped.append(time.monotonic())
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=stop_after_first_upload, daemon=True)
    watcher.start()
    start = time.monotonic()
    m, p = one_warning_build("down-mid", n.url, want, uploads=True)
    watcher.join(1)
    check(stopped and stopped[0] < start + p.seconds,
          f"nginx was stopped during the build, after an upload: {p.stderr}\n{n.requests()}")
    # Never started: nothing listens on the port.
    one_warning_build("down-never", f"http://127.0.0.1:{free_port()}", want, cause="connect|refused")


@remote_check
def server_slow():
    faulty("slow", cause="time|slow")


@remote_check
def prefetch_never_holds_the_build():
    """A build's prefetcher in a request the server does not answer (30 s)
    ends with the build: whoever reads the build's stderr (a pipe here, as
    in CI logs and $(...)) sees it close at once, not after the request's
    10 s timeout."""
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    server = FaultyServer("slow")
    try:
        cache_dir = os.path.join(scratch("prefetch-holds"), "cache")
        env = dict(base_env(), BSANDBOX_CACHE=cache_dir, BSANDBOX_CACHE_REMOTE=server.url)
        start = time.monotonic()
        p = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--", "sh", "-c", "sleep 1"],
                           env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        took = time.monotonic() - start
        check(p.returncode == 0, f"the build: {p.stderr}")
        check(any(r[1].startswith("/ac/") for r in server.requests), f"the prefetcher asked: {server.requests}")
        check(took < 5, f"the build's stderr closed {took:.1f} s after it started (its command takes 1 s)")
    finally:
        server.close()


@remote_check
def server_trickle():
    faulty("trickle", cause="time")


@remote_check
def server_500():
    faulty("500", cause="500")


@remote_check
def server_garbage():
    faulty("garbage", cause="ActionResult|garbage|parse")


@remote_check
def server_truncated():
    faulty("truncated", cause="partial|truncat|transfer")


@remote_check
def corrupted_blob():
    need_nginx()
    n = Nginx()
    want = plain_build("corrupt-ref")
    a = Machine("corrupt-A", n.url)
    a.build()
    n.settle()
    digest = hashlib.sha256(a.read("build/util.o")).hexdigest()
    blob = os.path.join(n.data, "cas", digest)
    check(os.path.exists(blob), f"util.o's blob is on the server as cas/{digest}")
    size = os.path.getsize(blob)
    # Other bytes in its place, of the same size, fewer, more: that compile
    # misses with a warning naming the blob; the server is not taken for a
    # failing one, so every other command still hits from it.
    for tag, data in (("same-size", bytes(b ^ 0x55 for b in a.read("build/util.o"))),
                      ("shorter", b"not util.o\n" * (size // 40)),
                      ("longer", b"not util.o at all\n" * (size // 8))):
        with open(blob, "wb") as f:
            f.write(data)
        b = Machine(f"corrupt-{tag}", n.url)
        p = b.build()
        same_outputs(b, want, f"a build with a {tag} corrupted blob on the server", p.stderr)
        got = compiles(p.stderr)
        check(got == {"src/main.c": "hit", "src/extra.c": "hit", "src/util.c": "miss"},
              f"{tag}: only the compile whose blob is corrupted misses: {got}\n{p.stderr}")
        warned = [line for line in p.stderr.splitlines() if "warning" in line and digest in line]
        check(len(warned) == 1 and re.search(r"does not match|damaged|mismatch", warned[0]),
              f"{tag}: one warning names cas/{digest} as damaged:\n{p.stderr}")
        check(tally(p.stderr)[1] == 1, f"{tag}: the other commands hit from the server "
                                        f"(it is not left alone for a damaged blob):\n{p.stderr}")
        n.settle()
    # The blob deleted instead: a miss, no warning, no error; the next
    # machine to run the command puts it back.
    os.unlink(blob)
    c = Machine("corrupt-C", n.url)
    p = c.build()
    same_outputs(c, want, "C's build with a deleted blob", p.stderr)
    got = compiles(p.stderr)
    check(got == {"src/main.c": "hit", "src/extra.c": "hit", "src/util.c": "miss"},
          f"only the compile whose blob is gone misses: {got}\n{p.stderr}")
    check("warning" not in p.stderr and c.stats()["remote errors"] == 0,
          f"a missing blob is no error:\n{p.stderr}\n{c.stats()['text']}")
    n.settle()
    check(os.path.exists(blob), f"C uploaded util.o's blob again (cas/{digest})")
    d = Machine("corrupt-D", n.url)
    p = d.build()
    same_outputs(d, want, "D's build", p.stderr)
    all_hit(p, "D, after C put the blob back")


@remote_check
def corrupted_blob_is_replaced():
    """A machine that found a blob damaged and ran the command has the
    right bytes: its upload puts them back (a HEAD that finds the damaged
    blob there must not stop it), or every machine after it misses that
    command with a warning forever."""
    need_nginx()
    n = Nginx()
    want = plain_build("replace-ref")
    a = Machine("replace-A", n.url)
    a.build()
    n.settle()
    digest = hashlib.sha256(a.read("build/util.o")).hexdigest()
    blob = os.path.join(n.data, "cas", digest)
    with open(blob, "wb") as f:
        f.write(bytes(b ^ 0x55 for b in a.read("build/util.o")))
    b = Machine("replace-B", n.url)
    p = b.build()
    same_outputs(b, want, "B's build with a corrupted blob on the server", p.stderr)
    check(compiles(p.stderr).get("src/util.c") == "miss", f"B found the damage: {p.stderr}")
    n.settle()
    with open(blob, "rb") as f:
        now = hashlib.sha256(f.read()).hexdigest()
    requests = [f"{m} {s}" for m, u, s in n.requests() if u == f"/cas/{digest}"]
    check(now == digest, f"after B ran the command, cas/{digest} on the server is still damaged "
                         f"(its requests: {', '.join(requests)})")
    c = Machine("replace-C", n.url)
    p = c.build()
    same_outputs(c, want, "C's build", p.stderr)
    all_hit(p, "C, after B ran the damaged command")
    check("warning" not in p.stderr, f"C sees no damage: {p.stderr}")


def read_only_machine(tag, url):
    return Machine(tag, url, BSANDBOX_CACHE_REMOTE_UPLOAD="no")


@remote_check
def read_only():
    need_nginx()
    want = plain_build("ro-ref")
    # An empty server: a read-only build asks, and writes nothing.
    n = Nginx()
    r = read_only_machine("ro-R", n.url)
    p = r.build()
    same_outputs(r, want, "a read-only build", p.stderr)
    puts = [x for x in n.requests() if x[0] != "GET" and x[0] != "HEAD"]
    check(n.requests() and not puts, f"the read-only build asked the server and wrote nothing: {n.requests()}")
    check(n.files() == {}, f"nginx's data directory stays empty: {sorted(n.files())}")
    check(r.stats()["remote uploads"] == 0, r.stats()["text"])
    # Filled by A: a read-only B downloads everything, still writes nothing.
    a = Machine("ro-A", n.url)
    a.build()
    n.settle()
    files, seen = n.files(), len(n.requests())
    b = read_only_machine("ro-B", n.url)
    p = b.build()
    same_outputs(b, want, "a read-only build from a filled server", p.stderr)
    all_hit(p, "the read-only B")
    check(b.stats()["remote hits"] > 0, b.stats()["text"])
    n.settle()
    later = n.requests()[seen:]
    check(later and all(x[0] in ("GET", "HEAD") for x in later), f"B only read: {later}")
    check(n.files() == files, "the server's files did not change")
    # The option on bsandbox exec; the same run without it uploads.
    d = scratch("ro-exec")
    write(os.path.join(d, "in"), "input\n")
    for upload in ("no", "yes"):
        seen = len(n.requests())
        local = scratch(f"ro-exec-{upload}-store")
        e = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", f"--cache={local}", f"--cache-root={d}",
                            f"--cache-remote={n.url}", f"--cache-remote-upload={upload}", "--",
                            "sh", "-c", f"tr a-z A-Z < in > out-{upload}"],
                           cwd=d, capture_output=True, text=True, env=base_env(), timeout=120)
        check(e.returncode == 0, f"exec --cache-remote-upload={upload}: {e.stderr}")
        n.settle()
        methods = {x[0] for x in n.requests()[seen:]}
        if upload == "no":
            check("PUT" not in methods, f"--cache-remote-upload=no: no PUT ({n.requests()[seen:]})")
        else:
            check("PUT" in methods, f"without it, the same run uploads ({n.requests()[seen:]})")


@remote_check
def every_kind_of_output():
    """A command leaving a large file, a large stdout, stderr, an executable,
    a symlink, a name that is not UTF-8 and an empty file, shared through a
    URL with a path (with and without a trailing slash): the second
    machine's hit leaves the same tree and prints the same."""
    need_nginx()
    n = Nginx()
    script = ("head -c 20000000 /dev/urandom > big; head -c 3000000 /dev/urandom; echo; echo err >&2; "
              "printf '#!/bin/sh\\n' > tool; chmod 755 tool; ln -s tool link; "
              "mkdir -p sub; echo x > sub/$(printf 'caf\\351'); : > empty")
    results = []
    for tag, url in (("kinds-A", n.url + "/team/cache/"), ("kinds-B", n.url + "/team/cache")):
        d = scratch(tag)
        e = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", "--explain", f"--cache={scratch(tag + '-store')}",
                            f"--cache-root={d}", f"--cache-remote={url}", "--", "sh", "-c", script],
                           cwd=d, capture_output=True, env=base_env(), timeout=300)
        check(e.returncode == 0, f"{tag}: {e.stderr[-2000:]}")
        n.settle()
        results.append((cache.tree(d), e.stdout, e.stderr))
    check(b"cache hit" in results[1][2], f"B hits A's result: {results[1][2]}")
    check(results[0][0] == results[1][0], "B's tree equals A's (random content: only a hit gives the same)")
    check(results[0][1] == results[1][1] and len(results[0][1]) == 3000001, "B printed A's 3 MB of stdout")
    check(results[1][2].startswith(b"err\n"), f"B's stderr replayed: {results[1][2][:200]}")
    dirs = {os.path.dirname(k) for k in n.files()}
    check(dirs == {"team/cache/ac", "team/cache/cas"}, f"everything under the URL's path: {sorted(dirs)}")


def secret_file(dir, name, text, mode=0o600):
    p = os.path.join(dir, name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)
    return p


@remote_check
def credentials():
    need_nginx()
    password = "s3cret-Pass-42"
    n = Nginx(users={"builder": password})
    want = plain_build("cred-ref")
    secrets = scratch("cred-secrets")
    good = secret_file(secrets, "good", f"builder:{password}\n")
    bad = secret_file(secrets, "bad", "builder:not-the-password\n")
    # The right password: uploads land, and another machine hits them.
    a = Machine("cred-A", n.url, BSANDBOX_CACHE_REMOTE_CREDENTIALS=good)
    p = a.build()
    same_outputs(a, want, "A's build with credentials", p.stderr)
    check(not remote_lines(p.stderr), f"no warning with the right password:\n{p.stderr}")
    n.settle()
    check(n.files("ac") and a.stats()["remote uploads"] > 0, f"A's uploads landed:\n{a.stats()['text']}")
    b = Machine("cred-B", n.url, BSANDBOX_CACHE_REMOTE_CREDENTIALS=good)
    all_hit(b.build(), "B with the credentials")
    # A wrong password, or none: one warning naming the refusal; the build goes on.
    for tag, extra in (("cred-wrong", {"BSANDBOX_CACHE_REMOTE_CREDENTIALS": bad}), ("cred-none", {})):
        m = Machine(tag, n.url, **extra)
        p = m.build(explain=False)
        same_outputs(m, want, f"{tag}: a build the server refuses", p.stderr)
        lines = remote_lines(p.stderr)
        check(len(lines) == 1 and "401" in lines[0] and "credentials" in lines[0],
              f"{tag}: one warning naming the credentials and HTTP 401:\n{p.stderr}")
        check(password not in p.stderr and "not-the-password" not in p.stderr, f"{tag}: no secret shown: {p.stderr}")
        check(p.seconds < BOUND_S, f"{tag}: {p.seconds:.1f} s")
    # A bearer token, from a file or the environment, goes in every request.
    server = FaultyServer("empty")
    try:
        token = "tok-3f9a1c"
        bearer = secret_file(secrets, "bearer", f"Bearer {token}\n")
        for tag, extra in (("bearer-file", {"BSANDBOX_CACHE_REMOTE_CREDENTIALS": bearer}),
                           ("bearer-env", {"BSANDBOX_CACHE_REMOTE_TOKEN": token})):
            del server.requests[:]
            m = Machine(tag, server.url, **extra)
            p = m.build(explain=False)
            check(not remote_lines(p.stderr), f"{tag}: no warning: {p.stderr}")
            sent = {auth for _, _, auth in server.requests}
            check(server.requests and sent == {f"Bearer {token}"},
                  f"{tag}: every request carries the token ({len(server.requests)} requests, {sent})")
            check(any(method == "PUT" for method, _, _ in server.requests), f"{tag}: uploads were made")
    finally:
        server.close()
    # Credentials in the URL, or in a file every user can read: refused.
    d = scratch("cred-exec")
    local = scratch("cred-exec-store")
    world = secret_file(secrets, "world", f"builder:{password}\n", 0o644)
    host = n.url.split("://")[1]
    for what, args, env, words in (
            ("a URL with user:password@", [f"--cache-remote=http://builder:{password}@{host}"], {}, "credentials"),
            ("BSANDBOX_CACHE_REMOTE with user:password@", [],
             {"BSANDBOX_CACHE_REMOTE": f"http://builder:{password}@{host}"}, "credentials"),
            ("a world-readable credentials file", [f"--cache-remote={n.url}", f"--cache-remote-credentials={world}"],
             {}, "readable")):
        e = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", f"--cache={local}", *args, "--",
                            "sh", "-c", "echo ran > out"], cwd=d, capture_output=True, text=True,
                           env=dict(base_env(), **env), timeout=120)
        lines = e.stderr.splitlines()
        check(e.returncode != 0 and len(lines) == 1 and words in lines[0] and "error" in lines[0],
              f"{what}: refused with one error line, exit non-zero (exit {e.returncode}): {e.stderr!r}")
        check(password not in e.stderr, f"{what}: the password is not repeated: {e.stderr!r}")
        check(not os.path.exists(os.path.join(d, "out")), f"{what}: the command did not run")


@remote_check
def secrets_not_inputs():
    """make under a cached bsandbox exec whose wrappers read a remote key
    and credentials file: neither file is an input of the enclosing entry,
    so neither file's SHA-256 is in anything stored locally or uploaded
    (the control: the same build reading a plain file of the project does
    put that file's hash in both)."""
    need_nginx()
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    n = Nginx()
    secrets = scratch("secret-files")
    key = secret_file(secrets, "key", "a-secret-of-more-than-16-bytes-" + os.urandom(8).hex() + "\n")
    cred = secret_file(secrets, "cred", "Bearer tok-" + os.urandom(8).hex() + "\n")
    m = Machine("secret-A", n.url)
    control = os.path.join(m.dir, "control.txt")
    write(control, "a plain input of the build " + os.urandom(8).hex() + "\n")
    p = subprocess.run([BSANDBOX, "exec", "--no-journal", "--backend=ebpf", f"--cache={m.cache}",
                        f"--cache-remote={n.url}", f"--cache-remote-key={key}",
                        f"--cache-remote-credentials={cred}", "--",
                        "sh", "-c", f"cat control.txt >/dev/null && make -s SHELL={WRAP}"],
                       cwd=m.dir, env=dict(base_env(), BSANDBOX_CACHE_ROOT=m.dir), capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=600)
    check(p.returncode == 0, f"make under a cached exec: {p.stderr}")
    n.settle()

    def holders(content):
        digest = hashlib.sha256(content).digest()
        found = []
        for top in (m.cache, n.data):
            for dirpath, _, names in os.walk(top):
                for name in names:
                    path = os.path.join(dirpath, name)
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                    if digest in data or digest.hex().encode() in data:
                        found.append(os.path.relpath(path, top))
        return found

    def content(path):
        with open(path, "rb") as f:
            return f.read()

    held = holders(content(control))
    check(held or "uncacheable" not in p.stderr, f"the enclosing command was cached: {p.stderr}")
    check(any(not h.startswith(("ac", "cas")) for h in held) and any(h.startswith("ac") or h.startswith("cas")
                                                                        for h in held),
          f"control: the plain input's hash is in the local cache and on the server ({held}): {p.stderr}")
    for what, path in (("the remote key", key), ("the credentials", cred)):
        check(not holders(content(path)), f"{what}: its hash is stored nowhere ({holders(content(path))})")


@remote_check
def concurrent_builds():
    """Two builds sharing a local cache and a server, one long: the short
    one's entries go up through the long one's uploader (which holds the
    spool), and the short one returns without waiting for the long one to
    end. A third build with another server shares the local cache but not
    the spool: its entries go to its own server only."""
    need_nginx()
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    n, other = Nginx(), Nginx()
    m = Machine("conc", n.url)

    def exec_args(cmd):
        return [BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--", "sh", "-c", cmd]

    long_build = subprocess.Popen(exec_args(f"{WRAP} -c 'echo long > long.txt'; sleep 25"), cwd=m.dir,
                                  env=m.env(explain=False), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)  # its uploader holds the spool
        start = time.monotonic()
        p = subprocess.run(exec_args(f"{WRAP} -c 'echo short > short.txt'"), cwd=m.dir, env=m.env(explain=False),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        took = time.monotonic() - start
        check(p.returncode == 0, f"the short build: {p.stderr}")
        check(took < 10, f"the short build returned in {took:.1f} s, not waiting for the long one (25 s)")
        n.settle()
        uploaded = [k for k in n.files("cas") if b"short" == n.files("cas")[k].strip()]
        check(uploaded, "the short build's output is on the server before the long build ends")
        check(long_build.poll() is None, "the long build is still running")
        # Another server through the same local cache: its own spool.
        m2 = Machine("conc-other", other.url)
        m2.cache = m.cache
        p = subprocess.run(exec_args(f"{WRAP} -c 'echo third > third.txt'"), cwd=m2.dir,
                           env=m2.env(explain=False), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=120)
        check(p.returncode == 0, f"the build with another server: {p.stderr}")
        other.settle()
        n.settle()
        third = [k for k, v in other.files("cas").items() if v.strip() == b"third"]
        check(third, "the third build's output went to its server")
        check(not [k for k, v in n.files("cas").items() if v.strip() == b"third"],
              "... and not to the first build's server")
    finally:
        long_build.wait(timeout=120)
    check(long_build.returncode == 0, f"the long build: {long_build.stderr.read()}")


@remote_check
def signing():
    """With --cache-remote-key, an entry another writer of the server
    forged (an unsigned one resealed by hand, whose util.o is another
    program's) is ignored; without a key the same forgery is believed,
    which shows the forgery would work."""
    need_nginx()
    n = Nginx()
    want = plain_build("sign-ref")
    secrets = scratch("sign-secrets")
    key = secret_file(secrets, "key", "a-secret-of-more-than-16-bytes\n")
    # The attacker builds without a key (sealed entries), A with it (signed).
    mallory = Machine("sign-M", n.url)
    mallory.build()
    n.settle()
    a = Machine("sign-A", n.url, BSANDBOX_CACHE_REMOTE_KEY=key)
    a.build()
    n.settle()
    check(a.stats()["remote uploads"] > 0, "A uploaded")
    sealed_path, sealed_ar = entry_producing(n, "build/util.o", b"BSC1")
    signed_path, _ = entry_producing(n, "build/util.o", b"BSM1")
    # Another util.o: a program computing something else.
    evil_dir = scratch("sign-evil")
    write(os.path.join(evil_dir, "util.c"), "int util(int x) { return 1000 + x; }\n")
    subprocess.run(["gcc", "-O1", "-c", "util.c", "-o", "util.o"], cwd=evil_dir, check=True)
    with open(os.path.join(evil_dir, "util.o"), "rb") as f:
        evil = f.read()
    evil_hex = hashlib.sha256(evil).hexdigest()
    with open(os.path.join(n.data, "cas", evil_hex), "wb") as f:
        f.write(evil)
    forged_unsigned = forge(sealed_ar, "build/util.o", evil, seal=seal_bsc1)
    forged_wrong_key = forge(sealed_ar, "build/util.o", evil,
                             seal=lambda payload: b"BSM1" + hmac.new(b"another key of 16+ bytes", payload,
                                                                    hashlib.sha256).digest() + payload)
    for blob in forged_unsigned[1] + forged_wrong_key[1]:
        with open(os.path.join(n.data, "cas", hashlib.sha256(blob).hexdigest()), "wb") as f:
            f.write(blob)
    # Without a key the forgery at the unsigned path is believed: a
    # poisoned build (the control: the forgery is a working one).
    with open(os.path.join(n.data, sealed_path), "wb") as f:
        f.write(forged_unsigned[0])
    victim = Machine("sign-victim", n.url)
    victim.build()
    n.settle()
    prints = subprocess.run([os.path.join(victim.dir, "build/prog")], capture_output=True, text=True).stdout
    check(victim.read("build/util.o") == evil and prints != "1.0 6 43 0\n",
          f"the forged entry is believed without a key (the control): prog printed {prints!r}")
    # With the key: the forgery at the signed path, unsigned or signed
    # under another key, is ignored with a warning; the rest hits A's entries.
    # (Each variant meets the server as A left it: what B uploads is taken
    # away again.)
    before = n.files()
    for tag, forged in (("sign-B", forged_unsigned), ("sign-B2", forged_wrong_key)):
        n.restore(before)
        with open(os.path.join(n.data, signed_path), "wb") as f:
            f.write(forged[0])
        b = Machine(tag, n.url, BSANDBOX_CACHE_REMOTE_KEY=key)
        p = b.build()
        same_outputs(b, want, f"{tag}: a build with a forged entry on the server", p.stderr)
        got = compiles(p.stderr)
        check(got == {"src/main.c": "hit", "src/extra.c": "hit", "src/util.c": "miss"},
              f"{tag}: the forged compile misses, A's signed ones hit: {got}\n{p.stderr}")
        check(re.search(r"warning.*not signed", p.stderr), f"{tag}: a warning says not signed:\n{p.stderr}")
        s = b.stats()
        check(s["remote hits"] > 0, f"{tag}: hits from A's signed entries:\n{s['text']}")
        n.settle()
    # A replay: A's genuine signed entry for util.c as it was, put where the
    # entry for the edited util.c is. Signed, but for other inputs: a miss.
    n.restore(before)
    old = hashlib.sha256(a.read("build/util.o")).hexdigest()
    edit_util(a.dir)
    a.build()
    n.settle()
    new = hashlib.sha256(a.read("build/util.o")).hexdigest()
    by_util_o = {}
    for path, ar in entry_results(n).items():
        for f in ar["output_files"]:
            if f["path"] == "build/util.o":
                by_util_o.setdefault(f["digest"]["hash"], []).append(path)
    check(len(by_util_o.get(old, [])) >= 1 and len(by_util_o.get(new, [])) >= 1,
          f"signed entries of util.o before and after the edit: {by_util_o}")
    files = n.files()
    for path in by_util_o[new]:
        with open(os.path.join(n.data, path), "wb") as f:
            f.write(files[by_util_o[old][0]])
    b = Machine("sign-replay", n.url, BSANDBOX_CACHE_REMOTE_KEY=key)
    edit_util(b.dir)
    p = b.build()
    same_outputs(b, plain_build("sign-replay-ref", edit_util), "a build with a replayed signed entry", p.stderr)
    check(compiles(p.stderr) == {"src/main.c": "hit", "src/extra.c": "hit", "src/util.c": "miss"},
          f"the replayed entry is a miss: {compiles(p.stderr)}\n{p.stderr}")
    why = [line for line in p.stderr.splitlines() if "cache miss" in line and "-c src/util.c" in line]
    check(why and re.search(r"remote: an input changed: \S*/src/util.c", why[0]),
          f"the replayed entry was looked at and refused for its inputs: {why}")


def seal_bsc1(payload):
    return b"BSC1" + hashlib.sha256(payload).digest() + payload


def forge(ar, output, content, seal):
    """An ActionResult like ar (an entry's) whose entry says `output` has
    `content`, sealed with seal; and the blobs it names that are new."""
    entry_file = next(f for f in ar["output_files"] if f["path"] == ".bsandbox/entry")
    sealed = entry_file["contents"]
    check(sealed[:4] == b"BSC1" and hashlib.sha256(sealed[36:]).digest() == sealed[4:36],
          "an unsigned entry is BSC1 + SHA-256(payload) + payload")
    digest = hashlib.sha256(content).digest()
    fields = []
    for number, wt, value in wire_fields(sealed[36:]):  # CacheEntry: outputs = 6
        if number == 6:
            out = wire_fields(value)  # CacheOutput: path 1, content 4, size 5
            if dict((n, v) for n, _, v in out).get(1) == output.encode():
                out = [(n, w, digest if n == 4 else len(content) if n == 5 else v) for n, w, v in out]
                value = encode_fields(out)
        fields.append((number, wt, value))
    entry_blob = seal(encode_fields(fields))
    files = []
    for f in ar["output_files"]:
        g = dict(f)
        if f["path"] == ".bsandbox/entry":
            g["digest"] = {"hash": hashlib.sha256(entry_blob).hexdigest(), "size_bytes": len(entry_blob)}
            g["contents"] = entry_blob
        elif f["path"] == output:
            g["digest"] = {"hash": hashlib.sha256(content).hexdigest(), "size_bytes": len(content)}
        files.append(g)

    def digest_msg(d):
        return encode_fields([(1, 2, d["hash"].encode()), (2, 0, d["size_bytes"])])

    out = []
    for g in files:
        fields = [(1, 2, g["path"].encode()), (2, 2, digest_msg(g["digest"]))]
        if g.get("is_executable"):
            fields.append((4, 0, 1))
        if g.get("contents"):
            fields.append((5, 2, g["contents"]))
        out.append((2, 2, encode_fields(fields)))
    if ar.get("exit_code"):
        out.append((4, 0, ar["exit_code"]))
    for number, name in ((6, "stdout_digest"), (8, "stderr_digest")):
        if name in ar:
            out.append((number, 2, digest_msg(ar[name])))
    for s in ar.get("output_symlinks", []):
        out.append((12, 2, encode_fields([(1, 2, s["path"].encode()), (2, 2, s["target"].encode())])))
    return encode_fields(out), [entry_blob]


def upload_order(n):
    """Where an ActionResult was last written, each blob it names had been
    written (or found there: HEAD 200) before, per the access log."""
    problems, there, files = [], set(), n.files()
    log = n.requests()
    last = {uri: i for i, (method, uri, status) in enumerate(log) if method == "PUT" and uri.startswith("/ac/")}
    for i, (method, uri, status) in enumerate(log):
        if uri.startswith("/cas/") and status in ("200", "201", "204") and method in ("PUT", "HEAD"):
            there.add(uri[len("/cas/"):])
        if last.get(uri) == i and status in ("201", "204"):
            _, named = parse_action_result(files[uri[1:]])
            for where, h, _, _ in named:
                if h not in there:
                    problems.append(f"{uri}: written (request {i}) before cas/{h} ({where})")
    check(last, f"the log shows ActionResults written: {log[:5]}")
    return problems


@remote_check
def action_results_valid():
    need_nginx()
    n = Nginx()
    secrets = scratch("valid-secrets")
    key = secret_file(secrets, "key", "a-secret-of-more-than-16-bytes\n")
    Machine("valid-A", n.url).build()
    Machine("valid-K", n.url, BSANDBOX_CACHE_REMOTE_KEY=key).build()
    # A command leaving every kind of output: stdout, stderr, an executable,
    # a symlink, a name that is not UTF-8, an empty file.
    d = scratch("valid-exec")
    script = ("echo out; echo err >&2; printf '#!/bin/sh\\n' > tool; chmod 755 tool; ln -s tool link; "
              "mkdir -p sub; echo x > sub/$(printf 'caf\\351'); : > empty")
    e = subprocess.run([BSANDBOX, "exec", "-q", "--no-journal", f"--cache={scratch('valid-exec-store')}",
                        f"--cache-root={d}", f"--cache-remote={n.url}", "--", "sh", "-c", script],
                       cwd=d, capture_output=True, env=base_env(), timeout=120)
    check(e.returncode == 0 and e.stdout == b"out\n", f"the command ran: {e.stderr}")
    n.settle()
    problems, results = server_problems(n.files())
    check(not problems, "every ActionResult and blob on the server is valid:\n  " + "\n  ".join(problems))
    problems = upload_order(n)
    check(not problems, "blobs reach the server before what names them:\n  " + "\n  ".join(problems))
    check(len(results) >= 10, f"the builds left ActionResults to check ({len(results)})")
    # What the test's checks find on a server that is wrong.
    entry = next(iter(entry_results(n)))
    for what, change in (("a blob not named by its content", lambda f: f.update({"cas/" + "0" * 64: b"x"})),
                         ("a blob an entry names removed",
                          lambda f: f.pop("cas/" + results[entry]["output_files"][0]["digest"]["hash"])),
                         ("an ActionResult that does not parse", lambda f: f.update({entry: f[entry][:-1]}))):
        files = n.files()
        change(files)
        check(server_problems(files)[0], f"the test's server check finds {what}")
    # The checks above saw each kind of field.
    kinds = set()
    for ar in results.values():
        kinds |= {k for k in ("stdout_digest", "stderr_digest", "output_symlinks") if k in ar}
        for f in ar.get("output_files", []):
            kinds.add("executable" if f.get("is_executable") else "file")
            if f["path"].startswith(".bsandbox/file/"):
                kinds.add("renamed")
            if f["path"] == ".bsandbox/shapes":
                kinds.add("index")
    want = {"stdout_digest", "stderr_digest", "output_symlinks", "executable", "file", "renamed", "index"}
    check(want <= kinds, f"ActionResults of every kind were checked: missing {sorted(want - kinds)}")
    # And the parser refuses what is not an ActionResult.
    good = next(iter(n.files("ac").values()))
    for what, bad in (("an unknown field", good + encode_fields([(3, 0, 1)])),
                      ("a wrong wire type", encode_fields([(4, 2, b"x")])),
                      ("an absolute path", encode_fields([(2, 2, encode_fields([(1, 2, b"/etc/passwd")]))])),
                      ("a path that is not UTF-8", encode_fields([(2, 2, encode_fields([(1, 2, b"caf\xe9")]))])),
                      ("a short hash", encode_fields([(6, 2, encode_fields([(1, 2, b"abc")]))])),
                      ("a truncated body", good[:-1])):
        try:
            parse_action_result(bad)
        except WireError:
            continue
        raise AssertionError(f"the test's parser accepted {what}")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
