"""Differential tests: pickle5_rs's Pickler against the C pickler of the running Python.

The reference is the stdlib ``pickle`` (its C accelerator) on 3.8+, and the ``pickle5`` backport on
3.6/3.7. Every output is compared byte for byte, write() call by write() call for file pickling, and
loaded back with the reference unpickler.
"""

import collections
import copyreg
import functools
import io
import math
import random
import re
import subprocess
import sys
import textwrap

import pytest

import pickle5_rs as ours

if sys.version_info >= (3, 8):
    import pickle as ref

    assert ref.Pickler.__module__ == "_pickle", "the C pickler is needed as reference"
else:
    ref = pytest.importorskip("pickle5")

PROTOCOLS = range(0, 6)


# ---- classes covering every reduce form (module level, so they pickle by reference) ----


class Plain:
    def __init__(self, a=1, b="two"):
        self.a = a
        self.b = b

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = object.__hash__


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, x=1, y=2):
        self.x = x
        self.y = y


class WithNewArgs:
    def __new__(cls, *args):
        obj = super().__new__(cls)
        obj.args = args
        return obj

    def __getnewargs__(self):
        return self.args


class WithNewArgsEx:
    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        obj.args = args
        obj.kwargs = kwargs
        return obj

    def __getnewargs_ex__(self):
        return self.args, self.kwargs


class WithState:
    def __init__(self):
        self.value = [1, 2, 3]

    def __getstate__(self):
        return {"v": self.value}

    def __setstate__(self, state):
        self.value = state["v"]


class Reduce2:
    def __init__(self, n=0):
        self.n = n

    def __reduce__(self):
        return (Reduce2, (self.n,))


class Reduce3:
    def __reduce__(self):
        return (Reduce3, (), {"state": 1})


def _rebuild_list_like():
    return ListLike()


class ListLike:
    def __init__(self):
        self.items = []

    def append(self, x):
        self.items.append(x)

    def extend(self, xs):
        self.items.extend(xs)

    def __reduce__(self):
        return (_rebuild_list_like, (), None, iter(self.items))


class DictLike(dict):
    def __reduce__(self):
        return (DictLike, (), None, None, iter(list(self.items())))


def _set_state(obj, state):
    obj.__dict__.update(state)


class WithStateSetter:
    def __init__(self):
        self.k = "v"

    def __reduce__(self):
        return (WithStateSetter, (), {"k": self.k}, None, None, _set_state)


GLOBAL_SINGLETON_NAME = "SINGLETON"


class ReduceToName:
    def __reduce__(self):
        return GLOBAL_SINGLETON_NAME


SINGLETON = ReduceToName()


class ReduceEx:
    def __reduce_ex__(self, proto):
        return (ReduceEx, (), proto)

    def __setstate__(self, state):
        self.proto = state


class Outer:
    class Inner:
        class Deepest:
            pass


class MyList(list):
    pass


class MyDict(dict):
    pass


class MyTuple(tuple):
    pass


class MySet(set):
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyBytes(bytes):
    pass


def module_function(x):
    return x


