#!/usr/bin/env python3
"""seeds.py DIR: writes the hand-made seeds of tests/fuzz/corpus (the
agent's decoder with descriptors: agent_decoder_fuzz.cpp's input format is
byte 0, whose low bit picks the 4 MiB frame limit over a 256-byte one, then
pieces, each a control byte, descriptors | (length - 1) << 3, and its bytes).
"""
import os
import struct
import sys


def varint(n):
    b = b""
    while n > 0x7F:
        b += bytes([n & 0x7F | 0x80])
        n >>= 7
    return b + bytes([n])


def field(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def number_field(number, value):
    return varint(number << 3) + varint(value)


def framed(body):
    return struct.pack("<I", len(body)) + body


def pieces(stream, fds_at, size=32, big_limit=True):
    """The stream cut in pieces of size bytes; fds_at: {piece: descriptors}."""
    out = bytes([1 if big_limit else 0])
    for i in range(0, len(stream), size):
        piece = stream[i:i + size]
        out += bytes([fds_at.get(i // size, 0) | (len(piece) - 1) << 3]) + piece
    return out


# Request{submit: make -j2, PATH=/bin, cwd, fds: stdin|stdout|stderr} and Request{status}.
SUBMIT = framed(field(1, field(1, b"make") + field(1, b"-j2") + field(2, b"PATH=/bin") + field(3, b"/home/u/p") +
                      number_field(4, 7)))
STATUS = framed(field(2, b""))
# Request{cache_report: hits 3, bytes_down 4096}, one with a negative count
# (int64 -1: ten bytes) and one with a field the agent does not know (15).
CACHE_REPORT = framed(field(3, number_field(1, 3) + number_field(4, 4096)))
CACHE_REPORT_NEGATIVE = framed(field(3, number_field(6, (1 << 64) - 1)))
CACHE_REPORT_UNKNOWN = framed(field(3, number_field(1, 1) + number_field(15, 0)))
SEEDS = {
    "seed-submit-fds-first": pieces(SUBMIT, {0: 4}),
    "seed-submit-fds-late": pieces(SUBMIT, {0: 2, 1: 2}, size=8),
    "seed-submit-too-many-fds": pieces(SUBMIT, {0: 7}),
    "seed-submit-fds-missing": pieces(SUBMIT, {0: 3}),
    "seed-submit-partial": pieces(SUBMIT[:20], {0: 4}, size=5),
    "seed-status": pieces(STATUS, {}),
    "seed-status-with-fds": pieces(STATUS, {0: 1}),
    "seed-cache-report": pieces(CACHE_REPORT, {}),
    "seed-cache-report-with-fds": pieces(CACHE_REPORT, {0: 1}),
    "seed-cache-report-negative": pieces(CACHE_REPORT_NEGATIVE, {}),
    "seed-cache-report-unknown-field": pieces(CACHE_REPORT_UNKNOWN, {}, size=3),
    "seed-two-requests": pieces(STATUS + STATUS, {}, size=3),
    "seed-oversized-small-limit": pieces(struct.pack("<I", 300) + b"x" * 60, {}, big_limit=False),
    "seed-length-then-fd-flood": pieces(struct.pack("<I", 4 << 20) + b"x" * 12, {1: 4, 2: 4, 3: 4}, size=4),
}

if __name__ == "__main__":
    for name, data in SEEDS.items():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)
