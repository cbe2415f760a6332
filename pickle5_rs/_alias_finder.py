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
   with pickle5_rs's unpickler (see pickle5_rs/_stdlib_read.py); writing is left alone.

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
    :func:`extend_pickle` runs once the module has executed (``importlib.reload`` included). For any
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
    """Runs the real loader of ``pickle``, then :func:`extend_pickle`; looks like the real one."""

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
            extend_pickle(module)
        except Exception as exc:  # never break `import pickle`
            import warnings

            warnings.warn(
                "pickle5_rs could not extend pickle's readers: %r" % (exc,), RuntimeWarning, stacklevel=1
            )

    def __getattr__(self, name):
        return getattr(self.loader, name)


# The name this file's copy in site-packages loads pickle5_rs/_stdlib_read.py under.
READ_MODULE = "_pickle5_rs_stdlib_read"


def stdlib_read_module():
    """pickle5_rs's ``_stdlib_read`` module, without importing pickle5_rs; None if it is not installed."""
    if "pickle5_rs" in sys.modules:
        from pickle5_rs import _stdlib_read

        return _stdlib_read
    module = sys.modules.get(READ_MODULE)
    if module is not None:
        return module
    # The import system's own classes (importlib.machinery re-exports them, at a cost).
    bootstrap = sys.modules.get("_frozen_importlib")
    external = sys.modules.get("_frozen_importlib_external")
    if bootstrap is None or external is None:
        import importlib.machinery as bootstrap

        external = bootstrap
    ModuleSpec, PathFinder, SourceFileLoader = (
        bootstrap.ModuleSpec,
        external.PathFinder,
        external.SourceFileLoader,
    )
    package = PathFinder.find_spec("pickle5_rs")
    locations = getattr(package, "submodule_search_locations", None)
    if not locations:  # uninstalled since: stay out of the way
        return None
    path = locations[0] + "/_stdlib_read.py"
    loader = SourceFileLoader(READ_MODULE, path)
    spec = ModuleSpec(READ_MODULE, loader, origin=path)
    spec.has_location = True
    module = type(sys)(READ_MODULE)
    module.__spec__, module.__loader__, module.__file__ = spec, loader, path
    sys.modules[READ_MODULE] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[READ_MODULE]
        raise
    return module


def extend_pickle(module):
    """Lets the stdlib ``pickle`` module read protocol 5 (see pickle5_rs._stdlib_read)."""
    if sys.version_info >= (3, 8):
        return False
    read = stdlib_read_module()
    return read is not None and read.patch_pickle(module)


def stdlib_reads_protocol_5():
    """Whether ``pickle`` is imported in this process and its readers were extended."""
    module = sys.modules.get("pickle")
    return bool(getattr(getattr(module, "loads", None), READ_MARKER, False))


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
            extend_pickle(sys.modules["pickle"])
    return True
