#!/usr/bin/env python3
"""micro.py: bsandbox's costs measured side by side, in one run.

  bench/micro.py BUILD_DIR [--rounds N]

1. Untraced cost: ns per open+close (and per getppid) of a process OUTSIDE
   the traced tree, with no bsandbox running vs while bsandbox traces another
   command. Rounds alternate the two so machine noise hits both.
2. Traced cost: ns per open+close inside the tree, bare vs under bsandbox.
3. Event throughput: P processes opening as fast as they can under bsandbox
   at the default buffer; events/s delivered and lost. Then smaller buffers,
   to show where loss begins.
4. Memory: the supervisor's peak RSS for a million events on one path, and
   for a million distinct paths.

Prints a Markdown report. Needs root.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, check=True, text=True, **kw)


def ns_per_op(openloop, mode, n, path, wrap=()):
    out = sh([*wrap, openloop, mode, str(n), path]).stdout.strip().splitlines()
    return float(out[-1])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 7
    bsandbox = f"{build}/cli/bsandbox"
    openloop = f"{build}/bench/openloop"
    storm = f"{build}/bench/storm"
    work = tempfile.mkdtemp(prefix="bsandbox-bench-")
    target = f"{work}/f"
    open(target, "w").close()
    n_open, n_pid = 200000, 2000000
    report = []

    # 1. Untraced processes, with and without bsandbox running.
    base_open, busy_open, base_pid, busy_pid = [], [], [], []
    for _ in range(rounds):
        base_open.append(ns_per_op(openloop, "open", n_open, target))
        base_pid.append(ns_per_op(openloop, "getppid", n_pid, target))
        tracer = subprocess.Popen([bsandbox, "exec", "-q", "--", "sleep", "600"])
        time.sleep(1.0)  # loaded and attached
        busy_open.append(ns_per_op(openloop, "open", n_open, target))
        busy_pid.append(ns_per_op(openloop, "getppid", n_pid, target))
        tracer.terminate()
        tracer.wait()
    m = statistics.median
    report.append("### Cost to processes outside the traced tree\n")
    report.append(f"{rounds} alternating rounds; medians. `openloop open {n_open}` and "
                  f"`openloop getppid {n_pid}` run outside the tree while `bsandbox exec -- sleep 600` runs.\n")
    report.append("| operation | no bsandbox | bsandbox tracing another tree | added |")
    report.append("|---|---|---|---|")
    report.append(f"| open+close | {m(base_open):.0f} ns | {m(busy_open):.0f} ns | "
                  f"{m(busy_open) - m(base_open):+.0f} ns |")
    report.append(f"| getppid (not a file syscall) | {m(base_pid):.0f} ns | {m(busy_pid):.0f} ns | "
                  f"{m(busy_pid) - m(base_pid):+.0f} ns |\n")

    # 2. Traced: inside the tree.
    bare, traced = [], []
    for _ in range(rounds):
        bare.append(ns_per_op(openloop, "open", n_open, target))
        traced.append(ns_per_op(openloop, "open", n_open, target, wrap=(bsandbox, "exec", "-q", "--")))
    report.append("### Cost per traced event\n")
    report.append(f"`openloop open {n_open}` bare and as the traced command, {rounds} alternating rounds; medians "
                  "(each open+close is one event).\n")
    report.append("| | bare | under bsandbox | added per event |")
    report.append("|---|---|---|---|")
    report.append(f"| open+close | {m(bare):.0f} ns | {m(traced):.0f} ns | {m(traced) - m(bare):+.0f} ns |\n")

    # 3. Throughput and loss.
    report.append("### Event storm: throughput and loss\n")
    report.append("`storm P N DIR`: P processes each open+close one file N times as fast as they can, "
                  "under `bsandbox exec --json`. Events/s is opens per second of the storm; lost is "
                  "the record's `lost_events`.\n")
    report.append("| buffer | processes | opens | storm events/s | lost | complete | supervisor peak RSS |")
    report.append("|---|---|---|---|---|---|---|")
    configs = [("16M", 1), ("16M", 2), ("16M", 4), ("4M", 4), ("1M", 4), ("256K", 4), ("64K", 4)]
    per_proc = 500000
    for buf, procs in configs:
        out = f"{work}/storm.json"
        p = subprocess.run([bsandbox, "exec", "-v", "--buffer-size", buf, "--json", out, "--",
                            storm, str(procs), str(per_proc), work],
                           capture_output=True, text=True)
        rate = int(p.stdout.strip().splitlines()[-1])
        rec = json.load(open(out))
        rss = [line for line in p.stderr.splitlines() if "peak memory" in line]
        rss = rss[-1].rsplit("peak memory ", 1)[1] if rss else "?"
        report.append(f"| {buf} | {procs} | {procs * per_proc:,} | {rate:,} | {rec['lost_events']:,} | "
                      f"{rec['complete']} | {rss} |")
    report.append("")

    # 4. Memory per million events, one path vs distinct paths.
    report.append("### Supervisor memory\n")
    report.append("| events | distinct paths | peak RSS |")
    report.append("|---|---|---|")
    for distinct in (False, True):
        d = tempfile.mkdtemp(dir=work)
        open(f"{d}/f", "w").close()
        args = [storm, "2", "500000", d] + (["distinct"] if distinct else [])
        p = subprocess.run([bsandbox, "exec", "-v", "--buffer-size", "64M", "--", *args],
                           capture_output=True, text=True)
        rss = [line for line in p.stderr.splitlines() if "peak memory" in line][-1].rsplit("peak memory ", 1)[1]
        report.append(f"| 1,000,000 | {'1,000,000' if distinct else '1'} | {rss} |")
        subprocess.run(["rm", "-rf", d])
    report.append("")
    subprocess.run(["rm", "-rf", work])
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
