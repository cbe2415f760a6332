"""Shared helpers for the Unpickler tests: module selection, reference comparison, sample objects.

The module under test is ``pickle5_rs`` unless ``PICKLE5_RS_TARGET=reference``, which puts the
reference C unpickler in its place (the stdlib ``pickle`` on 3.8+, the ``pickle5`` package on
3.6/3.7). That lets these tests be checked against the behaviour they demand before our
unpickler exists, and keeps them honest afterwards.
"""

import collections
import datetime
import io
import os
import pickle
import struct
import sys

TARGET_ENV = "PICKLE5_RS_TARGET"
TARGET_IS_REFERENCE = os.environ.get(TARGET_ENV, "pickle5_rs") == "reference"


def _load_reference():
    if sys.version_info >= (3, 8):
        import _pickle  # noqa: F401  (the C implementation must be there)

        assert pickle.Unpickler.__module__ == "_pickle", "stdlib pickle is not the C one"
        return pickle
    try:
        import pickle5
    except ImportError:
        return None
    return pickle5


#: The reference C pickler/unpickler, or None when it is not installed (3.6/3.7 without pickle5).
REF = _load_reference()


def _load_target():
    if TARGET_IS_REFERENCE:
        if REF is None:
            raise RuntimeError("%s=reference but no reference pickle module is installed" % TARGET_ENV)
        return REF
    import pickle5_rs

    return pickle5_rs


#: The module under test.
TARGET = _load_target()
TARGET_NAME = "reference" if TARGET_IS_REFERENCE else "pickle5_rs"

#: Highest protocol we can produce test pickles for.
DUMP_PROTOCOL = REF.HIGHEST_PROTOCOL if REF is not None else pickle.HIGHEST_PROTOCOL
PROTOCOLS = list(range(DUMP_PROTOCOL + 1))
PickleBuffer = getattr(REF, "PickleBuffer", None)


def ref_dumps(obj, protocol, **kwargs):
    """Pickle with the reference C pickler (the stdlib one when only protocols <= 4 are needed)."""
    if REF is not None:
        return REF.dumps(obj, protocol, **kwargs)
    return pickle.dumps(obj, protocol, **kwargs)


# --- outcomes and error comparison -------------------------------------------------------------


class Outcome:
    """What a load did: a value, or an exception."""

    __slots__ = ("value", "exc")

    def __init__(self, value=None, exc=None):
        self.value = value
        self.exc = exc

    @property
    def ok(self):
        return self.exc is None

    def __repr__(self):
        if self.ok:
            return "Outcome(value of type %s)" % type(self.value).__name__
        return "Outcome(%s: %s)" % (type(self.exc).__name__, str(self.exc)[:200])


def run(fn, *args, **kwargs):
    try:
        return Outcome(value=fn(*args, **kwargs))
    except Exception as exc:  # BaseException (SystemExit, KeyboardInterrupt) must escape
        return Outcome(exc=exc)


def error_kind(exc):
    """Class name, with every module's UnpicklingError folded into one name.

    pickle5 on 3.6/3.7 has its own UnpicklingError class; ours must be the stdlib one.
    """
    if isinstance(exc, pickle.UnpicklingError):
        return "UnpicklingError"
    for module in (REF, TARGET):
        if module is not None and isinstance(exc, module.UnpicklingError):
            return "UnpicklingError"
    return type(exc).__name__


def is_unpickling_error(exc):
    return error_kind(exc) == "UnpicklingError"


def _is_memo_miss(exc):
    # CPython < 3.12 raises KeyError(index) for GET of a missing memo entry; 3.12+ raises
    # UnpicklingError("Memo value not found at index N"). Either is accepted for the target.
    return isinstance(exc, KeyError) or "Memo value not found" in str(exc)


