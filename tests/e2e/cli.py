#!/usr/bin/env python3
"""cli.py: how the bsandbox command behaves at its edges: bad input gets one
line and a non-zero exit, nothing is half-written, and the exit code is the
command's.

  cli.py NAME    run one check;  cli.py --list    the names (for meson)
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import BSANDBOX, bsandbox, check, fresh_dir, need_root, prog, run_checks, write  # noqa: E402

CHECKS = {}


def cli_check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def run(*args, **kw):
    return subprocess.run([BSANDBOX, *args], capture_output=True, timeout=120, **kw)


def one_line_error(p, code=125):
    err = p.stderr.decode(errors="replace")
    check(p.returncode == code, f"exit {p.returncode}, expected {code}: {err!r}")
    lines = [line for line in err.splitlines() if line]
    check(len(lines) == 1, f"expected one line on stderr, got {lines!r}")
    check(lines[0].startswith("bsandbox: error: "), f"error line format: {lines[0]!r}")
    return lines[0]


@cli_check
def unknown_option():
    line = one_line_error(run("exec", "--frobnicate", "--", "true"))
    check("--frobnicate" in line, line)
    one_line_error(run("frobnicate"))
    one_line_error(run())
    one_line_error(run("exec", "--buffer-size=3M", "true"))
    check(run("--help").returncode == 0, "--help works")
    check(run("--version").stdout.startswith(b"bsandbox "), "--version works")


@cli_check
def unwritable_output_fails_before_the_command_runs():
    need_root()
    w = fresh_dir("cli")
    marker = f"{w}/ran"
    for bad in ("/nonexistent-dir/r.json", w):
        p = run("exec", "--json", bad, "--", prog("write_file"), marker)
        line = one_line_error(p)
        check(bad in line, f"the error names the path: {line}")
        check(not os.path.exists(marker), "the command must not have run")


@cli_check
def command_not_found_exits_127_with_a_record():
    need_root()
    r = bsandbox(["bsandbox-no-such-command", "arg"])
    check(r.returncode == 127, f"exit {r.returncode}")
    check(r.record["exit_code"] == 127 and r.top["exit_code"] == 127, "the record says 127")
    check(r.top["argv"] == ["bsandbox-no-such-command", "arg"], "argv as given")
    check(b"command not found" in r.stderr, r.stderr)
    missing = [p for p, ops in r.files().items() if p.endswith(b"/bsandbox-no-such-command")]
    check(missing and all(r.files()[p] == {"missing"} for p in missing), "PATH lookups are missing")
    w = fresh_dir("cli")
    write(f"{w}/noexec", "not a program\n")
    os.chmod(f"{w}/noexec", 0o644)
    r = bsandbox([f"{w}/noexec"])
    check(r.returncode == 126, f"a file that cannot run exits 126, got {r.returncode}")


@cli_check
def record_and_show():
    need_root()
    w = fresh_dir("cli")
    write(f"{w}/in")
    rec = f"{w}/run.rec"
    js = f"{w}/run.json"
    p = run("exec", "--record", rec, "--json", js, "--", "sh", "-c", f"cat {w}/in > {w}/out")
    check(p.returncode == 0, p.stderr)
    check(p.stderr == b"", f"a complete run with outputs prints nothing: {p.stderr!r}")
    s = run("show", rec)
    check(s.returncode == 0, s.stderr)
    text = s.stdout.decode()
    lines = text.splitlines()
    check(lines[0].split()[1:3] == ["sh", "-c"], f"the top process first: {lines[0]}")
    check(any(line.startswith("  ") and " cat " in f" {line.strip()} " for line in lines),
          "the child cat is indented under sh")
    check(f"read         {w}/in" in text, "cat's read of the input")
    check(f"write,create {w}/out" in text, "the shell's redirection")
    check(lines[-1].startswith("2 processes, ") and lines[-1].endswith("backend ebpf, complete"),
          f"summary: {lines[-1]}")
    with open(js) as f:
        record = json.load(f)
    check(len(record["processes"]) == 2, "JSON and record describe the same run")


@cli_check
def show_rejects_what_is_not_a_record():
    w = fresh_dir("cli")
    write(f"{w}/junk", "this is not a record\n")
    one_line_error(run("show", f"{w}/junk"))
    one_line_error(run("show", f"{w}/missing"))
    with open(f"{w}/json", "w") as f:
        json.dump({"schema": "bsandbox.provenance/v1"}, f)
    one_line_error(run("show", f"{w}/json"))


@cli_check
def lost_events_make_the_record_incomplete_and_strict_fails():
    need_root()
    w = fresh_dir("cli")
    write(f"{w}/f")
    argv = ["sh", "-c", f"for i in $(seq 300); do cat {w}/f; done > /dev/null"]
    r = bsandbox(argv, extra=["--buffer-size=4K"])
    check(r.returncode == 0, "without --strict the command's code")
    check(not r.record["complete"] and r.record["lost_events"] > 0, "incomplete, with a count")
    check(b"warning: record incomplete" in r.stderr and b"--buffer-size" in r.stderr,
          f"a warning that says what to do: {r.stderr!r}")
    s = bsandbox(argv, extra=["--buffer-size=4K", "--strict"])
    check(s.returncode == 125, f"--strict turns it into exit 125, got {s.returncode}")
    check(not s.record["complete"], "the record is still written")


@cli_check
def not_root_gets_a_clear_error_for_ebpf():
    if os.geteuid() != 0:
        p = run("exec", "--backend=ebpf", "--", "true")
    else:
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", BSANDBOX, "exec", "--backend=ebpf", "--", "true"],
                           capture_output=True, timeout=60)
    line = one_line_error(p)
    check("run bsandbox as root" in line and "CAP_BPF" in line, f"names what to do: {line}")


def proc_text(path):
    """A /proc file's text, or None once its process is gone: it can end
    before the open (FileNotFoundError) or between the open and the read
    (ProcessLookupError)."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def signal_reaches_the_command(backend):
    w = fresh_dir("cli")
    out = f"{w}/r.json"
    p = subprocess.Popen([BSANDBOX, "exec", f"--backend={backend}", "--json", out, "--",
                          "sleep", "30"], stderr=subprocess.PIPE)
    # Wait until the command runs: sleep is bsandbox's child and has exec'd.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = (proc_text(f"/proc/{p.pid}/task/{p.pid}/children") or "").split()
        if any(proc_text(f"/proc/{c}/comm") == "sleep\n" for c in children):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the command never started")
    start = time.monotonic()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    check(time.monotonic() - start < 5, "the command ended promptly")
    check(p.returncode == 128 + signal.SIGTERM, f"exit {p.returncode}")
    with open(out) as f:
        record = json.load(f)
    check(record["exit_code"] == 143, "the record has the command's death by SIGTERM")
    check(record["backend"] == backend, f"backend {record['backend']}")


