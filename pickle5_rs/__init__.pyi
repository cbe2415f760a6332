from pickle import PickleError as PickleError
from pickle import PicklingError as PicklingError
from pickle import UnpicklingError as UnpicklingError
from typing import (
    Any,
    Callable,
    ClassVar,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    Union,
)

__version__: str
HIGHEST_PROTOCOL: int
DEFAULT_PROTOCOL: int

class _ReadableFile(Protocol):
    def read(self, __n: int) -> bytes: ...
    def readline(self) -> bytes: ...

class _WritableFile(Protocol):
    def write(self, __b: bytes) -> Any: ...

_BufferCallback = Optional[Callable[["PickleBuffer"], Any]]

class PickleBuffer:
    """Wrapper for potentially out-of-band buffers (``pickle.PickleBuffer`` on 3.8+)."""

    def __init__(self, buffer: Any) -> None: ...
    def raw(self) -> memoryview: ...
    def release(self) -> None: ...

class PicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> dict: ...

class UnpicklerMemoProxy:
    def clear(self) -> None: ...
    def copy(self) -> dict: ...

class Pickler:
    dispatch_table: Mapping[type, Callable[[Any], Any]]
    bin: bool
    fast: bool
    memo: PicklerMemoProxy
    def __init__(
        self,
        file: _WritableFile,
        protocol: Optional[int] = ...,
        fix_imports: bool = ...,
        buffer_callback: _BufferCallback = ...,
    ) -> None: ...
    def dump(self, obj: Any) -> None: ...
    def clear_memo(self) -> None: ...
    def persistent_id(self, obj: Any) -> Any: ...
    reducer_override: ClassVar[Callable[[Any, Any], Any]]

class Unpickler:
    memo: UnpicklerMemoProxy
    def __init__(
        self,
        file: _ReadableFile,
        *,
        fix_imports: bool = ...,
        encoding: str = ...,
        errors: str = ...,
        buffers: Optional[Iterable[Any]] = ...,
    ) -> None: ...
    def load(self) -> Any: ...
    def find_class(self, module_name: str, global_name: str) -> Any: ...
    def persistent_load(self, pid: Any) -> Any: ...
    def _restrict(self, allow: _Allow) -> None: ...

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

_AllowEntry = Union[str, Tuple[str, str], Any]  # "module.name", (module, qualname), or the object
_Allow = Iterable[_AllowEntry]

class AllowList(FrozenSet[Tuple[str, str]]):
    """The globals a safe load may import and call: (module, qualname) pairs."""

    def __new__(cls, entries: _Allow = ...) -> AllowList: ...
    def __or__(self, other: _Allow) -> AllowList: ...  # type: ignore[override]
    def __ror__(self, other: _Allow) -> AllowList: ...  # type: ignore[override]
    def __add__(self, other: _Allow) -> AllowList: ...
    def __radd__(self, other: _Allow) -> AllowList: ...
    def names(self) -> List[str]: ...

SAFE_STDLIB: AllowList
SAFE_NUMPY: AllowList

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
