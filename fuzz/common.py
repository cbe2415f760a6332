"""Shared pieces of the fuzz targets: the global allowlist, support classes, and the checks.

Loading arbitrary pickles runs arbitrary callables. The fuzz process therefore installs an audit
hook that refuses every ``pickle.find_class`` event (raised by both the reference C unpickler and
pickle5_rs before any import) whose (module, name) pair is not on ALLOWED, so neither unpickler
can reach anything with side effects outside the process. The hook raises ``Forbidden`` — both
implementations must then fail with that class.
"""

import ctypes
import glob
import io
import os
import pickle
import resource
import sys


def _expose_libfuzzer():
    """Loads atheris's libFuzzer with RTLD_GLOBAL, before the instrumented extension is imported.

    The extension built for fuzzing calls ``__sanitizer_cov_8bit_counters_init`` and friends from
    its constructors; atheris loads its libFuzzer privately (RTLD_LOCAL) and only in ``Fuzz()``,
    so without this the import fails with an undefined symbol, and the counters would never be
    registered. ``Setup(..., internal_libfuzzer=True)`` then makes atheris use this same copy.
    """
    import atheris

    cores = glob.glob(os.path.join(os.path.dirname(atheris.__file__), "core_with_libfuzzer*.so"))
    if len(cores) != 1:
        raise RuntimeError("atheris's core_with_libfuzzer module not found: %r" % cores)
    ctypes.CDLL(cores[0], mode=os.RTLD_NOW | os.RTLD_GLOBAL)


_expose_libfuzzer()
# Loaded here, after libFuzzer's symbols: the instrumented extension links against them.
import pickle5_rs  # noqa: E402, F401

REF = pickle

# Classes the loader may build: C types only (their attributes cannot be reassigned by BUILD),
# plus the support classes below. No callable that grows memory from a small argument
# (range, bytes(n), list(iterable) of a generator, ...) beyond bytearray(n), which the address
# space cap turns into MemoryError.
_BUILTINS = [
    "bool",
    "bytearray",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "object",
    "set",
    "slice",
    "str",
    "tuple",
    "Ellipsis",
    "NotImplemented",
    "ValueError",
    "TypeError",
    "KeyError",
    "Exception",
    "OverflowError",
]
ALLOWED = set()
for _m in ("builtins", "__builtin__"):
    ALLOWED.update((_m, n) for n in _BUILTINS)
