#!/usr/bin/env python3
"""agent.py: bsandboxd with real users and real failures: two users apart,
clients and the agent killed with SIGKILL mid-job, 20 jobs at once, the
queue, limits, malformed messages, SIGTERM draining, the systemd unit, a
cache wrapper borrowing a job's tracer, /metrics, and the remote cache
traffic of a user's jobs (Debian's nginx as the server, nginx.py) counted
under that user's uid. Each check starts its own agent.

  agent.py NAME    run one check;  agent.py --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (BSANDBOX, BSANDBOXD, Agent, check, fresh_dir, give, need_root,  # noqa: E402
                     run_checks, skip, test_user, write)
from nginx import free_port  # noqa: E402

CHECKS = {}
SECOND_USER = "bsandbox-e2e2"


def agent_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def user_dir(owner, tag):
    d = fresh_dir(tag)
    give(d, owner)
    return d


def start(agent, owner, argv, cwd, *extra, env=None, umask=0o022):
    """bsandbox exec --agent as owner, in the background; the record goes to
    cwd/record.json. Returns the Popen."""
    cmd = [BSANDBOX, "exec", f"--agent={agent.socket}", "--json", os.path.join(cwd, "record.json"), *extra,
           "--", *argv]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            user=owner[0], group=owner[1], extra_groups=[], umask=umask)


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def record(cwd):
    with open(os.path.join(cwd, "record.json"), "rb") as f:
        return json.loads(f.read().decode())


def wait_for(predicate, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid):
    """Whether pid runs (a zombie does not). A process can end between the
    open of its stat and the read (ProcessLookupError), or before the open."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def read_pid(path):
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), f"{path}")
    return int(open(path).read())


def status(agent, owner=None):
    kw = dict(user=owner[0], group=owner[1], extra_groups=[]) if owner else {}
    p = subprocess.run([BSANDBOX, "agent", "status", f"--agent={agent.socket}"], capture_output=True,
                       timeout=30, **kw)
    check(p.returncode == 0, f"agent status exited {p.returncode}: {p.stderr!r}")
    return p.stdout.decode()


def paths_of(rec):
    return {f["path"] for p in rec["processes"] for f in p["files"]}


@agent_check
def two_users_apart():
    need_root()
    a, b = test_user(), test_user(SECOND_USER)
    da, db = user_dir(a, "agent-a"), user_dir(b, "agent-b")
    os.chmod(da, 0o700)
    os.chmod(db, 0o700)
    with Agent() as agent:
        pa = start(agent, a, ["sh", "-c", "echo $$ > pid; id -u > uid; umask > mask; sleep 30"], da, umask=0o027)
        pb = start(agent, b, ["sh", "-c", "echo $$ > pid; id -u > uid; umask > mask; sleep 30"], db)
        pid_a, pid_b = read_pid(f"{da}/pid"), read_pid(f"{db}/pid")
        # mask is written last: once it has content, uid has too.
        wait_for(lambda: all(os.path.exists(f"{x}/mask") and open(f"{x}/mask").read() for x in (da, db)),
                 "the jobs to write their uids and umasks")
        check(open(f"{da}/uid").read().strip() == str(a[0]), "A's job runs as A")
        check(open(f"{db}/uid").read().strip() == str(b[0]), "B's job runs as B")
        check(open(f"{da}/mask").read().strip() == "0027", "A's job has A's umask")
        check(open(f"{db}/mask").read().strip() == "0022", "B's job has B's umask")
        sa, sb, sroot = status(agent, a), status(agent, b), status(agent)
        check(f"uid {a[0]} running" in sa and f"uid {b[0]} " not in sa, f"A sees only A's job:\n{sa}")
        check(f"uid {b[0]} running" in sb and f"uid {a[0]} " not in sb, f"B sees only B's job:\n{sb}")
        check(f"uid {a[0]} running" in sroot and f"uid {b[0]} running" in sroot, f"root sees both:\n{sroot}")
        check("2 running" in sa, f"the totals are the agent's:\n{sa}")
        # B can neither signal A's job nor read A's directory (and record).
        k = subprocess.run(["kill", "-TERM", str(pid_a)], capture_output=True, user=b[0], group=b[1],
                           extra_groups=[])
        check(k.returncode != 0 and alive(pid_a), "B cannot signal A's job")
        r = subprocess.run(["cat", f"{da}/uid"], capture_output=True, user=b[0], group=b[1], extra_groups=[])
        check(r.returncode != 0, "B cannot read A's files")
        os.kill(pid_a, signal.SIGTERM)
        os.kill(pid_b, signal.SIGTERM)
        for p, d, pid in ((pa, da, pid_a), (pb, db, pid_b)):
            code, _, err = finish(p)
            check(code == 128 + signal.SIGTERM, f"exit {code}: {err}")
            rec = record(d)
            check(rec["complete"] and rec["backend"] == "ebpf", f"complete eBPF record: {err}")
            check(rec["agent"] == agent.socket, "the record names the agent")
            check(rec["processes"][0]["pid"] == pid, "the record's top process is the job's")
            other = db if d == da else da
            check(not any(x.startswith(other) for x in paths_of(rec)), "no path of the other user's job")
            check(oct(os.stat(f"{d}/record.json").st_uid) == oct(a[0] if d == da else b[0]),
                  "the record is written by its caller")


