#!/usr/bin/env python
"""Compare pickle5_rs with the reference C pickler on this interpreter: the whole benchmark matrix.

Usage: python bench/run.py [--quick] [--only REGEX]... [--skip REGEX]... [--protocol 0,2,4,5]
                           [--op dumps|loads] [--rounds N] [--min-time S] [--json out.json]
                           [--clock cpu|wall] [--verbose] [--list] [--target pickle5_rs|reference]

The matrix is every workload (``--list`` shows them) x protocols 0, 2, 4 and 5 x ``dumps`` and
``loads``. Workloads cover every type the C pickler special-cases and the common reduce paths, at
small and large sizes, in two shapes: many items in one large pickle (``int31``, ``dict_small``,
...), and tiny whole pickles timed per call (``tiny.*``: ``dumps(1)``, ``loads`` of a ~50-byte
pickle, ...). A workload whose reference pickler refuses a protocol (``__slots__`` without
``__getstate__`` at protocols 0-1, out-of-band buffers before protocol 5) shows ``n/a``
there; ``dataclass`` is absent on 3.6.

The reference is the stdlib C pickler on 3.8+ and the ``pickle5`` package on 3.6/3.7. Both run in
this one process, interleaved (the side going first alternates every round), and each side keeps
the best (minimum) of its rounds: many short timings (default 11 of >= 5 ms each) rather than a few
long ones, and process CPU time rather than wall-clock time (``--clock wall`` for the latter), so
that other work on a shared machine moves the cells less (neither pickler waits on anything here,
so CPU time is all of their time). A cell's ratio is reference time / our
time: above 1 means we are faster. The summary gives the geomeans (dumps, loads, all cells, per
protocol), the lowest cells and how many cells are below 1.0. ``--target reference`` times the
reference against itself, which should give ~1.0 everywhere and shows how much noise to expect on
this machine.

Pickles for the ``loads`` cells come from the reference pickler; every ``dumps`` cell checks that
our output is byte-identical to the reference's and every ``loads`` cell that the results are
equal (a difference is reported as a PROBLEM and makes the exit status 1). Nothing here asserts
on timing.

Runtime: the full matrix takes about 3-4 minutes of CPU per interpreter (more wall-clock time on a
busy machine); ``--quick`` (7 timings of >= 2 ms, 8 MiB instead of 64 MiB for the large buffers)
about a minute. The 64 MiB cells run a few single calls (rounds are cut to fit about 3 s per
cell, never below 2). ``--only``/``--skip`` take
regular expressions searched in the workload name (a plain substring works): ``--only int``,
``--only '^tiny\\.'``, ``--skip 64m``.
"""

import argparse
import collections
import copyreg
import datetime
import decimal
import gc
import io
import itertools
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import uuid

import safe_workloads

try:
    import dataclasses
except ImportError:  # 3.6
    dataclasses = None

from collections import ChainMap

PROTOCOLS = (0, 2, 4, 5)
OPS = ("dumps", "loads")
# Item 2 of the performance issue: no cell below these (protocol 0-1, protocol 2-5).
TARGET_LOW_PROTOCOLS = 0.90
TARGET = 0.95


def load_reference():
    if sys.version_info >= (3, 8):
        import pickle

        return pickle
    try:
        import pickle5
    except ImportError:
        sys.exit("the reference pickler for Python < 3.8 is the pickle5 package: pip install pickle5")
    return pickle5


def load_target(name, reference):
    if name == "reference":
        return reference
    import pickle5_rs

    return pickle5_rs


def _describe(module):
    version = getattr(module, "__version__", None)
    return module.__name__ + (" " + version if version else "")


# --- classes the workloads pickle (module level, so they pickle by reference) --------------------


class Record:
    """A plain class: pickled as its __dict__."""

    def __init__(self, ident, name, score, tags, active):
        self.ident = ident
        self.name = name
        self.score = score
        self.tags = tags
        self.active = active

    def __eq__(self, other):
        return type(other) is Record and self.__dict__ == other.__dict__


class SlotRecord:
    """__slots__, no __dict__: (None, slots) state at protocol 2+ (protocols 0-1 refuse it)."""

    __slots__ = ("ident", "name", "score", "active")

    def __init__(self, ident, name, score, active):
        self.ident = ident
        self.name = name
        self.score = score
        self.active = active

    def __eq__(self, other):
        return type(other) is SlotRecord and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__
        )


class StateRecord:
    """__getstate__ / __setstate__ with a tuple state."""

    def __init__(self, ident, name, score):
        self.ident = ident
        self.name = name
        self.score = score

    def __getstate__(self):
        return (self.ident, self.name, self.score)

    def __setstate__(self, state):
        self.ident, self.name, self.score = state

    def __eq__(self, other):
        return type(other) is StateRecord and self.__getstate__() == other.__getstate__()


Point = collections.namedtuple("Point", "x y label")


class Money:
    """Reduced by a copyreg reducer (copyreg.pickle), not by its own __reduce__."""

    __slots__ = ("amount", "currency")

    def __init__(self, amount, currency):
        self.amount = amount
        self.currency = currency

    def __eq__(self, other):
        return type(other) is Money and (self.amount, self.currency) == (other.amount, other.currency)


