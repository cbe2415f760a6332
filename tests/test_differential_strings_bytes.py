"""Differential tests (see tests/support/differential.py): str, bytes, bytearray and PickleBuffer."""

import random
import sys

import pytest

from differential import PROTOCOLS, RecordingFile, assert_same_round_trip, ours, ref, value_id

# Kept as written, grouped by type and size.
# fmt: off
STRINGS_AND_BYTES = [
    "", "a", "abc", "é", "\u20ac", "\U0001f600", "a\\b", "line\nbreak", "cr\r", "nul\x00", "sub\x1a",
    "\ud800", "x\udfffy", "mixé\U0001f600\\\n", "x" * 255, "y" * 256, "z" * 70000, "é" * 40000,
    b"", b"a", b"\x00\xff", b"x" * 255, b"y" * 256, b"z" * 70000,
    bytearray(), bytearray(b"ab"), bytearray(b"q" * 70000),
]
# fmt: on


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", STRINGS_AND_BYTES, ids=value_id)
def test_strings_and_bytes(value, proto):
    assert_same_round_trip(value, proto)


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
    assert ours.dumps(foreign, 5, buffer_callback=got.append) == ref.dumps(
        foreign, 5, buffer_callback=list().append
    )
    assert got == [foreign]


def test_large_picklebuffer_in_band_file_and_memory():
    # A PickleBuffer over bytes is kept by reference in memory; file.write() still gets the
    # PickleBuffer object itself, as from the C pickler.
    for payload in (b"p" * 200000, bytearray(b"q" * 200000), memoryview(b"r" * 300000)[1000:250000]):
        exp_pb, got_pb = ref.PickleBuffer(payload), ours.PickleBuffer(payload)
        assert ours.dumps([got_pb, b"x", got_pb], 5) == ref.dumps([exp_pb, b"x", exp_pb], 5)
        exp_file, got_file = RecordingFile(), RecordingFile()
        exp_types, got_types = [], []
        exp_file.write = lambda data, f=exp_file, types=exp_types: (
            types.append(type(data).__name__) or RecordingFile.write(f, data)
        )
        got_file.write = lambda data, f=got_file, types=got_types: (
            types.append(type(data).__name__) or RecordingFile.write(f, data)
        )
        ref.Pickler(exp_file, 5).dump([exp_pb, b"x", exp_pb])
        ours.Pickler(got_file, 5).dump([got_pb, b"x", got_pb])
        assert got_file.chunks == exp_file.chunks
        assert got_types == exp_types


def test_large_copied_payloads_in_memory():
    # Payloads of 1 MiB and more that must be copied when written (bytearrays, writable buffers)
    # go straight into the result, which grows as needed and is cut to length at the end: many of
    # them, between other output, before and after bytes kept by reference, and with nothing after.
    big = bytearray(b"a" * (1 << 20))
    cases = [
        big,
        [big, "after"],
        ["before", bytearray(b"b" * (3 << 20)), bytearray(b"c" * (2 << 20)), b"d" * (1 << 20), big],
        [bytearray(bytes([i % 251]) * ((1 << 20) + i * 4099)) for i in range(12)],
        {"x": bytearray(b"e" * (5 << 20)), "y": list(range(50000)), "z": bytearray(b"f" * (1 << 20))},
    ]
    for value in cases:
        for payload in ([value], [ours.PickleBuffer(big), value]):
            expected = ref.dumps(
                [ref.PickleBuffer(big) if isinstance(v, ours.PickleBuffer) else v for v in payload], 5
            )
            got = ours.dumps(payload, 5)
            assert got == expected
            assert sys.getsizeof(got) == sys.getsizeof(expected)
            assert hash(got) == hash(expected)
