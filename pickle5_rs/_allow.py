"""Allow-lists for loading untrusted pickles: which globals a safe load may import and call.

An allow-list is plain data: a frozenset of ``(module, qualname)`` pairs of str, exactly as a
pickle names its globals (after the Python 2 name mapping). Nothing here imports the modules it
names.
"""

import itertools

__all__ = ["AllowList", "SAFE_STDLIB", "SAFE_NUMPY"]


def _pair_of_name(text):
    """``"module:qualname"``, or ``"module.qualname"`` split at its last dot."""
    if ":" in text:
        module, _, qualname = text.partition(":")
    else:
        module, _, qualname = text.rpartition(".")
    if not module or not qualname:
        raise ValueError(
            "%r does not name a global: write 'module.name', or 'module:qualname' "
            "for a dotted qualname" % (text,)
        )
    return module, qualname


def _pair_of_object(obj):
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or not module or not qualname:
        raise TypeError(
            "cannot allow %r: it has no __module__ and __qualname__ to name it by; "
            "pass ('module', 'qualname') instead" % (obj,)
        )
    return module, qualname


def _pair(entry):
    if isinstance(entry, str):
        return _pair_of_name(entry)
    if isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(part, str) for part in entry):
        module, qualname = entry
        if not module or not qualname:
            raise ValueError("empty name in %r" % (entry,))
        return module, qualname
    return _pair_of_object(entry)


def _pairs(entries):
    if isinstance(entries, AllowList):
        return entries
    if isinstance(entries, (str, bytes)) or entries is None:
        raise TypeError(
            "allow must be an iterable of globals ('module.name' strings, (module, qualname) "
            "pairs, classes or functions), not %s" % type(entries).__name__
        )
    try:
        iterator = iter(entries)
    except TypeError:
        raise TypeError("allow must be an iterable of globals, not %s" % type(entries).__name__) from None
    return [_pair(entry) for entry in iterator]


class AllowList(frozenset):
    """The globals a safe load may import and call: a frozenset of ``(module, qualname)`` pairs.

    Built from any iterable of ``"module.name"`` strings (split at the last dot; write
    ``"module:qualname"`` for a dotted qualname such as ``"datetime:datetime.fromtimestamp"``),
    ``(module, qualname)`` pairs, or the objects themselves (classes and functions are named by
    their ``__module__`` and ``__qualname__``). Names match exactly: no wildcards, no prefixes.

    Combine lists with ``|`` or ``+`` (either side may be any such iterable)::

        SAFE_STDLIB | SAFE_NUMPY
        SAFE_STDLIB + [MyPoint, "mypackage.shapes.Circle"]
    """

    __slots__ = ()

    def __new__(cls, entries=()):
        if type(entries) is cls:
            return entries
        return super().__new__(cls, _pairs(entries))

    def __or__(self, other):
        return AllowList(itertools.chain(self, _pairs(other)))

    __ror__ = __add__ = __radd__ = __or__

    def names(self):
        """The globals as sorted ``"module.qualname"`` strings."""
        return sorted("%s.%s" % pair for pair in self)

    def __repr__(self):
        return "AllowList(%r)" % (self.names(),)

    def __reduce__(self):
        return AllowList, (sorted(self),)


def _preset(module_names):
    return AllowList((module, name) for module, names in module_names for name in names.split())


SAFE_STDLIB = _preset(
    [
        # Values of builtin types that some protocols pickle by a call, the base classes
        # copyreg._reconstructor names at protocols 0-1, and constants pickled by name.
        (
            "builtins",
            "bool bytearray bytes complex dict float frozenset int list object range set "
            "slice str tuple Ellipsis NotImplemented",
        ),
        # Objects of plain classes at protocols 0-1 (the class argument must be allowed too), and
        # the copyreg helpers for classes at protocols 0-1; bytes at protocols 0-2.
        ("copyreg", "_reconstructor __newobj__ __newobj_ex__"),
        ("_codecs", "encode"),
        ("datetime", "date time datetime timedelta timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("collections", "OrderedDict deque Counter"),
    ]
)

# numpy arrays (ndarray pickles through _reconstruct, or _frombuffer at protocol 5), dtypes and
# scalars, under numpy 1's module names (numpy.core) and numpy 2's (numpy._core).
SAFE_NUMPY = _preset(
    [
        ("numpy", "ndarray dtype"),
        ("numpy.core.multiarray", "_reconstruct scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    ]
)