def _reduce_money(money):
    return Money, (money.amount, money.currency)


copyreg.pickle(Money, _reduce_money)


class Vec:
    """Reduced through the Pickler subclass's class-level dispatch_table."""

    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return type(other) is Vec and (self.x, self.y) == (other.x, other.y)


def _reduce_vec(vec):
    return Vec, (vec.x, vec.y)


def _function_for_globals(x):
    return x


if dataclasses is not None:

    @dataclasses.dataclass
    class DataRecord:
        ident: int
        name: str
        score: float
        tags: list
else:
    DataRecord = None


_pickler_subclasses = {}


def cloud_like_pickler(module):
    """A Pickler subclass shaped like cloudpickle's: reducer_override + class-level dispatch_table."""
    try:
        return _pickler_subclasses[module]
    except KeyError:
        pass
    function_type = type(_function_for_globals)

    class CloudLikePickler(module.Pickler):
        dispatch_table = ChainMap({Vec: _reduce_vec}, copyreg.dispatch_table)

        def reducer_override(self, obj):
            # cloudpickle: classes and functions it may pickle by value; importable ones by reference.
            t = type(obj)
            try:
                is_anyclass = issubclass(t, type)
            except TypeError:
                is_anyclass = False
            if is_anyclass or t is function_type:
                # cloudpickle pickles importable classes and functions by reference (and the
                # others by value); everything here is importable.
                return NotImplemented
            return NotImplemented

    _pickler_subclasses[module] = CloudLikePickler
    return CloudLikePickler


# --- object builders ---------------------------------------------------------------------------------


def _ints(count, lo_bits, hi_bits, negative):
    """count ints whose bit lengths cycle over lo_bits..hi_bits."""
    out = []
    span = hi_bits - lo_bits + 1
    for i in range(count):
        bits = lo_bits + i % span
        top = 1 << (bits - 1)
        value = top + (i * 0x9E3779B97F4A7C15 + 12345) % top if bits > 1 else i % 2
        out.append(-value if negative else value)
    return out


def _json_doc(i):
    return {
        "id": i,
        "type": "event",
        "user": {"name": "user%d" % i, "email": "u%d@example.org" % i, "verified": i % 3 == 0},
        "tags": ["alpha", "beta", "tag%d" % (i % 17)],
        "metrics": {"views": i * 7, "ratio": i / 13.0, "history": [i, i + 1, i + 2, None]},
        "payload": {"nested": {"deeper": {"value": "x" * (i % 11), "ok": True}}},
    }


# The shapes of pyperformance's pickle_dict / pickle_list benchmarks (written from their description).
PYPERF_DICT = {
    "ads_flags": 0,
    "age": 18,
    "bulletin_count": 0,
    "comment_count": 0,
    "country": "BR",
    "encrypted_id": "G9urXXAJwjE",
    "favorite_artists": [
        "Suck On This",
        "Iron Maiden",
        "Megadeth",
        "Pink Floyd",
        "Metallica",
        "Queen",
        "Nirvana",
        "Led Zeppelin",
    ],
    "favorite_movies": [
        "Pulp Fiction",
        "Fight Club",
        "The Matrix",
        "Reservoir Dogs",
        "Kill Bill",
        "Django Unchained",
        "Inglourious Basterds",
        "Once Upon a Time in Hollywood",
    ],
    "friend_count": 0,
    "height": 190,
    "is_active": True,
    "last_update": 1308340048,
    "listen_count": 0,
    "locale": "pt_BR",
    "name": "Fulano de Tal",
    "playlist_count": 0,
    "score": 1.5,
    "weight": 96.5,
}
PYPERF_LIST = [[list(range(10)), list(range(10))] for _ in range(10)]
TINY_DOC = {"id": 12345, "name": "alice", "tags": ["x", "y"], "ok": True}  # a ~50-byte pickle


def _globals():
    """Distinct module-level functions and classes that pickle by reference."""
    import json as json_module
    import math as math_module
    import operator
    import os.path
    import string

    out = [
        len,
        max,
        min,
        sorted,
        dict,
        list,
        tuple,
        set,
        frozenset,
        int,
        float,
        str,
        bytes,
        collections.OrderedDict,
        collections.defaultdict,
        collections.deque,
        datetime.datetime,
        datetime.date,
        decimal.Decimal,
        uuid.UUID,
        Record,
        SlotRecord,
        Money,
        Vec,
        _json_doc,
        _function_for_globals,
        os.path.join,
        os.path.split,
        json_module.dumps,
        json_module.loads,
        string.capwords,
    ]
    for module in (math_module, operator):
        for name in sorted(dir(module)):
            obj = getattr(module, name)
            if (
                not name.startswith("_")
                and callable(obj)
                and getattr(obj, "__module__", None) == module.__name__
                and getattr(obj, "__qualname__", None) == name
            ):
                out.append(obj)
    return out


def _make_ascii(i):
    return "a" * 100000 + str(i)


def _make_nonascii(i):
    return "\u00e9\u20ac\u4e2d" * 33000 + str(i)


# --- how a workload is pickled ---------------------------------------------------------------------
# Each way gives, per module: pickle(obj) -> the pickle (what dumps must reproduce byte for byte),
# dumps_call / loads_call -> (function, args, kwargs) timed in a loop.


