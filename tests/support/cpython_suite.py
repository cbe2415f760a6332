"""Loads CPython's own pickle test suite and the implementation it is run against.

Used by ``tests/test_cpython_suite.py``; kept apart so that pytest never collects the
suite's abstract ``TestCase`` classes (3.8's are ``TestCase`` subclasses, and
pytest collects every ``TestCase`` subclass it finds in a test module).

Two things are provided:

``SUITE``
    The pickle test suite of the running interpreter: its ``test.pickletester``
    (the abstract test classes) and its ``test.test_pickle`` (the concrete
    ``Py*`` classes, whose C variants the test module mirrors), plus the module
    the suite knows as ``pickle``. On 3.6/3.7 the interpreter's own suite has no
    protocol 5, so 3.8's files are loaded instead (see ``_load_38_suite``).

``TARGET``
    The C-pickler-like API under test: ``pickle5_rs`` by default, or with
    ``PICKLE5_RS_SUITE_TARGET=reference`` the reference C implementation
    (``_pickle`` on 3.8+, the ``pickle5`` backport's ``pickle5._pickle`` on
    3.6/3.7), to validate the harness itself.

Environment variables:

``PICKLE5_RS_SUITE_TARGET``      ``pickle5_rs`` (default) or ``reference``.
``PICKLE5_RS_PICKLETESTER_38``   on 3.6/3.7, directory holding 3.8's
                                 ``pickletester.py`` and ``test_pickle.py``
                                 (default: found through pyenv).
``PICKLE5_RS_SUITE_MEMLIMIT``    like regrtest's ``-M`` (e.g. ``8G``): enables the
                                 big-memory tests, which are skipped by default.
"""

import contextlib
import glob
import importlib.util
import os
import subprocess
import sys
import types
import warnings

TARGET_ENV = "PICKLE5_RS_SUITE_TARGET"
PICKLETESTER_38_ENV = "PICKLE5_RS_PICKLETESTER_38"
MEMLIMIT_ENV = "PICKLE5_RS_SUITE_MEMLIMIT"

_MISSING = object()


# --------------------------------------------------------------------------
# The implementation under test


class _MissingClass:
    """Stands in for a class the target lacks, so that tests needing it fail
    (with a clear message) instead of the whole module failing to import."""

    _qualified = "?"

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("%s is missing from the module under test" % self._qualified)


def _missing_class(qualified):
    return type(qualified.rpartition(".")[2], (_MissingClass,), {"_qualified": qualified})


def _missing_function(qualified):
    def missing(*args, **kwargs):
        raise NotImplementedError("%s is missing from the module under test" % qualified)

    missing.__name__ = qualified.rpartition(".")[2]
    return missing


class Target:
    """The names the suite needs from a C-pickler-like module."""

    CLASSES = ("Pickler", "Unpickler")
    FUNCTIONS = ("dump", "dumps", "load", "loads")
    EXCEPTIONS = ("PickleError", "PicklingError", "UnpicklingError")

    def __init__(self, kind, module, label):
        self.kind = kind
        self.module = module
        self.label = label
        # Presence of Pickler is what makes the dump-side tests run.
        self.has_pickler = hasattr(module, "Pickler")
        for name in self.CLASSES:
            setattr(self, name, getattr(module, name, None) or _missing_class(label + "." + name))
        for name in self.FUNCTIONS:
            setattr(self, name, getattr(module, name, None) or _missing_function(label + "." + name))
        for name in self.EXCEPTIONS:
            setattr(self, name, getattr(module, name))
        self.PickleBuffer = getattr(module, "PickleBuffer", None)


def _load_target():
    kind = os.environ.get(TARGET_ENV, "pickle5_rs").strip() or "pickle5_rs"
    if kind == "pickle5_rs":
        import pickle5_rs

        return Target(kind, pickle5_rs, "pickle5_rs")
    if kind == "reference":
        if sys.version_info >= (3, 8):
            import _pickle

            return Target(kind, _pickle, "_pickle")
        import pickle5._pickle

        return Target(kind, pickle5._pickle, "pickle5._pickle")
    raise RuntimeError("%s must be 'pickle5_rs' or 'reference', not %r" % (TARGET_ENV, kind))