@agent_check
def kill_client_mid_job():
    need_root()
    a = test_user()
    d = user_dir(a, "agent-kc")
    with Agent() as agent:
        p = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 60 & echo $! > child; wait"], d)
        pid, child = read_pid(f"{d}/pid"), read_pid(f"{d}/child")
        p.kill()
        p.wait()
        wait_for(lambda: not alive(pid) and not alive(child), "the job's processes to be killed")
        wait_for(lambda: "caller went away" in agent.text(), "the agent to log it")
        d2 = user_dir(a, "agent-kc2")
        code, _, err = finish(start(agent, a, ["true"], d2))
        check(code == 0 and record(d2)["complete"], f"the agent still serves: {err}")
        check(agent.stop() == 0, f"bsandboxd exits 0 on SIGTERM: {agent.text()}")


@agent_check
def kill_agent_mid_job():
    need_root()
    a = test_user()
    d, d2 = user_dir(a, "agent-ka"), user_dir(a, "agent-ka2")
    with Agent() as agent:
        p1 = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 60 & echo $! > child; wait"], d)
        p2 = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 60"], d2)
        pids = [read_pid(f"{d}/pid"), read_pid(f"{d}/child"), read_pid(f"{d2}/pid")]
        agent.proc.kill()
        agent.proc.wait()
        wait_for(lambda: not any(alive(x) for x in pids), "every job process to be killed")
        for p in (p1, p2):
            code, _, err = finish(p)
            check(code == 125, f"the client fails: exit {code}")
            check("agent closed the connection before the job finished" in err, f"clear error: {err!r}")
        wait_for(lambda: not any(alive(x) for x in pids), "nothing left")
    # A new agent on the same socket starts (the dead one's socket and cgroups
    # are cleaned up) and serves.
    restarted = subprocess.Popen([BSANDBOXD, "--foreground", "--socket", agent.socket, "--mode", "0666"],
                                 stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.exists(agent.socket) and subprocess.run(
            [BSANDBOX, "agent", "status", f"--agent={agent.socket}"], capture_output=True).returncode == 0,
            "the restarted agent")
        d3 = user_dir(a, "agent-ka3")
        code, _, err = finish(start(agent, a, ["true"], d3))
        check(code == 0 and record(d3)["complete"], f"the restarted agent serves: {err}")
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
    check(restarted.returncode == 0, "the restarted agent exits 0")


