#!/usr/bin/env python3
"""security_agent.py: bsandboxd against a user who attacks it (issue 17,
items 4 and 7). The attacker is an unprivileged user (A) with access to the
socket; the victim another user (B), whose job must still start within a
second while A floods the agent with descriptors, half-sent requests, idle
connections or /metrics connections, or fills the job slots and the queue.
Also: the agent out of descriptors (no spinning), the request timeout, a
record over --max-record, descriptors sent after a request's first byte, the
socket's lock and mode handled by descriptor, the unit's limits, and cache
reports that lie (huge or negative counts, a claimed uid) changing no one
else's remote cache counts. Each
flood check prints what it measured ("measured: ..."). Each check starts its
own agent.

  security_agent.py NAME     run one check;  security_agent.py --list
  security_agent.py --attack KIND ...   the attacker's side (run as A)
Exit 0 pass, 1 fail, 77 skip.
"""
import ctypes
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (BSANDBOX, BSANDBOXD, Agent, check, fresh_dir, give, need_root,  # noqa: E402
                     run_checks, test_user)
from nginx import free_port  # noqa: E402
from reapi import WireError, encode_varint, read_varint  # noqa: E402  (protobuf's wire format)

CHECKS = {}
VICTIM = "bsandbox-e2e2"
# The attacker's interpreter: one every user may run (not root's pyenv).
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
SCRIPT = os.path.abspath(__file__)


def security_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


# ---------------------------------------------------------------- helpers

