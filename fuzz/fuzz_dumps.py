"""Fuzz target: pickle5_rs.dumps/Pickler on generated object graphs with misbehaving hooks.

The input bytes drive a small builder (``build``) that makes an object graph: scalars, nested
containers, shared and self references, PickleBuffers, objects whose ``__reduce__``/
``__reduce_ex__``/``__getstate__``/``__getnewargs_ex__`` return wrong types or raise, items that
mutate the list/dict/set they are pickled from, and a pickler configuration: protocol, fast
mode, ``persistent_id``, ``reducer_override``, ``dispatch_table``, ``buffer_callback`` and a
file whose ``write`` misbehaves. The same bytes build the same graph twice, once for pickle5_rs
and once for the reference C pickler; both must agree: identical bytes, or the same exception
class. And pickle5_rs must never crash, panic or raise SystemError.

Run through ``nox -s fuzz``; by hand:
``PYTHONPATH=target/fuzz/pkg:fuzz python fuzz/fuzz_dumps.py CORPUS_DIR -max_total_time=60``.
With ``PICKLE5_RS_FUZZ_ALLOC_LIMIT=MiB`` pickle5_rs runs with the address space nearly full
(see common.py): MemoryError is then acceptable, an abort is a finding.
"""

import copyreg
import io
import sys

import common
from common import Finding, HookError, Reader, check_exception, outcome

MAX_OPS = 48


# --- objects with behaviour chosen by the input ---------------------------------------------


class Graph:
    """Per-build state the misbehaving objects refer to (the containers they mutate)."""

    def __init__(self):
        self.containers = []


class Reducible:
    """__reduce_ex__ returns what `how` selects; a deterministic hash so sets order the same."""

    def __init__(self, graph, how, payload, key):
        self.graph = graph
        self.how = how
        self.payload = payload
        self.key = key

    def __hash__(self):
        return self.key

    def __eq__(self, other):
        return self is other

    def __reduce_ex__(self, proto):
        how = self.how % 24
        p = self.payload
        if how == 0:
            return (Reducible2, (p,))
        if how == 1:
            return (Reducible2, (p,), {"state": p})
        if how == 2:
            return (Reducible2, (), None, iter([p, p]), None)
        if how == 3:
            return (Reducible2, (), None, None, iter([("k", p)]))
        if how == 4:
            return (Reducible2, (), {"x": p}, None, None, _state_setter)
        if how == 5:
            raise HookError("reduce")
        if how == 6:
            return "Plain"  # a global name that exists in fuzz_support? (no: module of self)
        if how == 7:
            return 42
        if how == 8:
            return (Reducible2,)
        if how == 9:
            return (Reducible2, (p,), None, None, None, None, "seventh")
        if how == 10:
            return (Reducible2, [p])
        if how == 11:
            return (17, (p,))
        if how == 12:
            return (copyreg.__newobj__, (Reducible2, p))
        if how == 13:
            return (copyreg.__newobj__, (int, p))
        if how == 14:
            return (copyreg.__newobj__, ())
        if how == 15:
            return (copyreg.__newobj_ex__, (Reducible2, (p,), {"k": p}))
        if how == 16:
            return (copyreg.__newobj_ex__, (Reducible2, [p], None))
        if how == 17:
            return (Reducible2, (p,), None, [1, 2], None)  # listitems not an iterator
        if how == 18:
            return (Reducible2, (p,), None, None, {"a": 1})  # dictitems not an iterator
        if how == 19:
            return (Reducible2, (p,), None, None, iter([1, 2]))  # items not pairs
        if how == 20:
            self.graph.mutate(self.key)
            return (Reducible2, (p,))
        if how == 21:
            return (Reducible2, (p,), None, None, None, 5)  # state_setter not callable
        if how == 22:
            return (getattr, (p, "real")) if isinstance(p, int) else (Reducible2, (self,))
        return (Reducible2, (self,))  # reduces to itself: recursion through the memo


class Reducible2:
    def __init__(self, *args, **kwargs):
        self.args = args

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __setitem__(self, k, v):
        pass


