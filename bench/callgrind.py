#!/usr/bin/env python
"""Instruction counts of dumps() or loads() under callgrind: ours vs the reference, per bench/run.py workload.

Usage: python bench/callgrind.py [--python PY] [--op dumps|loads] [--only NAME] [--reps N] [--protocol P]
       (driver mode, run under valgrind by the above: python bench/callgrind.py --drive OP NAME SIDE REPS [P])

Workloads: the names below (NAMES, this script's original set), and any workload of bench/run.py's
matrix (`python bench/run.py --list`), e.g. `--only int128 --only tiny.doc`: those are pickled
exactly as bench/run.py does (same objects, same calls) at --protocol (default: the highest).

Each workload is measured as (run with REPS dumps) - (run with 0 dumps), divided by REPS, so the
object construction and interpreter start-up cancel out. Instruction counts are deterministic, so
one run per side is enough even on a busy machine. Only the workload being measured is built.
Use a large --reps for large_bytes_oob (its per-call cost is a few thousand instructions).

Caveat: valgrind counts every iteration of a `rep movsb` as an instruction, and glibc picks that
form or a vector loop depending on the call, so rows dominated by copying (long strs, large bytes)
compare copy routines rather than work done; judge those with bench/run.py (wall clock).
"""

import argparse
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: workload definitions, reference loader)


def _workload(name):
    """Build one workload exactly as bench/run.py does, without building the others."""
    builders = {}

    def n(count):
        return count

    big = 64 * 1024 * 1024
    builders["small_ints"] = lambda: (
        [i * 7 - 50000 for i in range(n(200000))] + [2**40 + i for i in range(n(1000))]
    )
    builders["floats"] = lambda: [i * 0.37 for i in range(n(200000))]
    builders["short_strs"] = lambda: ["s%d" % i for i in range(n(200000))]
    builders["long_ascii_strs"] = lambda: ["a" * 100000 + str(i) for i in range(n(200))]
    builders["long_nonascii_strs"] = lambda: ["\u00e9\u20ac\u4e2d" * 33000 + str(i) for i in range(n(200))]
    builders["dicts_str_scalars"] = lambda: [
        dict(("key%d" % k, (k * i, k * 0.5, "v%d" % k, None, k % 2 == 0)[k % 5]) for k in range(20))
        for i in range(n(10000))
    ]
    builders["rows"] = lambda: [(i, "name%d" % i, i * 1.5, i % 2 == 0, None) for i in range(n(100000))]
    builders["instances"] = lambda: [
        run.Record(i, "rec%d" % i, i / 7.0, ["t1", "t2"], True) for i in range(n(30000))
    ]
    builders["json_docs"] = lambda: [run._json_doc(i) for i in range(n(10000))]

    def shared():
        pool = [("shared", i, [i] * 3) for i in range(100)]
        return [pool[i % 100] for i in range(n(200000))]

    builders["shared_refs"] = shared
    builders["small_bytes"] = lambda: [bytes(bytearray([i % 256])) * (10 + i % 90) for i in range(n(100000))]
    builders["large_bytes_inband"] = lambda: b"\xab" * big
    builders["large_bytes_oob"] = lambda: b"\xcd" * big
    return builders[name]()


NAMES = [
    "small_ints",
    "floats",
    "short_strs",
    "long_ascii_strs",
    "long_nonascii_strs",
    "dicts_str_scalars",
    "rows",
    "instances",
    "json_docs",
    "shared_refs",
    "small_bytes",
    "large_bytes_inband",
    "large_bytes_oob",
]