def tolerated_divergence(ref_exc, got_exc):
    """True when the target may raise something other than the reference does, by design.

    - The reference allocates a counted opcode's claimed size before reading it, so absurd
      lengths give MemoryError / OverflowError("... too large") there; we must report the
      truncation (UnpicklingError) instead of trying to allocate.
    - The reference's LONG_BINPUT/PUT grows an array to the index, so a huge index gives
      MemoryError there; we may succeed or raise UnpicklingError.
    - Missing memo entry: KeyError or UnpicklingError, see _is_memo_miss.
    - Where the reference raises SystemError (its own bug), anything else but SystemError.
    """
    got = error_kind(got_exc)
    if isinstance(ref_exc, MemoryError):
        return got == "UnpicklingError"
    if isinstance(ref_exc, OverflowError) and "too large" in str(ref_exc):
        return got == "UnpicklingError"
    if _is_memo_miss(ref_exc) and got in ("KeyError", "UnpicklingError") and _is_memo_miss(got_exc):
        return True
    if isinstance(ref_exc, SystemError):
        return not isinstance(got_exc, SystemError)
    return False


def assert_clean_error(exc, context=""):
    assert isinstance(exc, Exception), "%s: %r is not an Exception" % (context, exc)
    assert not isinstance(exc, SystemError), "%s: SystemError %r" % (context, exc)


def assert_same_error(ref_exc, got_exc, context=""):
    assert_clean_error(got_exc, context)
    if error_kind(ref_exc) == error_kind(got_exc):
        return
    assert tolerated_divergence(ref_exc, got_exc), "%s: reference raised %s: %s; target raised %s: %s" % (
        context,
        type(ref_exc).__name__,
        str(ref_exc)[:200],
        type(got_exc).__name__,
        str(got_exc)[:200],
    )


def same_value(a, b):
    """Structural equality that sees types, shared references and cycles: compare re-pickles."""
    protocol = min(4, DUMP_PROTOCOL)
    try:
        return ref_dumps(a, protocol) == ref_dumps(b, protocol)
    except (TypeError, pickle.PicklingError):  # memoryview and friends
        return _shape(a) == _shape(b)


def _shape(obj, depth=0):
    if isinstance(obj, memoryview):
        return ("memoryview", obj.readonly, obj.tobytes())
    if PickleBuffer is not None and isinstance(obj, PickleBuffer):
        view = memoryview(obj)
        return ("PickleBuffer", view.readonly, view.tobytes())
    if type(obj) in (list, tuple) and depth < 20:
        return (type(obj).__name__, [_shape(item, depth + 1) for item in obj])
    return (type(obj).__name__, repr(obj))


def assert_same_outcome(ref, got, context=""):
    if ref.ok:
        assert got.ok, "%s: reference loaded a %s, target raised %r" % (
            context,
            type(ref.value).__name__,
            got.exc,
        )
        assert same_value(ref.value, got.value), "%s: loaded values differ: %r != %r" % (
            context,
            ref.value,
            got.value,
        )
    else:
        assert not got.ok, "%s: reference raised %r, target loaded %r" % (context, ref.exc, got.value)
        assert_same_error(ref.exc, got.exc, context)


# --- file-like objects -------------------------------------------------------------------------


class ReadReadline:
    """Only ``read`` and ``readline``: the minimum the Unpickler accepts."""

    def __init__(self, data):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(n)

    def readline(self):
        return self._f.readline()

    def tell(self):
        return self._f.tell()


class ReadReadlineReadinto(ReadReadline):
    def readinto(self, buf):
        return self._f.readinto(buf)


class ShortReads(ReadReadline):
    """``read`` returns at most 7 bytes per call, as a raw stream may."""

    def read(self, n=-1):
        return self._f.read(min(n, 7) if n >= 0 else 7)


class StrRead(ReadReadline):
    """``read`` returns str: not a bytes-like object."""

    def read(self, n=-1):
        return self._f.read(n).decode("latin-1")


class StrReadline(ReadReadline):
    def readline(self):
        return self._f.readline().decode("latin-1")


class BytearrayRead(ReadReadline):
    def read(self, n=-1):
        return bytearray(self._f.read(n))


class OverlongRead(ReadReadline):
    """``read`` returns more than asked."""

    def read(self, n=-1):
        return self._f.read(n) + b"xx"


class NotImplementedPeek(ReadReadline):
    """``peek`` exists but raises NotImplementedError: the Unpickler must fall back to read."""

    def peek(self, n=0):
        raise NotImplementedError


class StrPeek(ReadReadline):
    def peek(self, n=0):
        return "abc"


