"""pickle5_rs's alias on CPython 3.6/3.7: ``import pickle5`` and the stdlib's readers.

``python -m pickle5_rs.alias install`` copies this file into site-packages as
``_pickle5_rs_alias.py`` next to a one-line ``pickle5_rs-alias.pth`` that imports it and calls
:func:`install`, so that every interpreter of the environment (subprocesses and multiprocessing
workers included) runs it at start-up. It does two things, both lazily:

1. It appends a finder to ``sys.meta_path`` that serves pickle5_rs as ``pickle5`` when no pickle5
   backport is installed (the finder is consulted after the regular ones, so an installed pickle5
   is always found first and the alias then does nothing).
2. Unless installed with ``--no-stdlib-read``: it puts a hook for the module ``pickle`` in front of
   the path finder. When ``pickle`` is imported (or at once, if it already was), the hook replaces
   ``pickle.load``, ``pickle.loads`` and ``pickle.Unpickler`` by readers that also read protocol 5
   with pickle5_rs's unpickler (see :func:`patch_pickle`); writing is left alone.

Nothing of pickle5_rs is imported at start-up, nor when ``pickle`` is imported: pickle5_rs is
imported by the first ``import pickle5``, or by the first protocol-5 pickle that a stdlib reader
meets. On Python 3.8+ nothing is done.

Only the standard library may be used here, and nothing heavy at import time.
"""

import sys

# The module names the backport's package provides that pickle5_rs can stand in for.
TOP = "pickle5"
SUBMODULES = ("pickle5.pickle", "pickle5._pickle")
# Marks the finder on sys.meta_path, whichever copy of this file put it there.
MARKER = "_pickle5_rs_alias"
# Marks the `pickle` hook on sys.meta_path, and the readers it puts into `pickle`.
READ_MARKER = "_pickle5_rs_stdlib_read"
# What a protocol-5 pickle starts with (PROTO 5).
PROTO5 = b"\x80\x05"


class Pickle5RsAlias:
    """Meta-path finder and loader that serves pickle5_rs under the name ``pickle5``."""

    _pickle5_rs_alias = True

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == TOP:
            pass
        elif fullname in SUBMODULES:
            # Only below our own pickle5, never below a real one.
            parent = sys.modules.get(TOP)
            loader = getattr(getattr(parent, "__spec__", None), "loader", None)
            if not getattr(loader, MARKER, False):
                return None
        else:
            return None
        from importlib.machinery import ModuleSpec
        from importlib.util import find_spec

        if find_spec("pickle5_rs") is None:  # uninstalled since: stay out of the way
            return None
        return ModuleSpec(fullname, cls, origin="pickle5_rs", is_package=fullname == TOP)

    @staticmethod
    def create_module(spec):
        return None  # the default module object

    @classmethod
    def exec_module(cls, module):
        from pickle5_rs._pickle5 import populate

        populate(module)
        if module.__name__ == TOP:
            # As in the backport, ``pickle5.pickle`` and ``pickle5._pickle`` exist once pickle5 is
            # imported.
            from importlib import import_module

            for name in SUBMODULES:
                import_module(name)


