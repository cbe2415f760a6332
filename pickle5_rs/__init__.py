"""pickle5_rs: CPython's C pickler with protocol 5, reimplemented in Rust.

Use it as a drop-in for the stdlib module: ``import pickle5_rs as pickle``.
"""

import sys as _sys

from . import _core
from ._core import (
    DEFAULT_PROTOCOL,
    HIGHEST_PROTOCOL,
    PickleError,
    Pickler,
    PicklingError,
    UnpicklingError,
    dump,
    dumps,
)
from ._core import __version__ as __version__  # Cargo.toml's version, the wheel's too

if _sys.version_info >= (3, 8):
    from pickle import PickleBuffer
else:
    from ._core import PickleBuffer

# The stdlib pickle module's names (3.8's, with protocol 5), then the safe loading's
# (tests/test_module.py checks this against the module and the stdlib's).
__all__ = [
    "PickleError",
    "PicklingError",
    "UnpicklingError",
    "PickleBuffer",
    "HIGHEST_PROTOCOL",
    "DEFAULT_PROTOCOL",
    "Pickler",
    "dump",
    "dumps",
    # Opcode constants, in _core.OPCODE_TABLE's order.
    "MARK",
    "STOP",
    "POP",
    "POP_MARK",
    "DUP",
    "FLOAT",
    "INT",
    "BININT",
    "BININT1",
    "LONG",
    "BININT2",
    "NONE",
    "PERSID",
    "BINPERSID",
    "REDUCE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "APPEND",
    "BUILD",
    "GLOBAL",
    "DICT",
    "EMPTY_DICT",
    "APPENDS",
    "GET",
    "BINGET",
    "INST",
    "LONG_BINGET",
    "LIST",
    "EMPTY_LIST",
    "OBJ",
    "PUT",
    "BINPUT",
    "LONG_BINPUT",
    "SETITEM",
    "TUPLE",
    "EMPTY_TUPLE",
    "SETITEMS",
    "BINFLOAT",
    "PROTO",
    "NEWOBJ",
    "EXT1",
    "EXT2",
    "EXT4",
    "TUPLE1",
    "TUPLE2",
    "TUPLE3",
    "NEWTRUE",
    "NEWFALSE",
    "LONG1",
    "LONG4",
    "BINBYTES",
    "SHORT_BINBYTES",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
    "BINBYTES8",
    "EMPTY_SET",
    "ADDITEMS",
    "FROZENSET",
    "NEWOBJ_EX",
    "STACK_GLOBAL",
    "MEMOIZE",
    "FRAME",
    "BYTEARRAY8",
    "NEXT_BUFFER",
    "READONLY_BUFFER",
    "TRUE",
    "FALSE",
    "Unpickler",
    "load",
    "loads",
    # Loading untrusted pickles.
    "SafeUnpickler",
    "safe_load",
    "safe_loads",
    "ForbiddenGlobalError",
    "AllowList",
    "SAFE_STDLIB",
    "SAFE_NUMPY",
]

# Opcode constants, as bytes, exactly as ``pickle.py`` names them.
for _name, _byte, _proto in _core.OPCODE_TABLE:
    globals()[_name] = bytes([_byte])
TRUE = b"I01\n"
FALSE = b"I00\n"
del _name, _byte, _proto

from ._core import load, loads  # noqa: E402


class Unpickler(_core.Unpickler):
    """Unpickler(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())

    Reads a pickle data stream from a binary file (an object with ``read()`` and ``readline()``;
    ``readinto()`` and ``peek()`` are used when present) and rebuilds the objects it describes.
    Subclasses may override ``find_class()`` and define ``persistent_load()``.
    """

    # Like the C class, instances carry no __dict__; subclasses get one as usual. The base's
    # ``__init__`` does the set-up, so that subclasses can call ``Unpickler.__init__`` as with _pickle.
    __slots__ = ()

    if _sys.version_info >= (3, 13):
        # As in 3.13's _pickle: a method that subclasses override (and may call via super()).
        def persistent_load(self, pid):
            raise UnpicklingError(
                "A load persistent id instruction was encountered, "
                "but no persistent_load function was specified."
            )


# Loading untrusted pickles: load restricted to an allow-list of globals.
from ._allow import SAFE_NUMPY, SAFE_STDLIB, AllowList  # noqa: E402
from ._core import ForbiddenGlobalError, safe_load, safe_loads  # noqa: E402


class SafeUnpickler(Unpickler):
    """SafeUnpickler(file, *, allow=SAFE_STDLIB, fix_imports=True, encoding='ASCII', errors='strict', buffers=())

    An ``Unpickler`` that imports and calls only the globals ``allow`` names (an ``AllowList``,
    or any iterable ``AllowList`` accepts). Each global the pickle names is checked before
    anything is imported; a refusal raises ``ForbiddenGlobalError`` (an ``UnpicklingError``).
    Persistent ids are refused unless a ``persistent_load`` is given (as for ``Unpickler``).
    A subclass's ``find_class`` is called only for allowed names.
    """

    __slots__ = ()

    def __init__(
        self, file, *, allow=SAFE_STDLIB, fix_imports=True, encoding="ASCII", errors="strict", buffers=None
    ):
        self._restrict(allow)
        Unpickler.__init__(
            self, file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
        )


_core._set_allow_support(SafeUnpickler, AllowList, SAFE_STDLIB)
