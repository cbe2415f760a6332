"""Runs one dumps/loads scenario many times and prints memory figures as JSON.

Usage: python hardening_leak_child.py ITERATIONS SCENARIO...
Output, one line per scenario: {"scenario", "iterations", "rss_kb": [after warm-up, at the end],
         "traced": [after warm-up, at the end], "gc_objects": [...]}

Each scenario exercises a success path or an error path of pickle5_rs. RSS (from /proc) sees
what the Rust code allocates with malloc; tracemalloc sees Python objects, so a reference
leaked on an error path shows up there.
"""

import gc
import io
import json
import sys
import tracemalloc

import pickle5_rs as P


class Plain:
    def __init__(self, x):
        self.x = x


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no")


class Boom(Exception):
    pass


GRAPH = {
    "ints": list(range(50)),
    "s": "x" * 100,
    "b": b"y" * 100,
    "f": 1.5,
    "t": (1, "a", None),
    "set": {1, 2, 3},
    "nested": [[1, [2, [3]]]],
    "obj": Plain([1, 2]),
    "big": 10**40,
}
GRAPH["self"] = GRAPH
DATA = P.dumps(GRAPH, 4)
DATA5 = P.dumps([P.PickleBuffer(b"abc" * 100), GRAPH], 5, buffer_callback=lambda b: False)


def _expect(exc_types, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_types:
        return
    raise AssertionError("no error from %r" % (fn,))


class RaisingPid(P.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, float):
            raise Boom()
        return None


class RaisingOverride(P.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Plain):
            raise Boom()
        return NotImplemented


class RaisingFindClass(P.Unpickler):
    def find_class(self, module, name):
        raise Boom(module)


class RaisingPersistentLoad(P.Unpickler):
    def persistent_load(self, pid):
        raise Boom(pid)


def s_dumps_ok():
    P.dumps(GRAPH, 4)


def s_dumps_all_protocols():
    for proto in range(6):
        P.dumps(GRAPH, proto)


def s_loads_ok():
    P.loads(DATA)


def s_loads_oob():
    P.loads(DATA5, buffers=[b"abc"])


def s_load_file_ok():
    P.load(io.BytesIO(DATA))


def s_dump_file_ok():
    P.Pickler(io.BytesIO(), 5).dump(GRAPH)


def s_unpicklable_mid_graph():
    _expect(TypeError, P.dumps, [GRAPH, [1, 2, Unpicklable()], GRAPH], 4)


def s_truncated_input():
    for cut in (1, 7, len(DATA) // 2, len(DATA) - 1):
        _expect((P.UnpicklingError, EOFError), P.loads, DATA[:cut])


def s_truncated_file():
    _expect((P.UnpicklingError, EOFError), P.load, io.BytesIO(DATA[: len(DATA) // 2]))


def s_raising_persistent_id():
    _expect(Boom, RaisingPid(io.BytesIO(), 4).dump, GRAPH)


def s_raising_reducer_override():
    _expect(Boom, RaisingOverride(io.BytesIO(), 4).dump, GRAPH)


def s_raising_find_class():
    _expect(Boom, RaisingFindClass(io.BytesIO(DATA)).load)


def s_raising_persistent_load():
    _expect(Boom, RaisingPersistentLoad(io.BytesIO(b"\x80\x04K\x01Q.")).load)


def s_raising_buffer_callback():
    def callback(buf):
        raise Boom()

    _expect(Boom, P.dumps, [P.PickleBuffer(b"abc")], 5, buffer_callback=callback)


def s_bad_opcode_after_objects():
    _expect(P.UnpicklingError, P.loads, DATA[:-1] + b"\xff")


class PicklerWithDict(P.Pickler):
    pass


def s_cycles_pickler():
    f = io.BytesIO()
    p = PicklerWithDict(f, 4)
    p.persistent_id = lambda obj, p=p: None  # pickler -> hook -> pickler
    f.pickler = p
    p.dump(GRAPH)


class UnpicklerWithDict(P.Unpickler):
    pass


def s_cycles_unpickler():
    u = UnpicklerWithDict(io.BytesIO(DATA))
    u.me = u
    u.persistent_load = lambda pid, u=u: u
    u.load()


def s_subclass_per_call():
    """A Pickler/Unpickler subclass made per call (a heap type per iteration)."""

    class U(P.Unpickler):
        pass

    class Pk(P.Pickler):
        pass

    U(io.BytesIO(DATA)).load()
    Pk(io.BytesIO()).dump(1)


SCENARIOS = {name[2:]: fn for name, fn in globals().items() if name.startswith("s_")}


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(name, iterations):
    scenario = SCENARIOS[name]
    warm = max(iterations // 5, 200)
    tracemalloc.start()
    for _ in range(warm):
        scenario()
    gc.collect()
    first = (rss_kb(), tracemalloc.get_traced_memory()[0], len(gc.get_objects()))
    for _ in range(iterations):
        scenario()
    gc.collect()
    last = (rss_kb(), tracemalloc.get_traced_memory()[0], len(gc.get_objects()))
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "scenario": name,
                "iterations": iterations,
                "rss_kb": [first[0], last[0]],
                "traced": [first[1], last[1]],
                "gc_objects": [first[2], last[2]],
            }
        ),
        flush=True,
    )


def main():
    iterations = int(sys.argv[1])
    for name in sys.argv[2:] or sorted(SCENARIOS):
        measure(name, iterations)


if __name__ == "__main__":
    main()