class StdlibReadHook:
    """Meta-path finder, ahead of the path finder, that sees the stdlib ``pickle`` imported.

    It finds ``pickle`` with the finders that follow it and wraps the loader of that spec, so that
    :func:`patch_pickle` runs once the module has executed (``importlib.reload`` included). For any
    other name it returns None at once.
    """

    _pickle5_rs_stdlib_read = True

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "pickle" or path is not None:
            return None
        meta_path = sys.meta_path
        start = next((i + 1 for i, finder in enumerate(meta_path) if finder is cls), 0)
        for finder in meta_path[start:]:
            find_spec = getattr(finder, "find_spec", None)
            spec = None if find_spec is None else find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None  # the import system carries on (legacy finders), unpatched
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader:
    """Runs the real loader of ``pickle``, then :func:`patch_pickle`; looks like the real one."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        loader = self.loader
        # The module keeps its real loader (inspect, linecache and reload ask it for its source).
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "loader", None) is self:
            spec.loader = loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = loader
        loader.exec_module(module)
        try:
            patch_pickle(module)
        except Exception as exc:  # never break `import pickle`
            import warnings

            warnings.warn("pickle5_rs could not extend pickle's readers: %r" % (exc,), RuntimeWarning)

    def __getattr__(self, name):
        return getattr(self.loader, name)


# --- The stdlib's readers, extended to protocol 5 ----------------------------------------------
#
# Design: the stdlib's own C readers (_pickle) keep reading everything they read today; only a
# pickle that starts with PROTO 5 goes to pickle5_rs. `loads` looks at the first two bytes of its
# argument; `load` and `Unpickler.load` look at the next two bytes of the file without consuming
# them (with `peek()`, a seek back on an in-memory or raw disk file, or else by reading them into a
# small wrapper that hands them back first). So protocols 0-4 run the very same code as before, with
# the same errors, and the file is left exactly after the pickle either way, as _pickle leaves it.


def patch_pickle(module):
    """Extends ``module`` (the stdlib ``pickle``) to read protocol 5; True if it now does.

    Replaces ``load``, ``loads`` and ``Unpickler`` when they are still _pickle's (not when _pickle is
    missing or blocked, nor when something else replaced them), and ``ForkingPickler.loads`` of an
    already imported ``multiprocessing.reduction``. Nothing on Python 3.8+, and nothing when
    pickle5_rs is not installed.
    """
    if sys.version_info >= (3, 8):
        return False
    if getattr(getattr(module, "loads", None), READ_MARKER, False):
        return True
    _pickle = sys.modules.get("_pickle")
    if _pickle is None or not (
        getattr(module, "Unpickler", None) is _pickle.Unpickler
        and getattr(module, "load", None) is _pickle.load
        and getattr(module, "loads", None) is _pickle.loads
    ):
        return False
    if "pickle5_rs" not in sys.modules:
        from importlib.machinery import PathFinder

        if PathFinder.find_spec("pickle5_rs") is None:  # uninstalled since: stay out of the way
            return False
    load, loads, unpickler = _readers(_pickle)
    module.load, module.loads, module.Unpickler = load, loads, unpickler
    # Bound from `pickle` at its import: only a late enable() finds it imported already.
    reduction = sys.modules.get("multiprocessing.reduction")
    forking_pickler = getattr(reduction, "ForkingPickler", None)
    if forking_pickler is not None and forking_pickler.__dict__.get("loads") is _pickle.loads:
        forking_pickler.loads = loads
    return True


def stdlib_reads_protocol_5():
    """Whether ``pickle`` is imported in this process and its readers were extended."""
    module = sys.modules.get("pickle")
    return bool(getattr(getattr(module, "loads", None), READ_MARKER, False))


_rs_module = []


def _pickle5_rs():
    """pickle5_rs, imported on first use; None if it cannot be imported."""
    if not _rs_module:
        try:
            import pickle5_rs
        except ImportError:
            pickle5_rs = None
        _rs_module.append(pickle5_rs)
    return _rs_module[0]


class _Pushback:
    """A binary file with a few bytes (already read from it) handed out again first.

    What the stdlib's C unpickler and pickle5_rs read through when the next bytes of a file could
    only be seen by reading them. Has ``peek``/``readinto`` only if the file has them, so that both
    readers use the file as they would have; the file is never read further than they ask.
    """

    __slots__ = ("file", "pending")

    def __init__(self, file, pending=b""):
        self.file = file
        self.pending = pending

    def read(self, n=-1):
        pending = self.pending
        if not pending:
            return self.file.read(n)
        if n is not None and 0 <= n <= len(pending):
            self.pending = pending[n:]
            return pending[:n]
        self.pending = b""
        rest = self.file.read(-1 if n is None or n < 0 else n - len(pending))
        return pending + rest if rest else pending

    def readline(self, *size):
        pending = self.pending
        if not pending:
            return self.file.readline(*size)
        end = pending.find(b"\n") + 1
        if end:
            self.pending = pending[end:]
            return pending[:end]
        self.pending = b""
        return pending + self.file.readline()

    def head(self):
        """The next two bytes (fewer at the end of the file), left to be read again."""
        pending = self.pending
        if len(pending) < 2 and hasattr(self.file, "peek"):
            try:
                seen = pending + bytes(self.file.peek(2)[:2])
            except NotImplementedError:  # as _pickle does: then there is no peek
                pass
            else:
                if len(seen) >= 2 or seen[:1] != PROTO5[:1]:
                    return seen[:2]
        # Reads a second byte only after PROTO: no read goes beyond what the pickle holds.
        while len(pending) < 2 and pending[:1] in (b"", PROTO5[:1]):
            more = self.file.read(2 - len(pending))
            if not more:
                break
            pending += bytes(more)
        self.pending = pending
        return pending[:2]


class _PushbackPeek(_Pushback):
    __slots__ = ()

    def peek(self, n=0):
        pending = self.pending
        return pending + self.file.peek(n) if pending else self.file.peek(n)


class _PushbackReadinto(_Pushback):
    __slots__ = ()

    def readinto(self, buffer):
        pending = self.pending
        if not pending:
            return self.file.readinto(buffer)
        with memoryview(buffer) as view, view.cast("B") as flat:
            taken = min(len(pending), len(flat))
            flat[:taken] = pending[:taken]
            self.pending = pending[taken:]
            if taken < len(flat):
                got = self.file.readinto(flat[taken:])
                taken += got or 0
        return taken


class _PushbackPeekReadinto(_PushbackPeek, _PushbackReadinto):
    __slots__ = ()


def _pushback(file, pending=b""):
    cls = (_Pushback, _PushbackPeek, _PushbackReadinto, _PushbackPeekReadinto)[
        hasattr(file, "peek") + 2 * hasattr(file, "readinto")
    ]
    return cls(file, pending)


def _seekable_memory_or_disk(file):
    """An in-memory or raw disk file without peek: its next bytes are seen by reading and seeking back."""
    import io

    if type(file) not in (io.BytesIO, io.FileIO):
        return False
    try:
        return file.seekable()
    except (OSError, ValueError):
        return False


def _head_by_seeking(file):
    position = file.tell()
    head = file.read(2)
    file.seek(position)
    return head


def _file_head(file):
    """(next two bytes, file to read from): the file itself or a pushback wrapper over it."""
    peek = getattr(file, "peek", None)
    if peek is not None:
        try:
            seen = bytes(peek(2)[:2])
        except NotImplementedError:
            pass
        else:
            if len(seen) >= 2 or seen[:1] != PROTO5[:1]:
                return seen, file
    if _seekable_memory_or_disk(file):
        return _head_by_seeking(file), file
    source = _pushback(file)
    return source.head(), source


def _data_head(data):
    """The first two bytes of a bytes-like object; b"" for anything else."""
    if type(data) is bytes or type(data) is bytearray:
        return data[:2]
    try:
        with memoryview(data) as view, view.cast("B") as flat:
            return flat[:2].tobytes()
    except (TypeError, ValueError):
        return b""


def _readers(_pickle):
    """New ``load``, ``loads`` and ``Unpickler`` for the stdlib ``pickle``, over ``_pickle``'s."""
    c_load, c_loads, c_unpickler = _pickle.load, _pickle.loads, _pickle.Unpickler

    def load(*args, **kwargs):
        if len(args) == 1:
            file = args[0]
        elif not args and "file" in kwargs:
            file = kwargs.pop("file")
        else:
            return c_load(*args, **kwargs)
        if not (hasattr(file, "read") and hasattr(file, "readline")):
            return c_load(file, **kwargs)
        head, source = _file_head(file)
        if head == PROTO5:
            rs = _pickle5_rs()
            if rs is not None:
                return rs.load(source, **kwargs)
        return c_load(source, **kwargs)

    def loads(*args, **kwargs):
        if len(args) == 1:
            data = args[0]
        elif not args and "data" in kwargs:
            data = kwargs.pop("data")
        else:
            return c_loads(*args, **kwargs)
        if _data_head(data) == PROTO5:
            rs = _pickle5_rs()
            if rs is not None:
                return rs.loads(data, **kwargs)
        return c_loads(data, **kwargs)

    for function, c_function in ((load, c_load), (loads, c_loads)):
        function.__doc__ = c_function.__doc__
        function.__module__ = "pickle"  # pickled by reference as pickle.load(s)
        function.__qualname__ = function.__name__
        setattr(function, READ_MARKER, True)

    return load, loads, _unpickler_class(c_unpickler)


