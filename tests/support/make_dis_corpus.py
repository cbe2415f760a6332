"""Writes tests/data/dis_corpus.json: pickles with the text Python 3.8+'s pickletools.dis prints.

Run with Python 3.8 or later (whose pickletools knows protocol 5, and whose dis output has not
changed since): ``python tests/support/make_dis_corpus.py``. The tests compare ``python -m pickle5_rs dis``
with these texts on every version, 3.6 and 3.7 included, whose own pickletools cannot read
protocol 5.
"""

import binascii
import collections
import datetime
import decimal
import io
import json
import os
import pickle
import pickletools
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import safe_corpus  # noqa: E402

OUT = os.path.join(os.path.dirname(HERE), "data", "dis_corpus.json")


class Plain:
    def __init__(self):
        self.a, self.b = 1, [2]


class WithNewArgsEx:
    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __getnewargs_ex__(self):
        return (1,), {"k": 2}


def pickler_made():
    """Pickles of everyday objects at every protocol (the stdlib C pickler writes them)."""
    mixed = [
        None,
        True,
        False,
        0,
        255,
        65535,
        -1,
        2**31,
        2**70,
        -(2**300),
        1.5,
        float("-inf"),
        "",
        "a",
        "é€\U0001f600",
        "\udc80",
        b"",
        b"\x00\xff",
        bytearray(b"ba"),
        (),
        (1,),
        (1, 2),
        (1, 2, 3),
        (1, 2, 3, 4),
        [],
        {},
        {"k": [1, {"n": None}]},
        {1},
        frozenset({2}),
        complex(1, 2),
        datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        decimal.Decimal("1.25"),
        collections.OrderedDict(a=1),
        collections.deque([1]),
        Plain(),
        WithNewArgsEx(),
    ]
    shared = ["shared"]
    mixed.append([shared, shared, (shared,)])
    cases = []
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        cases.append(("mixed p%d" % protocol, pickle.dumps(mixed, protocol)))
    # More than 1000 items: APPENDS and SETITEMS in batches.
    cases.append(("big list p1", pickle.dumps(list(range(1001)), 1)))
    cases.append(("big dict p4", pickle.dumps({i: i for i in range(1001)}, 4)))
    buffers = []
    data = pickle.dumps(
        [pickle.PickleBuffer(b"abc"), pickle.PickleBuffer(bytearray(b"de"))],
        5,
        buffer_callback=buffers.append,
    )
    cases.append(("out-of-band buffers", data))
    cases.append(
        (
            "in-band buffers",
            pickle.dumps([pickle.PickleBuffer(b"abc"), pickle.PickleBuffer(bytearray(b"de"))], 5),
        )
    )
    cases.append(("empty set p4", pickle.dumps(set(), 4)))
    cases.append(("frozenset p4", pickle.dumps(frozenset({1, 2}), 4)))
    cases.append(("bytes8-sized text", pickle.dumps("x" * 300, 4)))
    return cases


