#!/usr/bin/env python3
"""layers.py: refuses an include that crosses the parts' allowed directions.

    layers.py SOURCE_ROOT STAMP PART=USE,USE ...

Run by the build (sandbox/meson.build) with the parts and the parts each may
use, as meson declares them. Every #include "..." of a project file is
checked against the part its file belongs to:

- sandbox/P/...: P itself, the parts P may use and what those may use, and
  bpf/events.h (the kernel programs' record layout, which the event types
  mirror). Never cli/.
- tests/P/...: what sandbox/P may include (the tests of a part see no more
  than the part does), and tests' own helpers.
- bpf/...: only bpf/ (the BPF programs are built apart from user space).
- cli/... and its tests: anything.

A generated header "sandbox/P/x.pb.h" belongs to P. One line per refused
include, "file:line: error: ...", and a non-zero exit; the stamp is written
only when everything passes.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def closure(uses):
    """part -> every part it may reach, itself included."""
    out = {}

    def reach(p, seen):
        if p in out:
            return out[p]
        if p in seen:
            sys.exit(f"layers.py: the parts' uses form a loop through {p}")
        r = {p}
        for u in uses[p]:
            if u not in uses:
                sys.exit(f"layers.py: part {p} uses {u}, which is not a part")
            r |= reach(u, seen | {p})
        out[p] = r
        return r

    for p in uses:
        reach(p, set())
    return out


def part_of(rel, parts):
    """The longest part name whose folder holds rel (under sandbox/ or tests/)."""
    best = None
    for p in parts:
        for top in ("sandbox/", "tests/"):
            if rel.startswith(top + p + "/") and (best is None or len(p) > len(best)):
                best = p
    return best


def check(root, uses):
    allowed = closure(uses)
    errors = []
    for top in ("sandbox", "tests", "bpf", "cli"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".h", ".cpp", ".c", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for m in INCLUDE.finditer(text):
                    why = refused(rel, m.group(1), uses, allowed)
                    if why:
                        line = text.count("\n", 0, m.start()) + 1
                        errors.append(f"{rel}:{line}: error: #include \"{m.group(1)}\": {why}")
    return errors


def refused(rel, inc, uses, allowed):
    """Why rel may not include inc, or None."""
    if rel.startswith(("cli/", "tests/cli/", "tests/e2e/", "tests/progs/")):
        return None
    if rel.startswith("bpf/"):
        if inc.startswith(("sandbox/", "cli/")):
            return "bpf/ is built apart and includes nothing of user space"
        return None
    if inc.startswith("cli/"):
        return "nothing below cli/ may use the command-line wiring"
    if rel.startswith("tests/") and (inc.startswith("tests/") or not inc.startswith(("sandbox/", "bpf/"))):
        return None
    if not inc.startswith(("sandbox/", "bpf/")):
        return None  # a sibling or generated file of the same folder
    me = part_of(rel, uses)
    if me is None:
        if rel.startswith("sandbox/"):
            return "this file is in no part: add its folder to part_names in sandbox/meson.build"
        return None  # tests of several parts (tests/e2e, fuzz) link what they name
    if inc.startswith("bpf/"):
        return None if inc == "bpf/events.h" else "only bpf/events.h, the record layout, is shared with bpf/"
    target = part_of(inc, uses)
    if target is None:
        return "names no part"
    if target in allowed[me]:
        return None
    may = ", ".join(sorted(allowed[me] - {me})) or "no other part"
    return f"part {me} may not use part {target} (it may use {may}; sandbox/meson.build declares which)"


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    root, stamp = argv[1], argv[2]
    uses = {}
    for arg in argv[3:]:
        name, _, used = arg.partition("=")
        uses[name] = [u for u in used.split(",") if u]
    errors = check(root, uses)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"layers.py: {len(errors)} include(s) cross the parts' allowed directions", file=sys.stderr)
        return 1
    with open(stamp, "w") as f:
        f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
