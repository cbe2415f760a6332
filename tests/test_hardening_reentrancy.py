"""Hooks that dump or load again, on the same or a new instance, with the recursion limit raised far
beyond what the native stack holds, on the main thread and on small thread stacks: a
`RecursionError`, never a crash. Each scenario runs in a child process."""

import os
import subprocess
import sys

import pytest

from unpickle_support import REF, TARGET

HERE = os.path.dirname(os.path.abspath(__file__))

_CHILD = r"""
import io, sys, threading
sys.path[:0] = {path!r}
from unpickle_support import TARGET as P
MODE, LIMIT, STACK_KIB = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
depth = [0]

class SetState:
    def __setstate__(self, state):
        depth[0] += 1
        P.loads(DATA["setstate"])

def reducer():
    depth[0] += 1
    return P.loads(DATA["reduce"])

class Reduced:
    def __reduce__(self):
        return (reducer, ())

class ReadAgain:
    def read(self, n):
        depth[0] += 1
        return P.Unpickler(ReadAgain()).load()
    def readline(self):
        return b""

class ListSub(list):
    def append(self, item):
        depth[0] += 1
        P.loads(DATA["list"])
    extend = append

class DictSub(dict):
    def __setitem__(self, key, value):
        depth[0] += 1
        P.loads(DATA["dict"])

class FindClassAgain(P.Unpickler):
    def find_class(self, module, name):
        depth[0] += 1
        return FindClassAgain(io.BytesIO(DATA["find_class"])).load()

class PersistentLoadAgain(P.Unpickler):
    def persistent_load(self, pid):
        depth[0] += 1
        return PersistentLoadAgain(io.BytesIO(DATA["persistent_load"])).load()

class DumpsInReduce:
    def __reduce__(self):
        depth[0] += 1
        return (str, (P.dumps(DumpsInReduce(), 2),))

class PersistentIdAgain(P.Pickler):
    def persistent_id(self, obj):
        if obj == "again":
            depth[0] += 1
            PersistentIdAgain(io.BytesIO(), 2).dump(["again"])
        return None

class Again:
    pass

class ReducerOverrideAgain(P.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, Again):
            depth[0] += 1
            ReducerOverrideAgain(io.BytesIO(), 2).dump([Again()])
        return NotImplemented

class WriteAgain:
    def write(self, data):
        depth[0] += 1
        P.dump([1], WriteAgain(), 2)

state_holder = SetState(); state_holder.x = 1
list_sub = ListSub(); list.append(list_sub, 1); list.append(list_sub, 2)
dict_sub = DictSub(); dict.__setitem__(dict_sub, 1, 2)
DATA = {{
    "setstate": P.dumps(state_holder, 2),
    "reduce": P.dumps(Reduced(), 2),
    "list": P.dumps(list_sub, 2),
    "dict": P.dumps(dict_sub, 2),
    "find_class": P.dumps(Reduced, 2),
    "persistent_load": b"\x80\x02X\x01\x00\x00\x00xQ.",
}}
RUN = {{
    "setstate": lambda: P.loads(DATA["setstate"]),
    "reduce": lambda: P.loads(DATA["reduce"]),
    "file": lambda: P.Unpickler(ReadAgain()).load(),
    "list": lambda: P.loads(DATA["list"]),
    "dict": lambda: P.loads(DATA["dict"]),
    "find_class": lambda: FindClassAgain(io.BytesIO(DATA["find_class"])).load(),
    "persistent_load": lambda: PersistentLoadAgain(io.BytesIO(DATA["persistent_load"])).load(),
    "dumps_in_reduce": lambda: P.dumps(DumpsInReduce(), 2),
    "persistent_id": lambda: PersistentIdAgain(io.BytesIO(), 2).dump(["again"]),
    "reducer_override": lambda: ReducerOverrideAgain(io.BytesIO(), 2).dump([Again()]),
    "write": lambda: P.dump([1], WriteAgain(), 2),
}}
result = []

def main():
    try:
        RUN[MODE]()
        result.append("no error")
    except RecursionError:
        result.append("RecursionError")

sys.setrecursionlimit(LIMIT)
if STACK_KIB:
    threading.stack_size(STACK_KIB * 1024)
    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
else:
    main()
print(result[0], depth[0])
"""

MODES = [
    "setstate",
    "reduce",
    "file",
    "list",
    "dict",
    "find_class",
    "persistent_load",
    "dumps_in_reduce",
    "persistent_id",
    "reducer_override",
    "write",
]


def _run(mode, limit, stack_kib=0):
    code = _CHILD.format(path=[HERE] + sys.path)
    out = subprocess.run(
        [sys.executable, "-c", code, mode, str(limit), str(stack_kib)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=300,
    )
    assert out.returncode == 0, (mode, out.returncode, out.stderr.decode(errors="replace")[-3000:])
    return out.stdout.decode().split()


@pytest.mark.parametrize("mode", MODES)
def test_reentry_with_a_huge_recursion_limit_raises_recursion_error(mode):
    outcome, depth = _run(mode, 10**6)
    assert outcome == "RecursionError"
    assert int(depth) > 100


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stack_kib", [64, 256])
def test_reentry_on_a_small_thread_stack_raises_recursion_error(mode, stack_kib):
    outcome, _ = _run(mode, 10**6, stack_kib)
    assert outcome == "RecursionError"


_SMALL_STACK_WORK = r"""
import sys, threading, datetime
sys.path[:0] = {path!r}
from unpickle_support import TARGET as P
obj = {{"a": [1, 2.0, "x" * 100, (None, True)], "d": datetime.datetime(2020, 1, 1),
       "n": [[[[1]]]], "s": {{1, 2}}}}
out = []
def work():
    for proto in range(P.HIGHEST_PROTOCOL + 1):
        out.append(P.loads(P.dumps(obj, proto)) == obj)
threading.stack_size({kib} * 1024)
t = threading.Thread(target=work); t.start(); t.join()
print(out)
"""


@pytest.mark.parametrize("kib", [64, 128, 256])
def test_ordinary_objects_pickle_on_small_thread_stacks(kib):
    # The guard's red zone scales with the stack: a small stack must still pickle what the C
    # pickler pickles there. (At 32 KiB CPython 3.13 itself crashes now and then, with or without
    # a pickler.)
    code = _SMALL_STACK_WORK.format(path=[HERE] + sys.path, kib=kib)
    out = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-3000:]
    assert out.stdout.decode().strip() == str([True] * (TARGET.HIGHEST_PROTOCOL + 1))


def _max_nesting(module, kind, proto):
    lo, hi = 1, 20000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        obj = None
        for _ in range(mid):
            obj = [obj] if kind == "list" else (obj,)
        try:
            module.dumps(obj, proto)
            lo = mid
        except RecursionError:
            hi = mid - 1
    return lo


@pytest.mark.skipif(REF is None, reason="reference pickle module is not installed")
@pytest.mark.parametrize("kind", ["list", "tuple"])
@pytest.mark.parametrize("proto", [0, 5])
def test_nesting_the_reference_accepts_is_accepted(kind, proto):
    # From 3.12 on the C pickler's bound is the interpreter's fixed C recursion limit, not
    # sys.getrecursionlimit().
    proto = min(proto, REF.HIGHEST_PROTOCOL)
    assert _max_nesting(TARGET, kind, proto) >= _max_nesting(REF, kind, proto)