@agent_check
def twenty_jobs_at_once():
    need_root()
    a = test_user()
    with Agent("--max-jobs", "20", "--max-jobs-per-user", "20") as agent:
        runs = []
        for i in range(20):
            d = user_dir(a, f"agent-20-{i}")
            write(f"{d}/in{i}", f"{i}\n")
            give(d, a)
            runs.append((i, d, start(agent, a, ["sh", "-c", f"sleep 0.5; cat in{i} > out{i}; ls > list{i}"], d)))
        for i, d, p in runs:
            code, _, err = finish(p)
            check(code == 0, f"job {i} exited {code}: {err}")
            rec = record(d)
            check(rec["complete"] and rec["lost_events"] == 0, f"job {i}'s record is complete")
            mine = {x for x in paths_of(rec) if "/bsandbox-agent-20-" in x}
            check(f"{d}/in{i}" in mine and f"{d}/out{i}" in mine, f"job {i} has its own files")
            check(all(x == d or x.startswith(d + "/") for x in mine), f"job {i} has only its own files: {mine}")
            check(len(rec["processes"]) == 4, f"job {i}: sh, sleep, cat, ls; got {len(rec['processes'])}")
        check("20 running" not in status(agent), "all done")


@agent_check
def queue_and_limits():
    need_root()
    a = test_user()
    with Agent("--max-jobs", "1", "--max-queued", "1", "--time-limit", "2", "--max-processes", "16") as agent:
        d1, d2, d3 = (user_dir(a, f"agent-q{i}") for i in range(3))
        p1 = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 30"], d1)
        read_pid(f"{d1}/pid")
        p2 = start(agent, a, ["sh", "-c", "echo second"], d2, "-v")
        wait_for(lambda: "1 queued" in status(agent), "the second job to queue")
        p3 = start(agent, a, ["true"], d3)
        code, _, err = finish(p3)
        check(code == 125 and "queue is full" in err, f"a third is refused: exit {code} {err!r}")
        code, _, err = finish(p1)
        check(code == 128 + signal.SIGKILL, f"the wall time limit kills the first: exit {code}")
        check("wall time limit of 2 s" in err, f"and says so: {err!r}")
        code, out, err = finish(p2)
        check(code == 0 and out == "second\n", f"the queued job then runs: {code} {out!r} {err!r}")
        check("waits for a free slot (0 queued ahead" in err, f"-v says it queued: {err!r}")
        # The process limit (cgroup pids.max) holds a fork storm.
        d4 = user_dir(a, "agent-q4")
        code, _, err = finish(start(agent, a, ["sh", "-c", "for i in $(seq 40); do sleep 1 & done; wait"], d4))
        rec = record(d4)
        sleeps = [p for p in rec["processes"] if p["argv"][:1] == ["sleep"]]
        check(len(sleeps) <= 15, f"with sh, at most 16 processes at once: {len(sleeps)} sleeps ran")
        check("fork" in err.lower(), f"the shell could not fork: {err!r}")