def _unpickler_class(c_unpickler):
    c_init, c_load, c_find_class = c_unpickler.__init__, c_unpickler.load, c_unpickler.find_class
    c_memo = c_unpickler.__dict__["memo"]
    c_persistent_load = c_unpickler.__dict__["persistent_load"]
    reader_classes = []

    def reader_class(rs):
        """pickle5_rs's Unpickler, asking the stdlib unpickler that uses it for classes."""
        if not reader_classes:

            class Reader(rs.Unpickler):
                __slots__ = ("owner",)

                def find_class(self, module_name, global_name):
                    return self.owner.find_class(module_name, global_name)

            reader_classes.append(Reader)
        return reader_classes[0]

    class Unpickler(c_unpickler):
        # A subclass of _pickle.Unpickler: isinstance, subclasses' __init__/find_class/
        # persistent_load and the memo and persistent_load attributes work as before, and
        # protocols 0-4 are read by _pickle's own load(). From the first protocol-5 pickle of the
        # file on, a pickle5_rs unpickler over the same file reads, this one and all that follow
        # (whatever their protocol): it takes over this one's memo, calls its persistent_load and
        # asks its find_class for globals. (_pickle keeps what it looked ahead at with peek() from
        # one load to the next, so it cannot resume after another reader moved the file on.)
        __slots__ = ("_p5_source", "_p5_options", "_p5_reader", "_p5_loading")

        def __init__(self, file, *, fix_imports=True, encoding="ASCII", errors="strict"):
            self._p5_source = self._p5_reader = self._p5_loading = None
            if not (hasattr(file, "read") and hasattr(file, "readline")):
                source = file  # for _pickle's own error
            elif hasattr(file, "peek") or not _seekable_memory_or_disk(file):
                source = _pushback(file)
            else:
                source = file
            c_init(self, source, fix_imports=fix_imports, encoding=encoding, errors=errors)
            self._p5_source = source
            self._p5_options = {"fix_imports": fix_imports, "encoding": encoding, "errors": errors}

        def load(self):
            """Load a pickle.

            Read a pickled object representation from the open file object given in the
            constructor, and return the reconstituted object hierarchy specified therein.
            """
            source = getattr(self, "_p5_source", None)
            if source is not None:
                reader = self._p5_reader
                if reader is not None:
                    return self._p5_load(reader)
                if isinstance(source, _Pushback):
                    head = source.head()
                else:
                    head = _head_by_seeking(source)
                if head == PROTO5:
                    rs = _pickle5_rs()
                    if rs is not None:
                        return self._p5_load(self._p5_start(rs))
            return c_load(self)

        def _p5_start(self, rs):
            """pickle5_rs's unpickler over the file, with the memo so far: it reads from now on."""
            reader = reader_class(rs)(self._p5_source, **self._p5_options)
            reader.memo = c_memo.__get__(self).copy()
            self._p5_reader = reader
            return reader

        def _p5_load(self, reader):
            try:
                reader.persistent_load = c_persistent_load.__get__(self)
            except AttributeError:
                pass  # none (it cannot be removed once set, in _pickle as in pickle5_rs)
            outer = self._p5_loading
            self._p5_loading = reader
            reader.owner = self
            try:
                return reader.load()
            finally:
                self._p5_loading = outer
                if outer is None:
                    reader.owner = None

        def find_class(self, module_name, global_name):
            """Return an object from a specified module.

            If necessary, the module will be imported. Subclasses may override this method (e.g.
            to restrict unpickling of arbitrary classes and functions).

            This method is called whenever a class or a function object is needed. Both arguments
            passed are str objects.
            """
            reader = getattr(self, "_p5_loading", None)
            if reader is not None:
                # Asked during a protocol-5 load: pickle5_rs resolves it, at protocol 5.
                return _pickle5_rs().Unpickler.find_class(reader, module_name, global_name)
            return c_find_class(self, module_name, global_name)

        @property
        def memo(self):
            reader = getattr(self, "_p5_reader", None)
            if reader is not None:
                return reader.memo
            return c_memo.__get__(self)

        @memo.setter
        def memo(self, value):
            reader = getattr(self, "_p5_reader", None)
            try:
                if reader is not None:
                    reader.memo = value
                else:
                    c_memo.__set__(self, value)
            except TypeError:
                if type(value).__name__ != "UnpicklerMemoProxy":
                    raise
                if reader is not None:  # _pickle's proxy: its contents, as a dict
                    reader.memo = value.copy()
                elif getattr(self, "_p5_source", None) is not None and _pickle5_rs() is not None:
                    # pickle5_rs's proxy (another extended unpickler's memo, after protocol 5):
                    # pickle5_rs's side takes it and reads from now on. (_pickle's own setter
                    # drops a dict's contents on 3.6/3.7, so it cannot take a copy.)
                    self._p5_start(_pickle5_rs()).memo = value
                else:
                    raise

        @memo.deleter
        def memo(self):
            c_memo.__delete__(self)

    Unpickler.__doc__ = c_unpickler.__doc__
    Unpickler.__module__ = "pickle"  # pickled by reference as pickle.Unpickler
    Unpickler.__qualname__ = "Unpickler"
    setattr(Unpickler, READ_MARKER, True)
    return Unpickler


def _hook_position(meta_path):
    """Just before the path finder (which finds ``pickle``), else at the end."""
    for index, finder in enumerate(meta_path):
        if getattr(finder, "__name__", None) == "PathFinder":
            return index
    return len(meta_path)


def install(stdlib_read=True):
    """Installs the ``pickle5`` finder and, with ``stdlib_read``, the ``pickle`` hook (once each).

    Returns False on Python 3.8+, where nothing is done.
    """
    if sys.version_info >= (3, 8):
        return False
    meta_path = sys.meta_path
    if not any(getattr(finder, MARKER, False) for finder in meta_path):
        meta_path.append(Pickle5RsAlias)
    if stdlib_read:
        if not any(getattr(finder, READ_MARKER, False) for finder in meta_path):
            meta_path.insert(_hook_position(meta_path), StdlibReadHook)
        if "pickle" in sys.modules:
            patch_pickle(sys.modules["pickle"])
    return True
