"""The stdlib's readers ``pickle.load``, ``pickle.loads`` and ``pickle.Unpickler``, extended to read
protocol 5 with pickle5_rs on CPython 3.6/3.7 (``python -m pickle5_rs.alias install``).

The alias's start-up module (``_alias_finder``) loads this file when a program imports ``pickle``,
by its path and under the name ``_pickle5_rs_stdlib_read``, without importing the pickle5_rs
package: only the standard library is used here, and pickle5_rs is imported by the first
protocol-5 pickle that one of these readers meets.

Design: the stdlib's own C readers (_pickle) keep reading everything they read today; only a
pickle that starts with PROTO 5 goes to pickle5_rs. `loads` looks at the first two bytes of its
argument; `load` and `Unpickler.load` look at the next two bytes of the file without consuming
them (with `peek()`, a seek back on an in-memory or raw disk file, or else by reading them into a
small wrapper that hands them back first). So protocols 0-4 run the very same code as before, with
the same errors, and the file is left exactly after the pickle either way, as _pickle leaves it.
"""

import sys

# Marks the readers put into `pickle`.
READ_MARKER = "_pickle5_rs_stdlib_read"
# What a protocol-5 pickle starts with (PROTO 5).
PROTO5 = b"\x80\x05"


def patch_pickle(module):
    """Extends ``module`` (the stdlib ``pickle``) to read protocol 5; True if it now does.

    Replaces ``load``, ``loads`` and ``Unpickler`` when they are still _pickle's (not when _pickle is
    missing or blocked, nor when something else replaced them), and ``ForkingPickler.loads`` of an
    already imported ``multiprocessing.reduction``. Nothing on Python 3.8+.
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
    load, loads, unpickler = _readers(_pickle)
    module.load, module.loads, module.Unpickler = load, loads, unpickler
    # Bound from `pickle` at its import: only a late enable() finds it imported already.
    reduction = sys.modules.get("multiprocessing.reduction")
    forking_pickler = getattr(reduction, "ForkingPickler", None)
    if forking_pickler is not None and forking_pickler.__dict__.get("loads") is _pickle.loads:
        forking_pickler.loads = loads
    return True


_rs_module = []  # type: list  # [pickle5_rs] once imported


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