class Plain:
    name = "dumps/loads"

    def pickle(self, mod, obj, protocol):
        return mod.dumps(obj, protocol)

    def dumps_call(self, mod, obj, protocol):
        return mod.dumps, (obj, protocol), None

    def loads_call(self, mod, data):
        return mod.loads, (data,), None

    def same_dumps(self, out, data):
        return out == data


class OutOfBand:
    name = "PickleBuffer, buffer_callback= / buffers="

    def pickle(self, mod, obj, protocol):
        buffers = []
        data = mod.dumps(mod.PickleBuffer(obj), protocol, buffer_callback=buffers.append)
        return data, buffers

    def dumps_call(self, mod, obj, protocol):
        pickle_buffer, dumps = mod.PickleBuffer, mod.dumps

        def call():
            return dumps(pickle_buffer(obj), protocol, buffer_callback=[].append)

        return call, (), None

    def loads_call(self, mod, data):
        payload, buffers = data
        return mod.loads, (payload,), {"buffers": buffers}

    def same_dumps(self, out, data):
        return out == data[0]


class FileStream:
    """Many small pickles dumped one at a time into one file object, then loaded one at a time."""

    name = "dump/load per record, io.BytesIO"

    def pickle(self, mod, obj, protocol):
        f = io.BytesIO()
        dump = mod.dump
        for item in obj:
            dump(item, f, protocol)
        return f.getvalue()

    def dumps_call(self, mod, obj, protocol):
        return self.pickle, (mod, obj, protocol), None

    def loads_call(self, mod, data):
        load = mod.load

        def call():
            f = io.BytesIO(data)
            return [load(f) for _ in range(self.count)]

        return call, (), None

    def __init__(self, count):
        self.count = count

    def same_dumps(self, out, data):
        return out == data


class ObjectStream:
    """One Pickler dump()s many small pickles into a file; one Unpickler load()s them back, as a
    log or a socket stream does (the memo carries over from one pickle to the next, as it does in
    the C classes, so a global is named once)."""

    name = "Pickler.dump/Unpickler.load per record, one object each"

    def __init__(self, count):
        self.count = count

    def pickle(self, mod, obj, protocol):
        f = io.BytesIO()
        dump = mod.Pickler(f, protocol).dump
        for item in obj:
            dump(item)
        return f.getvalue()

    def dumps_call(self, mod, obj, protocol):
        return self.pickle, (mod, obj, protocol), None

    def loads_call(self, mod, data):
        unpickler, count = mod.Unpickler, self.count

        def call():
            load = unpickler(io.BytesIO(data)).load
            return [load() for _ in range(count)]

        return call, (), None

    def same_dumps(self, out, data):
        return out == data