# --------------------------------------------------------------------------
# The suite


class Suite:
    def __init__(self, pickletester, test_pickle, pickle_module, origin):
        self.pickletester = pickletester
        self.test_pickle = test_pickle
        # What the suite's code means by ``pickle``: the stdlib module on 3.8+,
        # the pickle5-based stand-in on 3.6/3.7.
        self.pickle = pickle_module
        self.origin = origin


def _load_running_suite():
    import pickle

    import test.pickletester
    import test.test_pickle

    return Suite(test.pickletester, test.test_pickle, pickle, os.path.dirname(test.pickletester.__file__))


# 3.6/3.7 --------------------------------------------------------------------
#
# 3.8's pickletester.py / test_pickle.py are executed unchanged, from source on
# disk, while a few entries of sys.modules are temporarily replaced:
#   - ``pickle``: 3.8's suite needs the 3.8 module (protocol 5, PickleBuffer, the
#     pure-Python ``_Pickler``/``_Unpickler`` with buffers). The pickle5 backport
#     provides exactly that as ``pickle5.pickle``; a private copy of it is used
#     (see ``_suite_pickle_module``).
#   - ``pickletools``: 3.6's does not know the protocol 5 opcodes; pickle5's does.
#   - ``test.support``: 3.6/3.7's lacks ``save_restore_warnings_filters`` and
#     ``skip_if_pgo_task``, which 3.8's suite imports.
#   - ``test.pickletester``: so that 3.8's test_pickle.py imports 3.8's tester.
# Everything the suite resolves at run time goes through module globals bound
# during that import, so the replacements need not outlive it. The loaded
# modules stay in sys.modules under names of their own: classes defined in them
# are pickled by reference, so they must be importable by their __module__.

_PICKLETESTER_38_NAME = "_cpython38_pickletester"
_TEST_PICKLE_38_NAME = "_cpython38_test_pickle"
_SUITE_PICKLE_NAME = "pickle5._cpython38_suite_pickle"


def _find_38_test_dir():
    explicit = os.environ.get(PICKLETESTER_38_ENV)
    candidates = [explicit] if explicit else []
    if not explicit:
        try:
            prefix = subprocess.run(
                ["pyenv", "prefix", "3.8"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            prefix = ""
        if prefix:
            candidates.append(os.path.join(prefix, "lib", "python3.8", "test"))
        roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
        for root in filter(None, roots):
            pattern = os.path.join(root, "versions", "3.8*", "lib", "python3.8", "test")
            candidates.extend(sorted(glob.glob(pattern), reverse=True))
    for directory in candidates:
        if all(os.path.isfile(os.path.join(directory, f)) for f in ("pickletester.py", "test_pickle.py")):
            return directory
    raise RuntimeError(
        "On Python %d.%d the CPython pickle suite is taken from Python 3.8: set %s to the "
        "directory holding 3.8's test/pickletester.py and test/test_pickle.py (looked in: %s)"
        % (sys.version_info[0], sys.version_info[1], PICKLETESTER_38_ENV, candidates or "nothing")
    )


def _load_module_from_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # No bytecode cache written into another interpreter's (or package's) tree.
    dont_write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.dont_write_bytecode = dont_write_bytecode
    return module


@contextlib.contextmanager
def _modules_replaced(replacements):
    """Temporarily maps module names to other module objects, in sys.modules and
    as attributes of their parent packages (``from test import support`` reads
    the attribute, not sys.modules)."""
    saved = []
    for name, module in replacements.items():
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name) if parent_name else None
        saved.append(
            (
                name,
                sys.modules.get(name, _MISSING),
                parent,
                child,
                parent.__dict__.get(child, _MISSING) if parent is not None else _MISSING,
            )
        )
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, child, module)
    try:
        yield
    finally:
        for name, old_module, parent, child, old_attr in reversed(saved):
            if old_module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old_module
            if parent is not None:
                if old_attr is _MISSING:
                    parent.__dict__.pop(child, None)
                else:
                    setattr(parent, child, old_attr)


