"""Ints of every size: the pickler's LONG1/LONG4 bytes equal the reference's, and loading gives equal,
well-formed ints (built in place where the interpreter's int layout is used, from hex text where
it is not). Non-minimal encodings, which only hand-made pickles contain, load too."""

import os
import random
import sys

import pytest

from unpickle_support import REF, TARGET

API_ONLY = os.environ.get("PICKLE5_RS_API_ONLY", "") not in ("", "0")


def _values():
    rng = random.Random(20261202)
    values = [
        0,
        1,
        -1,
        2**31,
        -(2**31) - 1,
        2**62,
        2**63 - 1,
        2**63,
        -(2**63),
        -(2**63) - 1,
        2**64 - 1,
        2**64,
        -(2**64),
        2**90,
        2**120 - 1,
        2**127,
        -(2**127),
        2**128,
        -(2**128) + 1,
    ]
    for bits in list(range(60, 140)) + [200, 255, 256, 257, 1000, 1024, 4096, 10000]:
        for _ in range(3):
            v = rng.getrandbits(bits) | (1 << (bits - 1))
            values += [v, -v, v - 1, -v + 1]
    return values


VALUES = _values()


def test_layout_use_is_reported():
    status = TARGET._core._layout_access() if hasattr(TARGET, "_core") else None
    if status is None:
        pytest.skip("not pickle5_rs")
    checked = (3, 6) <= sys.version_info[:2] <= (3, 13)
    assert status["int_digits"] == (checked and not API_ONLY)
    assert status["heap_type_slots"] == (checked and not API_ONLY)
    assert status["list_tuple_slots"] == (checked and not API_ONLY)
    assert status["bytes_shorten"] == (checked and not API_ONLY)
    assert status["vectorcall"] == (sys.version_info >= (3, 11) and not API_ONLY)


@pytest.mark.skipif(REF is None, reason="reference pickle module is not installed")
@pytest.mark.parametrize("proto", range(6))
def test_bytes_equal_the_reference(proto):
    proto = min(proto, REF.HIGHEST_PROTOCOL)
    for v in VALUES:
        if proto < 2 and v.bit_length() > 10000:
            continue  # text form: beyond some interpreters' int-to-str digit limit
        assert TARGET.dumps(v, proto) == REF.dumps(v, proto), v
        assert TARGET.dumps([v, -v], proto) == REF.dumps([v, -v], proto), v


@pytest.mark.parametrize("proto", [2, 4, 5])
def test_loaded_ints_are_well_formed(proto):
    proto = min(proto, TARGET.HIGHEST_PROTOCOL)
    data = TARGET.dumps(VALUES, proto)
    loaded = TARGET.loads(data)
    assert loaded == VALUES
    for i, want in enumerate(VALUES):
        got = loaded[i]
        assert type(got) is int
        assert hash(got) == hash(want)
        assert got.bit_length() == want.bit_length()
        assert (got > 0) == (want > 0) and (got < 0) == (want < 0)
        assert got + 1 == want + 1 and got * 3 == want * 3 and -got == -want
        assert str(got) == str(want)
        if want.bit_length() > 64:  # a fresh object: the list, the loop variable, the argument
            assert sys.getrefcount(got) == 3


def _long1(payload):
    return b"\x80\x02\x8a" + bytes([len(payload)]) + payload + b"."


def _long4(payload):
    return b"\x80\x02\x8b" + len(payload).to_bytes(4, "little") + payload + b"."


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 9,
        b"\xff" * 9,
        b"\xff" * 40,
        b"\x00" * 40,
        b"\x01" + b"\x00" * 20,
        b"\x00" * 20 + b"\x80",
        b"\xff" * 20 + b"\x7f",
        b"\x00" * 8 + b"\x80",
        b"\xff" * 8 + b"\x7f",
        b"\x00" * 15 + b"\x80",
        b"\x00" * 16 + b"\x80",
        b"\x12" * 17,
        b"\xfe" * 64,
        b"\xfe" * 65,
    ],
)
def test_non_minimal_and_edge_encodings_load(payload):
    want = int.from_bytes(payload, "little", signed=True)
    for data in (_long1(payload), _long4(payload)):
        got = TARGET.loads(data)
        assert got == want and type(got) is int and got.bit_length() == want.bit_length()
        if REF is not None:
            assert REF.loads(data) == got