def handmade():
    """Opcodes the stdlib pickler does not write today, and odd but valid spellings."""
    return [
        (
            "py2 strings",
            b"(S'a\\'b\\n'\nS\"q\"\nT\x02\x00\x00\x00\xe9xU\x01zI00\nI01\nI-7\nL12L\nF1.5\ntp0\n.",
        ),
        ("py2 memo text", b"(lp0\nI1\nag0\nag0\na."),
        ("py2 set", safe_corpus.python2_pickles()[0][1]),
        ("dict and list marks", b"(I1\nI2\nd(I3\nl(t."[:-4] + b"t."),
        ("pop mark", b"(I1\nI2\n1N."),
        ("dup and pop", b"K\x01220."),
        ("pop of a mark", b"(0N."),
        ("inst and obj", b"(i__main__\nC\n(c__main__\nC\no0N."),
        ("persistent ids", b"Pabc\n0X\x01\x00\x00\x00xQ."),
        ("extensions", b"\x80\x02\x82\x01\x83\x02\x01\x84\x03\x00\x00\x00\x87."),
        ("long4", b"\x80\x02\x8b\x02\x00\x00\x00\xff\x7f."),
        (
            "binunicode8 binbytes8",
            b"\x80\x04\x8d\x01\x00\x00\x00\x00\x00\x00\x00a\x8e\x01\x00\x00\x00\x00\x00\x00\x00b\x86.",
        ),
        ("stack_global memoize", b"\x80\x04\x8c\x01a\x94\x8c\x01b\x94\x93\x94h\x00\x86."),
        ("newobj_ex", b"\x80\x04\x8c\x01m\x8c\x01C\x93)}\x92."),
        ("additems", b"\x80\x04\x8f(K\x01K\x02\x90."),
        ("bytearray8 readonly", b"\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00ab\x98."),
        ("next_buffer", b"\x80\x05\x97\x97\x98\x86."),
        ("frame", b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01."),
        ("long_binput get", b"\x80\x02]r\x00\x01\x00\x00j\x00\x01\x00\x00\x86."),
        ("newtrue newfalse none", b"\x80\x02\x88\x89N\x87."),
        ("binfloat", b"G?\xf8\x00\x00\x00\x00\x00\x00."),
        ("binint2", b"M\xff\xffJ\xff\xff\xff\xff\x86."),
        ("global escapes", b"cos\\x2e\nsys\\tem\n."),
        ("string quotes", b"S''\n."),
        ("unicode raw escape", b"V\\u20ac\\\\x\n."),
        ("empty tuple list dict", b")]}\x87."),
    ]


def malformed():
    """Pickles on which pickletools.dis stops with an error (after printing what it read)."""
    cases = [
        ("empty", b""),
        ("no stop", b"K\x01"),
        ("unknown opcode", b"K\x01\xff."),
        ("truncated int4", b"J\x01\x02"),
        ("truncated bytes", b"C\x05ab"),
        ("truncated unicode8", b"\x8d\x09\x00\x00\x00\x00\x00\x00\x00abc"),
        ("negative long4", b"\x8b\xff\xff\xff\xff."),
        ("negative string4", b"T\xff\xff\xff\xff."),
        ("no newline", b"I12"),
        ("bad int text", b"Iabc\n."),
        ("bad float text", b"Fx\n."),
        ("bad quotes", b"S'abc\n."),
        ("no quotes", b"Sabc\n."),
        ("non-ascii global", b"c\xc3\xa9\nx\n."),
        ("bad utf-8", b"X\x01\x00\x00\x00\xff."),
        ("memo twice", b"K\x01q\x00q\x00."),
        ("memo of empty stack", b"q\x00."),
        ("memo of mark", b"(q\x00."),
        ("get before put", b"h\x05."),
        ("no mark", b"K\x01e."),
        ("underflow", b"R."),
        ("stack left over", b"K\x01K\x02."),
        ("stack left over with mark", b"(K\x01."),
        ("huge count", b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff."),
    ]
    rnd = random.Random(5)
    base = pickle.dumps([1, "two", (3.0, b"4"), {"five": None}], 2)
    for i in range(30):
        data = bytearray(base)
        for _ in range(rnd.randrange(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        cases.append(("mutated %d" % i, bytes(data)))
    return cases


def hostile():
    marker = "/nonexistent/marker"
    cases = []
    for case_id, data, _ in safe_corpus.hostile_corpus(marker):
        if case_id.startswith(("p0 ", "p4 ", "p5 ")) and (
            "os.system" in case_id or "type()" in case_id or "BUILD" in case_id or "EXT" in case_id
        ):
            cases.append(("hostile " + case_id, data))
    return cases


def expected(data, indent, memo=None):
    out = io.StringIO()
    error = None
    try:
        pickletools.dis(data, out, memo, indent)
    except Exception as exc:  # what dis raises on malformed input: reported, not fatal
        error = "%s: %s" % (type(exc).__name__, exc)
    return out.getvalue(), error


def main():
    assert sys.version_info >= (3, 8), "pickletools of 3.8+ is the reference"
    entries = []
    for group in (pickler_made(), handmade(), malformed(), hostile()):
        for case_id, data in group:
            for indent in (
                (4, 2, 0) if case_id.startswith(("mixed p0", "mixed p5", "py2", "inst", "pop")) else (4,)
            ):
                text, error = expected(data, indent)
                entries.append(
                    {
                        "id": case_id,
                        "indent": indent,
                        "pickles": [binascii.hexlify(data).decode()],
                        "text": text,
                        "error": error,
                    }
                )
    # --memo: the memo of one pickle carries over to the next (one Pickler, two dumps).
    f = io.BytesIO()
    pickler = pickle.Pickler(f, 2)
    shared = ["shared"]
    pickler.dump(shared)
    first = f.getvalue()
    pickler.dump([shared, shared])
    second = f.getvalue()[len(first) :]
    memo = {}
    texts = [expected(data, 4, memo)[0] for data in (first, second)]
    entries.append(
        {
            "id": "memo across pickles",
            "indent": 4,
            "memo": True,
            "pickles": [binascii.hexlify(d).decode() for d in (first, second)],
            "texts": texts,
            "error": None,
        }
    )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"python": sys.version.split()[0], "cases": entries}, f, indent=0)
        f.write("\n")
    print("%d cases written to %s" % (len(entries), OUT))


if __name__ == "__main__":
    main()