class FileOnDisk:
    """dump() into a real file, load() from it (buffered file objects: peek/readinto)."""

    name = "dump/load, a file on disk"

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="pickle5_rs_bench_")
        os.close(fd)

    def pickle(self, mod, obj, protocol):
        with open(self.path, "wb") as f:
            mod.dump(obj, f, protocol)
        with open(self.path, "rb") as f:
            return f.read()

    def dumps_call(self, mod, obj, protocol):
        path, dump = self.path, mod.dump

        def call():
            with open(path, "wb") as f:
                dump(obj, f, protocol)

        return call, (), None

    def loads_call(self, mod, data):
        path, load = self.path, mod.load
        with open(path, "wb") as f:
            f.write(data)

        def call():
            with open(path, "rb") as f:
                return load(f)

        return call, (), None

    def same_dumps(self, out, data):
        with open(self.path, "rb") as f:  # what the last dump() wrote
            return f.read() == data

    def close(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Subclass:
    """dump() through a Pickler subclass with reducer_override and a class-level dispatch_table."""

    name = "Pickler subclass (reducer_override, dispatch_table)"

    def pickle(self, mod, obj, protocol):
        f = io.BytesIO()
        cloud_like_pickler(mod)(f, protocol).dump(obj)
        return f.getvalue()

    def dumps_call(self, mod, obj, protocol):
        return self.pickle, (mod, obj, protocol), None

    def loads_call(self, mod, data):
        return mod.loads, (data,), None

    def same_dumps(self, out, data):
        return out == data


class Workload:
    def __init__(self, name, build, note="", way=None, protocols=PROTOCOLS, large=False):
        self.name = name
        self.build = build  # build(quick) -> object, or None where unavailable
        self.note = note
        self.way = way or Plain
        self.protocols = protocols
        self.large = large

    @property
    def tiny(self):
        return self.name.startswith("tiny.")


def _large_size(quick):
    return (8 if quick else 64) * 1024 * 1024


def workloads():
    """The matrix's rows, in display order."""
    W = Workload
    rows = [
        # ints: BININT1/BININT2, BININT, LONG1 (8 bytes), LONG1 (9-17 bytes), LONG1/LONG4 (128, 1250 bytes)
        W("int16", lambda q: _ints(10000, 1, 16, False), "10,000 ints 0..65535"),
        W("int31", lambda q: _ints(10000, 17, 31, False), "10,000 ints of 17-31 bits"),
        W("int31_neg", lambda q: _ints(10000, 1, 31, True), "10,000 ints -1..-2**31"),
        W("int63", lambda q: _ints(10000, 32, 63, False), "10,000 ints of 32-63 bits"),
        W("int63_neg", lambda q: _ints(10000, 32, 63, True), "10,000 negative, 32-63 bits"),
        W("int128", lambda q: _ints(10000, 64, 128, False), "10,000 ints of 64-128 bits"),
        W("int128_neg", lambda q: _ints(10000, 64, 128, True), "10,000 negative, 64-128 bits"),
        W("int1k", lambda q: _ints(1000, 1000, 1024, False), "1,000 ints of ~1k bits"),
        W("int1k_neg", lambda q: _ints(1000, 1000, 1024, True), "1,000 negative, ~1k bits"),
        W("int10k", lambda q: _ints(100, 9990, 10000, False), "100 ints of ~10k bits"),
        W("int10k_neg", lambda q: _ints(100, 9990, 10000, True), "100 negative, ~10k bits"),
        W("float", lambda q: [i * 0.37 - 1000.0 for i in range(10000)], "10,000 floats"),
        # str and bytes
        W("str_ascii", lambda q: ["s%d" % i for i in range(10000)], "10,000 short ASCII"),
        W(
            "str_nonascii",
            lambda q: ["\u00e9t\u00e9%d\u20ac" % i for i in range(10000)],
            "10,000 short non-ASCII",
        ),
        W("str_ascii_100k", lambda q: [_make_ascii(i) for i in range(20)], "20 x 100 kB ASCII"),
        W("str_nonascii_100k", lambda q: [_make_nonascii(i) for i in range(20)], "20 x ~100 kchars"),
        W(
            "bytes_small",
            lambda q: [bytes(bytearray([i % 256])) * (10 + i % 90) for i in range(10000)],
            "10,000 x 10-99 B",
        ),
        W(
            "bytearray_small",
            lambda q: [bytearray([i % 256]) * (10 + i % 90) for i in range(10000)],
            "10,000 x 10-99 B",
        ),
        W("bytes_64m", lambda q: b"\xab" * _large_size(q), "64 MiB in band (8 in --quick)", large=True),
        W(
            "bytearray_64m",
            lambda q: bytearray(b"\xab") * _large_size(q),
            "64 MiB in band (8 in --quick)",
            large=True,
        ),
        W(
            "bytes_64m_oob",
            lambda q: b"\xcd" * _large_size(q),
            "64 MiB out of band",
            OutOfBand,
            (5,),
            large=True,
        ),
        W(
            "bytearray_64m_oob",
            lambda q: bytearray(b"\xcd") * _large_size(q),
            "64 MiB out of band",
            OutOfBand,
            (5,),
            large=True,
        ),
        # containers
        W(
            "tuple_small",
            lambda q: [((), (i,), (i, "a"), (i, 1.5, None))[i % 4] for i in range(10000)],
            "10,000 tuples of 0-3 items",
        ),
        W("tuple_long", lambda q: [tuple(range(i, i + 1000)) for i in range(10)], "10 x 1,000 ints"),
        W("list_empty", lambda q: [[] for _ in range(10000)], "10,000 []"),
        W(
            "list_small",
            lambda q: [list(range(i % 100, i % 100 + 1 + i % 5)) for i in range(10000)],
            "10,000 lists of 1-5 ints",
        ),
        W("list_long", lambda q: [list(range(i, i + 5000)) for i in range(4)], "4 x 5,000 ints"),
        W("dict_empty", lambda q: [{} for _ in range(10000)], "10,000 {}"),
        W(
            "dict_small",
            lambda q: [dict(("k%d" % k, i + k) for k in range(1 + i % 5)) for i in range(10000)],
            "10,000 dicts of 1-5 items",
        ),
        W(
            "dict_large",
            lambda q: [dict(("key%d" % k, k * j) for k in range(5000)) for j in range(2)],
            "2 x 5,000 str: int",
        ),
        W(
            "set_small",
            lambda q: [set(range(i % 50, i % 50 + 1 + i % 5)) for i in range(5000)],
            "5,000 sets of 1-5 ints",
        ),
        W("set_large", lambda q: [set(range(j, j + 5000)) for j in range(2)], "2 x 5,000 ints"),
        W(
            "frozenset_small",
            lambda q: [frozenset(range(i % 50, i % 50 + 1 + i % 5)) for i in range(5000)],
            "5,000 frozensets of 1-5",
        ),
        W("frozenset_large", lambda q: [frozenset(range(j, j + 5000)) for j in range(2)], "2 x 5,000 ints"),
        # documents and sharing
        W("json_docs", lambda q: [_json_doc(i) for i in range(2000)], "2,000 nested docs"),
        W(
            "dicts_str_scalars",
            lambda q: [
                dict(("key%d" % k, (k * i, k * 0.5, "v%d" % k, None, k % 2 == 0)[k % 5]) for k in range(20))
                for i in range(2000)
            ],
            "2,000 x 20 keys",
        ),
        W(
            "rows",
            lambda q: [(i, "name%d" % i, i * 1.5, i % 2 == 0, None) for i in range(10000)],
            "10,000 5-tuples",
        ),
        W("shared_refs", lambda q: _shared_refs(), "20,000 refs to 100 tuples"),
        # instances and reduce paths
        W(
            "inst_dict",
            lambda q: [Record(i, "rec%d" % i, i / 7.0, ["t1", "t2"], True) for i in range(5000)],
            "5,000 x __dict__",
        ),
        W(
            "inst_slots",
            lambda q: [SlotRecord(i, "rec%d" % i, i / 7.0, i % 2 == 0) for i in range(5000)],
            "5,000 x __slots__",
        ),
        W(
            "inst_getstate",
            lambda q: [StateRecord(i, "rec%d" % i, i / 7.0) for i in range(5000)],
            "5,000 x __getstate__",
        ),
        W("namedtuple", lambda q: [Point(i, i * 0.5, "p%d" % i) for i in range(5000)], "5,000 namedtuples"),
        W(
            "dataclass",
            lambda q: (
                None if DataRecord is None else [DataRecord(i, "d%d" % i, i * 0.5, [i]) for i in range(5000)]
            ),
            "5,000 dataclasses (3.7+)",
        ),
        W(
            "datetime",
            lambda q: [
                datetime.datetime(2020, 1 + i % 12, 1 + i % 28, i % 24, i % 60, i % 60, i)
                for i in range(5000)
            ],
            "5,000 datetimes",
        ),
        W(
            "decimal",
            lambda q: [decimal.Decimal("%d.%02d" % (i, i % 100)) for i in range(5000)],
            "5,000 Decimals",
        ),
        W("complex", lambda q: [complex(i, -i * 0.5) for i in range(5000)], "5,000 complex"),
        W(
            "uuid",
            lambda q: [uuid.UUID(int=(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1)) for i in range(5000)],
            "5,000 UUIDs",
        ),
        W("globals", lambda q: _globals() * 4, "distinct globals x 4"),
        W(
            "copyreg",
            lambda q: [Money(i, ("EUR", "USD", "JPY")[i % 3]) for i in range(5000)],
            "5,000 x copyreg.pickle",
        ),
        W("pickler_subclass", lambda q: _cloud_docs(1000), "cloudpickle-shaped subclass", Subclass),
        # files
        W(
            "file_stream",
            lambda q: [_json_doc(i)["user"] for i in range(1000)],
            "1,000 dump()/load() calls",
            lambda: FileStream(1000),
        ),
        W(
            "object_stream",
            lambda q: [
                (i, "user%d" % i, datetime.datetime(2020, 1, 1 + i % 28, i % 24)) for i in range(1000)
            ],
            "1,000 records through one Pickler/Unpickler",
            lambda: ObjectStream(1000),
        ),
        W(
            "file_disk",
            lambda q: [_json_doc(i) for i in range(1000)],
            "dump()/load(), file on disk",
            FileOnDisk,
        ),
        # tiny whole pickles: per-call cost
        W("tiny.int", lambda q: 1, "dumps(1)"),
        W("tiny.int128", lambda q: (1 << 127) + 12345, "a 128-bit int"),
        W("tiny.float", lambda q: 1.5, "dumps(1.5)"),
        W("tiny.str", lambda q: "hello world", "11 ASCII chars"),
        W("tiny.bytes", lambda q: b"0123456789" * 2, "20 bytes"),
        W("tiny.tuple", lambda q: (1, 2), "(1, 2)"),
        W("tiny.list", lambda q: [1, 2, 3], "[1, 2, 3]"),
        W("tiny.dict", lambda q: {"a": 1, "b": 2}, "{'a': 1, 'b': 2}"),
        W("tiny.doc", lambda q: TINY_DOC, "~50-byte pickle"),
        W("tiny.pyperf_dict", lambda q: PYPERF_DICT, "pyperformance pickle_dict shape"),
        W("tiny.pyperf_list", lambda q: PYPERF_LIST, "pyperformance pickle_list shape"),
        W("tiny.instance", lambda q: Record(1, "one", 0.5, ["t"], True), "one __dict__ instance"),
        W("tiny.slots", lambda q: SlotRecord(1, "one", 0.5, True), "one __slots__ instance"),
        W("tiny.datetime", lambda q: datetime.datetime(2020, 5, 17, 12, 30, 45, 123456), "one datetime"),
        W("tiny.global", lambda q: _function_for_globals, "a function by reference"),
        W("tiny.subclass", lambda q: TINY_DOC, "Pickler subclass per call", Subclass),
        W("tiny.file", lambda q: [TINY_DOC], "dump()/load() with io.BytesIO", lambda: FileStream(1)),
    ]
    rows += safe_workloads.rows(W)  # safe_loads against loads and against the stdlib recipe
    return rows


def _shared_refs():
    pool = [("shared", i, [i] * 3) for i in range(100)]
    return [pool[i % 100] for i in range(20000)]


def _cloud_docs(count):
    return [
        {
            "id": i,
            "fn": _function_for_globals,
            "cls": Record,
            "vec": Vec(i, -i),
            "c": complex(i, 1),
            "tags": ["a", "b"],
            "value": i * 0.5,
        }
        for i in range(count)
    ]


def find_workload(name):
    for workload in workloads():
        if workload.name == name:
            return workload
    raise KeyError(name)


# --- timing --------------------------------------------------------------------------------------


def _loop(call):
    """A function running call n times with as little harness cost as Python allows."""
    fn, args, kwargs = call
    repeat = itertools.repeat
    if kwargs:

        def run(n):
            for _ in repeat(None, n):
                fn(*args, **kwargs)
    elif not args:

        def run(n):
            for _ in repeat(None, n):
                fn()
    elif len(args) == 1:
        (a,) = args

        def run(n):
            for _ in repeat(None, n):
                fn(a)
    elif len(args) == 2:
        a, b = args

        def run(n):
            for _ in repeat(None, n):
                fn(a, b)
    else:

        def run(n):
            for _ in repeat(None, n):
                fn(*args)

    return run


# The clock: CPU time of this process by default (time the machine's other work takes from this
# process is not counted, which matters on a shared machine), or wall-clock time (--clock wall).
_clock = time.process_time


def _once(call):
    fn, args, kwargs = call
    start = _clock()
    result = fn(*args, **(kwargs or {}))
    return result, _clock() - start


def _timed(run, loops):
    start = _clock()
    run(loops)
    return (_clock() - start) / loops


def _calibrate(run, min_time, first):
    """Iterations per timing so one timing lasts at least min_time (first: one call's time)."""
    if first >= min_time:
        return 1
    loops = max(1, min(1 << 20, int(min_time / max(first, 1e-7) / 4)))
    while True:
        elapsed = _timed(run, loops) * loops
        if elapsed >= min_time or loops >= 1 << 22:
            return loops
        loops *= 2 if elapsed == 0 else max(2, min(10, int(min_time / elapsed * 1.2) + 1))


def compare(ref_run, our_run, rounds, min_time, first_ref, first_ours, budget):
    """Best per-call seconds of each, interleaved; the one going first alternates.

    Rounds are cut (to no fewer than 2) where they would take more than `budget` seconds: the
    64 MiB workloads run a few single calls. Returns the rounds made, the first calls included.
    """
    loops = max(_calibrate(ref_run, min_time, first_ref), _calibrate(our_run, min_time, first_ours))
    best_ref = best_ours = float("inf")
    if loops == 1:
        # Calls long enough to time one by one (the large workloads): the first calls count as a
        # round, and the rounds fit in about `budget` seconds, with 2 at least.
        best_ref, best_ours = first_ref, first_ours
        rounds = max(1, min(rounds, int(budget / max(first_ref + first_ours, 1e-9))) - 1)
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(rounds):
            if i % 2 == 0:
                best_ref = min(best_ref, _timed(ref_run, loops))
                best_ours = min(best_ours, _timed(our_run, loops))
            else:
                best_ours = min(best_ours, _timed(our_run, loops))
                best_ref = min(best_ref, _timed(ref_run, loops))
    finally:
        if gc_was_enabled:
            gc.enable()
    return best_ref, best_ours, loops, rounds + (loops == 1)


# --- the benchmark -------------------------------------------------------------------------------


def _same(a, b):
    if isinstance(a, (bytes, bytearray, memoryview)) or isinstance(b, (bytes, bytearray, memoryview)):
        try:
            return bytes(memoryview(a)) == bytes(memoryview(b))
        except TypeError:
            return False
    return a == b


def _pickle_len(data):
    return len(data[0]) if isinstance(data, tuple) else len(data)


def run_workload(workload, obj, ref, target, protocols, ops, settings):
    """Yield one result dict per cell of this workload."""
    way = workload.way()
    try:
        for protocol in protocols:
            base = {
                "workload": workload.name,
                "protocol": protocol,
                "note": workload.note,
                "kind": "tiny" if workload.tiny else "bulk",
            }
            if protocol not in workload.protocols:
                for op in ops:
                    yield dict(base, op=op, skipped="protocol %d does not apply" % protocol)
                continue
            try:
                data = way.pickle(ref, obj, protocol)
            except Exception as exc:  # the reference refuses: the cell does not exist
                for op in ops:
                    yield dict(base, op=op, skipped="reference: %s: %s" % (type(exc).__name__, exc))
                continue
            for op in ops:
                cell = dict(base, op=op, pickle_bytes=_pickle_len(data))
                if op not in getattr(way, "ops", OPS):
                    yield dict(cell, skipped="no %s cell in this row" % op)
                    continue
                try:
                    if op == "dumps":
                        ref_call = way.dumps_call(ref, obj, protocol)
                        our_call = way.dumps_call(target, obj, protocol)
                        ref_out, first_ref = _once(ref_call)
                        del ref_out
                        our_out, first_ours = _once(our_call)
                        if not way.same_dumps(our_out, data):
                            cell["problem"] = "dumps output is not byte-identical to the reference"
                        del our_out
                    else:
                        ref_call = way.loads_call(ref, data)
                        our_call = way.loads_call(target, data)
                        ref_out, first_ref = _once(ref_call)
                        our_out, first_ours = _once(our_call)
                        if not _same(ref_out, our_out):
                            cell["problem"] = "loads result differs from the reference"
                        del ref_out, our_out
                except Exception as exc:
                    cell["problem"] = "%s: %s" % (type(exc).__name__, exc)
                    yield cell
                    continue
                ref_time, our_time, loops, rounds = compare(
                    _loop(ref_call),
                    _loop(our_call),
                    settings.rounds,
                    settings.min_time,
                    first_ref,
                    first_ours,
                    settings.budget,
                )
                cell.update(
                    reference_s=ref_time,
                    ours_s=our_time,
                    ratio=ref_time / our_time if our_time > 0 else float("inf"),
                    loops=loops,
                    rounds=rounds,
                )
                yield cell
    finally:
        if hasattr(way, "close"):
            way.close()


def geomean(values):
    values = [v for v in values if v > 0]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def target_for(protocol):
    return TARGET_LOW_PROTOCOLS if protocol < 2 else TARGET


def summarize(cells):
    timed = [c for c in cells if "ratio" in c]
    summary = {}
    for op in OPS:
        ratios = [c["ratio"] for c in timed if c["op"] == op]
        if ratios:
            summary[op] = geomean(ratios)
    if timed:
        summary["all"] = geomean([c["ratio"] for c in timed])
    by_protocol = {}
    for protocol in sorted(set(c["protocol"] for c in timed)):
        row = {}
        for op in OPS:
            ratios = [c["ratio"] for c in timed if c["protocol"] == protocol and c["op"] == op]
            if ratios:
                row[op] = geomean(ratios)
        row["all"] = geomean([c["ratio"] for c in timed if c["protocol"] == protocol])
        by_protocol[str(protocol)] = row
    summary["by_protocol"] = by_protocol
    for kind in ("bulk", "tiny"):
        ratios = [c["ratio"] for c in timed if c["kind"] == kind]
        if ratios:
            summary[kind] = geomean(ratios)
    return summary


def _cell_name(c):
    return "%s p%d %s" % (c["workload"], c["protocol"], c["op"])


def parse_protocols(values, highest):
    if not values:
        return [p for p in PROTOCOLS if p <= highest]
    out = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                p = int(part)
                if not 0 <= p <= highest:
                    sys.exit("protocol %d is not in 0..%d" % (p, highest))
                if p not in out:
                    out.append(p)
    return out


class Settings:
    def __init__(self, rounds, min_time, budget):
        self.rounds = rounds
        self.min_time = min_time
        self.budget = budget


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1].split("\n\n", 1)[1],
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter timings; 8 MiB large buffers")
    parser.add_argument("--json", metavar="PATH", help="also write every cell and the summary as JSON")
    parser.add_argument("--rounds", type=int, default=None, help="timings per side (default 11, quick 7)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=None,
        help="seconds one timing lasts at least (default 0.005, quick 0.002)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="REGEX",
        help="run workloads whose name matches (re.search; repeatable)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out workloads whose name matches (repeatable)",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="P[,P...]",
        help="protocols to run (default 0,2,4,5; repeatable)",
    )
    parser.add_argument(
        "--op", choices=OPS, action="append", default=[], help="dumps or loads (default both)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="process CPU time (default; robust on a shared machine) or wall-clock time",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per cell with the times")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    parser.add_argument(
        "--target",
        choices=("pickle5_rs", "reference"),
        default=os.environ.get("PICKLE5_RS_TARGET", "pickle5_rs"),
        help="module under test; 'reference' times the reference against itself",
    )
    args = parser.parse_args(argv)

    selected = [
        w
        for w in workloads()
        if (not args.only or any(re.search(p, w.name) for p in args.only))
        and not any(re.search(p, w.name) for p in args.skip)
    ]
    if args.list:
        for w in selected:
            print("%-20s %-34s %s" % (w.name, w.note, ",".join(map(str, w.protocols))))
        return 0
    if not selected:
        sys.exit("no workload matches --only %s --skip %s" % (args.only, args.skip))

    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    ref = load_reference()
    target = load_target(args.target, ref)
    protocols = parse_protocols(args.protocol, ref.HIGHEST_PROTOCOL)
    ops = [op for op in OPS if op in args.op] if args.op else list(OPS)
    if not hasattr(target, "dumps"):
        ops = [op for op in ops if op != "dumps"]
    settings = Settings(
        rounds=args.rounds or (7 if args.quick else 11),
        min_time=args.min_time or (0.002 if args.quick else 0.005),
        budget=1.0 if args.quick else 3.0,
    )

    started = time.time()
    print(
        "Python %s (%s), reference: %s, under test: %s, best of %d rounds of >= %g s (%s time)%s"
        % (
            platform.python_version(),
            platform.machine(),
            _describe(ref),
            _describe(target),
            settings.rounds,
            settings.min_time,
            args.clock,
            ", quick" if args.quick else "",
        )
    )
    print("ratio = reference time / our time (above 1: pickle5_rs is faster); * marks a cell below 1.00")
    columns = [(p, op) for p in protocols for op in ops]
    header = "%-20s %9s " % ("workload", "pickle") + " ".join(
        "%7s" % ("p%d %s" % (p, op[0])) for p, op in columns
    )
    header += "  note"
    print(header)
    print("-" * len(header))
    sys.stdout.flush()

    cells = []
    for workload in selected:
        obj = workload.build(args.quick)
        if obj is None:
            row = [
                dict(
                    workload=workload.name,
                    protocol=p,
                    op=op,
                    note=workload.note,
                    kind="tiny" if workload.tiny else "bulk",
                    skipped="not available on this Python",
                )
                for p, op in columns
            ]
        else:
            row = []
            for cell in run_workload(workload, obj, ref, target, protocols, ops, settings):
                row.append(cell)
                if args.verbose and "ratio" in cell:
                    print(
                        "  %-26s %12s %12s %8.2f  loops %d x %d rounds"
                        % (
                            _cell_name(cell),
                            _duration(cell["reference_s"]),
                            _duration(cell["ours_s"]),
                            cell["ratio"],
                            cell["loops"],
                            cell["rounds"],
                        )
                    )
        del obj
        cells.extend(row)
        sizes = [c["pickle_bytes"] for c in row if "pickle_bytes" in c]
        text = "%-20s %9s " % (workload.name, _size(sizes[-1]) if sizes else "-")
        text += " ".join(_ratio_text(c) for c in row)
        problems = [c for c in row if c.get("problem")]
        print(text + "  " + (workload.note if not problems else "PROBLEM"))
        sys.stdout.flush()

    elapsed = time.time() - started
    # The safe.* rows compare safe_loads with other loaders, not pickle5_rs with the reference:
    # they have their own summary line and stay out of the matrix's.
    safe_cells = [c for c in cells if safe_workloads.is_safe_row(c["workload"])]
    cells_all, cells = cells, [c for c in cells if not safe_workloads.is_safe_row(c["workload"])]
    summary = summarize(cells)
    timed = sorted((c for c in cells if "ratio" in c), key=lambda c: c["ratio"])
    print("-" * len(header))
    for line in safe_workloads.summary_lines(safe_cells):
        print(line)
    for op in OPS + ("all",):
        if op in summary:
            per_protocol = "  ".join(
                "p%s %.2f" % (p, row[op]) for p, row in sorted(summary["by_protocol"].items()) if op in row
            )
            print("geomean %-5s %5.2f   (%s)" % (op, summary[op], per_protocol))
    if "bulk" in summary and "tiny" in summary:
        print("geomean large pickles %.2f, tiny pickles %.2f" % (summary["bulk"], summary["tiny"]))
    if timed:
        lowest = timed[0]
        print(
            "lowest cell: %s %.2f (reference %s, ours %s)"
            % (
                _cell_name(lowest),
                lowest["ratio"],
                _duration(lowest["reference_s"]),
                _duration(lowest["ours_s"]),
            )
        )
        below = [c for c in timed if c["ratio"] < 1.0]
        below_target = [c for c in timed if c["ratio"] < target_for(c["protocol"])]
        print(
            "%d of %d cells below 1.00, %d below target (%.2f at protocols 2-5, %.2f at 0-1)"
            % (len(below), len(timed), len(below_target), TARGET, TARGET_LOW_PROTOCOLS)
        )
        if below:
            print(
                "below 1.00: "
                + ", ".join("%s %.2f" % (_cell_name(c), c["ratio"]) for c in below[:12])
                + (", ..." if len(below) > 12 else "")
            )
    skipped = [c for c in cells if c.get("skipped")]
    if skipped:
        reasons = collections.OrderedDict()
        for c in skipped:
            reasons.setdefault(c["workload"], set()).add("p%d" % c["protocol"])
        print("n/a: " + ", ".join("%s (%s)" % (w, ",".join(sorted(ps))) for w, ps in reasons.items()))
    problems = [c for c in cells_all if c.get("problem")]
    for c in problems:
        print("PROBLEM: %s: %s" % (_cell_name(c), c["problem"]))
    print("%d cells in %.0f s" % (len([c for c in cells_all if "ratio" in c]), elapsed))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "python": platform.python_version(),
                    "implementation": platform.python_implementation(),
                    "machine": platform.machine(),
                    "reference": _describe(ref),
                    "target": _describe(target),
                    "protocols": protocols,
                    "ops": ops,
                    "rounds": settings.rounds,
                    "min_time": settings.min_time,
                    "clock": args.clock,
                    "quick": args.quick,
                    "seconds": elapsed,
                    "cells": cells_all,
                    "geomean": summary,
                    "safe_loading": safe_workloads.summary(safe_cells),
                    "lowest": timed[0] if timed else None,
                    "below_1": len([c for c in timed if c["ratio"] < 1.0]),
                },
                f,
                indent=1,
            )
    return 1 if problems else 0


def _ratio_text(cell):
    if "ratio" in cell:
        return "%6.2f%s" % (cell["ratio"], "*" if cell["ratio"] < 1.0 else " ")
    if cell.get("problem"):
        return "%7s" % "ERR"
    return "%7s" % "n/a"


def _duration(seconds):
    if seconds < 1e-3:
        return "%.2fus" % (seconds * 1e6)
    return "%.3fms" % (seconds * 1e3)


def _size(nbytes):
    if nbytes < 1024:
        return "%dB" % nbytes
    if nbytes < 1024 * 1024:
        return "%.1fkB" % (nbytes / 1024.0)
    return "%.1fMB" % (nbytes / 1048576.0)


if __name__ == "__main__":
    sys.exit(main())