ALLOWED.update(
    {
        ("__builtin__", "unicode"),
        ("__builtin__", "long"),
        ("__builtin__", "basestring"),
        ("exceptions", "ValueError"),
        ("exceptions", "StandardError"),
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("collections", "defaultdict"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("pickle", "PickleBuffer"),
    }
)
SUPPORT_MODULE = "fuzz_support"


class Forbidden(Exception):
    """A pickle asked for a global outside the allowlist."""


def _audit(event, args):
    if event == "pickle.find_class":
        module, name = args[0], args[1]
        if (module, name) in ALLOWED:
            return
        if module == SUPPORT_MODULE and isinstance(name, str) and name in SUPPORT_NAMES:
            return
        if module == "test.pickletester" and isinstance(name, str) and name.isidentifier():
            # Its classes (the objects of the seed corpus); no functions, no modules.
            tester = sys.modules.get(module)
            if isinstance(getattr(tester, name, None), type):
                return
        raise Forbidden("%r.%r" % (module, name))


class HookError(Exception):
    """Raised on purpose by misbehaving hooks."""


# --- classes for the loader's call paths (BUILD, APPEND(S) on non-lists, SETITEM(S), ...) ------


class Plain:
    pass


class Slotted:
    __slots__ = ("a", "b")


class BadSetstate:
    def __setstate__(self, state):
        if isinstance(state, int) and state % 3 == 0:
            raise HookError("setstate")
        self.state = state


class Appender:
    """A non-list target for APPEND/APPENDS: append works, extend does not exist."""

    def __init__(self):
        self.items = []

    def append(self, item):
        if item == 13:
            raise HookError("append")
        self.items.append(item)


class Extender(Appender):
    def extend(self, items):
        items = list(items)
        if len(items) == 7:
            raise HookError("extend")
        self.items.extend(items)
        return 5  # ignored result of a wrong type


class ItemSetter:
    def __init__(self):
        self.d = {}

    def __setitem__(self, key, value):
        if key == "boom":
            raise HookError("setitem")
        self.d[key] = value


class SetAdder:
    """ADDITEMS on a non-set calls add()."""

    def __init__(self):
        self.s = []

    def add(self, item):
        if item == 0:
            raise HookError("add")
        self.s.append(item)


class WeirdNew:
    """__new__ returning an object of another type."""

    def __new__(cls, *args, **kwargs):
        if args and args[0] == 1:
            return 42
        if args and args[0] == 2:
            raise HookError("new")
        return object.__new__(cls)


class Reader:
    """Consumes the fuzz input; past its end every read is zero."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self, nbytes):
        chunk = self.bytes(nbytes)
        return int.from_bytes(chunk, "little", signed=True)

    def bytes(self, n):
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def left(self):
        return len(self.data) - self.pos


def make_thing(*args):
    """A REDUCE callable with odd results."""
    if len(args) == 1:
        return args[0]
    if len(args) == 2:
        raise HookError("make_thing")
    return args


SUPPORT_NAMES = {
    "Plain",
    "Slotted",
    "BadSetstate",
    "Appender",
    "Extender",
    "ItemSetter",
    "SetAdder",
    "WeirdNew",
    "make_thing",
    "HookError",
}


def install_support_module():
    """Registers this module's support objects as importable module ``fuzz_support``."""
    import types

    module = types.ModuleType(SUPPORT_MODULE)
    for name in SUPPORT_NAMES:
        obj = globals()[name]
        if isinstance(obj, type):
            obj.__module__ = SUPPORT_MODULE
        else:
            obj.__module__ = SUPPORT_MODULE
        setattr(module, name, obj)
    sys.modules[SUPPORT_MODULE] = module


# --- allocation-limit mode ----------------------------------------------------------------------
#
# With PICKLE5_RS_FUZZ_ALLOC_LIMIT=MiB set, every call into pickle5_rs runs with the address space
# capped a little above what the process already uses: between 64 KiB and MiB more, chosen per
# input (log-uniformly, from the input's hash). Allocations then fail at every size and in every
# growth path, so the failure paths run: MemoryError is an acceptable outcome, an abort ("memory
# allocation of N bytes failed") or a panic is a finding, and a call that succeeds anyway must
# still give what the reference (run without the cap) gives.

ALLOC_LIMIT_ENV = "PICKLE5_RS_FUZZ_ALLOC_LIMIT"
_ALLOC_LIMIT = int(os.environ.get(ALLOC_LIMIT_ENV) or 0) << 20
_PAGE = os.sysconf("SC_PAGE_SIZE")
_headroom = None


def alloc_limit_mode():
    return _ALLOC_LIMIT > 0


def begin_input(data):
    """Chooses this input's headroom (allocation-limit mode only)."""
    global _headroom
    if not _ALLOC_LIMIT:
        return
    import zlib

    h = zlib.crc32(data, 0x5EED)
    low, high = 16, max(16, _ALLOC_LIMIT.bit_length() - 1)
    exp = low + h % (high - low + 1)
    _headroom = min(_ALLOC_LIMIT, (1 << exp) + (h >> 8) % (1 << exp))


def _address_space_used():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * _PAGE


class _Capped:
    """Lowers the soft RLIMIT_AS to current usage + the input's headroom for the block."""

    def __enter__(self):
        self.saved = resource.getrlimit(resource.RLIMIT_AS)
        cap = _address_space_used() + _headroom
        hard = self.saved[1]
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_AS, self.saved)
        return False


def setup_process(address_space=3 << 30):
    install_support_module()
    install_report_hooks()
    import test.pickletester  # noqa: F401  (the seed corpus's classes)

    sys.addaudithook(_audit)
    # A pickle can legitimately ask for a big bytearray; beyond this it is a MemoryError.
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    sys.setrecursionlimit(3000)


# --- the checks ------------------------------------------------------------------------------


class Finding(AssertionError):
    pass


def panic_exception_type():
    try:
        import pyo3_runtime  # noqa: F401  (PyO3 registers it lazily; may be absent)

        return pyo3_runtime.PanicException
    except ImportError:
        return None


def check_exception(exc, what):
    """Raises Finding for exceptions that are never acceptable from pickle5_rs."""
    name = type(exc).__name__
    if name == "PanicException" or type(exc).__module__ == "pyo3_runtime":
        raise Finding("%s: Rust panic: %r" % (what, exc)) from exc
    if isinstance(exc, SystemError):
        raise Finding("%s: SystemError: %r" % (what, exc)) from exc
    if not isinstance(exc, Exception):
        raise Finding("%s: non-Exception %r" % (what, exc)) from exc