def raw_request(agent, payload, fds=(), shut=True):
    """Sends bytes (and fds) on a fresh connection; returns what came back
    before the agent closed it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(agent.socket)
    if fds:
        socket.send_fds(s, [payload[:1]], list(fds))
        s.sendall(payload[1:])
    else:
        s.sendall(payload)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def field(number, data):
    """A protobuf length-delimited field."""
    def varint(n):
        b = b""
        while n > 0x7F:
            b += bytes([n & 0x7F | 0x80])
            n >>= 7
        return b + bytes([n])
    return varint(number << 3 | 2) + varint(len(data)) + data


def framed(body):
    return struct.pack("<I", len(body)) + body


def error_of(reply):
    check(len(reply) >= 4, f"an error reply, got {reply!r}")
    n = struct.unpack("<I", reply[:4])[0]
    body = reply[4:4 + n]
    check(body[:1] == b"\x32", f"the reply is an Error: {body!r}")  # Reply.error = 6
    return body.decode(errors="replace")


@agent_check
def malformed_messages():
    need_root()
    with Agent() as agent:
        cwd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        submit_true = field(1, field(1, b"true"))  # Request.submit{argv: "true"}, no cwd fd attached
        cases = {
            "garbage": (framed(b"\xff\xff\xff\xff\x0f"), (), "does not parse"),
            "oversized": (struct.pack("<I", 0x7FFFFFFF) + b"x" * 100, (), "larger than the limit"),
            "truncated": (struct.pack("<I", 1000) + b"x" * 10, (), "cut short"),
            "no descriptors": (framed(submit_true), (), "descriptors"),
            "empty request": (framed(b""), (), "asks for nothing"),
            "NUL in argv": (framed(field(1, field(1, b"tr\0ue"))), (cwd,), "NUL"),
            "not NAME=VALUE": (framed(field(1, field(1, b"true") + field(2, b"novalue"))), (cwd,), "NAME=VALUE"),
            "cwd not a directory": (framed(field(1, field(1, b"true"))), (os.open("/etc/hostname", os.O_RDONLY),),
                                    "not a directory"),
        }
        for name, (payload, fds, expect) in cases.items():
            text = error_of(raw_request(agent, payload, fds))
            check(expect in text, f"{name}: the error says {expect!r}: {text!r}")
        # A client that sends nothing and hangs up is simply gone.
        check(raw_request(agent, b"") == b"", "an empty connection gets nothing")
        # The regression corpus (the fuzzer's finds and seeds) never kills the agent.
        corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")
        for entry in sorted(os.listdir(corpus)):
            with open(os.path.join(corpus, entry), "rb") as f:
                raw_request(agent, f.read())
        check(agent.proc.poll() is None, "the agent survived every malformed message")
        a = test_user()
        d = user_dir(a, "agent-mal")
        code, _, err = finish(start(agent, a, ["true"], d))
        check(code == 0, f"and still serves: {err}")


@agent_check
def sigterm_drains():
    need_root()
    a = test_user()
    d1, d2 = user_dir(a, "agent-d1"), user_dir(a, "agent-d2")
    with Agent("--drain-timeout", "30") as agent:
        p = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 1; echo done > result"], d1)
        read_pid(f"{d1}/pid")
        agent.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not os.path.exists(agent.socket), "the socket to go (no new jobs)")
        code, _, err = finish(p)
        check(code == 0 and open(f"{d1}/result").read() == "done\n", f"the running job finished: {code} {err}")
        check(record(d1)["complete"], "and its record was written")
        check(agent.proc.wait(timeout=30) == 0, f"then the agent exits 0: {agent.text()}")
    with Agent("--drain-timeout", "1") as agent:
        p = start(agent, a, ["sh", "-c", "echo $$ > pid; sleep 60"], d2)
        pid = read_pid(f"{d2}/pid")
        agent.proc.send_signal(signal.SIGTERM)
        code, _, err = finish(p)
        check(code == 128 + signal.SIGKILL, f"past the drain timeout the job is killed: exit {code}")
        check("the agent is shutting down" in err, f"and the caller is told why: {err!r}")
        check(record(d2)["processes"][0]["pid"] == pid, "its record was written")
        check(not alive(pid), "nothing left")
        check(agent.proc.wait(timeout=30) == 0, "the agent exits 0")


@agent_check
def who_may_connect():
    need_root()
    a, b = test_user(), test_user(SECOND_USER)
    group = "bsandbox-e2e-agent"
    if subprocess.run(["getent", "group", group], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", group], check=True)
    import grp
    gid = grp.getgrnam(group).gr_gid
    with Agent("--group", group, mode="0660") as agent:
        st = os.stat(agent.socket)
        check(st.st_gid == gid and st.st_mode & 0o777 == 0o660, "the socket has the group and mode")
        d = user_dir(a, "agent-g")
        ok = subprocess.run([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "true"], cwd=d,
                            capture_output=True, user=a[0], group=a[1], extra_groups=[gid])
        check(ok.returncode == 0, f"a member of the group may: {ok.stderr!r}")
        no = subprocess.run([BSANDBOX, "exec", f"--agent={agent.socket}", "--", "true"], cwd=d,
                            capture_output=True, user=b[0], group=b[1], extra_groups=[])
        err = no.stderr.decode()
        check(no.returncode == 125 and "not allowed to connect" in err and len(err.splitlines()) == 1,
              f"another user may not, in one line: {err!r}")
        # auto for a non-root user: the agent if reachable, else ptrace.
        env = dict(os.environ, BSANDBOX_AGENT=agent.socket)
        auto = subprocess.run([BSANDBOX, "exec", "-v", "--", "true"], cwd=d, capture_output=True, env=env,
                              user=a[0], group=a[1], extra_groups=[gid])
        err = auto.stderr.decode()
        check("through bsandboxd" in err and "via bsandboxd" in err, f"auto uses the agent: {err!r}")
        auto = subprocess.run([BSANDBOX, "exec", "-v", "--", "true"], cwd=d, capture_output=True, env=env,
                              user=b[0], group=b[1], extra_groups=[])
        err = auto.stderr.decode()
        check(auto.returncode == 0 and "backend ptrace" in err and "not using the agent" in err,
              f"auto falls back to ptrace and says why: {err!r}")


@agent_check
def bad_agent_input():
    need_root()
    p = subprocess.run([BSANDBOXD, "--frobnicate"], capture_output=True)
    check(p.returncode == 2 and p.stderr.decode().startswith("bsandboxd: error: unknown option"), f"{p.stderr!r}")
    p = subprocess.run([BSANDBOXD, "--buffer-size", "1000"], capture_output=True)
    check(p.returncode == 2 and b"power of two" in p.stderr, f"{p.stderr!r}")
    a = test_user()
    p = subprocess.run([BSANDBOXD, "--foreground", "--socket", "/tmp/x.sock"], capture_output=True,
                       user=a[0], group=a[1], extra_groups=[])
    check(p.returncode == 1 and b"runs as root" in p.stderr and len(p.stderr.splitlines()) == 1, f"{p.stderr!r}")
    with Agent() as agent:
        p = subprocess.run([BSANDBOXD, "--foreground", "--socket", agent.socket], capture_output=True, timeout=60)
        check(p.returncode == 1 and b"another bsandboxd" in p.stderr, f"one agent per socket: {p.stderr!r}")
        check(agent.proc.poll() is None, "the first one is unharmed")
    gone = os.path.join(fresh_dir("agent-none"), "none.sock")
    p = subprocess.run([BSANDBOX, "exec", f"--agent={gone}", "--", "true"], capture_output=True)
    check(p.returncode == 125 and b"no bsandboxd is listening" in p.stderr, f"{p.stderr!r}")
    p = subprocess.run([BSANDBOX, "agent", "status", f"--agent={gone}"], capture_output=True)
    check(p.returncode == 125 and b"no bsandboxd is listening" in p.stderr, f"{p.stderr!r}")


@agent_check
def systemd_unit_verifies():
    need_root()
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        skip("systemd-analyze is not installed")
    unit = os.path.join(os.path.dirname(BSANDBOXD), "bsandboxd.service")
    d = fresh_dir("agent-unit")
    text = open(unit).read()
    check("ExecStart=" in text and "--foreground" in text, "the unit runs the agent in the foreground")
    # Verified as installed: ExecStart must name an executable that exists.
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    installed = exec_line.split("=", 1)[1].split()[0]
    with open(os.path.join(d, "bsandboxd.service"), "w") as f:
        f.write(text.replace(installed, BSANDBOXD))
    p = subprocess.run([analyze, "verify", os.path.join(d, "bsandboxd.service")], capture_output=True)
    out = (p.stdout + p.stderr).decode(errors="replace")
    check(p.returncode == 0, f"systemd-analyze verify: {out}")
    check("bsandboxd.service" not in out, f"no complaint about the unit: {out}")


@agent_check
def cache_wrapper_borrows_the_jobs_tracer():
    need_root()
    a = test_user()
    d = user_dir(a, "agent-cache")
    write(f"{d}/in", "x\n")
    os.makedirs(f"{d}/cache")
    give(d, a)
    env = dict(os.environ, BSANDBOX_CACHE=f"{d}/cache", BSANDBOX_VERBOSE="1")
    wrap = os.path.join(os.path.dirname(BSANDBOX), "bsandbox-wrap")
    with Agent() as agent:
        for attempt, word in ((1, "cached the result"), (2, "cache hit")):
            code, _, err = finish(start(agent, a, [wrap, "sh", "-c", "cat in > out"], d, env=env))
            check(code == 0 and word in err, f"run {attempt}: {word!r} expected: {err!r}")
        # The outer record shows the wrapper; the hit restored the output.
        check(open(f"{d}/out").read() == "x\n", "the output is there")
        code, _, err = finish(start(agent, a, ["sh", "-c", "cat in > out2"], d, "--cache=" + f"{d}/cache"))
        code, _, err = finish(start(agent, a, ["sh", "-c", "cat in > out2"], d, "--cache=" + f"{d}/cache", "-v"))
        check(code == 0 and "cache hit" in err, f"exec --agent --cache hits too: {err!r}")


def http_get(url):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except (urllib.error.URLError, ConnectionError):
        return 0, ""  # not listening (yet)


def metric_names(text):
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


@agent_check
def metrics_prometheus_and_grafana():
    need_root()
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if not promtool or not prometheus:
        skip("promtool and prometheus are not installed (Debian package prometheus)")
    a = test_user()
    port = free_port()
    with Agent("--metrics", f"127.0.0.1:{port}", "--bpf-stats") as agent:
        for i in range(2):
            d = user_dir(a, f"agent-m{i}")
            code, _, err = finish(start(agent, a, ["sh", "-c", "cat /etc/hostname"], d))
            check(code == 0, f"job {i}: {err}")
        status, text = http_get(f"http://127.0.0.1:{port}/metrics")
        check(status == 200, f"GET /metrics: {status}")
        lint = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True)
        check(lint.returncode == 0, f"promtool check metrics: {lint.stdout!r} {lint.stderr!r}")
        check("bsandboxd_jobs_finished_total 2\n" in text, f"two jobs finished: {text[:600]}")
        check("bsandboxd_bpf_program_stats_enabled 1\n" in text, "program stats on with --bpf-stats")
        check('bsandboxd_bpf_program_runs_total{program="bs_sys_exit"} 0\n' not in text, "bs_sys_exit ran")
        check(http_get(f"http://127.0.0.1:{port}/other")[0] == 404, "other paths: 404")
        # Every query of the Grafana dashboard names metrics the agent exports.
        dashboard = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cli", "bsandboxd.grafana.json")
        with open(dashboard) as f:
            board = json.load(f)
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        check(len(exprs) >= 10, "the dashboard has its panels")
        exported = metric_names(text)
        for e in exprs:
            for name in re.findall(r"bsandboxd_[a-z_]+", e):
                check(name in exported, f"the dashboard's {name} (in {e!r}) is exported")
        used = {n for e in exprs for n in re.findall(r"bsandboxd_[a-z_]+", e)}
        check(used == exported, f"and every exported metric is plotted: {sorted(exported - used)}")
        # A real Prometheus scrapes the agent; a query returns the job count.
        d = fresh_dir("prometheus")
        web = free_port()
        with open(f"{d}/prometheus.yml", "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bsandboxd\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        server = subprocess.Popen([prometheus, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                                   f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL,
                                  stderr=open(f"{d}/log", "wb"))
        try:
            import urllib.parse
            query = urllib.parse.quote("bsandboxd_jobs_finished_total")
            got = []

            def answered():
                status, body = http_get(f"http://127.0.0.1:{web}/api/v1/query?query={query}")
                if status != 200:
                    return False
                result = json.loads(body)["data"]["result"]
                got[:] = [r["value"][1] for r in result]
                return got == ["2"]
            wait_for(answered, "Prometheus to scrape the agent and answer 2", timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=30)
    p = subprocess.run([BSANDBOXD, "--foreground", "--metrics", "0.0.0.0:9", "--socket", "/tmp/none.sock"],
                       capture_output=True, timeout=60)
    check(p.returncode == 1 and b"loopback address only" in p.stderr, f"not on the network: {p.stderr!r}")


def remote_cache_series(text):
    """{uid: {count: value}} of /metrics' bsandboxd_remote_cache_COUNT_total samples."""
    out = {}
    for m in re.finditer(r'^bsandboxd_remote_cache_([a-z_]+)_total\{uid="([0-9a-z]+)"\} (\d+)$', text, re.M):
        out.setdefault(m.group(2), {})[m.group(1)] = int(m.group(3))
    return out


