#!/usr/bin/env python3
"""export.py: `bsandbox export` on the record of a real build: the
chrome-trace timeline parses with a track and a span per process, spans
nest and flows join parents to children; the Prometheus text passes
`promtool check metrics` and says what the record says; bad input gets one
line.

  export.py NAME    run one check;  export.py --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, check, fresh_dir, need_root, run_checks, skip  # noqa: E402

CHECKS = {}
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "example")


def export_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def traced(d, name, argv, cwd=None):
    """Runs argv under bsandbox exec with --record and --json; returns
    (record path, the record as JSON)."""
    rec, js = os.path.join(d, name), os.path.join(d, name + ".json")
    p = subprocess.run([BSANDBOX, "exec", "--record", rec, "--json", js, "--", *argv], capture_output=True,
                       timeout=600, cwd=cwd)
    check(p.returncode == 0, f"{argv[0]} under bsandbox: {p.stderr!r}")
    with open(js, "rb") as f:
        return rec, json.loads(f.read().decode())


def build_record(d, name="build.rec"):
    """Records `make -B` of the bundled example in a copy."""
    src = os.path.join(d, "example")
    shutil.copytree(EXAMPLE, src)
    return traced(d, name, ["make", "-B", "-C", src])


def export(*args):
    return subprocess.run([BSANDBOX, "export", *args], capture_output=True, timeout=120)


@export_check
def chrome_trace_of_a_real_build():
    need_root()
    d = fresh_dir("export")
    rec, record = build_record(d)
    out = os.path.join(d, "trace.json")
    p = export("--format=chrome-trace", rec, "-o", out)
    check(p.returncode == 0, f"export: {p.stderr!r}")
    with open(out) as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    spans = {e["tid"]: e for e in events if e["ph"] == "X" and e["cat"] == "process"}
    execs = {e["tid"]: e for e in events if e["ph"] == "X" and e["cat"] == "exec"}
    procs = record["processes"]
    check(len(procs) >= 8, f"a real build: {len(procs)} processes")
    for p in procs:
        check(p["pid"] in names and p["pid"] in spans, f"process {p['id']} has a track and a span")
        check(names[p["pid"]].startswith(p["argv"][0]) and names[p["pid"]].endswith(f"[{p['pid']}]"),
              f"the track is named by argv and pid: {names[p['pid']]}")
        check(spans[p["pid"]]["args"]["id"] == p["id"], "the span names the process")
        if p["exec_ns"] is not None:
            life, ex = spans[p["pid"]], execs.get(p["pid"])
            check(ex is not None, f"process {p['id']} exec'd: it has an exec span")
            check(life["ts"] <= ex["ts"] and ex["ts"] + ex["dur"] <= life["ts"] + life["dur"] + 1,
                  f"the exec span of {p['id']} lies within its lifetime")
            check(ex["args"]["exe"] == p["exe"], "the exec span names the program")
    by_id = {p["id"]: p for p in procs}
    nested = 0
    for p in procs:
        if p["parent"] is None:
            continue
        child, parent = spans[p["pid"]], spans[by_id[p["parent"]]["pid"]]
        check(child["ts"] >= parent["ts"], f"{p['id']} starts within its parent")
        check(child["ts"] + child["dur"] <= parent["ts"] + parent["dur"] + 1, f"{p['id']} ends within its parent")
        nested += 1
    starts = [e for e in events if e["ph"] == "s"]
    finishes = [e for e in events if e["ph"] == "f"]
    check(len(starts) == len(finishes) == nested, f"one flow per fork: {len(starts)} for {nested}")
    instants = [e for e in events if e["ph"] == "i"]
    check(len(instants) == sum(len(p["files"]) for p in procs), "one instant per (process, file)")
    by_pid = {p["pid"]: p for p in procs}
    for e in instants[:200]:
        files = {f["path"]: f["ops"] for f in by_pid[e["tid"]]["files"]}
        check(e["args"]["path"] in files and e["args"]["ops"] == ",".join(files[e["args"]["path"]]),
              f"the instant carries the record's path and ops: {e['args']}")


@export_check
def prometheus_text_passes_promtool():
    need_root()
    promtool = shutil.which("promtool")
    if not promtool:
        skip("promtool is not installed (Debian package prometheus)")
    d = fresh_dir("export")
    rec1, record = build_record(d, "one.rec")
    rec2 = os.path.join(d, "two.rec")
    shutil.copy(rec1, rec2)
    p = export("--format=prometheus", rec1, rec2)
    check(p.returncode == 0, f"export: {p.stderr!r}")
    lint = subprocess.run([promtool, "check", "metrics"], input=p.stdout, capture_output=True)
    check(lint.returncode == 0, f"promtool check metrics: {lint.stdout!r} {lint.stderr!r}")
    text = p.stdout.decode()
    labels = '{record="one.rec",command="make",backend="ebpf"}'
    check(f"bsandbox_run_processes{labels} {len(record['processes'])}\n" in text, f"processes: {text[:400]}")
    check(f"bsandbox_run_exit_code{labels} 0\n" in text, "exit code")
    check(f"bsandbox_run_complete{labels} 1\n" in text, "complete")
    created = {f["path"] for pr in record["processes"] for f in pr["files"] if "create" in f["ops"]}
    check(f'bsandbox_run_files{labels[:-1]},op="create"}} {len(created)}\n' in text, "files created")
    check('record="two.rec"' in text, "both runs")
    check(not any(pth in text for pth in created), "no series per path")


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        skip("chromium is not installed (Debian package chromium)")
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--user-data-dir=" + fresh_dir("chromium")]


def dump_dom(html, fragment=""):
    p = subprocess.run([*chromium(), "--dump-dom", f"file://{html}{fragment}"], capture_output=True, timeout=120)
    check(p.returncode == 0, f"chromium --dump-dom: {p.stderr[-400:]!r}")
    return p.stdout.decode(errors="replace")


def file_rows(dom):
    table = dom[dom.index('<table id="files">'):]
    return table[:table.index("</table>")].count("<tr><td>")


def element(dom, ident):
    import re
    m = re.search(f'id="{ident}">([^<]*)<', dom)
    check(m, f"the page has #{ident}")
    return m.group(1)


@export_check
def html_report_of_a_real_build():
    need_root()
    d = fresh_dir("export")
    rec, record = build_record(d)
    html = os.path.join(d, "report.html")
    p = export("--format=html", rec, "-o", html)
    check(p.returncode == 0, f"export: {p.stderr!r}")
    page = open(html, encoding="utf-8", errors="replace").read()
    check("http://" not in page and "https://" not in page, "self-contained: no network address in the page")
    check("default-src 'none'" in page, "and a policy that forbids loading anything")
    dom = dump_dom(html)
    check('data-ready="1"' in dom, "the page's script ran to the end")
    procs = record["processes"]
    accesses = sum(len(p["files"]) for p in procs)
    check(element(dom, "summary-processes") == str(len(procs)), "the process count")
    check(element(dom, "summary-accesses") == str(accesses), "the access count")
    created = {f["path"] for p in procs for f in p["files"] if "create" in f["ops"]}
    check(element(dom, "summary-create") == str(len(created)), "paths created")
    check(element(dom, "file-count") == str(accesses), "unfiltered, every access matches")
    # Filters, set through the address: by op, path prefix and process.
    src = os.path.join(d, "example")
    want = sum(1 for p in procs for f in p["files"] if "create" in f["ops"] and f["path"].startswith(src))
    dom = dump_dom(html, f"#ops=create&prefix={src}")
    check(element(dom, "file-count") == str(want) and want > 0, f"create under {src}: {want} expected")
    rows = file_rows(dom)
    check(rows == want, f"and the table shows them: {rows} rows")
    top = procs[0]
    dom = dump_dom(html, f"#process={top['pid']}")
    check(element(dom, "file-count") == str(len(top["files"])), "one process's accesses")
    artifacts = os.environ.get("BSANDBOX_ARTIFACTS", d)
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "export-html-report.png")
    p = subprocess.run([*chromium(), f"--screenshot={shot}", "--window-size=1280,1600", f"file://{html}"],
                       capture_output=True, timeout=120)
    check(p.returncode == 0 and os.path.getsize(shot) > 20000, f"a screenshot kept at {shot}")
    print(f"screenshot: {shot}")


@export_check
def html_report_of_two_thousand_processes():
    need_root()
    d = fresh_dir("export")
    rec, record = traced(d, "many.rec", ["sh", "-c", "for i in $(seq 2000); do cat /etc/hostname; done > /dev/null"])
    html = os.path.join(d, "many.html")
    check(export("--format=html", rec, "-o", html).returncode == 0, "export")
    dom = dump_dom(html)
    accesses = sum(len(p["files"]) for p in record["processes"])
    check(element(dom, "summary-processes") == str(len(record["processes"])) and len(record["processes"]) > 2000,
          "every process")
    check(element(dom, "file-count") == str(accesses), f"{accesses} accesses counted")
    check(file_rows(dom) == 500, "the table renders 500 rows, not all")


@export_check
def bad_input_gets_one_line():
    d = fresh_dir("export")
    junk = os.path.join(d, "junk")
    with open(junk, "w") as f:
        f.write("not a record\n")
    cases = [
        (["--format=chrome-trace", os.path.join(d, "missing.rec")], "missing.rec"),
        (["--format=prometheus", junk], "junk"),
        (["--format=svg", junk], "unknown export format"),
        ([junk], "needs --format"),
        (["--format=prometheus"], "at least one record"),
        (["--format=prometheus", "--frob", junk], "unknown option"),
        (["--format=html", junk, junk], "takes one record"),
    ]
    for args, words in cases:
        p = export(*args)
        err = p.stderr.decode()
        check(p.returncode == 125 and len(err.splitlines()) == 1 and err.startswith("bsandbox: error: ") and words in err,
              f"{args}: exit {p.returncode}, {err!r}")
    out = os.path.join(d, "no", "such", "dir", "x.json")
    p = export("--format=chrome-trace", junk, "-o", out)
    check(p.returncode == 125 and not os.path.exists(out), "nothing written for a bad record")


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