# Errors the interpreter reports without raising them (PyErr_WriteUnraisable, PyErr_Print):
# e.g. "deallocated bytearray object has exported buffers" when a buffer export is lost.
REPORTED = []


def _record_unraisable(report):
    REPORTED.append("%s: %s (%r)" % (type(report.exc_value).__name__, report.exc_value, report.object))


def _record_printed(exc_type, exc_value, tb):
    REPORTED.append("%s: %s" % (exc_type.__name__, exc_value))


def install_report_hooks():
    sys.unraisablehook = _record_unraisable
    sys.excepthook = _record_printed


def outcome(fn, who=None):
    """(True, value) or (False, exception); with `who`, errors the interpreter reported during
    the call instead of raising (see REPORTED) are a Finding against `who`."""
    del REPORTED[:]
    capped = who == "pickle5_rs" and _headroom is not None
    try:
        if capped:
            with _Capped():
                result = True, fn()
        else:
            result = True, fn()
    except RecursionError as exc:
        result = False, exc
    except Exception as exc:
        result = False, exc
    except BaseException as exc:  # noqa: B902 - judged by check_exception
        result = False, exc
    if capped:
        # Under the cap, the interpreter itself may report a MemoryError it cannot raise
        # (in a destructor, say): that is the cap at work, not a misbehaviour.
        REPORTED[:] = [r for r in REPORTED if not r.startswith("MemoryError")]
    if REPORTED and who is not None:
        reports, REPORTED[:] = list(REPORTED), []
        if who == "pickle5_rs":
            raise Finding("pickle5_rs: errors reported during the call: %r" % (reports,))
        raise ReferenceFailure("reference: errors reported during the call: %r" % (reports,))
    return result


class ReferenceFailure(Exception):
    """The reference implementation misbehaved (its bug, not ours): the input is not compared."""


def same_class(ours, ref):
    """Exception classes compared by name, pickle5_rs's pickle errors matching pickle's."""
    return type(ours).__name__ == type(ref).__name__


class ReadReadline:
    """A file with only read() and readline()."""

    def __init__(self, data):
        self._f = io.BytesIO(data)
        self.read = self._f.read
        self.readline = self._f.readline


class NoPeek:
    """read(), readline(), readinto(); no peek()."""

    def __init__(self, data):
        self._f = io.BytesIO(data)
        self.read = self._f.read
        self.readline = self._f.readline
        self.readinto = self._f.readinto


class ShortReads(io.RawIOBase):
    """A raw stream that returns at most `step` bytes per call, wrapped in BufferedReader by users."""

    def __init__(self, data, step):
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self._step, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class Liar:
    """A file whose methods misbehave at one call chosen by `plan`: wrong types, lies about sizes,
    exceptions. `plan` is an int derived from the input."""

    def __init__(self, data, plan):
        self._f = io.BytesIO(data)
        self._calls = 0
        self._bad_call = plan % 7
        self._how = (plan >> 3) % 9

    def _misbehave(self, kind, n=None):
        self._calls += 1
        if self._calls != self._bad_call + 1:
            return None
        how = self._how
        if how == 0:
            raise HookError(kind)
        if how == 1:
            return ("wrong type",)
        if how == 2:
            return "a str"
        if how == 3:
            return bytearray(b"\x80\x04N.")
        if how == 4:
            return memoryview(b"xyz")
        if how == 5 and n is not None:
            return b"\x00" * (min(n, 1 << 16) + 3) if n >= 0 else b"\x00" * 70000
        if how == 6:
            return -1
        if how == 7:
            return 1 << 70
        return b""

    def read(self, n=-1):
        bad = self._misbehave("read", n)
        return self._f.read(n) if bad is None else bad

    def readline(self, n=-1):
        bad = self._misbehave("readline", n)
        return self._f.readline() if bad is None else bad

    def readinto(self, b):
        bad = self._misbehave("readinto")
        if bad is None:
            return self._f.readinto(b)
        if isinstance(bad, int):
            self._f.readinto(b)
            return bad
        if bad == b"":
            return len(b) + 5  # claims more than it wrote
        return bad

    def peek(self, n=0):
        bad = self._misbehave("peek")
        if bad is None:
            pos = self._f.tell()
            chunk = self._f.read(max(n, 1) + 100)
            self._f.seek(pos)
            return chunk
        return bad
