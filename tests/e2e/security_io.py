#!/usr/bin/env python3
"""security_io.py: what bsandbox writes and reads where others can reach.

Issue 17's findings about output paths, input files and shared caches, each
as the attack that worked before and must not now:

- output paths: `--json /dev/null` as root turned /dev/null into a regular
  file; now a device or fifo is written in place, and a symlink another user
  planted where a record goes is neither followed nor replaced;
- input paths: `show /dev/zero` and `export` of a huge file aborted with
  bad_alloc, `show` of a fifo blocked; now one line and exit 125 at once;
- shared caches: a cache directory another user can write was used
  silently, and a user re-sealed another's entry so that a hit restored
  "ATTACKER CONTENT"; now such a directory is refused without a key, and
  with one an entry not signed with it is ignored (the attacker: a member
  of the group that shares the cache, without the key).

  security_io.py NAME    run one check;  security_io.py --list    the names
Exit 0 pass, 1 fail, 77 skip.
"""
import grp
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, fresh_dir, give, need_root, run_checks, test_user, write  # noqa: E402

CHECKS = {}
SECOND_USER = "bsandbox-e2e2"
SHARED_GROUP = "bsandbox-e2e-share"


def io_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def bs(*args, cwd=None, user=None, env=None, timeout=60, stdin=subprocess.DEVNULL):
    kw = {}
    if user:
        kw = dict(user=user[0], group=user[1], extra_groups=user[2] if len(user) > 2 else [])
    e = {k: v for k, v in os.environ.items() if not k.startswith("BSANDBOX_")}
    e.update(env or {})
    return subprocess.run([BSANDBOX, *args], cwd=cwd, capture_output=True, env=e, stdin=stdin, timeout=timeout,
                          **kw)


def one_line_error(p, words):
    check(p.returncode == 125 and p.stderr.count(b"\n") == 1 and p.stderr.startswith(b"bsandbox: error: ") and
          words in p.stderr, f"one error line with {words!r}, exit 125: {p.returncode} {p.stderr!r}")


@io_check
def records_never_replace_devices_or_planted_links():
    need_root()
    before = os.stat("/dev/null")
    try:
        p = bs("exec", "-q", "--json", "/dev/null", "--", "true")
        after = os.stat("/dev/null")
    finally:
        # Should it have been replaced, the whole machine needs it back.
        if not stat.S_ISCHR(os.stat("/dev/null").st_mode):
            os.unlink("/dev/null")
            os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.chmod("/dev/null", 0o666)
    check(p.returncode == 0, p.stderr)
    check(stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev, "/dev/null is still the null device")
    p = bs("exec", "-q", "--record", "/dev/stdout", "--", "true")
    check(p.returncode == 0 and len(p.stdout) > 0, f"a record to /dev/stdout reaches stdout: {p.stderr}")
    # Another user plants a symlink where root's record will go.
    a = test_user()
    d = fresh_dir("planted")
    os.chmod(d, 0o1777)
    victim = write(os.path.join(fresh_dir("victim"), "passwd"), "root:x:0:0\n")
    link = os.path.join(d, "record.json")
    subprocess.run(["ln", "-s", victim, link], user=a[0], group=a[1], check=True)
    p = bs("exec", "-q", "--json", link, "--", "true")
    one_line_error(p, b"symbolic link")
    check(open(victim).read() == "root:x:0:0\n", "the file the link points to is untouched")
    check(os.path.islink(link) and os.readlink(link) == victim, "the planted link is neither replaced nor followed")
    # A fifo with a reader is written in place; without one, an error at once.
    fifo = os.path.join(fresh_dir("fifo"), "fifo")
    os.mkfifo(fifo)
    t0 = time.time()
    p = bs("exec", "-q", "--json", fifo, "--", "true")
    one_line_error(p, fifo.encode())
    check(time.time() - t0 < 10, "no hang waiting for a reader")
    reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
    time.sleep(0.2)
    p = bs("exec", "-q", "--json", fifo, "--", "true")
    out = reader.communicate(timeout=30)[0]
    check(p.returncode == 0 and b"bsandbox.provenance/v1" in out, f"the record went through the fifo: {p.stderr}")
    check(stat.S_ISFIFO(os.stat(fifo).st_mode), "still a fifo")


@io_check
def inputs_that_are_not_records_get_one_line():
    d = fresh_dir("inputs")
    for path, words in (("/dev/zero", b"not a regular file (a device)"), (d, b"a directory")):
        for cmd in (["show", path], ["export", "--format=prometheus", path]):
            t0 = time.time()
            p = bs(*cmd, timeout=30)
            one_line_error(p, words)
            check(time.time() - t0 < 10, f"{cmd}: answered at once")
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    p = bs("show", fifo, timeout=30)
    one_line_error(p, b"a fifo")
    huge = os.path.join(d, "huge.rec")
    with open(huge, "wb") as f:
        f.truncate(3 << 30)  # sparse: costs nothing on disk
    p = bs("show", huge, timeout=30)
    one_line_error(p, b"more than a record can be")
    p = bs("show", "-", stdin=open("/dev/zero", "rb"), timeout=120)
    one_line_error(p, b"stdin: more than a record can be")