def proc_text(path):
    """A /proc file's text, or None once its process is gone (before the
    open, or between the open and the read: ProcessLookupError)."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return 0


def rss_mb(pid):
    m = re.search(r"VmRSS:\s+(\d+) kB", proc_text(f"/proc/{pid}/status") or "")
    return int(m.group(1)) / 1024 if m else 0.0


def cpu_seconds(pid):
    fields = (proc_text(f"/proc/{pid}/stat") or ") x 0").split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_dir(owner, tag):
    d = fresh_dir(tag)
    give(d, owner)
    return d


def victim_start(agent, victim):
    """B's job through the agent: seconds from submitting to the job's first
    command running (the job writes the time), or what went wrong (text)."""
    d = user_dir(victim, "sec-victim")
    t0 = time.time()
    try:
        p = subprocess.run([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "sh", "-c", "date +%s.%N > started"],
                           cwd=d, capture_output=True, timeout=60, user=victim[0], group=victim[1], extra_groups=[])
    except subprocess.TimeoutExpired:
        return "no answer within 60 s"
    if p.returncode != 0:
        return f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()}"
    with open(f"{d}/started") as f:
        return float(f.read()) - t0


def shown(start):
    return f"{start * 1000:.0f} ms" if isinstance(start, float) else f"not at all ({start})"


def started_soon(start):
    check(isinstance(start, float) and start < 1.0, f"the victim's job must start within a second: {shown(start)}")


def refused_at_start(argv):
    """Runs bsandboxd; its exit code and stderr, or None if it was still
    running (it did not refuse) after 5 s, when it is stopped."""
    p = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        p.wait(timeout=5)
        return p.returncode, p.stderr.read().decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        return None, p.stderr.read().decode(errors="replace")


def attacker(owner, kind, *args):
    """Starts the attacker's side as owner; returns the Popen once it says
    it is ready, and what it said."""
    p = subprocess.Popen([PYTHON, SCRIPT, "--attack", kind, *map(str, args)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, user=owner[0], group=owner[1],
                         extra_groups=[])
    line = p.stdout.readline().decode()
    if not line.startswith("ready"):
        p.kill()
        raise AssertionError(f"the attacker did not start: {line!r} {p.stderr.read().decode(errors='replace')!r}")
    return p, line.split(None, 1)[1].strip() if " " in line else ""


def stop(p):
    """Ends an attacker (closing its stdin first lets it print a summary)."""
    try:
        p.stdin.close()
        out = p.stdout.read().decode()
        p.wait(timeout=30)
        return out.strip()
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return ""


class Sampler:
    """The agent's descriptors and RSS, sampled every 20 ms in a thread."""

    def __init__(self, pid):
        self.pid, self.fds, self.rss, self.done = pid, [], [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            self.fds.append(fd_count(self.pid))
            self.rss.append(rss_mb(self.pid))
            time.sleep(0.02)

    def stop(self):
        self.done = True
        self.thread.join()
        return max(self.fds), max(self.rss)


def error_message(reply):
    """The message of an Error reply frame (agent.proto: Reply.error = 6,
    Error.message = 1), or "" if reply is not one."""
    if len(reply) < 6 or reply[4] != 0x32:
        return ""
    body = reply[4:4 + struct.unpack("<I", reply[:4])[0]]
    try:
        _, at = read_varint(body, 1)
        if body[at:at + 1] != b"\x0a":
            return ""
        length, at = read_varint(body, at + 1)
    except WireError:
        return ""
    return body[at:at + length].decode(errors="replace")


def length_field(number, data):
    return encode_varint(number << 3 | 2) + encode_varint(len(data)) + data


def number_field(number, value):
    """A varint field; a negative value as protobuf writes an int64 (ten bytes)."""
    return encode_varint(number << 3) + encode_varint(value & (1 << 64) - 1)


# Request{cache_report: CacheTraffic} (agent.proto): Request.cache_report = 3;
# CacheTraffic hits 1, misses 2, uploads 3, bytes_down 4, bytes_up 5, errors 6.
MAX_REPORTED = 1 << 48


def cache_report(**counts):
    numbers = {"hits": 1, "misses": 2, "uploads": 3, "bytes_down": 4, "bytes_up": 5, "errors": 6}
    body = b"".join(number_field(numbers[k], v) for k, v in counts.items())
    return length_field(3, body)


def report_payload(case, victim_uid):
    """(request bytes, descriptors to send with it) of a report case."""
    if case == "legit":
        return cache_report(hits=5, bytes_down=1000), False
    if case == "huge":
        return cache_report(bytes_down=(1 << 63) - 1), False
    if case == "negative":
        return cache_report(hits=-1), False
    if case == "over_the_bound":
        return cache_report(uploads=MAX_REPORTED + 1, misses=3), False
    if case == "claims_a_uid":
        # The uid claimed in fields this agent does not know, in the report
        # and around it (agent.proto has no uid field: nothing to spoof).
        report = cache_report(hits=7) + number_field(15, victim_uid)
        return length_field(3, report[2:]) + number_field(15, victim_uid), False
    if case == "at_the_bound":
        return cache_report(bytes_up=MAX_REPORTED), False
    if case == "with_a_descriptor":
        return cache_report(hits=1), True
    raise SystemExit(f"unknown report case {case}")


# ------------------------------------------------------------ the attacker

def attack(kind, args):
    """Runs as A. Prints "ready [what]" once the attack is in place, then
    holds it until stdin closes, or floods for a time and reports."""
    out = sys.stdout
    if kind == "fds":
        # The length of a 4 MiB request, then 1-byte messages of it carrying
        # 16 descriptors each, for a time; a refused connection is replaced
        # by a new one.
        path, seconds = args[0], float(args[1])
        null = os.open("/dev/null", os.O_RDONLY)
        out.write("ready\n")
        out.flush()
        sent = conns = 0
        s = None
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if s is None:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(1)
                    s.connect(path)
                    s.sendall(struct.pack("<I", 4 << 20))
                    conns += 1
                socket.send_fds(s, [b"x"], [null] * 16)
                sent += 1
            except OSError:
                if s is not None:
                    s.close()
                s = None
        out.write(f"{sent} messages of 16 descriptors on {conns} connections\n")
        return
    if kind in ("partial", "idle"):
        # Connections that start a request of `size` bytes and send all but
        # its last byte (idle: send nothing), then wait.
        path, count = args[0], int(args[1])
        size = int(args[2]) if kind == "partial" else 0
        held, reasons = [], {}
        body = b"x" * max(size - 1, 0)
        for _ in range(count):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(path)
                if size:
                    s.sendall(struct.pack("<I", size) + body)
                held.append(s)
            except OSError:
                try:
                    why = error_message(s.recv(4096))
                except OSError:
                    why = ""
                reasons[why] = reasons.get(why, 0) + 1
                s.close()
        # Connections the agent refused at once have its error waiting.
        open_ones = []
        for s in held:
            s.setblocking(False)
            try:
                data = s.recv(4096)
                why = error_message(data) if data else "closed"
                reasons[why] = reasons.get(why, 0) + 1
            except BlockingIOError:
                open_ones.append(s)
            except OSError as e:
                reasons[str(e)] = reasons.get(str(e), 0) + 1
        out.write(f"ready {len(open_ones)} held; refused: {reasons}\n")
        out.flush()
        sys.stdin.read()
        # How the held ones ended: closed by the agent (with its reason) or still open.
        ends = {}
        for s in open_ones:
            try:
                data = s.recv(4096)
                why = error_message(data) if data else "closed"
            except BlockingIOError:
                why = "still open"
            except OSError as e:
                why = str(e)
            ends[why] = ends.get(why, 0) + 1
        out.write(f"held ones: {ends}\n")
        return
    if kind == "metrics":
        port, count = int(args[0]), int(args[1])
        held = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.append(s)
        out.write(f"ready {len(held)} connections\n")
        out.flush()
        sys.stdin.read()
        ends = {}
        for s in held:
            s.setblocking(False)
            try:
                data = s.recv(4096)
                why = "503" if b" 503 " in data else ("400" if b" 400 " in data else ("closed" if not data else "data"))
            except BlockingIOError:
                why = "still open"
            except OSError:
                why = "reset"
            ends[why] = ends.get(why, 0) + 1
        out.write(f"ends: {ends}\n")
        return
    if kind == "reports":
        # Cache reports, each on its own connection: prints "ready" and
        # {case: "reported" or the agent's error}, its last count per case.
        path, victim_uid, cases = args[0], int(args[1]), args[2:]
        import json
        answers = {}
        for case in cases:
            payload, with_fd = report_payload(case, victim_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(path)
            frame = struct.pack("<I", len(payload)) + payload
            if with_fd:
                socket.send_fds(s, [frame[:1]], [os.open("/dev/null", os.O_RDONLY)])
                s.sendall(frame[1:])
            else:
                s.sendall(frame)
            reply = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                reply += c
            s.close()
            # Reply.reported = 7: an empty message, "\x3a\x00".
            answers[case] = "reported" if reply[4:] == b"\x3a\x00" else error_message(reply) or repr(reply)
        out.write(f"ready {json.dumps(answers)}\n")
        out.flush()
        return
    raise SystemExit(f"unknown attack {kind}")


# ----------------------------------------------------------------- floods

@security_check
def flood_descriptors():
    """1-byte messages with 16 descriptors each: the agent keeps at most a
    request's (4), refuses, and closes them at once."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    with Agent() as agent:
        pid = agent.proc.pid
        idle_fds = fd_count(pid)
        quiet = victim_start(agent, b)
        sampler = Sampler(pid)
        p, _ = attacker(a, "fds", agent.socket, 6)
        time.sleep(1)
        during = victim_start(agent, b)
        summary = stop(p)
        most_fds, most_rss = sampler.stop()
        print(f"measured: descriptor flood ({summary}): agent fds {idle_fds} idle, at most {most_fds}; "
              f"victim's job started in {shown(quiet)} quiet, {shown(during)} under the flood")
        check(most_fds < idle_fds + 64, f"the agent held {most_fds} descriptors (idle {idle_fds})")
        started_soon(during)
        check(agent.proc.poll() is None, "the agent survived")


@security_check
def flood_partial_frames():
    """50 connections each holding a 4 MiB request but its last byte: the
    agent holds at most one user's share (16 MiB) and turns the rest away."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    # meson test sets MALLOC_PERTURB_, which writes every allocation whole:
    # the RSS would count the request buffers' capacity, not what they hold.
    # Under AddressSanitizer it would count the quarantine (freed memory kept).
    os.environ.pop("MALLOC_PERTURB_", None)
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"
    with Agent() as agent:
        pid = agent.proc.pid
        idle_fds, idle_rss = fd_count(pid), rss_mb(pid)
        sampler = Sampler(pid)
        p, held = attacker(a, "partial", agent.socket, 50, 4 << 20)
        time.sleep(0.5)
        during = victim_start(agent, b)
        most_fds, most_rss = sampler.stop()
        summary = stop(p)
        print(f"measured: partial-frame flood ({held}; {summary}): agent RSS {idle_rss:.1f} MB idle, "
              f"at most {most_rss:.1f} MB; fds {idle_fds} idle, at most {most_fds}; "
              f"victim's job started in {shown(during)}")
        # Its 16 MiB share, a request being refused (4 MiB), and slack.
        check(most_rss < idle_rss + 32, f"the agent's RSS grew from {idle_rss:.1f} to {most_rss:.1f} MB")
        check(most_fds < idle_fds + 40, f"the agent held {most_fds} descriptors (idle {idle_fds})")
        started_soon(during)


@security_check
def flood_idle_connections():
    """1000 connections that send nothing: one user holds at most its
    share, and each idle one is refused after the request timeout (10 s)."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    with Agent() as agent:
        pid = agent.proc.pid
        idle_fds = fd_count(pid)
        sampler = Sampler(pid)
        p, held = attacker(a, "idle", agent.socket, 1000)
        during = victim_start(agent, b)
        time.sleep(11)  # past the request timeout
        after = fd_count(pid)
        most_fds, _ = sampler.stop()
        summary = stop(p)
        print(f"measured: idle-connection flood ({held}; {summary}): agent fds {idle_fds} idle, at most "
              f"{most_fds}, {after} after the 10 s request timeout; victim's job started in {shown(during)}")
        check(most_fds < idle_fds + 40, f"the agent held {most_fds} descriptors (idle {idle_fds})")
        check(after <= idle_fds + 2, f"idle connections are closed after the request timeout: {after} fds")
        check("no whole request came within 10 s" in summary, f"and told why: {summary}")
        started_soon(during)


@security_check
def flood_metrics_connections():
    """Any local user may connect to /metrics: 200 connections that send
    nothing take at most --metrics-connections (8) exchanges, each closed
    after the request timeout (10 s); the rest get a 503 at once."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    port = free_port()
    with Agent("--metrics", f"127.0.0.1:{port}") as agent:
        pid = agent.proc.pid
        idle_fds = fd_count(pid)
        sampler = Sampler(pid)
        p, held = attacker(a, "metrics", port, 200)
        during = victim_start(agent, b)
        flooded_fds = fd_count(pid)
        time.sleep(11)  # past the request timeout (10 s)
        after = fd_count(pid)
        most_fds, _ = sampler.stop()
        summary = stop(p)
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            served = r.status
        print(f"measured: /metrics flood ({held}; {summary}): agent fds {idle_fds} idle, {flooded_fds} "
              f"flooded (at most {most_fds}), {after} after the 10 s timeout; victim's job started in "
              f"{shown(during)}; /metrics afterwards: {served}")
        # 8 exchanges, and the victim's job (its connection, descriptors, ring, runner).
        check(most_fds <= idle_fds + 8 + 16, f"the agent held {most_fds} descriptors (idle {idle_fds})")
        check(after <= idle_fds + 1, f"idle exchanges are closed after the timeout: {after} fds")
        started_soon(during)
        check(served == 200, "and /metrics answers again")


@security_check
def flood_queue_hog():
    """A submits 60 long jobs: it runs its share of the slots (2 of 4) and
    queues its share (16 of 64); B's job starts at once."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    d = user_dir(a, "sec-hog")
    with Agent() as agent:
        hogs = []
        for _ in range(60):
            hogs.append(subprocess.Popen([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "sleep", "60"], cwd=d,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, user=a[0], group=a[1],
                                         extra_groups=[]))
            time.sleep(0.01)  # a stream of submissions, not a burst of connections
        try:
            deadline = time.time() + 60
            refused = []
            while time.time() < deadline:
                refused = [h for h in hogs if h.poll() is not None]
                if len(refused) >= 60 - 2 - 16:
                    break
                time.sleep(0.1)
            reasons = {h.stderr.read().decode().strip() for h in refused}
            during = victim_start(agent, b)
            print(f"measured: queue hog (60 jobs of uid {a[0]}): {60 - len(refused)} taken, {len(refused)} "
                  f"refused ({'; '.join(sorted(reasons))}); victim's job started in {shown(during)}")
            check(len(refused) == 60 - 2 - 16, f"A's jobs beyond its shares are refused: {len(refused)}")
            check(all("jobs waiting, the most one user may" in r for r in reasons), f"saying why: {reasons}")
            started_soon(during)
        finally:
            for h in hogs:
                h.kill()
                h.wait()


# -------------------------------------------------------- one at a time

@security_check
def out_of_descriptors_does_not_spin():
    """The agent at its descriptor limit: accepting pauses (no busy loop, a
    line in the log, not millions), the connection it cannot serve is told
    so, and it serves again once descriptors are free."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    with Agent() as agent:
        pid = agent.proc.pid
        room = fd_count(pid) + 8
        hard = re.search(r"Max open files\s+\d+\s+(\d+)", proc_text(f"/proc/{pid}/limits")).group(1)
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={room}:{hard}"], check=True)
        p, held = attacker(a, "idle", agent.socket, 12)
        # More connections while it is out of descriptors.
        knocks = []
        for _ in range(5):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(agent.socket)
            knocks.append(s)
        lines0, cpu0 = agent.text().count("\n"), cpu_seconds(pid)
        time.sleep(3)
        lines, cpu = agent.text().count("\n") - lines0, cpu_seconds(pid) - cpu0
        try:
            told = error_message(knocks[0].recv(4096)) or "closed without a word"
        except OSError as e:
            told = f"no answer ({e})"
        for s in knocks:
            s.close()
        stop(p)
        print(f"measured: out of descriptors ({room} allowed; {held}): {cpu:.2f} s of agent CPU and {lines} "
              f"log lines in 3 s; a connection it could not take was told {told!r}")
        check(cpu < 0.3, f"the agent spun: {cpu:.2f} s of CPU in 3 s")
        check(lines < 20, f"{lines} log lines in 3 s")
        check("cannot accept connections" in agent.text(), "the pause is logged")
        check("out of file descriptors" in told, f"the turned-away connection is told: {told}")
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={hard}:{hard}"], check=True)
        again = victim_start(agent, b)
        check(isinstance(again, float) and again < 5, f"it serves again: {shown(again)}")


@security_check
def descriptors_only_with_the_first_byte():
    """A request's descriptors come with its first byte; one sent later is
    refused (and closed), not counted towards the request."""
    need_root()
    a = test_user()
    d = user_dir(a, "sec-late")
    with Agent() as agent:
        # Submit{argv: "touch", "ran", fds: 0} with the working directory sent
        # with the second byte.
        body = b"\x0a" + bytes([len(b"\x0a\x05touch\x0a\x03ran")]) + b"\x0a\x05touch\x0a\x03ran"
        frame = struct.pack("<I", len(body)) + body
        code = ("import os, socket, sys\n"
                "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)\n"
                "frame = bytes.fromhex(sys.argv[2])\n"
                "s.send(frame[:1]); import time; time.sleep(0.2)\n"
                "socket.send_fds(s, [frame[1:]], [os.open('.', os.O_RDONLY)])\n"
                "out = b''\n"
                "while True:\n"
                "    c = s.recv(4096)\n"
                "    if not c: break\n"
                "    out += c\n"
                "sys.stdout.buffer.write(out)\n")
        p = subprocess.run([PYTHON, "-c", code, agent.socket, frame.hex()], cwd=d, capture_output=True,
                           timeout=60, user=a[0], group=a[1], extra_groups=[])
        text = error_message(p.stdout)
        print(f"measured: descriptors after the first byte: {text!r}")
        check("after the request's first byte" in text, f"refused, saying why: {text!r} {p.stderr!r}")
        check(not os.path.exists(f"{d}/ran"), "and the job did not run")


@security_check
def cache_reports_that_lie():
    """B reports its remote cache traffic; A then sends reports with huge
    or negative counts, one above the bound, one with a descriptor, ones
    claiming B's uid (or root's) in fields the agent does not know, and 50
    at the bound. The lies are refused whole, A's uid gets what A's valid
    reports said, and B's counts, and everyone else's, stay as they were."""
    need_root()
    a, b = test_user(), test_user(VICTIM)
    port = free_port()
    import json
    import urllib.request

    def series():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for m in re.finditer(r'^bsandboxd_remote_cache_([a-z_]+)_total\{uid="([0-9a-z]+)"\} (\d+)$', text, re.M):
            out.setdefault(m.group(2), {})[m.group(1)] = int(m.group(3))
        return out

    def reports(owner, claimed_uid, *cases):
        p, said = attacker(owner, "reports", agent.socket, claimed_uid, *cases)
        stop(p)
        return json.loads(said)

    zero = {k: 0 for k in ("hits", "misses", "uploads", "bytes_down", "bytes_up", "errors", "prefetched")}
    with Agent("--metrics", f"127.0.0.1:{port}") as agent:
        check(reports(b, b[0], "legit") == {"legit": "reported"}, "B's report is taken")
        want_b = dict(zero, hits=5, bytes_down=1000)
        check(series() == {str(b[0]): want_b}, f"B's counts: {series()}")
        lies = reports(a, b[0], "huge", "negative", "over_the_bound", "with_a_descriptor")
        print(f"measured: lying reports: {lies}")
        check("above the 281474976710656 one report may carry" in lies["huge"], f"huge: {lies}")
        check("a negative count of hits" in lies["negative"], f"negative: {lies}")
        check("uploads is above" in lies["over_the_bound"], f"over the bound: {lies}")
        check("came with descriptors" in lies["with_a_descriptor"], f"with a descriptor: {lies}")
        check(series() == {str(b[0]): want_b}, f"refused reports count nothing, for anyone: {series()}")
        for claimed in (b[0], 0):
            said = reports(a, claimed, "claims_a_uid")
            check(said == {"claims_a_uid": "reported"}, f"a report claiming uid {claimed} is A's: {said}")
        said = reports(a, b[0], *["at_the_bound"] * 50)
        check(said == {"at_the_bound": "reported"}, f"reports at the bound are taken: {said}")
        got = series()
        print(f"measured: after A's reports: {got}")
        check(got.get(str(b[0])) == want_b, f"B's counts are unchanged: {got}")
        check(got.get(str(a[0])) == dict(zero, hits=14, bytes_up=50 * MAX_REPORTED),
              f"A's uid has what A's valid reports said, and only that: {got}")
        check(set(got) == {str(a[0]), str(b[0])}, f"no other uid got counts (no root, no other): {got}")
        check(agent.proc.poll() is None, "the agent is unharmed")


@security_check
def request_timeout():
    """A request must arrive whole within --request-timeout (default 10 s)."""
    need_root()
    a = test_user()
    with Agent() as agent:
        p, held = attacker(a, "partial", agent.socket, 1, 1000)
        time.sleep(11)
        summary = stop(p)
        print(f"measured: a request cut short and left: {summary}")
        check("no whole request came within 10 s (bsandboxd --request-timeout)" in summary,
              f"refused after 10 s, saying why: {summary}")


@security_check
def record_over_the_limit():
    """A job decides its record's size; the agent passes on at most
    --max-record and says so in one line."""
    need_root()
    a = test_user()
    d = user_dir(a, "sec-record")
    with Agent("--max-record", "64K") as agent:
        p = subprocess.run([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "sh", "-c",
                            "for i in $(seq 1500); do : > a-file-with-a-name-long-enough-to-count-$i; done"],
                           cwd=d, capture_output=True, timeout=120, user=a[0], group=a[1], extra_groups=[])
        err = p.stderr.decode(errors="replace")
        print(f"measured: a record over --max-record 64K: exit {p.returncode}: {err.strip()}")
        check(p.returncode == 125 and len(err.splitlines()) == 1, f"one line, exit 125: {err!r}")
        check(re.search(r"the job's record is [\d.]+ KiB, over the agent's limit of 64\.0 KiB \(bsandboxd --max-record\)",
                        err), f"saying what and how to change it: {err!r}")
        d2 = user_dir(a, "sec-record2")
        ok = subprocess.run([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "true"], cwd=d2, capture_output=True,
                            timeout=60, user=a[0], group=a[1], extra_groups=[])
        check(ok.returncode == 0, f"a small record passes: {ok.stderr!r}")


# ------------------------------------------------------ socket and unit

@security_check
def lock_symlink_not_followed():
    """Item 7: a symlink at SOCKET.lock is not followed; a directory another
    user may write is refused altogether."""
    need_root()
    a = test_user()
    victim = os.path.join(fresh_dir("sec-victim-dir"), "created-by-root")
    # A's own directory: A plants the symlink.
    d = user_dir(a, "sec-lock")
    os.chmod(d, 0o755)
    subprocess.run(["ln", "-s", victim, f"{d}/agent.sock.lock"], check=True, user=a[0], group=a[1], extra_groups=[])
    code, err = refused_at_start([BSANDBOXD, "--foreground", "--socket", f"{d}/agent.sock"])
    print(f"measured: socket in a user's directory: exit {code}: {err.strip()}; "
          f"file made through the symlink: {os.path.lexists(victim)}")
    check(not os.path.lexists(victim), "nothing was created through the symlink")
    check(code == 1 and len(err.splitlines()) == 1 and "may be written by others" in err, f"refused: {err!r}")
    # Root's own directory with a symlink left there: not followed either.
    d = fresh_dir("sec-lock-root")
    os.symlink(victim, f"{d}/agent.sock.lock")
    code, err = refused_at_start([BSANDBOXD, "--foreground", "--socket", f"{d}/agent.sock"])
    check(not os.path.lexists(victim), "nothing was created through the symlink")
    check(code == 1 and "agent.sock.lock is a symlink: refusing to follow it" in err, f"refused: {err!r}")


IN_CREATE, IN_ATTRIB, IN_MOVED_TO = 0x100, 0x4, 0x80


@security_check
def socket_appears_with_its_mode():
    """Item 7: the socket appears under its name already with its group and
    mode, and listening (made elsewhere and renamed into place): no moment
    where it is there with another mode, nor a chmod or chown by its name."""
    need_root()
    import grp
    group = "bsandbox-e2e-agent"
    if subprocess.run(["getent", "group", group], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", group], check=True)
    gid = grp.getgrnam(group).gr_gid
    d = fresh_dir("sec-sock")
    os.chmod(d, 0o755)
    libc = ctypes.CDLL(None, use_errno=True)
    ino = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    check(ino >= 0, "inotify_init1")
    libc.inotify_add_watch(ino, d.encode(), IN_CREATE | IN_ATTRIB | IN_MOVED_TO)
    proc = subprocess.Popen([BSANDBOXD, "--foreground", "--socket", f"{d}/agent.sock", "--group", group,
                             "--mode", "0660"], stderr=subprocess.PIPE)
    try:
        events = []
        deadline = time.time() + 30
        while time.time() < deadline and not os.path.exists(f"{d}/agent.sock"):
            time.sleep(0.01)
        time.sleep(0.2)
        st = os.lstat(f"{d}/agent.sock")
        while True:
            try:
                buf = os.read(ino, 65536)
            except BlockingIOError:
                break
            at = 0
            while at < len(buf):
                _, mask, _, length = struct.unpack_from("iIII", buf, at)
                name = buf[at + 16:at + 16 + length].rstrip(b"\0").decode()
                at += 16 + length
                if name == "agent.sock":
                    events.append({IN_CREATE: "create", IN_ATTRIB: "attrib", IN_MOVED_TO: "moved_to"}.get(mask & 0x184, hex(mask)))
        os.close(ino)
        print(f"measured: events on the socket's name while the agent started: {events}")
        check(events == ["moved_to"], f"it only appears, by rename: {events}")
        check(st.st_gid == gid and st.st_mode & 0o7777 == 0o660, "with its group and mode")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@security_check
def unit_limits_and_capabilities():
    """The unit's LimitNOFILE and capability bounding set, applied by hand
    (systemd is not this machine's init): the agent runs with them, takes
    the hard descriptor limit, and its jobs get the soft one. (The hard limit
    is ours where we may not raise it: no CAP_SYS_RESOURCE.)"""
    need_root()
    unit = open(os.path.join(os.path.dirname(BSANDBOXD), "bsandboxd.service")).read()
    nofile = re.search(r"^LimitNOFILE=(\d+):(\d+)$", unit, re.M)
    caps = re.search(r"^CapabilityBoundingSet=~(.+)$", unit, re.M)
    check(nofile and caps, "the unit sets LimitNOFILE=SOFT:HARD and drops capabilities")
    soft, hard = nofile.groups()
    ours = re.search(r"Max open files\s+\d+\s+(\d+)", proc_text("/proc/self/limits")).group(1)
    hard = str(min(int(hard), int(ours)))
    dropped = ",".join("-" + c.lower().removeprefix("cap_") for c in caps.group(1).split())
    a = test_user()
    d = user_dir(a, "sec-unit")
    agent_dir = fresh_dir("sec-unit-agent")
    os.chmod(agent_dir, 0o755)
    sock = f"{agent_dir}/agent.sock"
    proc = subprocess.Popen(["prlimit", f"--nofile={soft}:{hard}", "--", "setpriv", f"--bounding-set={dropped}", "--",
                             BSANDBOXD, "--foreground", "--socket", sock, "--mode", "0666"], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not os.path.exists(sock) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        check(os.path.exists(sock), f"the agent starts: {proc.stderr.read1().decode(errors='replace') if proc.poll() is not None else ''}")
        limits = proc_text(f"/proc/{proc.pid}/limits") or ""
        check(re.search(rf"Max open files\s+{hard}\s+{hard}", limits), f"the agent takes the hard limit: {limits}")
        p = subprocess.run([BSANDBOX, "exec", f"--agent={sock}", "--", "sh", "-c", "ulimit -n; grep CapBnd /proc/self/status"],
                           cwd=d, capture_output=True, timeout=60, user=a[0], group=a[1], extra_groups=[])
        out = p.stdout.decode()
        print(f"measured: under the unit's limits: agent {hard}:{hard} descriptors; a job: {out.split()}")
        check(p.returncode == 0 and out.splitlines()[0] == soft, f"a job gets the soft limit: {out!r} {p.stderr!r}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--attack"]:
        attack(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    sys.exit(run_checks(__doc__, CHECKS))
