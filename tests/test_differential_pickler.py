"""Differential tests (see tests/support/differential.py): the Pickler object: its arguments and
attributes, the memo, fast mode, subclasses and per-instance hooks, dump(), and garbage collection."""

import io
import sys

import pytest

from differential import PROTOCOLS, Plain, RecordingFile, Reduce2, module_function, ours, ref


def test_buffer_callback_needs_protocol_5():
    for proto in range(5):
        with pytest.raises(ValueError, match="buffer_callback needs protocol >= 5"):
            ours.dumps(1, proto, buffer_callback=print)
    with pytest.raises(ValueError, match="pickle protocol must be <= 5"):
        ours.dumps(1, 6)
    assert ours.dumps(1, -1) == ref.dumps(1, -1)
    assert ours.dumps(1) == ref.dumps(1)


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


def test_reducer_override_assigned_to_the_pickler_class_is_called():
    # The class is not immutable (unlike the C one): an attribute given to it later counts.
    def reducer_override(self, obj):
        return (complex, (1, 2)) if isinstance(obj, Plain) else NotImplemented

    def dump(value):
        f = io.BytesIO()
        ours.Pickler(f, 5).dump(value)
        return ours.loads(f.getvalue())

    assert isinstance(dump(Plain()), Plain)
    ours.Pickler.reducer_override = reducer_override
    try:
        assert dump([Plain(), 2.5]) == [complex(1, 2), 2.5]
    finally:
        del ours.Pickler.reducer_override
    assert isinstance(dump(Plain()), Plain)