def shared_cache_users():
    """A victim and an attacker who share a group, and a cache directory
    that group can write (setgid, 2775), as teams share caches."""
    a, b = test_user(), test_user(SECOND_USER)
    try:
        g = grp.getgrnam(SHARED_GROUP).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", SHARED_GROUP], check=True, capture_output=True)
        g = grp.getgrnam(SHARED_GROUP).gr_gid
    victim, attacker = (a[0], a[1], [g]), (b[0], b[1], [g])
    top = fresh_dir("shared-cache")
    os.chmod(top, 0o755)
    cache = os.path.join(top, "cache")
    os.mkdir(cache)
    os.chown(cache, a[0], g)
    os.chmod(cache, 0o2775)
    work = os.path.join(top, "work")
    os.mkdir(work)
    write(os.path.join(work, "in"), "honest input\n")
    give(work, a)
    return victim, attacker, cache, work, top


def poison(cache, attacker):
    """What the attacker can do with write access: put its own content in the
    store and, in every entry, swap the digest of the honest output for its
    own (same length, so nothing else in the entry moves), then re-seal the
    entry with a valid checksum. Returns how many entries it rewrote."""
    script = r'''
import hashlib, os, sys
cache, honest, evil = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
good, bad = hashlib.sha256(honest).digest(), hashlib.sha256(evil).digest()
obj = os.path.join(cache, "objects", bad.hex()[:2])
os.makedirs(obj, exist_ok=True)
with open(os.path.join(obj, bad.hex()[2:]), "wb") as f:
    f.write(evil)
n = 0
for dp, _, fs in os.walk(os.path.join(cache, "entries")):
    for name in fs:
        p = os.path.join(dp, name)
        payload = open(p, "rb").read()[4 + 32:]
        if good not in payload:
            continue
        payload = payload.replace(good, bad)
        os.unlink(p)
        with open(p, "wb") as f:
            f.write(b"BSC1" + hashlib.sha256(payload).digest() + payload)
        n += 1
print(n)
'''
    p = subprocess.run(["/usr/bin/python3", "-c", script, cache, "honest input\n", "HACKED INPUT\n"],
                       user=attacker[0], group=attacker[1], extra_groups=attacker[2], capture_output=True, text=True)
    check(p.returncode == 0, f"the attacker's script ran: {p.stderr}")
    return int(p.stdout)


@io_check
def a_cache_others_can_write_is_refused_without_a_key():
    need_root()
    victim, attacker, cache, work, _ = shared_cache_users()
    p = bs("exec", "-q", f"--cache={cache}", "--", "sh", "-c", "cat in > out", cwd=work, user=victim)
    check(p.returncode == 0, p.stderr)
    check(b"running without the cache" in p.stderr and b"writable by its group" in p.stderr and
          b"--cache-key" in p.stderr, f"refused, saying why and how to share: {p.stderr}")
    check(not os.path.exists(os.path.join(cache, "entries")), "nothing stored in it")
    # Root does not use a cache another user owns either.
    own = fresh_dir("owned-cache")
    give(own, test_user())
    p = bs("exec", "-q", f"--cache={own}", "--", "true")
    check(b"running without the cache" in p.stderr and b"is owned by bsandbox-e2e" in p.stderr, p.stderr)
    p = bs("cache", "stats", f"--cache={own}")
    one_line_error(p, b"is owned by bsandbox-e2e")


@io_check
def a_shared_cache_with_a_key_ignores_entries_re_sealed_by_others():
    need_root()
    victim, attacker, cache, work, top = shared_cache_users()
    key = os.path.join(top, "key")
    write(key, "team-secret-0123456789\n")
    os.chown(key, victim[0], victim[2][0])
    os.chmod(key, 0o640)
    env = {"BSANDBOX_CACHE_KEY": key}
    cmd = ("exec", "-q", "-v", f"--cache={cache}", "--", "sh", "-c", "cat in > out")
    p = bs(*cmd, cwd=work, user=victim, env=env)
    check(p.returncode == 0 and b"cached the result" in p.stderr, f"stored, signed: {p.stderr}")
    os.unlink(os.path.join(work, "out"))
    p = bs(*cmd, cwd=work, user=victim, env=env)
    check(b"cache hit" in p.stderr and open(os.path.join(work, "out")).read() == "honest input\n",
          f"the signed entry hits: {p.stderr}")
    # The attacker (in the group, without the key) rewrites the entries.
    check(poison(cache, attacker) >= 1, "the attacker found entries to rewrite")
    os.unlink(os.path.join(work, "out"))
    p = bs(*cmd, cwd=work, user=victim, env=env)
    out = open(os.path.join(work, "out")).read()
    check(out == "honest input\n", f"the victim's output is its own, not the attacker's: {out!r} {p.stderr}")
    check(b"not signed with this cache's key; ignored" in p.stderr, f"the forged entry is named: {p.stderr}")
    v = bs("cache", "stats", f"--cache={cache}", user=victim, env=env)
    check(v.returncode == 0, f"stats with the key: {v.stderr}")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