def buffered_reader(data):
    """io.BufferedReader over BytesIO: has peek, read, readinto, readline."""
    return io.BufferedReader(io.BytesIO(data))


#: File kinds that behave like well-formed binary files; loads through them must match loads(bytes).
GOOD_FILE_KINDS = collections.OrderedDict(
    [
        ("BytesIO", io.BytesIO),
        ("read+readline", ReadReadline),
        ("read+readline+readinto", ReadReadlineReadinto),
        ("BufferedReader(peek)", buffered_reader),
        ("peek-NotImplemented", NotImplementedPeek),
    ]
)


# --- sample objects ---------------------------------------------------------------------------


class Plain:
    def __init__(self, a=1, b="two"):
        self.a = a
        self.b = b


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, x=1, y=2):
        self.x = x
        self.y = y


class WithState:
    def __init__(self):
        self.v = [1, 2]

    def __getstate__(self):
        return {"v": self.v, "extra": True}

    def __setstate__(self, state):
        self.__dict__.update(state)


class Reduced:
    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (Reduced, self.args)


class KwNew:
    """__getnewargs_ex__ with keyword arguments: NEWOBJ_EX at protocol 4+."""

    def __new__(cls, a, b=0):
        self = object.__new__(cls)
        self.a = a
        self.b = b
        return self

    def __getnewargs_ex__(self):
        return (self.a,), {"b": self.b}


class ListSub(list):
    pass


class DictSub(dict):
    pass


def module_function():
    return 42


def sample_objects():
    """(name, object) pairs that cover every opcode the pickler emits for protocols 0-5."""
    shared = [1, 2]
    recursive = []
    recursive.append(recursive)
    rec_dict = {}
    rec_dict["self"] = rec_dict
    lst = ListSub([1, 2, 3])
    lst.attr = "x"
    dct = DictSub(a=1)
    dct.attr = [2]
    return [
        ("None", None),
        ("bools", [True, False]),
        ("small_ints", [0, 1, -1, 255, 256, 65535, 65536, -65536]),
        ("int32", [2**31 - 1, -(2**31)]),
        ("bigints", [2**31, 2**63, -(2**64), 2**1000, -(2**2000) + 1]),
        ("floats", [0.0, -0.0, 1.5, -1e300, 1e-300, float("inf"), float("-inf"), float("nan")]),
        ("complex", 1 + 2j),
        ("str_empty", ""),
        ("str_ascii", "abc"),
        ("str_nonascii", "\xe9\u20ac\U0001f600"),
        ("str_specials", "a\nb\\c'\"\r\x00"),
        ("str_surrogate", "\ud800x"),
        ("str_300", "x" * 300),
        ("bytes_empty", b""),
        ("bytes", b"\x00\xff" * 3),
        ("bytes_300", bytes(bytearray(range(256))) + b"y" * 44),
        ("bytearray", bytearray(b"ab\x00")),
        ("tuples", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]),
        ("nested", {"a": [1, {"b": (2, 3)}], "c": {"d": None}}),
        ("dict", dict((str(i), i) for i in range(30))),
        ("set", {1, "a", (2, 3)}),
        ("frozenset", frozenset([1, 2])),
        ("shared", [shared, shared, (shared,)]),
        ("recursive_list", recursive),
        ("recursive_dict", rec_dict),
        ("plain", Plain()),
        ("slotted", Slotted()),
        ("with_state", WithState()),
        ("reduced", Reduced(1, "x")),
        ("kwnew", KwNew(5, b=6)),
        ("list_sub", lst),
        ("dict_sub", dct),
        ("ordered_dict", collections.OrderedDict([("z", 1), ("a", 2)])),
        ("datetime", datetime.datetime(2020, 1, 2, 3, 4, 5, 6)),
        ("globals", [len, module_function, int, Plain, type(None), Ellipsis, NotImplemented]),
        ("range_slice", [range(1, 10, 2), slice(1, None, 3)]),
        ("many_ints", list(range(1500))),  # more than one APPENDS batch
        ("many_items", dict((i, str(i)) for i in range(1200))),  # more than one SETITEMS batch
        ("big_set", set(range(1200))),
    ]


