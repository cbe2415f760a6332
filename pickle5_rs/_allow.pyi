from typing import Any, FrozenSet, Iterable, List, Tuple, Union

__all__ = ["AllowList", "SAFE_STDLIB", "SAFE_NUMPY"]

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