def format_size(n):
    """base/text.h's format_size, as `bsandbox cache stats` shows bytes."""
    v, u = float(n), 0
    while v >= 1024 and u < 4:
        v /= 1024
        u += 1
    return f"{v:.0f} B" if u == 0 else f"{v:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][u]}"


def user_cache_stats(owner, cache_dir):
    """`bsandbox cache stats` of owner's cache as {count: number}, bytes as
    the text it shows ("2.3 KiB")."""
    p = subprocess.run([BSANDBOX, "cache", "stats", f"--cache={cache_dir}"], capture_output=True, text=True,
                       timeout=60, user=owner[0], group=owner[1], extra_groups=[])
    check(p.returncode == 0, f"cache stats: {p.stderr}")
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"remote (hits|misses|uploads|errors|prefetch)\s+(\d+)", line)
        if m:
            out[m.group(1).replace("prefetch", "prefetched")] = int(m.group(2))
        m = re.match(r"remote traffic\s+(.+) down, (.+) up$", line)
        if m:
            out["bytes_down"], out["bytes_up"] = m.group(1), m.group(2)
    check(len(out) == 7, f"cache stats shows the remote counts: {p.stdout}")
    return out


@agent_check
def remote_cache_counted_per_user():
    """A's jobs use a remote cache (loopback nginx) through their
    environment, the wrapper's way and exec --cache's: a cold run (a miss,
    an upload) then warm ones from other empty local caches (fetched ahead
    from the cold build's manifest; with fetching ahead off, remote hits),
    each with bytes down. /metrics counts each run's traffic under A's uid
    exactly as A's cache stats count it; B, whose job used no remote, has
    no series."""
    need_root()
    if not shutil.which("nginx"):
        skip("nginx is not installed")
    from nginx import Nginx
    a, b = test_user(), test_user(SECOND_USER)
    n = Nginx()
    port = free_port()
    wrap = os.path.join(os.path.dirname(BSANDBOX), "bsandbox-wrap")
    # Without bsandbox's variables (the test's own) or pyenv's (which the cache keys).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BSANDBOX_", "PYENV_"))}
    env["BSANDBOX_CACHE_REMOTE"] = n.url
    d = user_dir(a, "agent-rc")
    write(f"{d}/in", "remote\n")
    give(d, a)
    with Agent("--metrics", f"127.0.0.1:{port}") as agent:
        def series():
            status, text = http_get(f"http://127.0.0.1:{port}/metrics")
            check(status == 200, f"GET /metrics: {status}")
            return remote_cache_series(text)

        check(series() == {}, "no series before anyone reports")
        expected = {k: 0 for k in ("hits", "misses", "uploads", "bytes_down", "bytes_up", "errors", "prefetched")}

        def run(what, cache, output, argv, *extra, prefetch="yes"):
            """One job of A's with a fresh local cache; /metrics must then
            say what that cache's stats say, added to A's earlier runs'."""
            if os.path.exists(f"{d}/{output}"):
                os.unlink(f"{d}/{output}")  # its absence is an input
            before = series().get(str(a[0]), dict(expected))
            job_env = dict(env, BSANDBOX_CACHE=f"{d}/{cache}", BSANDBOX_CACHE_REMOTE_PREFETCH=prefetch)
            code, _, err = finish(start(agent, a, argv, d, *extra, env=job_env))
            check(code == 0 and open(f"{d}/{output}").read() == "remote\n", f"{what}: exit {code}: {err}")
            n.settle()
            got = series()
            mine = got.get(str(a[0]))
            check(mine is not None, f"{what}: A's uid has series: {got}")
            grown = {k: mine[k] - before[k] for k in mine}
            stats = user_cache_stats(a, f"{d}/{cache}")
            for k in ("hits", "misses", "uploads", "errors", "prefetched"):
                check(grown[k] == stats[k], f"{what}: /metrics counted {grown[k]} {k}, A's cache {stats[k]}: {grown}")
            for k in ("bytes_down", "bytes_up"):
                check(format_size(grown[k]) == stats[k], f"{what}: {k} {grown[k]} is A's cache's {stats[k]}")
            check(set(got) == {str(a[0])}, f"{what}: only A's uid has series: {got}")
            print(f"{what}: {grown}")
            return grown

        # The build waits a second before its wrapper, so that fetching
        # ahead (a warm build's prefetcher, not waited for at its end) is
        # done before the build reports.
        build = ["sh", "-c", f"sleep 1; {wrap} sh -c 'cat in > out'"]
        cold = run("cold wrapper run", "cache1", "out", build)
        check(cold["misses"] >= 1 and cold["uploads"] >= 1 and cold["bytes_up"] > 0 and cold["hits"] == 0,
              f"the cold run missed and uploaded: {cold}")
        warm = run("warm wrapper run", "cache2", "out", build)
        check(warm["prefetched"] >= 1 and warm["bytes_down"] > 0 and warm["misses"] == 0 and warm["uploads"] == 0,
              f"the warm run fetched the cold one's entry ahead: {warm}")
        warm = run("warm wrapper run, no fetching ahead", "cache2b", "out", build, prefetch="no")
        check(warm["hits"] >= 1 and warm["bytes_down"] > 0 and warm["misses"] == 0 and warm["prefetched"] == 0,
              f"the warm run hit on the remote: {warm}")
        # exec --cache itself (a hit ends before the agent is asked: reported all the same).
        cold = run("cold exec --cache", "cache3", "out3", ["sh", "-c", "cat in > out3"], f"--cache={d}/cache3")
        check(cold["misses"] >= 1 and cold["uploads"] >= 1, f"exec --cache's cold run: {cold}")
        warm = run("warm exec --cache", "cache4", "out3", ["sh", "-c", "cat in > out3"], f"--cache={d}/cache4",
                   prefetch="no")
        check(warm["hits"] >= 1 and warm["bytes_down"] > 0, f"exec --cache's warm run hit: {warm}")
        # B's job, with no remote: A's counts stay A's, B gets none.
        db = user_dir(b, "agent-rc-b")
        before = series()
        code, _, err = finish(start(agent, b, ["true"], db))
        check(code == 0, f"B's job: {err}")
        check(series() == before, f"B's job changed no remote cache series: {series()}")
        total = before[str(a[0])]
        text = status(agent, a)
        check(f"remote cache (as clients reported): {total['hits']} hits, {total['misses']} misses, "
              f"{total['prefetched']} fetched ahead, {total['uploads']} uploads" in text,
              f"agent status shows the totals:\n{text}")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
