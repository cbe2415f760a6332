#!/usr/bin/env python
"""Compare pickle5_rs with the reference C pickler on this interpreter.

Usage: python bench/run.py [--quick] [--json out.json] [--rounds N] [--only NAME] [--protocol P]
                           [--target pickle5_rs|reference]

The reference is the stdlib C pickler on 3.8+ and the ``pickle5`` package on 3.6/3.7. Both run in
this one process, interleaved (the order alternates every round), and each side keeps the best
(minimum) of its rounds. The printed ratio is reference time / our time: above 1 means we are
faster. ``--target reference`` times the reference against itself, which should give ~1.0 and
shows how much noise to expect on this machine.

Pickles for the ``loads`` rows come from the reference pickler. ``dumps`` rows appear when the
module under test has ``dumps``. Nothing here asserts on timing.
"""

from __future__ import print_function

import argparse
import gc
import json
import math
import os
import platform
import sys
import time


def load_reference():
    if sys.version_info >= (3, 8):
        import pickle

        return pickle
    try:
        import pickle5
    except ImportError:
        sys.exit("the reference pickler for Python < 3.8 is the pickle5 package: pip install pickle5")
    return pickle5


def load_target(name, reference):
    if name == "reference":
        return reference
    import pickle5_rs

    if not hasattr(pickle5_rs, "loads"):
        sys.exit("pickle5_rs has no loads() yet; use --target reference to check the harness")
    return pickle5_rs


# --- workloads -----------------------------------------------------------------------------------


class Record(object):
    """A plain class: pickled as its __dict__."""

    def __init__(self, ident, name, score, tags, active):
        self.ident = ident
        self.name = name
        self.score = score
        self.tags = tags
        self.active = active

    def __eq__(self, other):
        return type(other) is Record and self.__dict__ == other.__dict__


def _json_doc(i):
    return {
        "id": i,
        "type": "event",
        "user": {"name": "user%d" % i, "email": "u%d@example.org" % i, "verified": i % 3 == 0},
        "tags": ["alpha", "beta", "tag%d" % (i % 17)],
        "metrics": {"views": i * 7, "ratio": i / 13.0, "history": [i, i + 1, i + 2, None]},
        "payload": {"nested": {"deeper": {"value": "x" * (i % 11), "ok": True}}},
    }


def build_workloads(quick):
    """(name, object, note). Sizes shrink with --quick so the smoke run takes seconds."""
    scale = 0.02 if quick else 1.0

    def n(count):
        return max(10, int(count * scale))

    big = (1 if quick else 64) * 1024 * 1024
    shared_pool = [("shared", i, [i] * 3) for i in range(100)]
    return [
        ("small_ints", [i * 7 - 50000 for i in range(n(200000))] + [2 ** 40 + i for i in range(n(1000))], ""),
        ("floats", [i * 0.37 for i in range(n(200000))], ""),
        ("short_strs", ["s%d" % i for i in range(n(200000))], ""),
        ("long_ascii_strs", ["a" * 100000 + str(i) for i in range(n(200))], "100 kB each"),
        ("long_nonascii_strs", [u"\u00e9\u20ac\u4e2d" * 33000 + str(i) for i in range(n(200))], "~100 kchars"),
        (
            "dicts_str_scalars",
            [dict(("key%d" % k, (k * i, k * 0.5, "v%d" % k, None, k % 2 == 0)[k % 5]) for k in range(20))
             for i in range(n(10000))],
            "20 keys",
        ),
        ("rows", [(i, "name%d" % i, i * 1.5, i % 2 == 0, None) for i in range(n(100000))], "5-tuples"),
        ("instances", [Record(i, "rec%d" % i, i / 7.0, ["t1", "t2"], True) for i in range(n(30000))], "__dict__"),
        ("json_docs", [_json_doc(i) for i in range(n(10000))], "nested"),
        ("shared_refs", [shared_pool[i % 100] for i in range(n(200000))], "100 distinct"),
        ("small_bytes", [bytes(bytearray([i % 256])) * (10 + i % 90) for i in range(n(100000))], ""),
        ("large_bytes_inband", b"\xab" * big, "%d MiB" % (big >> 20)),
        ("large_bytes_oob", b"\xcd" * big, "%d MiB, buffers=" % (big >> 20)),
    ]


# --- timing --------------------------------------------------------------------------------------


