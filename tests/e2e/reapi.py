"""reapi.py: the protobuf wire format read and written by hand, and the
REAPI ActionResult a server of Bazel's HTTP cache protocol holds under /ac/,
checked field by field: no protobuf module, so that the test does not share
a parser (or its leniency) with what it tests.

An ActionResult here: output_files = 2 (OutputFile: path = 1, digest = 2,
is_executable = 4, contents = 5), exit_code = 4, stdout_digest = 6,
stderr_digest = 8, output_symlinks = 12 (path = 1, target = 2); a Digest:
hash = 1 (64 lowercase hex digits), size_bytes = 2. An unknown field
number, a wrong wire type, a singular field given twice, a string that is
not UTF-8 or a path that is empty, absolute or has . or .. components is
refused.
"""
import hashlib
import re


class WireError(ValueError):
    pass


def read_varint(data, i):
    value = shift = 0
    while True:
        if i >= len(data):
            raise WireError("a varint runs past the end")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift >= 70:
            raise WireError("a varint longer than 10 bytes")


def wire_fields(data):
    """[(field number, wire type, value)]: ints for varints and fixed
    fields, bytes for length-delimited ones. Groups are refused."""
    out, i = [], 0
    while i < len(data):
        tag, i = read_varint(data, i)
        number, wt = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if wt == 0:
            value, i = read_varint(data, i)
        elif wt == 1:
            if i + 8 > len(data):
                raise WireError(f"field {number}: a fixed64 runs past the end")
            value, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wt == 5:
            if i + 4 > len(data):
                raise WireError(f"field {number}: a fixed32 runs past the end")
            value, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        elif wt == 2:
            n, i = read_varint(data, i)
            if i + n > len(data):
                raise WireError(f"field {number}: {n} bytes announced, {len(data) - i} left")
            value, i = bytes(data[i:i + n]), i + n
        else:
            raise WireError(f"field {number}: wire type {wt} (a group or invalid)")
        out.append((number, wt, value))
    return out


def encode_varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_fields(fields):
    out = bytearray()
    for number, wt, value in fields:
        out += encode_varint(number << 3 | wt)
        if wt == 0:
            out += encode_varint(value)
        elif wt == 1:
            out += value.to_bytes(8, "little")
        elif wt == 5:
            out += value.to_bytes(4, "little")
        else:
            out += encode_varint(len(value)) + value
    return bytes(out)


# The REAPI messages of an /ac/ body: field -> (name, kind, repeated).
# Kinds: a schema (a message), "string", "bytes", "bool", "int64", "int32".
DIGEST = {1: ("hash", "string", False), 2: ("size_bytes", "int64", False)}
OUTPUT_FILE = {1: ("path", "string", False), 2: ("digest", DIGEST, False), 4: ("is_executable", "bool", False),
               5: ("contents", "bytes", False)}
OUTPUT_SYMLINK = {1: ("path", "string", False), 2: ("target", "string", False)}
ACTION_RESULT = {2: ("output_files", OUTPUT_FILE, True), 4: ("exit_code", "int32", False),
                 6: ("stdout_digest", DIGEST, False), 8: ("stderr_digest", DIGEST, False),
                 12: ("output_symlinks", OUTPUT_SYMLINK, True)}


def parse_message(data, schema, where="ActionResult"):
    """A dict of the message's fields; WireError on an unknown field number,
    a wrong wire type, a singular field given twice, a string that is not
    UTF-8 or a number out of range."""
    out = {}
    for number, wt, value in wire_fields(data):
        if number not in schema:
            raise WireError(f"{where}: unknown field number {number}")
        name, kind, repeated = schema[number]
        want_wt = 2 if isinstance(kind, dict) or kind in ("string", "bytes") else 0
        if wt != want_wt:
            raise WireError(f"{where}.{name}: wire type {wt}, expected {want_wt}")
        if isinstance(kind, dict):
            value = parse_message(value, kind, f"{where}.{name}")
        elif kind == "string":
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(f"{where}.{name}: not UTF-8: {value[:60]!r}")
        elif kind == "bool":
            if value > 1:
                raise WireError(f"{where}.{name}: bool {value}")
            value = bool(value)
        elif kind in ("int64", "int32"):
            if value >= 1 << 63:
                value -= 1 << 64
            if kind == "int32" and not -(1 << 31) <= value < 1 << 31:
                raise WireError(f"{where}.{name}: {value} is not an int32")
        if repeated:
            out.setdefault(name, []).append(value)
        elif name in out:
            raise WireError(f"{where}.{name}: given twice")
        else:
            out[name] = value
    return out


def check_path(path, where):
    if not path or path.startswith("/"):
        raise WireError(f"{where}: path {path!r} is empty or absolute")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise WireError(f"{where}: path {path!r} has an empty, . or .. component")


def digest_ref(d, where):
    h, size = d.get("hash", ""), d.get("size_bytes", 0)
    if not re.fullmatch(r"[0-9a-f]{64}", h):
        raise WireError(f"{where}: hash {h!r} is not 64 lowercase hex digits")
    if size < 0:
        raise WireError(f"{where}: size {size}")
    return h, size


def parse_action_result(data):
    """The ActionResult, checked; and the digests it names [(where, hash,
    size, inlined contents or None)]."""
    ar = parse_message(data, ACTION_RESULT)
    named = []
    for k, f in enumerate(ar.get("output_files", [])):
        where = f"output_files[{k}]"
        check_path(f.get("path", ""), where)
        if "digest" not in f:
            raise WireError(f"{where} ({f['path']}): no digest")
        h, size = digest_ref(f["digest"], where + ".digest")
        named.append((f"{where} {f['path']}", h, size, f.get("contents")))
    for k, s in enumerate(ar.get("output_symlinks", [])):
        check_path(s.get("path", ""), f"output_symlinks[{k}]")
        if not s.get("target"):
            raise WireError(f"output_symlinks[{k}] ({s['path']}): no target")
    for name in ("stdout_digest", "stderr_digest"):
        if name in ar:
            h, size = digest_ref(ar[name], name)
            named.append((name, h, size, None))
    return ar, named


def server_problems(files):
    """What is wrong with a server's files ({path: bytes}, nginx.files()):
    every ac/ body a valid ActionResult whose digests are in cas/ with that
    size and content, every cas/ blob named by its SHA-256. Also returns
    the ActionResults parsed."""
    problems, results = [], {}
    for path, data in sorted(files.items()):
        top, _, name = path.partition("/")
        if top == "cas":
            if hashlib.sha256(data).hexdigest() != name:
                problems.append(f"{path}: its content's SHA-256 is {hashlib.sha256(data).hexdigest()}")
        elif top == "ac":
            try:
                ar, named = parse_action_result(data)
            except WireError as e:
                problems.append(f"{path}: not a valid ActionResult: {e}")
                continue
            results[path] = ar
            for where, h, size, inlined in named:
                blob = files.get(f"cas/{h}")
                if blob is None:
                    problems.append(f"{path}: {where} names cas/{h}, which is not on the server")
                elif len(blob) != size:
                    problems.append(f"{path}: {where} says {size} bytes, cas/{h} has {len(blob)}")
                if inlined is not None and (hashlib.sha256(inlined).hexdigest() != h or len(inlined) != size):
                    problems.append(f"{path}: {where}: the inlined contents do not match the digest")
        else:
            problems.append(f"{path}: neither under ac/ nor under cas/")
    return problems, results