def _state_setter(obj, state):
    obj.__dict__.update(state)


class WithState:
    """Default object reduction with __getstate__ / __getnewargs(_ex)__ misbehaving."""

    def __init__(self, how, payload):
        self.how = how % 9
        self.payload = payload

    def __getstate__(self):
        if self.how == 0:
            raise HookError("getstate")
        if self.how == 1:
            return self.payload
        if self.how == 2:
            return ({"a": self.payload}, {"slot": 1})
        if self.how == 3:
            return None
        return self.__dict__

    def __getnewargs_ex__(self):
        if self.how == 4:
            return ("not a tuple", {})
        if self.how == 5:
            return ((), "not a dict")
        if self.how == 6:
            raise HookError("getnewargs_ex")
        if self.how == 7:
            return ((self.payload,), {"x": 1})
        return ((), {})

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)


class Mutator:
    """Mutates the container pickled just before it when the pickler reduces it."""

    def __init__(self, graph, which, how):
        self.graph = graph
        self.which = which
        self.how = how

    def __reduce__(self):
        self.graph.mutate(self.which, self.how)
        return (Reducible2, ())


class ListSub(list):
    pass


class DictSub(dict):
    pass


class BadClassAttr:
    """Claims to be another class."""

    @property
    def __class__(self):
        return int


def _bind_graph_mutate():
    def mutate(self, which, how=None):
        if not self.containers:
            return
        target = self.containers[which % len(self.containers)]
        how = which if how is None else how
        try:
            if isinstance(target, list):
                if how % 4 == 0:
                    target.clear()
                elif how % 4 == 1:
                    target.append(len(target))
                elif how % 4 == 2:
                    del target[:1]
                else:
                    target.extend(range(50))
            elif isinstance(target, dict):
                if how % 3 == 0:
                    target.clear()
                elif how % 3 == 1:
                    target["new%d" % len(target)] = 1
                else:
                    target.pop(next(iter(target)), None)
            elif isinstance(target, set):
                if how % 2 == 0:
                    target.clear()
                else:
                    target.add(len(target) + 1000)
        except RuntimeError:
            pass

    Graph.mutate = mutate


_bind_graph_mutate()


for _cls in (Reducible, Reducible2, WithState, Mutator, ListSub, DictSub, BadClassAttr):
    _cls.__module__ = "fuzz_dumps"
    _cls.__qualname__ = _cls.__name__
_state_setter.__module__ = "fuzz_dumps"


