"""Writes the seed corpus for fuzz_loads.py: every pickle CPython's test suite has.

Sources, all from the running interpreter's ``Lib/test/pickletester.py``:
- every bytes literal in the file (the DATA* constants, the hand-written pickles of the unpickler
  tests: bad opcodes, truncations, memo, framing, Python 2 compatibility, ...);
- ``create_data()`` and a set of sample objects dumped with the reference pickler at protocols 0-5
  (protocol 5 also with out-of-band buffers);
- pickles of the fuzz support classes (the load paths that call Python hooks).

Usage: python make_corpus.py OUT_DIR
"""

import ast
import collections
import datetime
import decimal
import hashlib
import os
import pickle
import sys

import common


def pickletester_literals():
    import test.pickletester as pt

    with open(pt.__file__, "rb") as f:
        tree = ast.parse(f.read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes) and len(node.value) > 1:
            found.append(node.value)
    return found


def samples():
    import test.pickletester as pt

    common.install_support_module()
    rec_list = []
    rec_list.append(rec_list)
    rec_dict = {}
    rec_dict["self"] = rec_dict
    plain = common.Plain()
    plain.x = [1, 2.5, "three"]
    slotted = common.Slotted()
    slotted.a = b"bytes"
    bad = common.BadSetstate()
    bad.state = 3
    objs = [
        pt.create_data(),
        None,
        True,
        False,
        0,
        1,
        -1,
        255,
        256,
        65535,
        65536,
        2**31 - 1,
        -(2**31),
        2**31,
        2**63,
        -(2**64),
        10**100,
        0.5,
        -0.0,
        float("inf"),
        float("nan"),
        1e300,
        "",
        "a",
        "\u20ac\U0001f600",
        "a\udcff" * 3,
        "x" * 300,
        b"",
        b"\x00\xff" * 200,
        bytearray(b"ab"),
        bytearray(300),
        (),
        (1,),
        (1, 2),
        (1, 2, 3),
        (1, 2, 3, 4),
        [],
        [1] * 1001,
        {},
        {i: str(i) for i in range(1005)},
        set(),
        {1, 2, 3},
        frozenset(),
        frozenset({"a"}),
        set(range(1003)),
        rec_list,
        rec_dict,
        [rec_list, rec_dict, rec_list],
        1 + 2j,
        slice(1, 2, 3),
        Ellipsis,
        NotImplemented,
        collections.OrderedDict(a=1),
        collections.deque([1, 2]),
        collections.defaultdict(list, {1: [2]}),
        datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        datetime.date(1, 1, 1),
        datetime.timedelta(days=-1),
        decimal.Decimal("1.5"),
        plain,
        slotted,
        bad,
        [plain, plain, slotted],
        b"z" * 70000,
    ]
    for name in dir(pt):
        obj = getattr(pt, name)
        if isinstance(obj, type) and obj.__module__ == pt.__name__:
            try:
                objs.append(obj())
            except Exception:
                pass
    out = []
    for obj in objs:
        for proto in range(6):
            try:
                out.append(pickle.dumps(obj, proto))
            except Exception:
                pass
        try:
            bufs = []
            out.append(
                pickle.dumps(
                    [pickle.PickleBuffer(b"abc"), pickle.PickleBuffer(bytearray(b"de")), obj],
                    5,
                    buffer_callback=bufs.append,
                )
            )
        except Exception:
            pass
    return out


def support_pickles():
    """Hand-written pickles that reach the loader's hook calls on the support classes."""
    return [
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08Appender\x93)\x81(K\x01K\x0dK\x02e.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08Extender\x93)\x81(K\x01K\x02K\x03K\x04K\x05K\x06K\x07e.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08Appender\x93)\x81K\x01aK\x0da.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\nItemSetter\x93)\x81\x8c\x01aK\x01s\x8c\x04boomK\x02s.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\nItemSetter\x93)\x81(\x8c\x01aK\x01\x8c\x04boomK\x02u.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08SetAdder\x93)\x81(K\x01K\x00\x90.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x0bBadSetstate\x93)\x81K\x03b.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x0bBadSetstate\x93)\x81K\x04b.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08WeirdNew\x93K\x01\x85\x81.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08WeirdNew\x93K\x02\x85\x81.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x08WeirdNew\x93)}\x92.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\nmake_thing\x93K\x01K\x02\x86R.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\nmake_thing\x93K\x01\x85R.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x05Plain\x93)\x81}\x8c\x01xK\x01sb.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x07Slotted\x93)\x81N}\x8c\x01aK\x01s\x86b.",
        b"\x80\x04\x8c\x0cfuzz_support\x8c\x09HookError\x93.",
        b"\x80\x02cfuzz_support\nPlain\nq\x00)\x81q\x01.",
        b"\x80\x05K\x01P.",
        b"\x80\x05\x8c\x04memoP.",
        b"(I5\nP.",  # persistent ids
    ]


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    seen = set()
    for data in pickletester_literals() + samples() + support_pickles():
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        with open(os.path.join(out_dir, "seed-" + digest), "wb") as f:
            f.write(data)
    print("make_corpus: %d seeds in %s" % (len(seen), out_dir))


if __name__ == "__main__":
    main()
