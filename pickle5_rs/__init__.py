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

if _sys.version_info >= (3, 8):
    from pickle import PickleBuffer
else:
    from ._core import PickleBuffer

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
    "PickleBuffer",
    "HIGHEST_PROTOCOL",
    "DEFAULT_PROTOCOL",
]
__all__.extend(name for name, _, _ in _core.OPCODE_TABLE)
