import sys
from pickle import PickleError as PickleError
from pickle import PicklingError as PicklingError
from pickle import UnpicklingError as UnpicklingError
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Union,
    type_check_only,
)

from ._allow import SAFE_NUMPY as SAFE_NUMPY
from ._allow import SAFE_STDLIB as SAFE_STDLIB
from ._allow import AllowList as AllowList
from ._allow import _Allow

# As in __init__.py (the stdlib pickle module's names, then the safe loading's).
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

__version__: str
HIGHEST_PROTOCOL: int
DEFAULT_PROTOCOL: int

class _ReadableFile(Protocol):
    def read(self, __n: int) -> bytes: ...
    def readline(self) -> bytes: ...

class _WritableFile(Protocol):
    def write(self, __b: bytes) -> Any: ...

if sys.version_info >= (3, 8):
    from pickle import PickleBuffer as PickleBuffer
else:
    class PickleBuffer:
        """Wrapper for potentially out-of-band buffers (``pickle.PickleBuffer`` on 3.8+)."""

        def __init__(self, buffer: Any) -> None: ...
        def raw(self) -> memoryview: ...
        def release(self) -> None: ...

_BufferCallback = Optional[Callable[[PickleBuffer], Any]]

# The types of Pickler.memo and Unpickler.memo, which the module does not name.
@type_check_only
class PicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> Dict[int, Tuple[int, Any]]: ...

@type_check_only
class UnpicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> Dict[int, Any]: ...

class Pickler:
    dispatch_table: Mapping[type, Callable[[Any], Any]]
    bin: bool
    fast: bool
    def __init__(
        self,
        file: _WritableFile,
        protocol: Optional[int] = ...,
        fix_imports: bool = ...,
        buffer_callback: _BufferCallback = ...,
    ) -> None: ...
    @property
    def memo(self) -> PicklerMemoProxy: ...
    @memo.setter
    def memo(self, value: Union[PicklerMemoProxy, Dict[int, Tuple[int, Any]]]) -> None: ...
    def dump(self, __obj: Any) -> None: ...
    def clear_memo(self) -> None: ...
    if sys.version_info >= (3, 13):
        def persistent_id(self, __obj: Any) -> Any: ...
    else:
        # Unset unless given to the instance or defined by a subclass.
        persistent_id: Callable[[Any], Any]
    # Looked up on subclasses only.
    reducer_override: ClassVar[Callable[[Any, Any], Any]]

class Unpickler:
    def __init__(
        self,
        file: _ReadableFile,
        *,
        fix_imports: bool = ...,
        encoding: str = ...,
        errors: str = ...,
        buffers: Optional[Iterable[Any]] = ...,
    ) -> None: ...
    @property
    def memo(self) -> UnpicklerMemoProxy: ...
    @memo.setter
    def memo(self, value: Union[UnpicklerMemoProxy, Dict[int, Any]]) -> None: ...
    def load(self) -> Any: ...
    def find_class(self, __module_name: str, __global_name: str) -> Any: ...
    if sys.version_info >= (3, 13):
        def persistent_load(self, pid: Any) -> Any: ...
    else:
        # Unset unless given to the instance or defined by a subclass.
        persistent_load: Callable[[Any], Any]
    def _restrict(self, __allow: _Allow) -> None: ...

def dump(
    obj: Any,
    file: _WritableFile,
    protocol: Optional[int] = ...,
    *,
    fix_imports: bool = ...,
    buffer_callback: _BufferCallback = ...,
) -> None: ...
def dumps(
    obj: Any,
    protocol: Optional[int] = ...,
    *,
    fix_imports: bool = ...,
    buffer_callback: _BufferCallback = ...,
) -> bytes: ...
def load(
    file: _ReadableFile,
    *,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...
def loads(
    __data: Union[bytes, bytearray, memoryview],
    *,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...

# Loading untrusted pickles.

class ForbiddenGlobalError(UnpicklingError):
    module: Optional[str]
    name: Optional[str]

class SafeUnpickler(Unpickler):
    def __init__(
        self,
        file: _ReadableFile,
        *,
        allow: _Allow = ...,
        fix_imports: bool = ...,
        encoding: str = ...,
        errors: str = ...,
        buffers: Optional[Iterable[Any]] = ...,
    ) -> None: ...

def safe_load(
    file: _ReadableFile,
    *,
    allow: _Allow = ...,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...
def safe_loads(
    __data: Union[bytes, bytearray, memoryview],
    *,
    allow: _Allow = ...,
    fix_imports: bool = ...,
    encoding: str = ...,
    errors: str = ...,
    buffers: Optional[Iterable[Any]] = ...,
) -> Any: ...

# Opcodes, as in pickle.py.
MARK: bytes
STOP: bytes
POP: bytes
POP_MARK: bytes
DUP: bytes
FLOAT: bytes
INT: bytes
BININT: bytes
BININT1: bytes
LONG: bytes
BININT2: bytes
NONE: bytes
PERSID: bytes
BINPERSID: bytes
REDUCE: bytes
STRING: bytes
BINSTRING: bytes
SHORT_BINSTRING: bytes
UNICODE: bytes
BINUNICODE: bytes
APPEND: bytes
BUILD: bytes
GLOBAL: bytes
DICT: bytes
EMPTY_DICT: bytes
APPENDS: bytes
GET: bytes
BINGET: bytes
INST: bytes
LONG_BINGET: bytes
LIST: bytes
EMPTY_LIST: bytes
OBJ: bytes
PUT: bytes
BINPUT: bytes
LONG_BINPUT: bytes
SETITEM: bytes
TUPLE: bytes
EMPTY_TUPLE: bytes
SETITEMS: bytes
BINFLOAT: bytes
TRUE: bytes
FALSE: bytes
PROTO: bytes
NEWOBJ: bytes
EXT1: bytes
EXT2: bytes
EXT4: bytes
TUPLE1: bytes
TUPLE2: bytes
TUPLE3: bytes
NEWTRUE: bytes
NEWFALSE: bytes
LONG1: bytes
LONG4: bytes
BINBYTES: bytes
SHORT_BINBYTES: bytes
SHORT_BINUNICODE: bytes
BINUNICODE8: bytes
BINBYTES8: bytes
EMPTY_SET: bytes
ADDITEMS: bytes
FROZENSET: bytes
NEWOBJ_EX: bytes
STACK_GLOBAL: bytes
MEMOIZE: bytes
FRAME: bytes
BYTEARRAY8: bytes
NEXT_BUFFER: bytes
READONLY_BUFFER: bytes