def build(r, pickle_module):
    """Builds (obj, options) from the input."""
    graph = Graph()
    pool = []
    hashable = []

    def pick():
        return pool[r.byte() % len(pool)] if pool else None

    def pick_hashable():
        return hashable[r.byte() % len(hashable)] if hashable else r.byte()

    for _ in range(MAX_OPS):
        if r.left() <= 0:
            break
        op = r.byte() % 30
        obj = None
        is_hashable = False
        if op == 0:
            obj = r.int(1)
            is_hashable = True
        elif op == 1:
            obj = r.int(1 + r.byte() % 40)
            is_hashable = True
        elif op == 2:
            import struct

            obj = struct.unpack("<d", r.bytes(8).ljust(8, b"\0"))[0]
            is_hashable = obj == obj
        elif op == 3:
            raw = r.bytes(r.byte() % 24)
            obj = raw.decode("utf-16-le", "surrogatepass") if len(raw) % 2 == 0 else raw.decode("latin1")
            is_hashable = True
        elif op == 4:
            obj = r.bytes(r.byte() % 32)
            is_hashable = True
        elif op == 5:
            obj = bytearray(r.bytes(r.byte() % 32))
        elif op == 6:
            obj = [None, True, False, Ellipsis, NotImplemented, (), "", b""][r.byte() % 8]
            is_hashable = True
        elif op in (7, 8):
            obj = [pick() for _ in range(r.byte() % 6)]
            graph.containers.append(obj)
        elif op == 9:
            items = [pick() for _ in range(r.byte() % 6)]
            obj = tuple(items)
            is_hashable = all(_hashable(x) for x in items)
        elif op == 10:
            obj = {pick_hashable(): pick() for _ in range(r.byte() % 6)}
            graph.containers.append(obj)
        elif op == 11:
            obj = {pick_hashable() for _ in range(r.byte() % 6)}
            graph.containers.append(obj)
        elif op == 12:
            obj = frozenset(pick_hashable() for _ in range(r.byte() % 6))
            is_hashable = True
        elif op == 13 and pool:
            target = pick()
            if isinstance(target, list):
                target.append(target)
            elif isinstance(target, dict):
                target["self"] = target
            obj = target
        elif op in (14, 15):
            obj = Reducible(graph, r.byte(), pick(), len(pool))
            is_hashable = True
        elif op == 16:
            base = r.bytes(r.byte() % 24)
            kind = r.byte() % 5
            if kind == 0:
                obj = pickle_module.PickleBuffer(base)
            elif kind == 1:
                obj = pickle_module.PickleBuffer(bytearray(base))
            # No PickleBuffer over a memoryview: on CPython 3.8-3.12 one in a garbage cycle
            # crashes the collector.
            elif kind == 2:
                obj = memoryview(bytearray(base))[::2]
            elif kind == 3:
                obj = pickle_module.PickleBuffer(bytearray(base)).raw()
            else:
                obj = memoryview(base)  # not picklable
        elif op == 17:
            obj = [
                common.Plain,
                common.Appender,
                len,
                copyreg.__newobj__,
                Reducible2,
                type(None),
                type(Ellipsis),
                int.from_bytes,
                io.BytesIO,
                sys.getsizeof,
                (lambda: None),
                type("Local", (), {}),
                Graph.mutate,
            ][r.byte() % 13]
            is_hashable = _hashable(obj)
        elif op == 18:
            obj = WithState(r.byte(), pick())
        elif op == 19:
            obj = Mutator(graph, r.byte(), r.byte())
        elif op == 20:
            obj = ListSub(pick() for _ in range(r.byte() % 5))
            obj.attr = pick()
            graph.containers.append(obj)
        elif op == 21:
            obj = DictSub((pick_hashable(), pick()) for _ in range(r.byte() % 5))
            graph.containers.append(obj)
        elif op == 22:
            obj = BadClassAttr()
        elif op == 23:
            depth = r.byte() * 4
            obj = pick()
            for _ in range(depth):
                obj = [obj]
        elif op == 24:
            obj = common.Plain()
            obj.__dict__.update({"a": pick(), "b": pick()})
        elif op == 25:
            obj = common.Slotted()
            obj.a = pick()
        elif op == 26 and pool:
            # a container that contains the mutator of itself
            container = pool[-1]
            mut = Mutator(graph, len(graph.containers), r.byte())
            if isinstance(container, list):
                graph.containers.append(container)
                container.insert(r.byte() % (len(container) + 1), mut)
            elif isinstance(container, dict):
                graph.containers.append(container)
                container["mut"] = mut
            elif isinstance(container, set):
                graph.containers.append(container)
                container.add(Reducible(graph, 20, None, len(graph.containers) - 1))
            obj = container
        elif op == 27:
            obj = range(r.byte(), r.byte() * 3, 1 + r.byte() % 5)
            is_hashable = True
        elif op == 28:
            obj = complex(r.int(2), r.int(2))
            is_hashable = True
        else:
            obj = [str(r.byte()) * (r.byte() % 4) for _ in range(r.byte() % 8)]
        pool.append(obj)
        if is_hashable:
            hashable.append(obj)

    root = pool[-1] if pool else None
    if pool and r.byte() % 2:
        root = list(pool)
    options = {
        "protocol": r.byte() % 7 - 1,
        "fast": r.byte() % 4 == 0,
        "fix_imports": r.byte() % 2 == 0,
        "persistent_id": r.byte() % 8,
        "reducer_override": r.byte() % 8,
        "dispatch_table": r.byte() % 5,
        "buffer_callback": r.byte() % 5,
        "file": r.byte() % 5,
        "graph": graph,
    }
    return root, options


_GLOBAL_OBJECTS = (type, type(len), type(_state_setter))


