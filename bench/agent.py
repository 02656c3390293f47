#!/usr/bin/env python3
"""agent.py: what going through bsandboxd costs (BENCHMARKS.md section 9).

  bench/agent.py [ROUNDS] [BUILD]      (as root; default 60 rounds, build/)

1. Start latency of a trivial job (`true`), the ways side by side and
   interleaved round by round (these machines are noisy):
     bare            true, no bsandbox
     exec-root       bsandbox exec -- true as root (loads the BPF programs)
     agent-user      bsandbox exec --agent -- true as an unprivileged user
     ptrace-user     bsandbox exec --backend=ptrace -- true as that user
   Reported: median and p90 wall time, and agent-user minus exec-root (the
   issue's "added latency", target <= 5 ms).
2. Throughput: 100 short jobs (`sh -c 'cat /etc/hostname'`) back to back
   through the agent, one client at a time, then 4 clients at once.
"""
import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
BUILD = sys.argv[2] if len(sys.argv) > 2 else "build"
BSANDBOX = os.path.abspath(f"{BUILD}/cli/bsandbox")
BSANDBOXD = os.path.abspath(f"{BUILD}/cli/bsandboxd")
USER = "bsandbox-e2e"


def user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def timed(cmd, as_user=None):
    kw = dict(user=as_user.pw_uid, group=as_user.pw_gid, extra_groups=[]) if as_user else {}
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/tmp", **kw)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd} failed: {p.stderr.decode()}")
    return dt


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs) * 1000, xs[int(len(xs) * 0.9)] * 1000


def main():
    if os.geteuid() != 0:
        sys.exit("bench/agent.py runs as root")
    u = user()
    d = tempfile.mkdtemp(prefix="bsandbox-bench-agent-")
    os.chmod(d, 0o755)
    sock = f"{d}/agent.sock"
    agent = subprocess.Popen([BSANDBOXD, "--foreground", "--socket", sock, "--mode", "0666", "--max-jobs", "4"],
                             stderr=open(f"{d}/agent.log", "wb"))
    while not os.path.exists(sock):
        time.sleep(0.01)
    try:
        ways = {
            "bare": (["true"], None),
            "exec-root": ([BSANDBOX, "exec", "-q", "--", "true"], None),
            "agent-user": ([BSANDBOX, "exec", "-q", f"--agent={sock}", "--", "true"], u),
            "ptrace-user": ([BSANDBOX, "exec", "-q", "--backend=ptrace", "--", "true"], u),
        }
        times = {k: [] for k in ways}
        for _ in range(3):  # warm caches
            for cmd, who in ways.values():
                timed(cmd, who)
        for _ in range(ROUNDS):
            for k, (cmd, who) in ways.items():
                times[k].append(timed(cmd, who))
        print(f"start latency of `true`, {ROUNDS} interleaved rounds (ms):")
        med = {}
        for k, xs in times.items():
            m, p90 = stats(xs)
            med[k] = m
            print(f"  {k:12s} median {m:7.2f}  p90 {p90:7.2f}")
        print(f"  agent-user - exec-root: {med['agent-user'] - med['exec-root']:+.2f} ms; "
              f"agent-user - bare: {med['agent-user'] - med['bare']:+.2f} ms")

        job = [BSANDBOX, "exec", "-q", f"--agent={sock}", "--", "sh", "-c", "cat /etc/hostname"]
        t = time.perf_counter()
        for _ in range(100):
            timed(job, u)
        serial = 100 / (time.perf_counter() - t)
        t = time.perf_counter()
        procs = []
        for i in range(100):
            procs.append(subprocess.Popen(job, stdout=subprocess.DEVNULL, cwd="/tmp", user=u.pw_uid,
                                          group=u.pw_gid, extra_groups=[]))
            if len(procs) >= 4:
                procs.pop(0).wait()
        for p in procs:
            p.wait()
        parallel = 100 / (time.perf_counter() - t)
        print(f"100 short jobs through the agent: {serial:.1f} jobs/s one at a time, {parallel:.1f} jobs/s "
              "with 4 clients at once")
    finally:
        agent.terminate()
        agent.wait()


if __name__ == "__main__":
    main()
