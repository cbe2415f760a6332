"""Rough dumps() speed of pickle5_rs against the C pickler of the same interpreter.

Run: PYTHONPATH=. python scripts/bench-dumps.py  (after scripts/dev-build --release)
Interleaved rounds, min time per workload; prints reference/ours (>1 means we are faster).
"""
import sys
import timeit

import pickle5_rs as ours

if sys.version_info >= (3, 8):
    import pickle as ref
else:
    import pickle5 as ref


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


WORKLOADS = {
    "small tuple": (1, "a", 2.0),
    "1000 ints": list(range(1000)),
    "1000 floats": [i * 0.5 for i in range(1000)],
    "1000 short str": ["s%d" % i for i in range(1000)],
    "dict 1000 str->int": {"k%d" % i: i for i in range(1000)},
    "json-like records": [{"id": i, "name": "n%d" % i, "tags": ["a", "b"], "score": i / 3.0, "ok": True}
                          for i in range(200)],
    "100 objects": [Point(i, str(i)) for i in range(100)],
    "nested tuples": [(i, (i, (i, "x"))) for i in range(500)],
    "bytes 10MB": b"x" * 10 ** 7,
    "unicode 1MB": "é" * 500000,
}


def main():
    proto = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    print("python %s, protocol %d" % (sys.version.split()[0], proto))
    for name, obj in WORKLOADS.items():
        assert ours.dumps(obj, proto) == ref.dumps(obj, proto), name
        n = max(1, int(0.05 / max(timeit.timeit(lambda: ref.dumps(obj, proto), number=1), 1e-7)))
        best = {"ref": float("inf"), "ours": float("inf")}
        for _ in range(7):
            for label, mod in (("ref", ref), ("ours", ours)):
                t = timeit.timeit(lambda: mod.dumps(obj, proto), number=n) / n
                best[label] = min(best[label], t)
        print("%-20s ref %9.2f us  ours %9.2f us  ratio %.2fx" % (
            name, best["ref"] * 1e6, best["ours"] * 1e6, best["ref"] / best["ours"]))


if __name__ == "__main__":
    main()