def _hashable(x):
    """Hashable with the same hash in both builds of a graph (so sets iterate in the same
    order): no object hashed by its id unless it is a module-level global, the same object in
    both builds."""
    # type(), not isinstance(): BadClassAttr claims to be an int but hashes by its id.
    kind = type(x)
    if x is None or issubclass(kind, (bool, int, float, complex, str, bytes, range, Reducible)):
        return True
    if issubclass(kind, (tuple, frozenset)):
        return all(_hashable(i) for i in x)
    if issubclass(kind, _GLOBAL_OBJECTS):
        module = sys.modules.get(getattr(x, "__module__", None) or "")
        return getattr(module, getattr(x, "__qualname__", ""), None) is x
    return x is Ellipsis or x is NotImplemented


def _persistent_id(mode, graph):
    def pid(obj):
        if mode == 1 and isinstance(obj, str):
            return "str:" + obj
        if mode == 2 and isinstance(obj, int) and obj % 7 == 3:
            raise HookError("persistent_id")
        if mode == 3 and isinstance(obj, bytes):
            graph.mutate(len(obj))
            return None
        if mode == 4 and isinstance(obj, float):
            return obj  # a persistent id the pickler must itself pickle
        if mode == 5 and isinstance(obj, (list, dict, set)):
            graph.mutate(id(obj) & 7)
        return None

    return pid


def _reducer_override(mode, graph):
    def override(obj):
        if mode == 1 and isinstance(obj, common.Plain):
            return (common.Plain, ())
        if mode == 2 and isinstance(obj, int) and obj % 5 == 1:
            raise HookError("reducer_override")
        if mode == 3 and isinstance(obj, str):
            return "Plain"  # a global name
        if mode == 4 and isinstance(obj, bytes):
            return 17  # wrong type
        if mode == 5 and isinstance(obj, (list, dict)):
            graph.mutate(len(obj))
        if mode == 6 and isinstance(obj, type):
            return (type, (obj.__name__, (), {}))
        return NotImplemented

    return override


def _dispatch_table(mode):
    table = copyreg.dispatch_table.copy()
    if mode == 1:
        table[common.Plain] = lambda obj: (common.Plain, ())
    elif mode == 2:
        table[int] = lambda obj: (int, (str(obj),))
    elif mode == 3:

        def boom(obj):
            raise HookError("dispatch")

        table[Reducible2] = boom
        table[common.Plain] = boom
    elif mode == 4:
        table[list] = lambda obj: "not a tuple"
    return table


class BadFile:
    def __init__(self, mode):
        self.mode = mode
        self.chunks = []
        self.calls = 0

    def write(self, data):
        self.calls += 1
        if self.mode == 1 and self.calls == 2:
            raise HookError("write")
        if self.mode == 2:
            self.chunks.append(bytes(data))
            return "not an int"
        self.chunks.append(bytes(data))
        return len(data)


OUTPUT_CAP = 8 << 20


class OutputCap(HookError):
    """Raised by CappedFile: the pickle outgrew what a run may write."""


class CappedFile(io.BytesIO):
    """The file of Pickler runs. Fast mode re-pickles shared objects, so a small graph can ask for
    gigabytes; past the cap a write raises instead."""

    def write(self, data):
        if self.tell() + memoryview(data).nbytes > OUTPUT_CAP:
            raise OutputCap("output cap")
        return super().write(data)


