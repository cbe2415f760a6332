"""What the differential tests (tests/test_differential_*.py) share.

They compare pickle5_rs's Pickler with the C pickler of the running Python. The reference is the
stdlib ``pickle`` (its C accelerator) on 3.8+, and the ``pickle5`` backport on 3.6/3.7. Every output
is compared byte for byte, write() call by write() call for file pickling, and loaded back with the
reference unpickler.

Here: the reference module, the classes that cover every reduce form (at module level, so that they
pickle by reference, as ``differential.Plain`` etc.), the comparison helpers and the generator of
random object graphs.
"""

import re
import sys

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


def value_id(value):
    """A short test id for a pickled value."""
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


def assert_same_round_trip(value, proto):
    """assert_same(), then the reference loads the pickle back: equal, and of the same type, for
    the built-in types that compare by value."""
    data = assert_same(value, proto)
    if data is None:
        return
    loaded = ref.loads(data)
    if isinstance(value, (int, str, bytes, tuple, list, dict, set, frozenset, bytearray, complex)):
        assert loaded == value
        assert type(loaded) is type(value)


def random_graph(rng, depth=0, pool=None):
    """A random object graph with shared references."""
    if pool is None:
        pool = []
    if pool and rng.random() < 0.15:
        return rng.choice(pool)
    if depth > 4 or rng.random() < 0.35:
        choice = rng.randrange(12)
        if choice == 0:
            value = rng.randrange(-(2**70), 2**70) >> rng.randrange(70)
        elif choice == 1:
            value = rng.random() * 10 ** rng.randrange(-10, 10)
        elif choice == 2:
            value = "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000), 0x1F600, 10, 92]))
                for _ in range(rng.randrange(0, 20))
            )
        elif choice == 3:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        elif choice == 4:
            value = rng.choice([None, True, False, Ellipsis, NotImplemented])
        elif choice == 5:
            value = bytearray(rng.randrange(256) for _ in range(rng.randrange(0, 10)))
        elif choice == 6:
            value = rng.choice(
                [
                    Plain(rng.randrange(5)),
                    Slotted(),
                    WithNewArgs(rng.randrange(9)),
                    Reduce2(1),
                    WithNewArgsEx(1, z=rng.randrange(3)),
                    WithStateSetter(),
                    ReduceEx(),
                ]
            )
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