SCALARS = [
    None, True, False,
    0, 1, -1, 127, 128, 255, 256, -128, -129, -256, 65535, 65536, -65536,
    2 ** 31 - 1, -2 ** 31, 2 ** 31, -2 ** 31 - 1, 2 ** 32, 2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1,
    2 ** 64, -2 ** 64, 2 ** 1000, -2 ** 1000, -2 ** 2047, 2 ** 2048 - 1, 10 ** 600,
    0.0, -0.0, 1.5, -2.25, 1e16, 1e-5, 1e300, float("inf"), float("-inf"), 0.1 + 0.2, 123456789.123,
    "", "a", "abc", "é", "\u20ac", "\U0001f600", "a\\b", "line\nbreak", "cr\r", "nul\x00", "sub\x1a",
    "\ud800", "x\udfffy", "mixé\U0001f600\\\n", "x" * 255, "y" * 256, "z" * 70000, "é" * 40000,
    b"", b"a", b"\x00\xff", b"x" * 255, b"y" * 256, b"z" * 70000,
    bytearray(), bytearray(b"ab"), bytearray(b"q" * 70000),
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
    [], [1], [1, 2], list(range(999)), list(range(1000)), list(range(1001)), list(range(2500)),
    {}, {"a": 1}, dict.fromkeys(range(1000)), dict.fromkeys(range(1001)), dict.fromkeys(range(2000)),
    set(), {1}, set(range(1000)), set(range(2001)), frozenset(), frozenset([1, 2]), frozenset(range(1500)),
    complex(1, 2), collections.OrderedDict(a=1), collections.deque([1, 2]),
    Plain(), Slotted(), WithNewArgs(1, 2), WithNewArgsEx(1, k=2), WithState(), Reduce2(5), Reduce3(),
    ListLike(), DictLike(a=1), WithStateSetter(), SINGLETON, ReduceEx(),
    Outer, Outer.Inner, Outer.Inner.Deepest, Outer.Inner.Deepest(),
    MyList([1, 2]), MyDict(a=1), MyTuple((1, 2)), MySet({1}), MyInt(5), MyStr("s"), MyBytes(b"b"),
    module_function, len, functools.reduce, range(3), str.upper, int, type, object, type(None),
    type(Ellipsis), type(NotImplemented), Ellipsis, NotImplemented, collections.UserDict,
    ValueError("boom"), slice(1, 2, 3),
]


def _scalar_id(value):
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