def _calibrate(fn, min_time):
    """Iterations per timing so one timing lasts at least min_time."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or loops >= 1 << 20:
            return loops
        loops *= 2 if elapsed == 0 else max(2, min(10, int(min_time / elapsed * 1.2) + 1))


def _timed(fn, loops):
    gc.collect()
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def compare(ref_fn, our_fn, rounds, min_time):
    """Best per-call seconds of each, interleaved; the one going first alternates."""
    loops = max(_calibrate(ref_fn, min_time), _calibrate(our_fn, min_time))
    best_ref = best_ours = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(rounds):
            if i % 2 == 0:
                best_ref = min(best_ref, _timed(ref_fn, loops))
                best_ours = min(best_ours, _timed(our_fn, loops))
            else:
                best_ours = min(best_ours, _timed(our_fn, loops))
                best_ref = min(best_ref, _timed(ref_fn, loops))
    finally:
        if gc_was_enabled:
            gc.enable()
    return best_ref, best_ours, loops


# --- the benchmark -------------------------------------------------------------------------------


def _same(a, b):
    if isinstance(a, (bytes, bytearray, memoryview)) or isinstance(b, (bytes, bytearray, memoryview)):
        return bytes(memoryview(a)) == bytes(memoryview(b))
    return a == b


def benchmark_pairs(name, obj, ref, target, protocol):
    """Yield (operation, reference callable, our callable, check message or None)."""
    oob = name.endswith("_oob")
    if oob:
        buffers = []
        data = ref.dumps(ref.PickleBuffer(obj), protocol, buffer_callback=buffers.append)
        buffer_objects = list(buffers)
        ref_loads = lambda: ref.loads(data, buffers=buffer_objects)  # noqa: E731
        our_loads = lambda: target.loads(data, buffers=buffer_objects)  # noqa: E731
    else:
        data = ref.dumps(obj, protocol)
        ref_loads = lambda: ref.loads(data)  # noqa: E731
        our_loads = lambda: target.loads(data)  # noqa: E731
    problem = None if _same(ref_loads(), our_loads()) else "loads result differs from the reference"
    yield "loads", ref_loads, our_loads, problem, len(data)

    if not hasattr(target, "dumps"):
        return
    if oob:
        ours_pb = getattr(target, "PickleBuffer", None)
        if ours_pb is None:
            return
        ref_dumps = lambda: ref.dumps(ref.PickleBuffer(obj), protocol, buffer_callback=list().append)  # noqa: E731
        our_dumps = lambda: target.dumps(ours_pb(obj), protocol, buffer_callback=list().append)  # noqa: E731
    else:
        ref_dumps = lambda: ref.dumps(obj, protocol)  # noqa: E731
        our_dumps = lambda: target.dumps(obj, protocol)  # noqa: E731
    problem = None if ref_dumps() == our_dumps() else "dumps output is not byte-identical to the reference"
    yield "dumps", ref_dumps, our_dumps, problem, len(data)


def geomean(values):
    values = [v for v in values if v > 0]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds (smoke test)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, default=None, help="timings per side (default 7, quick 3)")
    parser.add_argument("--only", action="append", default=[], help="run workloads whose name contains this")
    parser.add_argument("--protocol", type=int, default=None, help="pickle protocol (default: highest)")
    parser.add_argument(
        "--target",
        choices=("pickle5_rs", "reference"),
        default=os.environ.get("PICKLE5_RS_TARGET", "pickle5_rs"),
        help="module under test; 'reference' times the reference against itself",
    )
    args = parser.parse_args(argv)

    ref = load_reference()
    target = load_target(args.target, ref)
    protocol = args.protocol if args.protocol is not None else ref.HIGHEST_PROTOCOL
    rounds = args.rounds or (3 if args.quick else 7)
    min_time = 0.01 if args.quick else 0.05

    print(
        "Python %s (%s), reference: %s, under test: %s, protocol %d, best of %d rounds"
        % (platform.python_version(), platform.machine(), ref.__name__, args.target, protocol, rounds)
    )
    header = "%-20s %-6s %10s %12s %12s %8s  %s" % ("workload", "op", "pickle", "reference", "ours", "ratio", "")
    print(header)
    print("-" * len(header))

    results = []
    for name, obj, note in build_workloads(args.quick):
        if args.only and not any(part in name for part in args.only):
            continue
        for op, ref_fn, our_fn, problem, size in benchmark_pairs(name, obj, ref, target, protocol):
            ref_time, our_time, loops = compare(ref_fn, our_fn, rounds, min_time)
            ratio = ref_time / our_time if our_time > 0 else float("inf")
            results.append(
                {
                    "workload": name,
                    "op": op,
                    "note": note,
                    "pickle_bytes": size,
                    "reference_s": ref_time,
                    "ours_s": our_time,
                    "ratio": ratio,
                    "loops": loops,
                    "problem": problem,
                }
            )
            print(
                "%-20s %-6s %10s %12s %12s %8.2f  %s"
                % (name, op, _size(size), _duration(ref_time), _duration(our_time), ratio, problem or note)
            )
            sys.stdout.flush()

    summary = {}
    print("-" * len(header))
    for op in ("loads", "dumps"):
        ratios = [r["ratio"] for r in results if r["op"] == op]
        if ratios:
            summary[op] = geomean(ratios)
            print("%-20s %-6s %47.2f" % ("geomean", op, summary[op]))
    if results:
        summary["all"] = geomean([r["ratio"] for r in results])
        print("%-20s %-6s %47.2f" % ("geomean", "all", summary["all"]))
    problems = [r for r in results if r["problem"]]
    for r in problems:
        print("PROBLEM: %s %s: %s" % (r["workload"], r["op"], r["problem"]))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "python": platform.python_version(),
                    "implementation": platform.python_implementation(),
                    "machine": platform.machine(),
                    "reference": ref.__name__,
                    "target": args.target,
                    "protocol": protocol,
                    "rounds": rounds,
                    "quick": args.quick,
                    "results": results,
                    "geomean": summary,
                },
                f,
                indent=2,
            )
    return 1 if problems else 0


def _duration(seconds):
    if seconds < 1e-3:
        return "%.2fus" % (seconds * 1e6)
    return "%.3fms" % (seconds * 1e3)


def _size(nbytes):
    if nbytes < 1024:
        return "%dB" % nbytes
    if nbytes < 1024 * 1024:
        return "%.1fkB" % (nbytes / 1024.0)
    return "%.1fMB" % (nbytes / 1048576.0)


if __name__ == "__main__":
    sys.exit(main())
