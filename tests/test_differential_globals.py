"""Differential tests (see tests/support/differential.py): classes, functions and singletons, pickled
by name (nested qualified names, fix_imports' renames for protocols 0-2, the extension registry)."""

import collections
import copyreg
import functools
import io

import pytest

from differential import (
    PROTOCOLS,
    Outer,
    Plain,
    Reduce2,
    Slotted,
    assert_same,
    assert_same_round_trip,
    module_function,
    value_id,
)

# Kept as written, grouped by kind.
# fmt: off
GLOBALS = [
    Outer, Outer.Inner, Outer.Inner.Deepest,
    module_function, len, functools.reduce, str.upper, int, type, object, type(None),
    type(Ellipsis), type(NotImplemented), Ellipsis, NotImplemented, collections.UserDict,
]
# fmt: on


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", GLOBALS, ids=value_id)
def test_globals(value, proto):
    assert_same_round_trip(value, proto)


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("fix_imports", [True, False])
def test_fix_imports(proto, fix_imports):
    for obj in [range, functools.reduce, collections.UserDict, io.StringIO, ValueError, [range(2)]]:
        assert_same(obj, proto, fix_imports=fix_imports)


def test_extension_registry():
    module = Plain.__module__  # differential, where Slotted and Reduce2 are too
    copyreg.add_extension(module, "Plain", 240)
    copyreg.add_extension(module, "Slotted", 0x1234)
    copyreg.add_extension(module, "Reduce2", 0x123456)
    try:
        for proto in PROTOCOLS:
            assert_same([Plain, Slotted, Reduce2, Plain(), Reduce2(3)], proto)
    finally:
        copyreg.remove_extension(module, "Plain", 240)
        copyreg.remove_extension(module, "Slotted", 0x1234)
        copyreg.remove_extension(module, "Reduce2", 0x123456)