def run(data, pickle_module):
    obj, o = build(Reader(data), pickle_module)
    proto = o["protocol"]
    if o["fast"] and 0 <= proto < 4:
        # Fast mode re-pickles shared objects, so output can grow exponentially with the graph;
        # only framed protocols write to the file as they go, where CappedFile stops them early.
        # (Fast mode at protocols 0-3 is covered by CPython's suite in tests/.)
        proto = 4
    buffers = []
    callback = {
        0: None,
        1: buffers.append,
        2: lambda b: False,
        3: lambda b: b.raw(),  # a truthy result keeps it in band
        4: None,
    }[o["buffer_callback"]]
    if o["buffer_callback"] == 4:

        def callback(b):
            raise HookError("buffer_callback")

    if callback is not None and not (proto >= 5 or proto < 0):
        callback = None  # refused below protocol 5: exercised in tests, not here
    file_mode = o["file"]
    graph = o["graph"]
    simple = (
        o["persistent_id"] == 0
        and o["reducer_override"] == 0
        and o["dispatch_table"] == 0
        and not o["fast"]
        and file_mode == 0
    )
    if simple:
        return pickle_module.dumps(obj, proto, fix_imports=o["fix_imports"], buffer_callback=callback)
    f = BadFile(file_mode) if file_mode in (1, 2) else CappedFile()
    p = pickle_module.Pickler(f, proto, fix_imports=o["fix_imports"], buffer_callback=callback)
    if o["fast"]:
        p.fast = True
    if o["persistent_id"]:
        p.persistent_id = _persistent_id(o["persistent_id"], graph)
    if o["reducer_override"]:
        p.reducer_override = _reducer_override(o["reducer_override"], graph)
    if o["dispatch_table"]:
        p.dispatch_table = _dispatch_table(o["dispatch_table"])
    p.dump(obj)
    if file_mode == 4:
        p.dump(obj)  # a second dump with the same memo
    p.clear_memo()
    return f.getvalue() if isinstance(f, CappedFile) else b"".join(f.chunks)


def _set_mutated_while_walked(v_ours, v_ref):
    """A set changed size while pickled, and both picklers failed. `_pickle` keeps walking the
    set's hash table (a private API) and may first hit another item's error; the stable ABI only
    offers the set iterator, which stops at the change, so we report the size change itself."""
    return (
        isinstance(v_ours, RuntimeError)
        and "changed size during iteration" in str(v_ours)
        and isinstance(v_ref, Exception)
    )


def compare(ours, ref):
    ok_ours, v_ours = ours
    ok_ref, v_ref = ref
    if not ok_ours:
        check_exception(v_ours, "dumps")
    for ok, v in (ours, ref):
        # The cap may be reached by one side first (the two flush to the file at different
        # points), so what follows is not comparable.
        if not ok and isinstance(v, (RecursionError, MemoryError, OutputCap)):
            return
    if not ok_ref and isinstance(v_ref, SystemError):
        return
    if ok_ours != ok_ref:
        raise Finding(
            "dumps: pickle5_rs %s, reference %s"
            % (
                "returned %r" % (v_ours,) if ok_ours else "raised %r" % (v_ours,),
                "returned %r" % (v_ref,) if ok_ref else "raised %r" % (v_ref,),
            )
        )
    if not ok_ours:
        if _set_mutated_while_walked(v_ours, v_ref):
            return
        if not common.same_class(v_ours, v_ref):
            raise Finding("dumps: pickle5_rs raised %r, reference %r" % (v_ours, v_ref))
        return
    if v_ours != v_ref:
        raise Finding("dumps: outputs differ:\n  ours %r\n  ref  %r" % (v_ours, v_ref))
    # The output loads back (through pickle5_rs) without breaking the invariants.
    ok, value = outcome(lambda: common.pickle5_rs.loads(v_ours, buffers=[b"x"] * 64), "pickle5_rs")
    if not ok:
        check_exception(value, "loads of dumps output")


def test_one_input(data):
    common.begin_input(data)
    ours = outcome(lambda: run(data, common.pickle5_rs), "pickle5_rs")
    if not ours[0] and isinstance(ours[1], MemoryError) and common.alloc_limit_mode():
        return  # the cap at work (allocation-limit mode): nothing to compare
    try:
        ref = outcome(lambda: run(data, common.REF), "reference")
    except common.ReferenceFailure as exc:
        print("fuzz_dumps: %s (input %r)" % (exc, data[:64]), file=sys.stderr)
        if not ours[0]:
            check_exception(ours[1], "dumps")
        return
    compare(ours, ref)


def main():
    import atheris

    common.setup_process()
    sys.modules.setdefault("fuzz_dumps", sys.modules[__name__])
    atheris.Setup(sys.argv, test_one_input, internal_libfuzzer=True)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
