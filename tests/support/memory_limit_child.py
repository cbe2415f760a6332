"""Runs one pickling or unpickling case with the address space nearly full, for
test_hardening_memory_limits.py.

Usage: python memory_limit_child.py {target|reference} CASE

The case's input is built first; then RLIMIT_AS is set to the address space in use plus the case's
headroom (less than the operation needs), and the operation runs. One JSON line is printed:
``{"outcome": "ok"}`` or ``{"outcome": "<exception class>", "message": ...}``. An allocation failure
that aborts the process shows up in the parent as a signal exit and no line.
"""

import io
import json
import os
import resource
import struct
import sys

MiB = 1 << 20


class ReadReadline:
    """A file with only read() and readline(): large payloads are read in chunks."""

    def __init__(self, data):
        f = io.BytesIO(data)
        self.read = f.read
        self.readline = f.readline


class NullFile:
    """Discards what the pickler writes (file mode flushes each 64 KiB frame)."""

    def write(self, data):
        return len(data)


def _indexed_ops(op, indices):
    """`op` followed by a 4-byte little-endian index, for each index (built without a Python
    object per entry)."""
    import array

    idx = array.array("I", indices)
    if sys.byteorder != "little":
        idx.byteswap()
    idx = idx.tobytes()
    n = len(idx) // 4
    out = bytearray(5 * n)
    out[0::5] = op * n
    for k in range(4):
        out[1 + k :: 5] = idx[k::4]
    return bytes(out)


def _frame(payload):
    return b"\x95" + struct.pack("<Q", len(payload)) + payload


# name: (headroom in MiB, builds the input, runs the operation with module `m`)
CASES = {
    # -- the pickler's output buffer --
    "dumps-ascii-str-protocol0": (32, lambda: "a" * (64 * MiB), lambda m, d: m.dumps(d, protocol=0)),
    "dumps-nonascii-str-protocol0": (32, lambda: "\u20ac" * (8 * MiB), lambda m, d: m.dumps(d, protocol=0)),
    "dumps-list-of-none-protocol0": (16, lambda: [None] * (16 * MiB), lambda m, d: m.dumps(d, protocol=0)),
    "dumps-list-of-none-protocol5": (8, lambda: [None] * (16 * MiB), lambda m, d: m.dumps(d, protocol=5)),
    "dumps-huge-int-protocol2": (32, lambda: 1 << (8 * 48 * MiB), lambda m, d: m.dumps(d, protocol=2)),
    "dumps-large-bytes-protocol5": (32, lambda: b"x" * (64 * MiB), lambda m, d: m.dumps(d, protocol=5)),
    # -- the pickler's memo (file mode: the output does not accumulate) --
    "dump-many-memoized-strs": (
        24,
        lambda: [str(i) for i in range(3 * MiB)],
        lambda m, d: m.Pickler(NullFile(), 4).dump(d),
    ),
    # -- the unpickler's mark stack, value stack and memo --
    "loads-deep-marks": (64, lambda: b"(" * (32 * MiB) + b".", lambda m, d: m.loads(d)),
    "loads-many-nones": (48, lambda: b"\x80\x05" + b"N" * (16 * MiB) + b".", lambda m, d: m.loads(d)),
    "loads-many-memoize": (48, lambda: b"\x80\x05N" + b"\x94" * (16 * MiB) + b".", lambda m, d: m.loads(d)),
    "loads-many-long-binput": (
        32,
        lambda: b"\x80\x02N" + _indexed_ops(b"r", range(8 * MiB)) + b".",
        lambda m, d: m.loads(d),
    ),
    "loads-many-sparse-long-binput": (
        16,
        lambda: b"\x80\x02N" + _indexed_ops(b"r", range(4000000000, 4000000000 - 2 * MiB, -1)) + b".",
        lambda m, d: m.loads(d),
    ),
    # -- payloads whose length passes the truncation check because the data is there --
    "loads-binunicode-real-data": (
        32,
        lambda: b"\x80\x04X" + struct.pack("<I", 64 * MiB) + b"a" * (64 * MiB) + b".",
        lambda m, d: m.loads(d),
    ),
    "load-binbytes8-from-file": (
        32,
        lambda: b"\x80\x05\x8e" + struct.pack("<Q", 48 * MiB) + b"x" * (48 * MiB) + b".",
        lambda m, d: m.load(ReadReadline(d)),
    ),
    "load-long-frame-from-file": (
        32,
        lambda: b"\x80\x04" + _frame(b"\x8e" + struct.pack("<Q", 48 * MiB) + b"x" * (48 * MiB)) + b".",
        lambda m, d: m.load(ReadReadline(d)),
    ),
    # -- protocol 0 text lines --
    "loads-unicode-line": (32, lambda: b"V" + b"a" * (64 * MiB) + b"\n.", lambda m, d: m.loads(d)),
    "loads-float-line": (32, lambda: b"F" + b"1" * (64 * MiB) + b"\n.", lambda m, d: m.loads(d)),
    # -- an error message quoting a huge name from the input --
    "loads-huge-global-name": (
        64,
        lambda: b"cbuiltins\n" + b"x" * (24 * MiB) + b"\n.",
        lambda m, d: m.loads(d),
    ),
}


def _address_space_used():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def main():
    which, case = sys.argv[1], sys.argv[2]
    import unpickle_support as support

    module = support.TARGET if which == "target" else support.REF
    headroom, build, run = CASES[case]
    data = build()
    limit = _address_space_used() + headroom * MiB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = run(module, data)
        del result
        line = {"outcome": "ok"}
    except Exception as exc:
        line = {"outcome": type(exc).__name__, "message": str(exc)[:200]}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