def large_objects():
    """Objects whose pickles span several frames or carry a big payload."""
    return [
        ("big_bytes", b"\xab" * (2 * 1024 * 1024 + 3)),
        ("big_bytearray", bytearray(b"\xcd" * (1024 * 1024 + 5))),
        ("big_str", "\u20ac" * (700 * 1024)),
        ("many_frames", [str(i) for i in range(15000)]),
        ("mixed_payloads", [b"p" * 70000, "q" * 70000, [1, 2], b"r" * 3]),
    ]


def handmade_counted(opcode, payload, protocol=5):
    """A pickle holding one BINBYTES8/BINUNICODE8/BYTEARRAY8 (which the pickler only emits > 4 GiB)."""
    return b"\x80" + bytes([protocol]) + opcode + struct.pack("<Q", len(payload)) + payload + b"."


def framed(body, protocol=4, frame_size=None):
    """Wrap an opcode stream (without PROTO) into frames of frame_size bytes (one frame if None)."""
    out = [b"\x80", bytes([protocol])]
    size = frame_size or len(body)
    for start in range(0, len(body), size):
        chunk = body[start : start + size]
        out.append(b"\x95" + struct.pack("<Q", len(chunk)) + chunk)
    return b"".join(out)


def sample_pickles(objects=None, protocols=None):
    """(name, protocol, pickle) from the reference pickler, skipping what a protocol can't express."""
    out = []
    for name, obj in objects if objects is not None else sample_objects():
        for proto in protocols if protocols is not None else PROTOCOLS:
            try:
                data = ref_dumps(obj, proto)
            except (TypeError, pickle.PicklingError):
                continue  # e.g. __slots__ without __getstate__ below protocol 2
            out.append((name, proto, data))
    return out


def pickletools_module():
    """pickletools that knows protocol 5 (pickle5 ships one for 3.6/3.7)."""
    if sys.version_info < (3, 8):
        try:
            from pickle5 import pickletools

            return pickletools
        except ImportError:
            pass
    import pickletools

    return pickletools


def opcode_spans(data):
    """[(opcode_name, start, end, arg)] of a well-formed pickle, end exclusive."""
    pickletools = pickletools_module()

    ops = list(pickletools.genops(data))
    spans = []
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        spans.append((op.name, pos, end, arg))
    return spans


def reframe(data, frame_size):
    """Re-cut a protocol 4/5 pickle into frames of about frame_size bytes, at opcode boundaries."""
    spans = opcode_spans(data)
    assert spans[0][0] == "PROTO" and spans[0][3] >= 4
    frames, current = [], []
    size = 0
    for name, start, end, _arg in spans[1:]:
        if name == "FRAME":
            continue
        current.append(data[start:end])
        size += end - start
        if size >= frame_size:
            frames.append(b"".join(current))
            current, size = [], 0
    if current:
        frames.append(b"".join(current))
    out = [data[: spans[0][2]]]
    for body in frames:
        out.append(b"\x95" + struct.pack("<Q", len(body)) + body)
    return b"".join(out)


def cut_points(data, budget=400):
    """Every truncation point of a small pickle; for a large one, the interesting ones plus a sample."""
    n = len(data)
    if n <= budget:
        return list(range(n))
    points = set(range(min(n, 64))) | set(range(max(0, n - 64), n))
    for name, start, end, _arg in opcode_spans(data):
        if name == "FRAME" or end - start > 16:
            points.update(range(start, min(end, start + 12)))
            points.update(range(max(start, end - 3), end + 2))
    stride = max(1, n // 60)
    points.update(range(0, n, stride))
    return sorted(p for p in points if 0 <= p < n)


class Blob:
    """Holds a buffer and pickles it as a PickleBuffer, so protocol 5 can send it out of band."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return (Blob, (PickleBuffer(self.data),))
        return (Blob, (self.data,))


def shares_memory(obj, source):
    """Whether obj's buffer is source's memory (source: a writable buffer such as bytearray)."""
    view = memoryview(obj)
    old = source[0]
    source[0] = (old + 1) % 256
    try:
        return view[:1].tobytes() == bytes(bytearray([source[0]]))
    finally:
        source[0] = old
        view.release()