@cli_check
def signals_sent_to_bsandbox_reach_the_command():
    need_root()
    signal_reaches_the_command("ebpf")


@cli_check
def signals_sent_to_a_tracing_bsandbox_reach_the_command():
    signal_reaches_the_command("ptrace")


@cli_check
def summary_line_without_outputs():
    need_root()
    p = run("exec", "--", "true")
    check(p.returncode == 0, p.stderr)
    err = p.stderr.decode()
    check(err.startswith("bsandbox: 1 process, ") and "backend ebpf, complete" in err, err)
    q = run("exec", "-q", "--", "true")
    check(q.stderr == b"", "-q is quiet")


@cli_check
def exit_code_with_stdout_and_stderr_untouched():
    need_root()
    p = run("exec", "-q", "--", "sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2; exit 42")
    check(p.returncode == 42, f"exit {p.returncode}")
    check(p.stdout == b"out\n", f"stdout byte for byte: {p.stdout!r}")
    check(p.stderr == b"err\n", f"stderr byte for byte: {p.stderr!r}")


@cli_check
def json_names_round_trip_through_surrogateescape():
    need_root()
    w = fresh_dir("cli")
    r = bsandbox([prog("weird_names"), w])
    names = {os.path.basename(p) for p in r.files() if p.startswith(os.fsencode(w) + b"/")}
    on_disk = set(os.listdir(os.fsencode(w)))
    check(names == on_disk, f"recorded names {names} are the names on disk {on_disk}")


@cli_check
def auto_falls_back_to_ptrace_for_an_unprivileged_user():
    need_root()
    import pwd
    user = pwd.getpwnam("nobody")
    p = run("exec", "-v", "--", "sh", "-c", "exit 3", cwd="/",
            user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 3, f"exit {p.returncode}: {err}")
    check("bsandbox: eBPF unavailable, using ptrace: " in err, f"-v says why eBPF was passed over: {err}")
    check("bsandbox: backend: ptrace" in err, f"-v names the backend: {err}")
    check("backend ptrace, complete" in err, f"the summary names the backend: {err}")
    forced = run("exec", "--backend=ebpf", "--", "true", cwd="/",
                 user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    one_line_error(forced)


if __name__ == "__main__":
    sys.exit(run_checks(__doc__, CHECKS))