def drive_matrix(op, name, side, reps, protocol):
    """A workload of bench/run.py's matrix, driven through the same calls as there."""
    ref = run.load_reference()
    import pickle5_rs

    mod = ref if side == "ref" else pickle5_rs
    workload = run.find_workload(name)
    obj = workload.build(False)
    way = workload.way()
    try:
        data = way.pickle(ref, obj, protocol)
        for m in (ref, pickle5_rs):  # one-time set-up of both sides before the measured calls
            fn, args, kwargs = way.dumps_call(m, obj, protocol) if op == "dumps" else way.loads_call(m, data)
            fn(*args, **(kwargs or {}))
        fn, args, kwargs = way.dumps_call(mod, obj, protocol) if op == "dumps" else way.loads_call(mod, data)
        kwargs = kwargs or {}
        for _ in range(reps):
            fn(*args, **kwargs)
    finally:
        if hasattr(way, "close"):
            way.close()


def drive(op, name, side, reps, protocol=None):
    ref = run.load_reference()
    if name not in NAMES:
        drive_matrix(op, name, side, reps, ref.HIGHEST_PROTOCOL if protocol is None else protocol)
        return
    import pickle5_rs

    mod = ref if side == "ref" else pickle5_rs
    obj = _workload(name)
    protocol = ref.HIGHEST_PROTOCOL if protocol is None else protocol
    # One-time set-up (lazy imports, caches) of both sides happens before the measured calls.
    for m in (ref, pickle5_rs):
        m.dumps([1, 2.0, "s", b"b", (None, True)], protocol)
        m.dumps(m.PickleBuffer(b"x"), protocol, buffer_callback=list().append)
    oob = name.endswith("_oob")
    if op == "loads":
        # The pickle comes from the reference, as in bench/run.py.
        buffers = []
        if oob:
            data = ref.dumps(ref.PickleBuffer(obj), protocol, buffer_callback=buffers.append)
        else:
            data = ref.dumps(obj, protocol)
        for m in (ref, pickle5_rs):
            m.loads(data, buffers=buffers)
        for _ in range(reps):
            mod.loads(data, buffers=buffers)
    elif oob:
        for _ in range(reps):
            mod.dumps(mod.PickleBuffer(obj), protocol, buffer_callback=list().append)
    else:
        for _ in range(reps):
            mod.dumps(obj, protocol)


def instructions(python, op, name, side, reps, protocol=None):
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        python,
        os.path.abspath(__file__),
        "--drive",
        op,
        name,
        side,
        str(reps),
    ] + ([] if protocol is None else [str(protocol)])
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env).stdout.decode()
    m = re.search(r"refs:\s+([\d,]+)", out)
    if not m:
        raise RuntimeError(out[-2000:])
    return int(m.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--op", choices=("dumps", "loads"), default="dumps")
    parser.add_argument("--protocol", type=int, default=None, help="default: the highest")
    parser.add_argument("--drive", nargs="+")
    args = parser.parse_args()
    if args.drive:
        protocol = int(args.drive[4]) if len(args.drive) > 4 else None
        drive(args.drive[0], args.drive[1], args.drive[2], int(args.drive[3]), protocol)
        return
    ratios = []
    print("%-20s %14s %14s %7s" % ("workload", "reference Ir", "ours Ir", "ratio"))
    # The original set by substring, as before; matrix workloads by exact name.
    names = [name for name in NAMES if not args.only or any(o in name for o in args.only)]
    matrix = set(w.name for w in run.workloads())
    names += [o for o in args.only if o in matrix and o not in names]
    for name in names:
        base = instructions(args.python, args.op, name, "ref", 0, args.protocol)
        ref = (instructions(args.python, args.op, name, "ref", args.reps, args.protocol) - base) / args.reps
        ours = (instructions(args.python, args.op, name, "ours", args.reps, args.protocol) - base) / args.reps
        ratio = ref / ours
        ratios.append(ratio)
        print("%-20s %14d %14d %7.2f" % (name, ref, ours, ratio))
        sys.stdout.flush()
    if ratios:
        print("%-20s %37.2f" % ("geomean", math.exp(sum(math.log(r) for r in ratios) / len(ratios))))


if __name__ == "__main__":
    main()
