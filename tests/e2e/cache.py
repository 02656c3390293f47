#!/usr/bin/env python3
"""cache.py: the command cache on real builds.

A small C project (generated header, include path with an override
directory, a static library, a link) is built through bsandbox-wrap as make's
SHELL, as a compiler launcher (CC), and through CMake's
CMAKE_C_COMPILER_LAUNCHER; after each mutation (edit a .c, edit a header, add
a header earlier on the include path, delete files, set an environment
variable the compiler reads, touch without change) the cached build's
outputs must equal a clean uncached build's byte for byte, and the cache
must really hit where nothing it observed changed. Then: damaged objects and
entries, 8 identical commands at once, what is not cached and why, output
replay, and the cache subcommands.

  cache.py NAME    run one check;  cache.py --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, run_checks, skip  # noqa: E402

WRAP = os.path.join(os.path.dirname(os.path.abspath(BSANDBOX)), "bsandbox-wrap")
CHECKS = {}


def cache_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def scratch(tag):
    d = os.path.realpath(tempfile.mkdtemp(prefix=f"bsandbox-cache-{tag}-"))
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


MAKEFILE = r"""
CC ?= gcc
CFLAGS ?= -O1
INCLUDES = -Ioverride -Iinclude -Ibuild
SRCS = $(sort $(wildcard src/*.c))
OBJS = $(SRCS:src/%.c=build/%.o)
HEADERS = $(wildcard include/*.h override/*.h)

all: build/prog

build/version.h: VERSION
	mkdir -p build
	printf '#define VERSION "%s"\n' "$$(cat VERSION)" > $@

build/%.o: src/%.c build/version.h $(HEADERS)
	mkdir -p build
	$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

build/libutil.a: $(filter-out build/main.o,$(OBJS))
	rm -f $@
	ar rcs $@ $^

build/prog: build/main.o build/libutil.a
	$(CC) -o $@ build/main.o build/libutil.a

clean:
	rm -rf build
"""

SOURCES = {
    "VERSION": "1.0\n",
    "include/util.h": "#define SCALE 3\nint util(int);\nint extra(void);\n",
    "src/main.c": '#include <stdio.h>\n#include "util.h"\n#include "version.h"\n'
                  '#if __has_include("tuning.h")\n#include "tuning.h"\n#else\n#define TUNING 0\n#endif\n'
                  'int main(void) { printf("%s %d %d %d\\n", VERSION, util(2), extra(), TUNING); return 0; }\n',
    "src/util.c": '#include "util.h"\nint util(int x) { return x * SCALE; }\n',
    "src/extra.c": '#include "util.h"\nint extra(void) { return 40 + SCALE; }\n',
}


def new_project(tag):
    d = scratch(tag)
    write(os.path.join(d, "Makefile"), MAKEFILE)
    for rel, text in SOURCES.items():
        write(os.path.join(d, rel), text)
    os.makedirs(os.path.join(d, "override"))
    return d


def outputs(d):
    """{path under build/: (mode, sha256)}."""
    out = {}
    build = os.path.join(d, "build")
    for dirpath, _, files in os.walk(build):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, build)] = (os.stat(p).st_mode & 0o7777, hashlib.sha256(f.read()).hexdigest())
    return out


def differing(got, want):
    return sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))


def cache_env(cache, root, **extra):
    env = dict(os.environ, BSANDBOX_CACHE=cache, BSANDBOX_CACHE_ROOT=root, BSANDBOX_EXPLAIN="1",
               BSANDBOX_VERBOSE="1")
    env.pop("BSANDBOX_WRAPPED", None)
    env.update(extra)
    return env


def make(d, *args, env=None, under=()):
    p = subprocess.run([*under, "make", "-s", *args], cwd=d, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=600)
    check(p.returncode == 0, f"make {' '.join(args)} in {d}: exit {p.returncode}: {p.stderr}")
    return p


def tally(stderr):
    return stderr.count("bsandbox: cache hit"), stderr.count("bsandbox: cache miss")


def mutations():
    """(name, function(tree), extra environment) in order."""
    def edit_c(d):
        write(os.path.join(d, "src/util.c"), '#include "util.h"\nint util(int x) { return x * SCALE + 1; }\n')

    def edit_header(d):
        write(os.path.join(d, "include/util.h"), "#define SCALE 5\nint util(int);\nint extra(void);\n")

    def shadow_header(d):  # found before include/util.h: a dependency that was missing
        write(os.path.join(d, "override/util.h"), "#define SCALE 7\nint util(int);\nint extra(void);\n")

    def delete_shadow(d):
        os.unlink(os.path.join(d, "override/util.h"))

    def delete_source(d):
        os.unlink(os.path.join(d, "src/extra.c"))
        write(os.path.join(d, "src/util.c"), '#include "util.h"\nint util(int x) { return x * SCALE + 1; }\n'
                                             'int extra(void) { return 1; }\n')

    def tuning_dir(d):
        write(os.path.join(d, "tune/tuning.h"), "#define TUNING 9\n")

    def touch(d):
        for rel in ("src/util.c", "include/util.h", "VERSION"):
            os.utime(os.path.join(d, rel))

    return [
        ("initial", lambda d: None, {}),
        ("edit a .c", edit_c, {}),
        ("edit a header", edit_header, {}),
        ("add a header earlier on the include path", shadow_header, {}),
        ("delete that header", delete_shadow, {}),
        ("delete a source file", delete_source, {}),
        ("an environment variable the compiler reads (CPATH)", tuning_dir, {"CPATH": "tune"}),
        ("touch without change", touch, {"CPATH": "tune"}),
        ("touch again", touch, {"CPATH": "tune"}),
    ]


def mutation_sequence(tag, build_args, under=()):
    """Applies every mutation to a cached tree and two plain ones. After
    each, a clean build through the cache must equal a plain clean build, and
    an incremental build through the cache a plain incremental one (make
    itself does not rebuild after a prerequisite is deleted: the cache must
    not change what make does). Returns the hit/miss counts."""
    cached, plain = new_project(tag), new_project(tag + "-ref")
    cached_inc, plain_inc = new_project(tag + "-inc"), new_project(tag + "-ref-inc")
    cache = scratch(tag + "-store")
    counts = []
    for name, mutate, extra in mutations():
        for d in (cached, plain, cached_inc, plain_inc):
            mutate(d)
        ref_env = dict(os.environ, **extra)
        make(plain_inc, env=ref_env)
        want_incremental = outputs(plain_inc)
        make(plain, "clean", env=ref_env)
        make(plain, env=ref_env)
        want = outputs(plain)
        incremental = make(cached_inc, *build_args, env=cache_env(cache, cached_inc, **extra), under=under)
        got = outputs(cached_inc)
        check(got == want_incremental,
              f"{tag}: after '{name}', the incremental cached build differs from a plain incremental "
              f"build in {differing(got, want_incremental)}:\n{incremental.stderr}")
        make(cached, "clean")
        clean = make(cached, *build_args, env=cache_env(cache, cached, **extra), under=under)
        got = outputs(cached)
        check(got == want, f"{tag}: after '{name}', the clean cached build differs "
                           f"from a clean build in {differing(got, want)}:\n{clean.stderr}")
        run = subprocess.run([os.path.join(cached, "build/prog")], capture_output=True, text=True)
        ref = subprocess.run([os.path.join(plain, "build/prog")], capture_output=True, text=True)
        check(run.stdout == ref.stdout, f"{tag}: after '{name}': prog printed {run.stdout!r}, want {ref.stdout!r}")
        counts.append((name, tally(incremental.stderr), tally(clean.stderr), incremental.stderr + clean.stderr))
    return counts


@cache_check
def make_shell_wrapper_mutations():
    counts = mutation_sequence("shell", [f"SHELL={WRAP}"])
    # The incremental tree sees each change first; the clean tree, built
    # next in another directory, then hits what it stored (paths inside the
    # root are keyed relative to it).
    by_name = {name: (inc, clean, err) for name, inc, clean, err in counts}
    hits, misses = by_name["initial"][1]
    check(hits > 0 and misses == 0, f"a second tree's clean build hits every recipe "
                                    f"({hits} hits, {misses} misses): {by_name['initial'][2]}")
    # (Where make's own incremental build skips work, after a deleted header
    # or a changed environment, the clean build has misses of its own. A
    # compile the incremental build ran found its old object there, which
    # the assembler looks at before replacing it: what it stored is for a
    # tree with an object in place, and the clean tree misses it.)
    for name in ("initial", "touch without change", "touch again"):
        hits, misses = by_name[name][1]
        check(misses == 0, f"after '{name}' the clean build hits what the incremental one stored: "
                           f"{by_name[name][2]}")
    # After a touch make reruns every compile. The first time, each finds
    # its old object in place, which the assembler looks at before replacing
    # it, and only clean builds were stored for this environment: misses,
    # honestly. Stored with the objects in place, the next touch hits all.
    hits, misses = by_name["touch again"][0]
    compile_misses = [line for line in by_name["touch again"][2].splitlines()
                      if "cache miss" in line and " -c src/" in line]
    check(hits >= 3 and not compile_misses, f"after a second touch, make reruns the compiles and every one hits "
                                    f"({hits} hits, {misses} misses): {by_name['touch again'][2]}")
    hits, misses = by_name["edit a .c"][0]
    check(misses >= 1, f"after editing util.c its compile misses ({hits} hits, {misses} misses)")
    hits, misses = by_name["add a header earlier on the include path"][0]
    check(misses >= 3, f"a new header earlier on the include path makes the compiles miss ({misses})")


@cache_check
def make_under_bsandbox_exec_mutations():
    """The recommended form: make itself traced by bsandbox exec, whose
    tracer the wrappers use (no tracer of their own per recipe)."""
    if os.geteuid() != 0:
        skip("the tracer service needs the eBPF backend (root)")
    counts = mutation_sequence("service", [f"SHELL={WRAP}"],
                               under=(BSANDBOX, "exec", "-q", "--no-journal", "--backend=ebpf", "--"))
    for name, _, _, err in counts:
        check("backend:" not in err, f"after '{name}': a wrapper loaded a tracer of its own: {err}")
    (hits, _), err = [(inc, e) for n, inc, _, e in counts if n == "touch again"][0]
    compile_misses = [line for line in err.splitlines() if "cache miss" in line and " -c src/" in line]
    check(hits >= 3 and not compile_misses, f"after touch every compile hits: {err}")


@cache_check
def make_under_a_ptrace_exec():
    """A process has one ptrace tracer: under `bsandbox exec --backend=ptrace`
    the wrappers run their recipes directly (uncached) instead of failing."""
    d, plain, cache = new_project("ptrace"), new_project("ptrace-ref"), scratch("ptrace-store")
    make(plain)
    p = make(d, f"SHELL={WRAP}", env=cache_env(cache, d),
             under=(BSANDBOX, "exec", "-q", "--no-journal", "--backend=ptrace", "--"))
    check(outputs(d) == outputs(plain), f"the build is right: {p.stderr}")
    check("cache hit" not in p.stderr and "cache miss" not in p.stderr, f"no recipe went through the cache: {p.stderr}")


@cache_check
def compiler_launcher_mutations():
    mutation_sequence("launcher", [f"CC={WRAP} gcc"])


@cache_check
def cmake_compiler_launcher():
    if not shutil.which("cmake"):
        skip("cmake is not installed")
    src, cache = scratch("cmake-src"), scratch("cmake-store")
    write(os.path.join(src, "CMakeLists.txt"),
          "cmake_minimum_required(VERSION 3.13)\nproject(demo C)\n"
          "add_library(util STATIC util.c)\nadd_executable(demo main.c)\ntarget_link_libraries(demo util)\n")
    write(os.path.join(src, "util.h"), "int util(void);\n")
    write(os.path.join(src, "util.c"), '#include "util.h"\nint util(void) { return 6; }\n')
    write(os.path.join(src, "main.c"), '#include <stdio.h>\n#include "util.h"\n'
                                       'int main(void) { printf("%d\\n", util()); return 0; }\n')

    def build(tag, launcher):
        b = scratch(tag)
        args = ["cmake", "-S", src, "-B", b, "-G", "Unix Makefiles"]
        if launcher:
            args.append(f"-DCMAKE_C_COMPILER_LAUNCHER={WRAP}")
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, f"cmake: {p.stderr}")
        return b

    cached, plain = build("cmake-cached", True), build("cmake-plain", False)
    env = cache_env(cache, "/", )
    for step in ("first", "again", "edit"):
        if step == "edit":
            write(os.path.join(src, "util.c"), '#include "util.h"\nint util(void) { return 7; }\n')
        for b, e in ((cached, env), (plain, None)):
            subprocess.run(["cmake", "--build", b, "--target", "clean"], capture_output=True, env=e)
            p = subprocess.run(["cmake", "--build", b], capture_output=True, text=True, env=e,
                               stdin=subprocess.DEVNULL, timeout=300)
            check(p.returncode == 0, f"cmake --build ({step}): {p.stderr}")
            if b == cached:
                err = p.stderr
        for obj in ("CMakeFiles/util.dir/util.c.o", "CMakeFiles/demo.dir/main.c.o"):
            with open(os.path.join(cached, obj), "rb") as f1, open(os.path.join(plain, obj), "rb") as f2:
                check(f1.read() == f2.read(), f"{obj} differs from the uncached build after step {step}")
        out = subprocess.run([os.path.join(cached, "demo")], capture_output=True, text=True).stdout
        check(out == ("7\n" if step == "edit" else "6\n"), f"demo printed {out!r} after {step}")
        hits, misses = tally(err)
        if step == "again":
            check(hits == 2 and misses == 0, f"both compiles hit the second time: {err}")
        if step == "edit":
            check(misses == 1 and hits == 1, f"only util.c misses after its edit: {err}")


def flip_byte(path):
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0x01
        f.seek(0)
        f.write(data)


@cache_check
def damaged_objects_and_entries_are_misses():
    d, cache = new_project("damage"), scratch("damage-store")
    env = cache_env(cache, d)
    make(d, f"SHELL={WRAP}", env=env)
    want = outputs(d)
    # Damage the stored copy of every output: each restore finds it.
    damaged = 0
    for dirpath, _, files in os.walk(os.path.join(cache, "objects")):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if any(digest == h for _, h in want.values()):
                flip_byte(p)
                damaged += 1
    check(damaged == len(want), f"found the stored copies of {len(want)} outputs ({damaged})")
    make(d, "clean")
    p = make(d, f"SHELL={WRAP}", env=env)
    check(outputs(d) == want, "outputs are right after the store was damaged")
    check("is corrupt" in p.stderr and "warning" in p.stderr, f"a warning names the damage: {p.stderr}")
    v = subprocess.run([BSANDBOX, "cache", "verify", f"--cache={cache}"], capture_output=True, text=True)
    check(v.returncode == 0, f"the store is consistent again (damaged objects were replaced): {v.stdout}{v.stderr}")
    # A damaged entry: a miss and a warning.
    entries = []
    for dirpath, _, files in os.walk(os.path.join(cache, "entries")):
        entries += [os.path.join(dirpath, f) for f in files]
    for e in entries:
        flip_byte(e)
    make(d, "clean")
    p = make(d, f"SHELL={WRAP}", env=env)
    check(outputs(d) == want, "outputs are right after the entries were damaged")
    check("cache entry is damaged" in p.stderr, f"a warning names the damaged entry: {p.stderr}")
    # verify finds a flipped byte and removes what depends on it.
    victim = next(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(cache, "objects")) for f in fs)
    flip_byte(victim)
    v = subprocess.run([BSANDBOX, "cache", "verify", f"--cache={cache}"], capture_output=True, text=True)
    check(v.returncode == 1 and "is corrupt" in v.stdout, f"verify reports the damage: {v.stdout}{v.stderr}")
    v = subprocess.run([BSANDBOX, "cache", "verify", f"--cache={cache}"], capture_output=True, text=True)
    check(v.returncode == 0, f"and removed it: {v.stdout}{v.stderr}")


@cache_check
def eight_identical_commands_at_once():
    d, cache = new_project("concurrent"), scratch("concurrent-store")
    ref = scratch("concurrent-ref")
    cmd = ["sh", "-c", "gcc -O1 -Iinclude -c src/util.c -o util.o.tmp$$ && mv util.o.tmp$$ util.o"]
    subprocess.run(["gcc", "-O1", "-Iinclude", "-c", os.path.join(d, "src/util.c"), "-o",
                    os.path.join(ref, "util.o")], check=True, cwd=d)
    with open(os.path.join(ref, "util.o"), "rb") as f:
        want = f.read()

    def run_all(n):
        procs = [subprocess.Popen([BSANDBOX, "exec", "-q", f"--cache={cache}", "--json", f"{d}/rec{i}.json",
                                   "--", *cmd], cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(n)]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        for code, err in results:
            check(code == 0, f"a concurrent run failed: {err}")
        with open(os.path.join(d, "util.o"), "rb") as f:
            check(f.read() == want, "util.o is right")
        states = []
        for i in range(n):
            with open(f"{d}/rec{i}.json") as f:
                states.append(json.load(f).get("cache"))
        return states

    first = run_all(8)
    check(set(first) <= {"hit", "miss"} and "miss" in first, f"records say hit or miss: {first}")
    # (mv renames onto util.o where nothing was: once one run has put util.o
    # there, the others see it and are runs of their own.)
    v = subprocess.run([BSANDBOX, "cache", "verify", f"--cache={cache}"], capture_output=True, text=True)
    check(v.returncode == 0 and "0 damaged objects, 0 unusable entries" in v.stdout, f"store consistent: {v.stdout}")
    # (Each run's temporary name has its pid in it, and the assembler looks
    # for it before writing it: each miss keys its own name's absence.)
    check(any(f"checked {n} entries" in v.stdout for n in range(1, 9)), f"at most one entry per run: {v.stdout}")
    os.unlink(os.path.join(d, "util.o"))
    again = run_all(8)
    check(again[0] == "hit" or "hit" in again, f"then they hit: {again}")
    v = subprocess.run([BSANDBOX, "cache", "verify", f"--cache={cache}"], capture_output=True, text=True)
    check(v.returncode == 0 and "0 damaged objects, 0 unusable entries" in v.stdout, f"store consistent: {v.stdout}")


def bs(cwd, *args, env=None, input=None):
    if input is None:
        return subprocess.run([BSANDBOX, *args], cwd=cwd, capture_output=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300)
    # A pipe whose writer has finished before the command starts (as after
    # `printf abc | ...` once printf is done): its content is keyed.
    r, w = os.pipe()
    os.write(w, input)
    os.close(w)
    try:
        return subprocess.run([BSANDBOX, *args], cwd=cwd, capture_output=True, env=env, stdin=r, timeout=300)
    finally:
        os.close(r)


def tree(d):
    out = {}
    for dirpath, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                out[os.path.relpath(p, d)] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[os.path.relpath(p, d)] = ("dir", st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    out[os.path.relpath(p, d)] = ("file", st.st_mode & 0o7777, f.read())
    return out


@cache_check
def outputs_of_every_kind_and_replay():
    for backend in ("ebpf", "ptrace"):
        if backend == "ebpf" and os.geteuid() != 0:
            continue
        d, cache = scratch(f"kinds-{backend}"), scratch(f"kinds-{backend}-store")
        write(os.path.join(d, "old"), "old\n")
        write(os.path.join(d, "in"), "input\n")
        script = ("rm old; mkdir -p a/b; cp in a/b/copy; chmod 640 a/b/copy; chmod 711 a; "
                  "ln -s b/copy a/link; printf 'bin\\000\\377ary' ; echo to-stderr >&2; exit 0")
        records = scratch(f"kinds-{backend}-records")

        def run(n):
            return bs(d, "exec", "-q", f"--backend={backend}", f"--cache={cache}", "--json",
                      f"{records}/{n}.json", "--", "sh", "-c", script)

        def cache_state(n):
            with open(f"{records}/{n}.json") as f:
                return json.load(f)["cache"]

        old_times = os.stat(os.path.join(d, "old"))
        first = run(1)
        check(first.returncode == 0, first.stderr)
        after = tree(d)
        # Back to before (old's times too: rm looks at old before removing
        # it), then the hit must give the same tree and output.
        shutil.rmtree(os.path.join(d, "a"))
        write(os.path.join(d, "old"), "old\n")
        os.utime(os.path.join(d, "old"), ns=(old_times.st_atime_ns, old_times.st_mtime_ns))
        second = run(2)
        check(second.returncode == 0, second.stderr)
        check((cache_state(1), cache_state(2)) == ("miss", "hit"), "the records say miss, then hit")
        check(tree(d) == after, f"{backend}: the hit left the tree as the run did:\n{tree(d)}\n{after}")
        check(second.stdout == first.stdout == b"bin\x00\xffary", f"stdout replayed: {second.stdout!r}")
        check(second.stderr == first.stderr == b"to-stderr\n", f"stderr replayed: {second.stderr!r}")


@cache_check
def what_is_not_cached_and_why():
    d, cache = scratch("why"), scratch("why-store")
    write(os.path.join(d, "f"), "x\n")

    def twice(*cmd, opts=()):
        runs = [bs(d, "exec", "-q", "-v", f"--cache={cache}", *opts, "--", *cmd) for _ in range(2)]
        return runs

    runs = twice("sh", "-c", "echo out; echo err >&2; exit 3")
    check([r.returncode for r in runs] == [3, 3], "a failure's exit code")
    check(b"not cached: " in runs[0].stderr and b": it exited with 3" in runs[0].stderr, runs[0].stderr)
    check(b"cache hit" not in runs[1].stderr, "a failure is not replayed by default")
    runs = twice("sh", "-c", "echo out; echo err >&2; exit 4", opts=("--cache-failures",))
    check([r.returncode for r in runs] == [4, 4] and b"cache hit" in runs[1].stderr,
          f"--cache-failures replays the failure: {runs[1].stderr}")
    check(runs[1].stdout == b"out\n" and runs[1].stderr.startswith(b"err\n"), runs[1].stderr)
    # Read, then appended to: keyed by the content f had before the run,
    # which the look before the run took (the command line names f).
    runs = twice("sh", "-c", "cat f > /dev/null; echo y >> f")
    check(b"cached the result" in runs[0].stderr and b"cache hit" not in runs[1].stderr,
          f"f grew, the second run misses: {runs[1].stderr}")
    # Not named anywhere before it ran: its earlier content is unknown.
    runs = twice("sh", "-c", "for x in *; do cat $x > /dev/null; echo y >> $x; done")
    check(f": it reads or moves {d}/f before changing it, and {d}/f as it was before it ran is unknown".encode()
          in runs[0].stderr, runs[0].stderr)
    outside = os.path.join(cache, "..", os.path.basename(cache) + "-outside")
    runs = twice("sh", "-c", f"echo x > {outside}")
    check(b": it writes" in runs[0].stderr and b"outside" in runs[0].stderr, runs[0].stderr)
    os.unlink(outside)
    # stdin: a finished pipe is keyed by content, a different input misses.
    a = bs(d, "exec", "-q", "--explain", f"--cache={cache}", "--", "tr", "a-z", "A-Z", input=b"abc")
    b = bs(d, "exec", "-q", "--explain", f"--cache={cache}", "--", "tr", "a-z", "A-Z", input=b"abc")
    c = bs(d, "exec", "-q", "--explain", f"--cache={cache}", "--", "tr", "a-z", "A-Z", input=b"xyz")
    check(a.stdout == b"ABC" and b.stdout == b"ABC" and c.stdout == b"XYZ", f"{a.stdout} {b.stdout} {c.stdout}")
    check(b"cache hit" in b.stderr and b"cache miss" in c.stderr, f"{b.stderr} {c.stderr}")


@cache_check
def a_hit_inside_a_project_is_journaled():
    """In a project, a re-executed command is rolled back first; its hit is
    then restored inside the run's view and committed as a journal entry,
    so it can be undone like any run."""
    d, cache, records = scratch("journal"), scratch("journal-store"), scratch("journal-records")
    rec = os.path.join(records, "rec.json")
    write(os.path.join(d, "in"), "hello\n")
    check(bs(d, "init", ".").returncode == 0, "init")
    cmd = ("exec", "-q", f"--cache={cache}", "--json", rec, "--",
           "sh", "-c", "tr a-z A-Z < in > out")
    states = []
    for _ in range(2):
        p = bs(d, *cmd)
        check(p.returncode == 0, p.stderr)
        with open(rec) as f:
            states.append(json.load(f)["cache"])
        with open(os.path.join(d, "out")) as f:
            check(f.read() == "HELLO\n", "out is right")
    check(states == ["miss", "hit"], f"miss, then a hit after the rollback: {states}")
    log = bs(d, "log").stdout.decode().splitlines()
    check(len(log) == 3 and "undo of 1 (re-execution)" in log[1], f"run, its rollback, the hit: {log}")
    check(bs(d, "undo").returncode == 0, "the hit's entry can be undone")
    check(not os.path.exists(os.path.join(d, "out")), "undoing the hit removed its output")


@cache_check
def cache_commands_and_bad_input():
    d, cache = scratch("cmds"), scratch("cmds-store")
    for i in range(3):
        write(os.path.join(d, f"in{i}"), f"{i}\n" * 10000)
        p = bs(d, "exec", "-q", f"--cache={cache}", "--", "cp", f"in{i}", f"out{i}")
        check(p.returncode == 0, p.stderr)
    os.unlink(os.path.join(d, "out0"))  # as before the first run (cp looks at its target)
    p = bs(d, "exec", "-q", f"--cache={cache}", "--", "cp", "in0", "out0")
    stats = bs(d, "cache", "stats", f"--cache={cache}").stdout.decode()
    check("entries           3" in stats and "hits              1" in stats, stats)
    gc = bs(d, "cache", "gc", f"--cache={cache}", "--max-size", "1")
    check(gc.returncode == 0 and b"removed 3 entries" in gc.stdout, gc.stdout + gc.stderr)
    stats = bs(d, "cache", "stats", f"--cache={cache}").stdout.decode()
    check("entries           0" in stats and "objects           0" in stats, stats)
    bs(d, "exec", "-q", f"--cache={cache}", "--", "cp", "in0", "out0")
    clear = bs(d, "cache", "clear", f"--cache={cache}")
    check(clear.returncode == 0, clear.stderr)
    check("entries           0" in bs(d, "cache", "stats", f"--cache={cache}").stdout.decode(), "cleared")
    for args, words in ((["cache"], b"usage"), (["cache", "shrink"], b"unknown cache action"),
                        (["exec", "--explain", "--", "true"], b"add --cache"),
                        (["cache", "stats", "--max-size", "1"], b"applies to cache gc")):
        p = bs(d, *args)
        check(p.returncode == 125 and words in p.stderr and p.stderr.count(b"\n") == 1,
              f"{args}: one line, exit 125: {p.stderr}")
    # The size limit holds by itself: each store past a tenth of it runs gc.
    limited = scratch("limited-store")
    env = dict(os.environ, BSANDBOX_CACHE_SIZE="200K")
    for i in range(8):
        write(os.path.join(d, f"big{i}"), f"{i}" * 60000)
        p = bs(d, "exec", "-q", f"--cache={limited}", "--", "cp", f"big{i}", f"copy{i}", env=env)
        check(p.returncode == 0, p.stderr)
    stats = bs(d, "cache", "stats", f"--cache={limited}").stdout.decode()
    entries = int(stats.split("entries")[1].split()[0])
    size_kib = float(stats.split("size")[1].split()[0]) * (1024 if "MiB" in stats.split("size")[1].split()[1] else 1)
    check(entries < 8 and size_kib <= 200, f"the cache stayed under its limit: {stats}")
    # A directory that is not a cache is refused, and the command still runs.
    notcache = scratch("notcache")
    write(os.path.join(notcache, "mine"), "mine\n")
    p = bs(d, "exec", "-q", f"--cache={notcache}", "--", "sh", "-c", "echo ran")
    check(p.returncode == 0 and p.stdout == b"ran\n" and b"not a bsandbox cache" in p.stderr, p.stderr)
    check(os.listdir(notcache) == ["mine"], "nothing written into it")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
