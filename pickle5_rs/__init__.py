"""pickle5_rs: CPython's C pickler with protocol 5, reimplemented in Rust.

Use it as a drop-in for the stdlib module: ``import pickle5_rs as pickle``.
"""

import sys as _sys

from . import _core
from ._core import (
    DEFAULT_PROTOCOL,
    HIGHEST_PROTOCOL,
    PickleError,
    PicklingError,
    UnpicklingError,
)
from ._core import Pickler, dump, dumps  # pickler

# Opcode constants, as bytes, exactly as ``pickle.py`` names them.
for _name, _byte, _proto in _core.OPCODE_TABLE:
    globals()[_name] = bytes([_byte])
TRUE = b"I01\n"
FALSE = b"I00\n"
del _name, _byte, _proto

__all__ = [
    "PickleError",
    "PicklingError",
    "UnpicklingError",
    "HIGHEST_PROTOCOL",
    "DEFAULT_PROTOCOL",
]
__all__ += ["Pickler", "dump", "dumps"]  # pickler
__all__.extend(name for name, _, _ in _core.OPCODE_TABLE)
