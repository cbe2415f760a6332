"""Differential tests (see tests/support/differential.py): tuples, lists, dicts, sets and frozensets,
recursive ones, large ones (framing, memo indices) and deeply nested ones."""

import subprocess
import sys
import textwrap

import pytest

from differential import PROTOCOLS, MyList, Plain, assert_same, assert_same_round_trip, value_id

# Kept as written, grouped by type and size.
# fmt: off
CONTAINERS = [
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
    [], [1], [1, 2], list(range(999)), list(range(1000)), list(range(1001)), list(range(2500)),
    {}, {"a": 1}, dict.fromkeys(range(1000)), dict.fromkeys(range(1001)), dict.fromkeys(range(2000)),
    set(), {1}, set(range(1000)), set(range(2001)), frozenset(), frozenset([1, 2]), frozenset(range(1500)),
]
# fmt: on


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("value", CONTAINERS, ids=value_id)
def test_containers(value, proto):
    assert_same_round_trip(value, proto)


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


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_large_framed(proto):
    # Many small objects (frames split at 64 KiB) mixed with large payloads (outside frames).
    obj = [
        list(range(30000)),
        "x" * 100000,
        b"y" * 100000,
        [str(i) for i in range(20000)],
        bytearray(b"z" * 70000),
        {i: str(i) for i in range(10000)},
    ]
    assert_same(obj, proto)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_memo_indices_above_256(proto):
    strings = ["s%d" % i for i in range(70000)]
    assert_same([strings, strings[::-1]], proto)


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
    out = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["recursion", "error", "recursion", "error"]
