#!/usr/bin/env python3
"""micro.py: bsandbox's costs measured side by side, in one run.

  bench/micro.py BUILD_DIR [--rounds N]

1. Cost to processes OUTSIDE the traced tree: ns per open+close and per
   getppid (a syscall bsandbox does not trace, but whose exit its program
   still sees) with nothing attached, with an empty program on the same
   tracepoint (the floor for any syscall-tracepoint tracer), and while
   bsandbox traces another command. Rounds rotate the three.
2. Cost per traced event: open+close bare vs as the traced command.
3. Event storm: P processes opening as fast as they can; events/s and loss at
   the default buffer, then smaller buffers, to show where loss begins.
4. The supervisor's memory and CPU for a million events on one path and on a
   million distinct paths.

The loop runs on CPU 1 and everything else on CPU 0, so the numbers are the
traced process's own costs. After each attach and detach the script waits a
few seconds: freeing a BPF program starts an RCU grace period during which
syscall tracepoints are measurably slower for every process, which would
otherwise be charged to the next measurement. Prints Markdown. Needs root.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

SETTLE = 3.0


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu), *argv]


def ns_per_op(openloop, mode, n, path, wrap=()):
    out = subprocess.run([*wrap, *pinned(1, [openloop, mode, str(n), path])],
                         capture_output=True, check=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def supervisor_report(stderr):
    m = re.search(r"peak RSS (\d+) MiB \(heap (\d+) MiB\), CPU ([\d.]+) s user \+ ([\d.]+) s system", stderr)
    if not m:
        return None
    return int(m[1]), int(m[2]), float(m[3]) + float(m[4])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 7
    bsandbox = f"{build}/cli/bsandbox"
    openloop = f"{build}/bench/openloop"
    storm = f"{build}/bench/storm"
    floor = f"{build}/bench/floor"
    work = tempfile.mkdtemp(prefix="bsandbox-bench-")
    target = f"{work}/f"
    open(target, "w").close()
    n_open, n_pid = 300000, 3000000
    m = statistics.median
    report = []

    # 1. Outside the tree.
    results = {k: ([], []) for k in ("none", "floor", "bsandbox")}
    for r in range(rounds):
        for k in ("none", "floor", "bsandbox")[r % 3:] + ("none", "floor", "bsandbox")[:r % 3]:
            attached = None
            if k == "floor":
                attached = subprocess.Popen(pinned(0, [floor]))
            elif k == "bsandbox":
                attached = subprocess.Popen(pinned(0, [bsandbox, "exec", "-q", "--", "sleep", "600"]))
            time.sleep(SETTLE)
            results[k][0].append(ns_per_op(openloop, "open", n_open, target))
            results[k][1].append(ns_per_op(openloop, "getppid", n_pid, target))
            if attached:
                attached.terminate()
                attached.wait()
    none_o, none_p = m(results["none"][0]), m(results["none"][1])
    report.append("### Cost to processes outside the traced tree\n")
    report.append(f"Medians of {rounds} rotating rounds: `openloop open {n_open}` and `openloop getppid {n_pid}` "
                  "on CPU 1, outside any traced tree, with nothing attached, with an empty program on "
                  "`tp_btf/sys_exit` (`bench/floor`: the kernel's own cost of running any program there), "
                  "and while `bsandbox exec -- sleep 600` runs on CPU 0.\n")
    report.append("| attached | open+close | added | getppid | added |")
    report.append("|---|---|---|---|---|")
    for k, label in (("none", "nothing"), ("floor", "empty sys_exit program"), ("bsandbox", "bsandbox")):
        o, p = m(results[k][0]), m(results[k][1])
        report.append(f"| {label} | {o:.0f} ns | {o - none_o:+.0f} ns | {p:.0f} ns | {p - none_p:+.0f} ns |")
    report.append("")

    # 2. Inside the tree.
    bare, traced = [], []
    for _ in range(rounds):
        bare.append(ns_per_op(openloop, "open", n_open, target))
        traced.append(ns_per_op(openloop, "open", n_open, target,
                                wrap=pinned(0, [bsandbox, "exec", "-q", "--"])))
        time.sleep(SETTLE)
    report.append("### Cost per traced event\n")
    report.append(f"`openloop open {n_open}` on CPU 1, bare and as the traced command (supervisor on CPU 0), "
                  f"{rounds} alternating rounds; medians. Each open+close is one event (close is not traced "
                  "but pays the tracepoint's fixed cost and the io_uring seccomp filter).\n")
    report.append("| | bare | under bsandbox | added per open+close |")
    report.append("|---|---|---|---|")
    report.append(f"| open+close | {m(bare):.0f} ns | {m(traced):.0f} ns | {m(traced) - m(bare):+.0f} ns |\n")

    # 3. Throughput and loss.
    report.append("### Event storm: throughput and loss\n")
    report.append("`storm P N DIR`: P processes each open+close one file N times as fast as they can (2 CPUs "
                  "shared by the storm and the supervisor), under `bsandbox exec --json`. Events/s is the "
                  "storm's opens per second; lost is the record's `lost_events`.\n")
    report.append("| buffer | processes | events | events/s | lost | complete |")
    report.append("|---|---|---|---|---|---|")
    per_proc = 500000
    for buf, procs in [("16M", 1), ("16M", 2), ("16M", 4), ("4M", 4), ("1M", 4), ("512K", 4),
                       ("256K", 4), ("64K", 4)]:
        out = f"{work}/storm.json"
        p = subprocess.run([bsandbox, "exec", "--buffer-size", buf, "--json", out, "--",
                            storm, str(procs), str(per_proc), work], capture_output=True, text=True)
        rate = int(p.stdout.strip().splitlines()[-1])
        rec = json.load(open(out))
        report.append(f"| {buf}{' (default)' if buf == '16M' else ''} | {procs} | {procs * per_proc:,} | "
                      f"{rate:,} | {rec['lost_events']:,} | {rec['complete']} |")
        time.sleep(SETTLE)
    report.append("")

    # 4. Memory and CPU of the supervisor.
    report.append("### Supervisor memory and CPU\n")
    report.append("`bsandbox exec -v --json` on `storm 2 500000` (10^6 events). Peak RSS includes the 16 MiB "
                  "ring buffer, which is mapped twice, and libbpf's parse of the kernel's BTF at load; heap "
                  "is the anonymous memory while the record's JSON is still in memory. CPU is the "
                  "supervisor's, BPF load included.\n")
    report.append("| events | distinct paths | peak RSS | heap | supervisor CPU | per event |")
    report.append("|---|---|---|---|---|---|")
    base = subprocess.run([bsandbox, "exec", "-v", "--json", f"{work}/t.json", "--", "true"],
                          capture_output=True, text=True)
    _, _, base_cpu = supervisor_report(base.stderr)
    for distinct in (False, True):
        d = tempfile.mkdtemp(dir=work)
        open(f"{d}/f", "w").close()
        args = [storm, "2", "500000", d] + (["distinct"] if distinct else [])
        p = subprocess.run([bsandbox, "exec", "-v", "--json", f"{d}.json", "--", *args],
                           capture_output=True, text=True)
        rss, heap, cpu = supervisor_report(p.stderr)
        per = (cpu - base_cpu) / 1e6 * 1e9
        report.append(f"| 1,000,000 | {'1,000,000' if distinct else '1'} | {rss} MiB | {heap} MiB | "
                      f"{cpu:.2f} s | {per:.0f} ns |")
        subprocess.run(["rm", "-rf", d, f"{d}.json"])
        time.sleep(SETTLE)
    report.append("")
    subprocess.run(["rm", "-rf", work])
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
