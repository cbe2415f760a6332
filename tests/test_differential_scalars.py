"""Differential tests (see tests/support/differential.py): None, booleans, ints, floats, complex."""

import math

import pytest

from differential import PROTOCOLS, assert_same, assert_same_round_trip, ref, value_id

# Kept as written, grouped by the encoding boundaries they probe.
# fmt: off
SCALARS = [
    None, True, False,
    0, 1, -1, 127, 128, 255, 256, -128, -129, -256, 65535, 65536, -65536,
    2 ** 31 - 1, -2 ** 31, 2 ** 31, -2 ** 31 - 1, 2 ** 32, 2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1,
    2 ** 64, -2 ** 64, 2 ** 1000, -2 ** 1000, -2 ** 2047, 2 ** 2048 - 1, 10 ** 600,
    0.0, -0.0, 1.5, -2.25, 1e16, 1e-5, 1e300, float("inf"), float("-inf"), 0.1 + 0.2, 123456789.123,
    complex(1, 2),
]
# fmt: on


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", SCALARS, ids=value_id)
def test_scalars(value, proto):
    assert_same_round_trip(value, proto)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_nan(proto):
    data = assert_same(float("nan"), proto)
    assert math.isnan(ref.loads(data))
