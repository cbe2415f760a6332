"""Out-of-band buffers (protocol 5): NEXT_BUFFER / READONLY_BUFFER with ``buffers=``."""

import io

import pytest

import unpickle_support as support
from unpickle_support import REF, TARGET, Blob, PickleBuffer

pytestmark = pytest.mark.skipif(
    REF is None or support.DUMP_PROTOCOL < 5, reason="needs the reference pickler with protocol 5"
)


def oob_dumps(obj, keep_in_band=lambda buf: False):
    """Protocol 5 pickle plus the out-of-band PickleBuffers, from the reference pickler."""
    buffers = []

    def callback(buf):
        if keep_in_band(buf):
            return True
        buffers.append(buf)
        return False

    return REF.dumps(obj, 5, buffer_callback=callback), buffers


LOADERS = {
    "loads": lambda module, data, **kw: module.loads(data, **kw),
    "load": lambda module, data, **kw: module.load(io.BytesIO(data), **kw),
    "Unpickler": lambda module, data, **kw: module.Unpickler(io.BytesIO(data), **kw).load(),
}


@pytest.fixture(params=sorted(LOADERS))
def loader(request):
    return LOADERS[request.param]


def test_readonly_buffer_given_bytes_is_returned_as_is(loader):
    data, _ = oob_dumps(PickleBuffer(b"payload"))
    source = b"payload"
    assert loader(TARGET, data, buffers=[source]) is source


def test_readonly_buffer_given_writable_memory_gives_readonly_view_of_it(loader):
    data, _ = oob_dumps(PickleBuffer(b"payload"))
    source = bytearray(b"payload")
    value = loader(TARGET, data, buffers=[source])
    assert isinstance(value, memoryview)
    assert value.readonly
    assert value.tobytes() == b"payload"
    assert support.shares_memory(value, source)
    with pytest.raises(TypeError):
        value[0] = 0


def test_writable_buffer_is_returned_as_is(loader):
    data, _ = oob_dumps(PickleBuffer(bytearray(b"payload")))
    source = bytearray(b"payload")
    value = loader(TARGET, data, buffers=[source])
    assert value is source


@pytest.mark.parametrize("readonly_pickle", [True, False], ids=["READONLY_BUFFER", "writable"])
def test_each_kind_of_buffer_object_like_reference(readonly_pickle):
    payload = b"xyz" if readonly_pickle else bytearray(b"xyz")
    data, _ = oob_dumps(PickleBuffer(payload))
    makers = [
        bytes,
        bytearray,
        lambda b: PickleBuffer(bytes(b)),
        lambda b: PickleBuffer(bytearray(b)),
        lambda b: memoryview(bytes(b)),
        lambda b: memoryview(bytearray(b)),
    ]
    for make in makers:
        given_ref, given_target = make(b"xyz"), make(b"xyz")
        expected = REF.loads(data, buffers=[given_ref])
        got = TARGET.loads(data, buffers=[given_target])
        shape = lambda value, given: (  # noqa: E731
            value is given,
            isinstance(value, memoryview),
            memoryview(value).readonly,
            memoryview(value).tobytes(),
        )
        assert shape(got, given_target) == shape(expected, given_ref), type(given_target).__name__


def test_blobs_share_memory_with_given_buffers():
    sources = [bytearray(b"a" * 10), bytearray(b"b" * 1000), bytearray(b"c" * 100000)]
    data, buffers = oob_dumps([Blob(s) for s in sources])
    assert len(buffers) == 3
    given = [bytearray(s) for s in sources]
    blobs = TARGET.loads(data, buffers=given)
    assert [type(b) for b in blobs] == [Blob] * 3
    for blob, source in zip(blobs, given):
        assert blob.data is source


def test_readonly_blobs_share_memory_with_given_writable_buffers():
    sources = [b"a" * 10, b"b" * 100000]
    data, _ = oob_dumps([Blob(s) for s in sources])
    given = [bytearray(s) for s in sources]
    blobs = TARGET.loads(data, buffers=given)
    for blob, source in zip(blobs, given):
        assert memoryview(blob.data).readonly
        assert support.shares_memory(blob.data, source)


def test_large_buffer_zero_copy():
    size = 64 * 1024 * 1024
    data, _ = oob_dumps(Blob(bytearray(size)))
    assert len(data) < 200
    given = bytearray(size)
    blob = TARGET.loads(data, buffers=[given])
    assert blob.data is given
    ro_data, _ = oob_dumps(Blob(bytes(16)))
    blob = TARGET.loads(ro_data, buffers=[given])
    assert support.shares_memory(blob.data, given)
    assert memoryview(blob.data).nbytes == size


def test_in_band_and_out_of_band_mixed():
    objs = [
        Blob(b"small"),
        Blob(bytearray(b"writable-small")),
        Blob(b"L" * 5000),
        Blob(bytearray(b"W" * 5000)),
    ]
    data, buffers = oob_dumps(objs, keep_in_band=lambda buf: memoryview(buf).nbytes < 100)
    assert len(buffers) == 2
    for given in (
        buffers,
        [bytes(memoryview(b)) for b in buffers],
        [bytearray(memoryview(b)) for b in buffers],
    ):
        expected = REF.loads(data, buffers=list(given))
        got = TARGET.loads(data, buffers=list(given))
        assert [type(b.data) for b in got] == [type(b.data) for b in expected]
        assert [bytes(memoryview(b.data)) for b in got] == [bytes(memoryview(b.data)) for b in expected]
        assert [memoryview(b.data).readonly for b in got] == [memoryview(b.data).readonly for b in expected]