class _SupportShim(types.ModuleType):
    """``test.support`` of the running interpreter plus the few names 3.8's
    pickle suite imports that 3.6/3.7 lack."""

    def __init__(self, real):
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_real"] = real
        if not hasattr(real, "save_restore_warnings_filters"):
            self.save_restore_warnings_filters = _save_restore_warnings_filters
        if not hasattr(real, "skip_if_pgo_task"):
            # Not a PGO build run: nothing to skip.
            self.skip_if_pgo_task = lambda test: test

    def __getattr__(self, name):
        return getattr(self.__dict__["_real"], name)


@contextlib.contextmanager
def _save_restore_warnings_filters():
    saved = warnings.filters[:]
    try:
        yield
    finally:
        warnings.filters[:] = saved


def _suite_pickle_module(target):
    """A private copy of pickle5's pure-Python ``pickle5.pickle``, standing in
    for 3.8's stdlib ``pickle``.

    In 3.8 the pure-Python and the C implementations share one set of exception
    classes and one PickleBuffer type. pickle5_rs, like the stdlib, raises the
    stdlib's exceptions, while pickle5 has its own; so that tests mixing the
    pure-Python side with the target (e.g. DumpPickle_CLoadPickle) see one set
    again, the copy's exception names and PickleBuffer are rebound to the
    target's, and its ``_Pickler`` learns to save the target's PickleBuffer.
    pickle5's installed module itself is left untouched.
    """
    import pickle5.pickle

    suite_pickle = _load_module_from_file(_SUITE_PICKLE_NAME, pickle5.pickle.__file__)
    for name in Target.EXCEPTIONS:
        setattr(suite_pickle, name, getattr(target, name))
    own_buffer = suite_pickle.PickleBuffer
    if target.PickleBuffer is not None and target.PickleBuffer is not own_buffer:
        suite_pickle.PickleBuffer = target.PickleBuffer
        dispatch = suite_pickle._Pickler.dispatch
        dispatch[target.PickleBuffer] = dispatch[own_buffer]
    return suite_pickle


def _preimport_suite_dependencies():
    # Imported before sys.modules is patched, so that none of them binds the
    # stand-in ``pickle`` for good.
    for name in (
        "collections",
        "copyreg",
        "dbm",
        "io",
        "functools",
        "os",
        "math",
        "shutil",
        "struct",
        "threading",
        "unittest",
        "weakref",
        "textwrap",
        "http.cookies",
        "_compat_pickle",
        "_pickle",
        "builtins",
    ):
        importlib.import_module(name)
    for optional in ("_testbuffer", "numpy"):
        try:
            with _save_restore_warnings_filters():
                importlib.import_module(optional)
        except ImportError:
            pass


def _load_38_suite(target):
    import pickle5.pickletools
    import test.support

    directory = _find_38_test_dir()
    suite_pickle = _suite_pickle_module(target)
    support = _SupportShim(test.support)
    _preimport_suite_dependencies()
    replaced = {"pickle": suite_pickle, "pickletools": pickle5.pickletools, "test.support": support}
    with _modules_replaced(replaced):
        pickletester = _load_module_from_file(
            _PICKLETESTER_38_NAME, os.path.join(directory, "pickletester.py")
        )
    replaced["test.pickletester"] = pickletester
    with _modules_replaced(replaced):
        test_pickle = _load_module_from_file(_TEST_PICKLE_38_NAME, os.path.join(directory, "test_pickle.py"))
    return Suite(pickletester, test_pickle, suite_pickle, directory)


def _apply_memlimit():
    limit = os.environ.get(MEMLIMIT_ENV)
    if limit:
        import test.support

        test.support.set_memlimit(limit)


TARGET = _load_target()
SUITE = _load_running_suite() if sys.version_info >= (3, 8) else _load_38_suite(TARGET)
_apply_memlimit()
