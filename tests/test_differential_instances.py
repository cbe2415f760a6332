"""Differential tests (see tests/support/differential.py): instances, through every reduce form
(__reduce__, __reduce_ex__, __getnewargs[_ex]__, __getstate__, state setters, list and dict items),
subclasses of built-in types, instances of plain classes, and the errors of bad reduce values."""

import collections
import copyreg
import functools
import io

import pytest

from differential import (
    PROTOCOLS,
    SINGLETON,
    DictLike,
    ListLike,
    MyBytes,
    MyDict,
    MyInt,
    MyList,
    MySet,
    MyStr,
    MyTuple,
    Outer,
    Plain,
    RecordingFile,
    Reduce2,
    Reduce3,
    ReduceEx,
    Slotted,
    WithNewArgs,
    WithNewArgsEx,
    WithState,
    WithStateSetter,
    assert_same,
    assert_same_error,
    assert_same_round_trip,
    module_function,
    ours,
    ref,
    value_id,
)

# Kept as written, grouped by how they reduce.
# fmt: off
INSTANCES = [
    collections.OrderedDict(a=1), collections.deque([1, 2]),
    Plain(), Slotted(), WithNewArgs(1, 2), WithNewArgsEx(1, k=2), WithState(), Reduce2(5), Reduce3(),
    ListLike(), DictLike(a=1), WithStateSetter(), SINGLETON, ReduceEx(), Outer.Inner.Deepest(),
    MyList([1, 2]), MyDict(a=1), MyTuple((1, 2)), MySet({1}), MyInt(5), MyStr("s"), MyBytes(b"b"),
    range(3), ValueError("boom"), slice(1, 2, 3),
]
# fmt: on


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", INSTANCES, ids=value_id)
def test_instances_and_reduce_forms(value, proto):
    assert_same_round_trip(value, proto)


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
        Unpicklable(),
        _local(),
        fake,
        missing,
        bad_module,
        not_same and renamed,
        BadReduce(42),
        BadReduce(()),
        BadReduce((print,)),
        BadReduce((print, (), None, None, None, None, None)),
        BadReduce((42, ())),
        BadReduce((print, [])),
        BadReduce((list, (), None, 42)),
        BadReduce((dict, (), None, None, 42)),
        BadReduce((dict, (), None, None, iter([("a",)]))),
        BadReduce((print, (), "state", None, None, 42)),
        BadReduce((copyreg.__newobj__, ())),
        BadReduce((copyreg.__newobj__, (42,))),
        BadReduce((copyreg.__newobj__, (str,))),
        BadReduce((copyreg.__newobj_ex__, (BadReduce, 42, {}))),
        BadReduce((copyreg.__newobj_ex__, (1, 2))),
        BadReduce((copyreg.__newobj_ex__, (42, (), {}))),
        BadReduce((copyreg.__newobj_ex__, (BadReduce, (), []))),
        BadReduce("not_a_global_here"),
        [1, Unpicklable()],
        {"k": [Unpicklable()]},
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
    return [
        empty,
        child,
        child,
        child.__dict__,
        shadow_reduce_ex,
        shadow_reduce,
        shadow_getstate,
        recursive,
        sd,
        so,
        nw,
        pl,
        pdict,
        ga,
        meta,
        [PlainBase() for _ in range(3)],
    ]


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