def test_in_band_pickle_buffers_become_bytes_and_bytearray():
    data = REF.dumps([PickleBuffer(b"ro"), PickleBuffer(bytearray(b"rw"))], 5)
    value = TARGET.loads(data)
    assert value == [b"ro", bytearray(b"rw")]
    assert [type(v) for v in value] == [bytes, bytearray]
    # buffers= is irrelevant for in-band data
    assert TARGET.loads(data, buffers=[]) == value


class _Iterable:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def _generator(items):
    yield from items


@pytest.mark.parametrize(
    "make",
    [list, tuple, iter, _generator, _Iterable],
    ids=["list", "tuple", "iterator", "generator", "iterable"],
)
def test_buffers_may_be_any_iterable(make):
    data, _ = oob_dumps([Blob(bytearray(b"one")), Blob(bytearray(b"two")), Blob(bytearray(b"three"))])
    given = [bytearray(b"one"), bytearray(b"two"), bytearray(b"three")]
    blobs = TARGET.loads(data, buffers=make(given))
    assert [b.data for b in blobs] == given
    assert all(b.data is g for b, g in zip(blobs, given))


def test_buffers_are_consumed_in_order_and_extra_ones_ignored():
    data, _ = oob_dumps([Blob(bytearray(b"1")), Blob(bytearray(b"2"))])
    given = [bytearray(b"A"), bytearray(b"B"), bytearray(b"C")]
    assert [b.data for b in TARGET.loads(data, buffers=given)] == given[:2]


def _assert_like_reference(data, make_buffers, context=""):
    expected = support.run(REF.loads, data, buffers=make_buffers())
    got = support.run(TARGET.loads, data, buffers=make_buffers())
    support.assert_same_outcome(expected, got, context)
    return got


def test_too_few_buffers_is_unpicklingerror():
    data, _ = oob_dumps([Blob(bytearray(b"1")), Blob(bytearray(b"2"))])
    for given in ([], [bytearray(b"x")]):
        got = _assert_like_reference(data, lambda given=given: list(given), repr(given))
        assert isinstance(got.exc, pickle_unpickling_error())


def test_no_buffers_argument_is_unpicklingerror():
    data, _ = oob_dumps(Blob(bytearray(b"1")))
    for loader_name, load in sorted(LOADERS.items()):
        got = support.run(load, TARGET, data)
        assert isinstance(got.exc, pickle_unpickling_error()), loader_name
        got = support.run(load, TARGET, data, buffers=None)
        assert isinstance(got.exc, pickle_unpickling_error()), loader_name
    _assert_like_reference(data, lambda: None)


def pickle_unpickling_error():
    import pickle

    return (pickle.UnpicklingError, TARGET.UnpicklingError)


def test_non_iterable_buffers_like_reference():
    data, _ = oob_dumps(Blob(bytearray(b"1")))
    for bad in (42, object()):
        got = _assert_like_reference(data, lambda bad=bad: bad, repr(bad))
        assert isinstance(got.exc, TypeError)
    # also when the pickle has no out-of-band data at all
    _assert_like_reference(REF.dumps(1, 5), lambda: 42)


class Boom(Exception):
    pass


def test_iteration_errors_propagate():
    data, _ = oob_dumps([Blob(bytearray(b"1")), Blob(bytearray(b"2"))])

    def failing():
        yield bytearray(b"1")
        raise Boom("from the iterator")

    with pytest.raises(Boom):
        TARGET.loads(data, buffers=failing())

    class BadIterable:
        def __iter__(self):
            raise Boom("from __iter__")

    with pytest.raises(Boom):
        TARGET.loads(data, buffers=BadIterable())


def test_buffer_objects_that_are_not_buffers_like_reference():
    readonly_pickle, _ = oob_dumps(PickleBuffer(b"x"))
    writable_pickle, _ = oob_dumps(PickleBuffer(bytearray(b"x")))
    for given in (42, "text", None, [1]):
        _assert_like_reference(
            readonly_pickle, lambda given=given: [given], "READONLY_BUFFER on %r" % (given,)
        )
        _assert_like_reference(
            writable_pickle, lambda given=given: [given], "NEXT_BUFFER only, %r" % (given,)
        )


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x05C\x01a\x98.",  # READONLY_BUFFER on in-band bytes: stays bytes
        b"\x80\x05\x96\x01\x00\x00\x00\x00\x00\x00\x00a\x98.",  # ... on a bytearray: read-only view
        b"\x80\x05K\x01\x98.",  # ... on an int
        b"\x80\x05\x98.",  # ... on an empty stack
        b"\x80\x05(\x98.",  # ... right after MARK
        b"\x80\x05\x97\x97\x86.",  # two buffers into a tuple
    ],
)
def test_handmade_buffer_opcodes_like_reference(data):
    _assert_like_reference(data, lambda: [bytearray(b"b1"), b"b2"], repr(data))


def test_memoryview_of_readonly_result_is_released_cleanly():
    data, _ = oob_dumps(PickleBuffer(b"payload"))
    source = bytearray(b"payload")
    value = TARGET.loads(data, buffers=[source])
    del value
    source.extend(b"more")  # would raise BufferError if an export were leaked
    assert source == bytearray(b"payloadmore")