class RecordingFile:
    """A file that records each write() call."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return memoryview(data).nbytes


def _normalized(message):
    return re.sub(r"0x[0-9a-f]+", "0x...", message)


def assert_same_error(got, expected):
    if sys.version_info >= (3, 8):
        assert type(got) is type(expected)
    else:  # pickle5 has its own exception classes; ours are the stdlib's
        assert type(got).__name__ == type(expected).__name__
    if not isinstance(expected, RecursionError):  # where the depth runs out differs
        assert _normalized(str(got)) == _normalized(str(expected))


def assert_same(obj, proto, **kwargs):
    """Both picklers give the same bytes, or the same exception (then None is returned)."""
    try:
        expected = ref.dumps(obj, proto, **kwargs)
    except Exception as e:
        with pytest.raises(Exception) as got_err:
            ours.dumps(obj, proto, **kwargs)
        assert_same_error(got_err.value, e)
        return None
    got = ours.dumps(obj, proto, **kwargs)
    assert got == expected
    # File pickling must make the same write() calls.
    exp_file, got_file = RecordingFile(), RecordingFile()
    ref.Pickler(exp_file, proto, **kwargs).dump(obj)
    ours.Pickler(got_file, proto, **kwargs).dump(obj)
    assert got_file.chunks == exp_file.chunks
    return got


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", SCALARS, ids=_scalar_id)
def test_scalars_and_reduce_forms(value, proto):
    data = assert_same(value, proto)
    if data is None:
        return
    loaded = ref.loads(data)
    if isinstance(value, (int, str, bytes, tuple, list, dict, set, frozenset, bytearray, complex)):
        assert loaded == value
        assert type(loaded) is type(value)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_nan(proto):
    data = assert_same(float("nan"), proto)
    assert math.isnan(ref.loads(data))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("fix_imports", [True, False])
def test_fix_imports(proto, fix_imports):
    for obj in [range, functools.reduce, collections.UserDict, io.StringIO, ValueError, [range(2)]]:
        assert_same(obj, proto, fix_imports=fix_imports)


def _recursive_structures():
    lst = []
    lst.append(lst)
    dct = {}
    dct["self"] = dct
    tup_list = ([],)
    tup_list[0].append(tup_list)
    big_tup = ([], 1, 2, 3, 4)
    big_tup[0].append(big_tup)
    obj = Plain()
    obj.a = obj
    obj_in_list = [Plain()]
    obj_in_list[0].a = obj_in_list
    fs_holder = Plain()
    fs = frozenset([fs_holder])
    fs_holder.a = fs
    set_holder = Plain()
    st = {set_holder}
    set_holder.a = st
    dict_key = Plain()
    dict_key.a = {dict_key: 1}
    sub = MyList()
    sub.append(sub)
    return [lst, dct, tup_list, big_tup, obj, obj_in_list, fs, st, dict_key, sub]


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("index", range(10))
def test_recursive(proto, index):
    obj = _recursive_structures()[index]
    assert_same(obj, proto)


def random_graph(rng, depth=0, pool=None):
    """A random object graph with shared references."""
    if pool is None:
        pool = []
    if pool and rng.random() < 0.15:
        return rng.choice(pool)
    if depth > 4 or rng.random() < 0.35:
        choice = rng.randrange(12)
        if choice == 0:
            value = rng.randrange(-2 ** 70, 2 ** 70) >> rng.randrange(70)
        elif choice == 1:
            value = rng.random() * 10 ** rng.randrange(-10, 10)
        elif choice == 2:
            value = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000), 0x1F600, 10, 92]))
                            for _ in range(rng.randrange(0, 20)))
        elif choice == 3:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        elif choice == 4:
            value = rng.choice([None, True, False, Ellipsis, NotImplemented])
        elif choice == 5:
            value = bytearray(rng.randrange(256) for _ in range(rng.randrange(0, 10)))
        elif choice == 6:
            value = rng.choice([Plain(rng.randrange(5)), Slotted(), WithNewArgs(rng.randrange(9)), Reduce2(1),
                                WithNewArgsEx(1, z=rng.randrange(3)), WithStateSetter(), ReduceEx()])
        elif choice == 7:
            value = rng.choice([int, Plain, len, module_function, Outer.Inner, type(None)])
        elif choice == 8:
            value = rng.randrange(-300, 300)
        elif choice == 9:
            value = "s%d" % rng.randrange(10)
        elif choice == 10:
            value = complex(rng.random(), 1)
        else:
            value = 2 ** rng.randrange(200)
    else:
        kind = rng.randrange(7)
        n = rng.choice([0, 1, 2, 3, 4, 5, 10, 40])
        items = [random_graph(rng, depth + 1, pool) for _ in range(n)]
        if kind == 0:
            value = items
        elif kind == 1:
            value = tuple(items)
        elif kind == 2:
            value = {}
            for i, v in enumerate(items):
                key = items[i - 1] if i and isinstance(items[i - 1], (int, str, bytes, tuple)) else i
                try:
                    value[key] = v
                except TypeError:
                    value[i] = v
        elif kind == 3:
            value = {x for x in items if isinstance(x, (int, str, bytes, float))}
        elif kind == 4:
            value = frozenset(x for x in items if isinstance(x, (int, str, bytes)))
        elif kind == 5:
            value = Plain(items, {"k": items[:2]})
        else:
            value = MyList(items)
        if kind in (0, 2, 5) and rng.random() < 0.2:
            # make it recursive
            if kind == 0:
                value.append(value)
            elif kind == 2:
                value["me"] = value
            else:
                value.b = value
    pool.append(value)
    return value


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("seed", range(40))
def test_random_graphs(seed, proto):
    rng = random.Random(seed * 7919 + proto)
    obj = random_graph(rng)
    data = assert_same(obj, proto)
    if data is not None:
        ref.loads(data)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_large_framed(proto):
    # Many small objects (frames split at 64 KiB) mixed with large payloads (outside frames).
    obj = [list(range(30000)), "x" * 100000, b"y" * 100000, [str(i) for i in range(20000)],
           bytearray(b"z" * 70000), {i: str(i) for i in range(10000)}]
    assert_same(obj, proto)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_memo_indices_above_256(proto):
    strings = ["s%d" % i for i in range(70000)]
    assert_same([strings, strings[::-1]], proto)


@pytest.mark.parametrize("readonly", [True, False])
def test_picklebuffer(readonly):
    # Each pickler gets its own module's PickleBuffer (the same type on 3.8+; on 3.6/3.7 pickle5's
    # and ours are distinct types wrapping the same memory).
    base = b"abc" * 10 if readonly else bytearray(b"abc" * 10)
    big = b"q" * 100000 if readonly else bytearray(b"q" * 100000)
    for payload in (base, big):
        exp_pb, got_pb = ref.PickleBuffer(payload), ours.PickleBuffer(payload)
        assert ours.dumps([got_pb, got_pb], 5) == ref.dumps([exp_pb, exp_pb], 5)
        exp, got = [], []
        exp_data = ref.dumps([exp_pb, 1], 5, buffer_callback=exp.append)
        got_data = ours.dumps([got_pb, 1], 5, buffer_callback=got.append)
        assert exp_data == got_data
        assert len(got) == 1 and got[0] is got_pb
        # A truthy return keeps the buffer in band.
        keep = lambda b: True  # noqa: E731
        assert ours.dumps(got_pb, 5, buffer_callback=keep) == ref.dumps(exp_pb, 5, buffer_callback=keep)
    for proto in range(5):
        with pytest.raises(ref.PicklingError) as exp_err:
            ref.dumps(ref.PickleBuffer(base), proto)
        with pytest.raises(ours.PicklingError) as got_err:
            ours.dumps(ours.PickleBuffer(base), proto)
        assert str(got_err.value) == str(exp_err.value)
    with pytest.raises(ours.PicklingError):
        ours.dumps(ours.PickleBuffer(memoryview(b"foobar")[::2]), 5)
    # numpy on 3.6/3.7 wraps arrays in the pickle5 backport's PickleBuffer when that is installed:
    # ours pickles those exactly like its own.
    foreign = ref.PickleBuffer(base)
    assert ours.dumps([foreign, foreign], 5) == ref.dumps([foreign, foreign], 5)
    got = []
    assert ours.dumps(foreign, 5, buffer_callback=got.append) == ref.dumps(foreign, 5, buffer_callback=list().append)
    assert got == [foreign]


def test_buffer_callback_needs_protocol_5():
    for proto in range(5):
        with pytest.raises(ValueError, match="buffer_callback needs protocol >= 5"):
            ours.dumps(1, proto, buffer_callback=print)
    with pytest.raises(ValueError, match="pickle protocol must be <= 5"):
        ours.dumps(1, 6)
    assert ours.dumps(1, -1) == ref.dumps(1, -1)
    assert ours.dumps(1) == ref.dumps(1)


def test_extension_registry():
    copyreg.add_extension(__name__, "Plain", 240)
    copyreg.add_extension(__name__, "Slotted", 0x1234)
    copyreg.add_extension(__name__, "Reduce2", 0x123456)
    try:
        for proto in PROTOCOLS:
            assert_same([Plain, Slotted, Reduce2, Plain(), Reduce2(3)], proto)
    finally:
        copyreg.remove_extension(__name__, "Plain", 240)
        copyreg.remove_extension(__name__, "Slotted", 0x1234)
        copyreg.remove_extension(__name__, "Reduce2", 0x123456)


# ---- errors ----


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("nope")


class BadReduce:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return self.value


def _local():
    def inner():
        pass

    return inner


def _errors():
    not_same = module_function.__qualname__
    renamed = functools.partial(print)
    fake = lambda: None  # noqa: E731
    fake.__qualname__ = "module_function"
    fake.__module__ = __name__
    missing = lambda: None  # noqa: E731
    missing.__qualname__ = "does_not_exist"
    missing.__module__ = __name__
    bad_module = lambda: None  # noqa: E731
    bad_module.__module__ = "no_such_module_xyz"
    return [
        Unpicklable(), _local(), fake, missing, bad_module, not_same and renamed,
        BadReduce(42), BadReduce(()), BadReduce((print,)), BadReduce((print, (), None, None, None, None, None)),
        BadReduce((42, ())), BadReduce((print, [])), BadReduce((list, (), None, 42)),
        BadReduce((dict, (), None, None, 42)), BadReduce((dict, (), None, None, iter([("a",)]))),
        BadReduce((print, (), "state", None, None, 42)), BadReduce((copyreg.__newobj__, ())),
        BadReduce((copyreg.__newobj__, (42,))), BadReduce((copyreg.__newobj__, (str,))),
        BadReduce((copyreg.__newobj_ex__, (BadReduce, 42, {}))), BadReduce((copyreg.__newobj_ex__, (1, 2))),
        BadReduce((copyreg.__newobj_ex__, (42, (), {}))), BadReduce((copyreg.__newobj_ex__, (BadReduce, (), []))),
        BadReduce("not_a_global_here"), [1, Unpicklable()], {"k": [Unpicklable()]},
    ]


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("index", range(26))
def test_errors(proto, index):
    obj = _errors()[index]
    try:
        ref.dumps(_errors()[index], proto)
    except Exception as e:
        expected = e
    else:
        expected = None
    if expected is None:
        assert_same(obj, proto)
        return
    with pytest.raises(Exception) as got:
        ours.dumps(obj, proto)
    assert_same_error(got.value, expected)


# ---- the Pickler object ----


def test_pickler_attributes():
    f = io.BytesIO()
    p = ours.Pickler(f, 2)
    assert p.bin == 1 and p.fast == 0
    assert type(ours.Pickler.__dict__["dispatch_table"]).__name__ == "member_descriptor"
    assert not hasattr(p, "dispatch_table")
    assert not hasattr(p, "persistent_id") or sys.version_info >= (3, 13)
    p.fast = 1
    assert p.fast == 1
    with pytest.raises(TypeError):
        ours.Pickler(object())
    with pytest.raises(ours.PicklingError, match="__init__"):
        class NoInit(ours.Pickler):
            def __init__(self):
                pass

        NoInit().dump(1)


def test_memo_shared_between_dumps():
    for proto in PROTOCOLS:
        shared = [1, 2]
        exp_f, got_f = io.BytesIO(), io.BytesIO()
        exp_p, got_p = ref.Pickler(exp_f, proto), ours.Pickler(got_f, proto)
        for p in (exp_p, got_p):
            p.dump(shared)
            p.dump([shared, "x"])
        assert got_f.getvalue() == exp_f.getvalue()
        exp_p.clear_memo()
        got_p.clear_memo()
        exp_p.dump(shared)
        got_p.dump(shared)
        assert got_f.getvalue() == exp_f.getvalue()


def test_memo_proxy():
    f = io.BytesIO()
    p = ours.Pickler(f, 2)
    obj = [1, 2]
    p.dump(obj)
    memo = p.memo.copy()
    assert memo == {id(obj): (0, obj)}
    q = ours.Pickler(io.BytesIO(), 2)
    q.memo = p.memo
    assert q.memo.copy() == memo
    r = ours.Pickler(io.BytesIO(), 2)
    r.memo = memo
    assert r.memo.copy() == memo
    p.memo.clear()
    assert p.memo.copy() == {}
    with pytest.raises(TypeError):
        p.memo = 42
    with pytest.raises((TypeError, AttributeError)):
        del p.memo


def test_fast_mode():
    for proto in PROTOCOLS:
        obj = [[1, 2], ("a", "b"), {"k": "v"}]
        exp_f, got_f = io.BytesIO(), io.BytesIO()
        exp_p, got_p = ref.Pickler(exp_f, proto), ours.Pickler(got_f, proto)
        exp_p.fast = got_p.fast = 1
        exp_p.dump(obj)
        got_p.dump(obj)
        assert got_f.getvalue() == exp_f.getvalue()
    cyclic = []
    cyclic.append([cyclic])
    for _ in range(60):
        cyclic = [cyclic]
    p = ours.Pickler(io.BytesIO(), 2)
    p.fast = 1
    with pytest.raises(ValueError, match="fast mode"):
        lst = []
        lst.append(lst)
        p.dump(lst)


def _make_subclasses(base):
    class PersPickler(base):
        def persistent_id(self, obj):
            if isinstance(obj, str) and obj.startswith("pid"):
                return obj.upper()
            return None

    class TablePickler(base):
        dispatch_table = {Plain: lambda o: (Plain, (o.a, "table"))}

    class OverridePickler(base):
        def reducer_override(self, obj):
            if obj is module_function:
                return (len, ("overridden",))
            if isinstance(obj, Reduce2):
                return (Reduce2, (99,))
            return NotImplemented

    class InitPickler(base):
        def __init__(self, file, reducers=None, protocol=None):
            base.__init__(self, file, protocol=protocol)
            self.extra = reducers

    class DumpPickler(base):
        def dump(self, obj):
            return base.dump(self, [obj, "wrapped"])

    return PersPickler, TablePickler, OverridePickler, InitPickler, DumpPickler


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_subclasses(proto):
    obj = ["pid1", "plain", Plain(3), module_function, Reduce2(1), ["pid2"], int]
    for exp_cls, got_cls in zip(_make_subclasses(ref.Pickler), _make_subclasses(ours.Pickler)):
        exp_f, got_f = io.BytesIO(), io.BytesIO()
        if exp_cls.__name__ == "InitPickler":
            exp_cls(exp_f, {"r": 1}, proto).dump(obj)
            got_cls(got_f, {"r": 1}, proto).dump(obj)
        else:
            exp_cls(exp_f, proto).dump(obj)
            got_cls(got_f, proto).dump(obj)
        assert got_f.getvalue() == exp_f.getvalue(), exp_cls.__name__


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_instance_hooks(proto):
    obj = ["pid", Plain(1), 3]
    results = []
    for cls in (ref.Pickler, ours.Pickler):
        f = io.BytesIO()
        p = cls(f, proto)
        if sys.version_info < (3, 13):  # read-only on 3.13's C Pickler
            p.persistent_id = lambda o: "P" if o == "pid" else None
        p.dispatch_table = {Plain: lambda o: (Plain, (o.a, "inst"))}
        p.dump(obj)
        assert p.dispatch_table is not None
        results.append(f.getvalue())
    assert results[0] == results[1]
    if proto == 0:
        # A subclass instance, since 3.13 makes the attribute read-only on the base class.
        class SettablePickler(ours.Pickler):
            pass

        p = SettablePickler(io.BytesIO(), 0)
        p.persistent_id = lambda o: "\xe9"
        with pytest.raises(ours.PicklingError, match="ASCII"):
            p.dump(1)


def test_dump_function():
    for proto in PROTOCOLS:
        exp, got = RecordingFile(), RecordingFile()
        obj = [b"x" * 70000, list(range(20000))]
        ref.dump(obj, exp, proto)
        ours.dump(obj, got, proto)
        assert got.chunks == exp.chunks
    with pytest.raises(TypeError, match="write"):
        ours.dump(1, object())


def test_deep_nesting_raises_recursion_error():
    code = textwrap.dedent("""
        import sys
        import pickle5_rs
        sys.setrecursionlimit(10 ** 7)
        obj = []
        for _ in range(2 * 10 ** 6):
            obj = [obj]
        try:
            pickle5_rs.dumps(obj)
        except RecursionError:
            print("recursion error")
        sys.setrecursionlimit(1000)
        try:
            pickle5_rs.dumps(obj)
        except RecursionError:
            print("recursion error")
    """)
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["recursion", "error", "recursion", "error"]


def test_gc_collects_pickler_cycles():
    import gc
    import weakref

    class Holder:
        pass

    class SettablePickler(ours.Pickler):  # 3.13 makes persistent_id read-only on the base
        pass

    h = Holder()
    p = SettablePickler(io.BytesIO(), 2)
    p.persistent_id = lambda o, h=h: None
    h.p = p
    ref_to_h = weakref.ref(h)
    del h, p
    gc.collect()
    assert ref_to_h() is None


# ---- instances of plain classes (pickled without calling object.__reduce_ex__) ----


class PlainBase:
    pass


class PlainChild(PlainBase):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class PlainWithGetattr:
    def __getattr__(self, name):
        raise AttributeError(name)


class PlainWithClassProperty:
    @property
    def __class__(self):
        return PlainBase


class PlainMeta(type):
    pass


class PlainWithMeta(metaclass=PlainMeta):
    pass


class PlainSlotsAndDict:
    __slots__ = ("__dict__", "s")


class PlainSlotsDictOnly:
    __slots__ = ("__dict__",)


class PlainNoWeakref:
    __slots__ = ("__dict__",)


class PlainListSub(list):
    pass


class PlainDictSub(dict):
    pass


class PlainMutator:
    """Its reducer changes PlainChild mid-pickling: later instances must see the change."""

    def __reduce__(self):
        PlainChild.__reduce__ = lambda self: (PlainBase, ())
        return (PlainMutator, ())


def _plain_instances():
    empty = PlainBase()
    child = PlainChild(a=1, b="x", c=[1, 2], d=None)
    shadow_reduce_ex = PlainChild(__reduce_ex__=lambda proto: (PlainBase, ()))
    shadow_reduce = PlainChild(__reduce__=lambda: (PlainBase, ()))
    shadow_getstate = PlainChild(__getstate__=lambda: {"g": 1})
    recursive = PlainChild()
    recursive.me = recursive
    sd = PlainSlotsAndDict()
    sd.s = 1
    sd.d = 2
    so = PlainSlotsDictOnly()
    so.x = 1
    nw = PlainNoWeakref()
    pl = PlainListSub([1, 2])
    pl.attr = 3
    pdict = PlainDictSub(a=1)
    pdict.attr = 4
    ga = PlainWithGetattr()
    ga.x = 1
    meta = PlainWithMeta()
    meta.y = 2
    return [empty, child, child, child.__dict__, shadow_reduce_ex, shadow_reduce, shadow_getstate,
            recursive, sd, so, nw, pl, pdict, ga, meta, [PlainBase() for _ in range(3)]]


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_instances(proto):
    assert_same(_plain_instances(), proto)
    assert_same(PlainWithClassProperty(), proto)


def test_plain_instances_fast_mode_and_hooks():
    objs = _plain_instances()[:4]
    for proto in PROTOCOLS:
        for fast in (False, True):
            exp_file, got_file = io.BytesIO(), io.BytesIO()
            exp_p, got_p = ref.Pickler(exp_file, proto), ours.Pickler(got_file, proto)
            exp_p.fast = got_p.fast = fast
            exp_p.dump(objs[:2])
            got_p.dump(objs[:2])
            assert got_file.getvalue() == exp_file.getvalue()

    class Persist:
        @staticmethod
        def persistent_id(obj):
            return "pid" if obj == {"a": 1, "b": "x", "c": [1, 2], "d": None} else None

    class Override:
        @staticmethod
        def reducer_override(obj):
            return NotImplemented

    for mixin in (Persist, Override):
        for proto in (2, 4, 5):
            exp_file, got_file = io.BytesIO(), io.BytesIO()
            exp_cls = type("E", (mixin, ref.Pickler), {})
            got_cls = type("G", (mixin, ours.Pickler), {})
            exp_cls(exp_file, proto).dump(objs)
            got_cls(got_file, proto).dump(objs)
            assert got_file.getvalue() == exp_file.getvalue()


def test_plain_class_changed_while_pickling():
    try:
        for proto in PROTOCOLS:
            if "__reduce__" in PlainChild.__dict__:
                del PlainChild.__reduce__
            expected = ref.dumps([PlainChild(a=1), PlainMutator(), PlainChild(a=2)], proto)
            del PlainChild.__reduce__
            got = ours.dumps([PlainChild(a=1), PlainMutator(), PlainChild(a=2)], proto)
            assert got == expected
    finally:
        if "__reduce__" in PlainChild.__dict__:
            del PlainChild.__reduce__


def test_plain_slotnames_and_copyreg_changes():
    class Late:
        pass

    Late.__qualname__ = Late.__name__ = "PlainLate"
    globals()["PlainLate"] = Late
    try:
        # First pickling computes and caches __slotnames__ through copyreg.
        assert "__slotnames__" not in Late.__dict__
        obj = Late()
        obj.v = 1
        for proto in PROTOCOLS:
            assert_same([obj, Late()], proto)
        Late.__slotnames__ = ["v"]
        for proto in PROTOCOLS:
            assert_same([obj], proto)
        Late.__slotnames__ = []
        original = copyreg.__newobj__

        def replacement(cls, *args):
            return cls.__new__(cls, *args)

        copyreg.__newobj__ = replacement
        try:
            for proto in PROTOCOLS:
                assert_same([obj], proto)
            replacement.__name__ = "__newobj__"
            for proto in PROTOCOLS:
                assert_same([obj], proto)
        finally:
            copyreg.__newobj__ = original
        original.__name__ = "renamed"
        try:
            for proto in PROTOCOLS:
                assert_same([obj], proto)
        finally:
            original.__name__ = "__newobj__"
    finally:
        del globals()["PlainLate"]


def test_large_picklebuffer_in_band_file_and_memory():
    # A PickleBuffer over bytes is kept by reference in memory; file.write() still gets the
    # PickleBuffer object itself, as from the C pickler.
    for payload in (b"p" * 200000, bytearray(b"q" * 200000), memoryview(b"r" * 300000)[1000:250000]):
        exp_pb, got_pb = ref.PickleBuffer(payload), ours.PickleBuffer(payload)
        assert ours.dumps([got_pb, b"x", got_pb], 5) == ref.dumps([exp_pb, b"x", exp_pb], 5)
        exp_file, got_file = RecordingFile(), RecordingFile()
        exp_types, got_types = [], []
        exp_file.write = lambda data, f=exp_file: exp_types.append(type(data).__name__) or RecordingFile.write(f, data)
        got_file.write = lambda data, f=got_file: got_types.append(type(data).__name__) or RecordingFile.write(f, data)
        ref.Pickler(exp_file, 5).dump([exp_pb, b"x", exp_pb])
        ours.Pickler(got_file, 5).dump([got_pb, b"x", got_pb])
        assert got_file.chunks == exp_file.chunks
        assert got_types == exp_types


class _ChangesPlainChild:
    """Sets PlainChild.__getstate__ when called; used from hooks the picklers run mid-dump."""

    def __init__(self, at_call):
        self.calls = 0
        self.at_call = at_call

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.at_call:
            PlainChild.__getstate__ = lambda self: {"changed": True}


def _without_getstate():
    if "__getstate__" in PlainChild.__dict__:
        del PlainChild.__getstate__


def _dump_both_to_files(objects_factory, make_pickler, proto=5):
    """make_pickler(module, file, proto) -> a Pickler of `module` writing to `file`."""
    outputs = []
    for module in (ref, ours):
        _without_getstate()
        objs = objects_factory()
        f = RecordingFile()
        make_pickler(module, f, proto).dump(objs)
        outputs.append(f.chunks)
    _without_getstate()
    return outputs


def _plain_pickler(module, f, proto):
    return module.Pickler(f, proto)


def test_plain_class_changed_by_file_write():
    def make(module, f, proto):
        change = _ChangesPlainChild(1)
        original = f.write
        f.write = lambda data: (change(), original(data))[1]
        return module.Pickler(f, proto)

    factory = lambda: [PlainChild(i=i, s="x" * 50) for i in range(5000)]  # noqa: E731
    exp, got = _dump_both_to_files(factory, make)
    assert got == exp
    assert b"changed" in b"".join(exp)


def test_plain_class_changed_by_persistent_id_and_reducer_override():
    factory = lambda: [PlainChild(i=i) for i in range(10)]  # noqa: E731
    for attr in ("persistent_id", "reducer_override"):

        def make(module, f, proto, attr=attr):
            change = _ChangesPlainChild(8)

            def hook(self, obj):
                change()
                return None if attr == "persistent_id" else NotImplemented

            return type("P", (module.Pickler,), {attr: hook})(f, proto)

        exp, got = _dump_both_to_files(factory, make)
        assert got == exp
        assert b"changed" in b"".join(exp)


class _ChangesOnRelease:
    """An empty iterator (never memoized) that changes PlainChild when the pickler drops it."""

    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration

    def __del__(self):
        PlainChild.__getstate__ = lambda self: {"released": True}


class _ReducesToTemporary:
    def __reduce__(self):
        return (PlainBase, (), None, _ChangesOnRelease())


def test_plain_class_changed_when_a_reduce_result_is_released():
    factory = lambda: [PlainChild(a=1), _ReducesToTemporary(), PlainChild(a=2)]  # noqa: E731
    for proto in (2, 4):
        exp, got = _dump_both_to_files(factory, _plain_pickler, proto)
        assert got == exp
        assert b"released" in b"".join(exp)


# ---- bytes and bytearray below protocol 3: latin-1 text through codecs.encode ----

_LATIN1_CASES = [
    bytes(range(256)),
    b"\\\n\r\x00\x1a",
    b"a" * 1000 + b"\n",
    bytes(random.Random(5).getrandbits(8) for _ in range(20000)),
    b"\xff",
    b"x",
]


@pytest.mark.parametrize("proto", range(0, 3))
@pytest.mark.parametrize("index", range(len(_LATIN1_CASES)))
def test_bytes_as_latin1_text(proto, index):
    data = _LATIN1_CASES[index]
    for obj in (data, bytearray(data), [data, data], (data, "caf\u00e9\n\\", data)):
        out = ours.dumps(obj, proto)
        assert out == ref.dumps(obj, proto)
        assert ref.loads(out) == obj
