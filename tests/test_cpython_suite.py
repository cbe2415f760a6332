"""CPython's own pickle test suite, run against pickle5_rs.

CPython's ``Lib/test/test_pickle.py`` tests its C module ``_pickle`` by
subclassing the pure-Python test classes (``PyUnpicklerTests``, ...) and
swapping in ``_pickle.Pickler``/``_pickle.Unpickler`` plus the C error
expectations. This module does the same with pickle5_rs, starting from the
running interpreter's ``test.test_pickle`` classes, so each interpreter runs
its own version of the suite. On 3.6/3.7 the interpreter's suite predates
protocol 5, so 3.8's suite is loaded instead, seeing the ``pickle5`` backport
where it expects 3.8's stdlib ``pickle`` (see ``support/cpython_suite.py`` for why
and how; the files on disk are not modified).

Groups (select with ``-k``):

``TestLoadSide_*``
    Need only the target's Unpickler / load / loads; whatever is pickled comes
    from the pure-Python pickler of the suite's ``pickle``. Never skipped.
``TestDumpSide_*``
    Need the target's Pickler (and usually its Unpickler too). Skipped, with a
    reason, while ``pickle5_rs`` has no ``Pickler``; they run as soon as it does.

The classes named after test_pickle's C variants mirror them one to one
(same base classes, same error expectations). Extras, so that the load side
gets the whole suite before the Pickler exists: ``TestLoadSide_CLoadsTests``
(the unpickling tests through ``loads()``) and ``TestLoadSide_PyDump_*``
(dump-side classes with the pure-Python pickler and the target's unpickler,
in the spirit of test_pickle's ``DumpPickle_CLoadPickle``).

Not mirrored: ``SizeofTests`` (sizes of ``_pickle``'s C structs) and
``CompatPickleTests`` (tests ``_compat_pickle``'s tables, not a pickler).

Big-memory tests (``bigmemtest``) are skipped, as in a default CPython run;
``PICKLE5_RS_SUITE_MEMLIMIT=8G`` acts like regrtest's ``-M 8G``.

Run (from the repository root, pickle5_rs importable, pytest installed):
    python -m pytest tests/test_cpython_suite.py -k LoadSide
    PICKLE5_RS_SUITE_TARGET=reference python -m pytest tests/test_cpython_suite.py
On 3.6/3.7 the ``pickle5`` package must be installed as well.
"""

import io
import os
import sys
import unittest

import pytest

import cpython_suite as _suite

TARGET = _suite.TARGET
_pt = _suite.SUITE.pickletester
_tp = _suite.SUITE.test_pickle
_pickle = _suite.SUITE.pickle

_NO_PICKLER = "%s has no attribute 'Pickler': the dump-side tests need one" % TARGET.label
_dump_side = unittest.skipUnless(TARGET.has_pickler, _NO_PICKLER)


@pytest.fixture(scope="module", autouse=True)
def _run_in_tmp_dir(tmp_path_factory):
    # The suite writes files (TESTFN) and importable modules into the current
    # directory. One directory for the whole module, as in a regrtest run: the
    # import system caches finders for the relative sys.path entries it adds.
    previous = os.getcwd()
    os.chdir(str(tmp_path_factory.mktemp("cpython_suite")))
    try:
        yield
    finally:
        os.chdir(previous)


def _unpickle_tests_base():
    """AbstractUnpickleTests as a TestCase (it is one in 3.8, a mixin later)."""
    base = _pt.AbstractUnpickleTests
    return (base,) if issubclass(base, unittest.TestCase) else (base, unittest.TestCase)


def _disabled_in_memory_tests():
    """The tests test_pickle's InMemoryPickleTests disables (they need a class)."""
    return {
        name: None
        for name, value in vars(_tp.InMemoryPickleTests).items()
        if name.startswith("test") and value is None
    }


def _issue18339_test():
    c_class = getattr(_tp, "CPicklerUnpicklerObjectTests", None)
    return getattr(c_class, "test_issue18339", None)


def _with_persistent_load_error(cls):
    # 3.13+: the error the Unpickler's own persistent_load raises.
    if hasattr(_tp.PyIdPersPicklerTests, "persistent_load_error"):
        cls.persistent_load_error = TARGET.UnpicklingError
    return cls


# --------------------------------------------------------------------------
# Load side


class TestLoadSide_CUnpicklerTests(_tp.PyUnpicklerTests):
    unpickler = TARGET.Unpickler
    bad_stack_errors = (TARGET.UnpicklingError,)
    truncated_errors = (TARGET.UnpicklingError,)


class TestLoadSide_DumpPickle_CLoadPickle(_tp.PyPicklerTests):
    # pickler: the suite's pure-Python pickle._Pickler
    unpickler = TARGET.Unpickler


class TestLoadSide_CLoadsTests(*_unpickle_tests_base()):
    """AbstractUnpickleTests through the module-level loads(), with the C
    unpickler's error expectations (test_pickle covers loads() only inside
    InMemoryPickleTests, which also needs dumps())."""

    bad_stack_errors = (TARGET.UnpicklingError,)
    truncated_errors = (TARGET.UnpicklingError,)

    def loads(self, buf, **kwds):
        return TARGET.loads(buf, **kwds)


for _name, _value in _disabled_in_memory_tests().items():
    setattr(TestLoadSide_CLoadsTests, _name, _value)


class TestLoadSide_PyDump_CLoadModuleTests(_tp.PyPickleTests):
    # dump, dumps, Pickler: the suite's pure-Python ones
    load = staticmethod(TARGET.load)
    loads = staticmethod(TARGET.loads)
    Unpickler = TARGET.Unpickler


class TestLoadSide_PyDump_CPersLoadTests(_tp.PyPersPicklerTests):
    unpickler = TARGET.Unpickler


@_with_persistent_load_error
class TestLoadSide_PyDump_CIdPersLoadTests(_tp.PyIdPersPicklerTests):
    unpickler = TARGET.Unpickler


class TestLoadSide_PyDump_CUnpicklerObjectTests(_tp.PyPicklerUnpicklerObjectTests):
    unpickler_class = TARGET.Unpickler
    test_issue18339 = _issue18339_test()


# --------------------------------------------------------------------------
# Dump side


@_dump_side
class TestDumpSide_CPickleTests(_tp.PyPickleTests):
    dump = staticmethod(TARGET.dump)
    dumps = staticmethod(TARGET.dumps)
    load = staticmethod(TARGET.load)
    loads = staticmethod(TARGET.loads)
    Pickler = TARGET.Pickler
    Unpickler = TARGET.Unpickler


@_dump_side
class TestDumpSide_CPicklerTests(_tp.PyPicklerTests):
    pickler = TARGET.Pickler
    unpickler = TARGET.Unpickler


@_dump_side
class TestDumpSide_CPersPicklerTests(_tp.PyPersPicklerTests):
    pickler = TARGET.Pickler
    unpickler = TARGET.Unpickler


@_dump_side
@_with_persistent_load_error
class TestDumpSide_CIdPersPicklerTests(_tp.PyIdPersPicklerTests):
    pickler = TARGET.Pickler
    unpickler = TARGET.Unpickler


@_dump_side
class TestDumpSide_CDumpPickle_LoadPickle(_tp.PyPicklerTests):
    pickler = TARGET.Pickler
    # unpickler: the suite's pure-Python pickle._Unpickler


@_dump_side
class TestDumpSide_CPicklerUnpicklerObjectTests(_tp.PyPicklerUnpicklerObjectTests):
    pickler_class = TARGET.Pickler
    unpickler_class = TARGET.Unpickler
    test_issue18339 = _issue18339_test()


@_dump_side
class TestDumpSide_CDispatchTableTests(_tp.PyDispatchTableTests):
    pickler_class = TARGET.Pickler


@_dump_side
class TestDumpSide_CChainDispatchTableTests(_tp.PyChainDispatchTableTests):
    pickler_class = TARGET.Pickler


@_dump_side
class TestDumpSide_CPicklerHookTests(_tp.PyPicklerHookTests):
    class CustomCPicklerClass(TARGET.Pickler, _pt.AbstractCustomPicklerClass):
        pass

    pickler_class = CustomCPicklerClass


@_dump_side
class TestDumpSide_InMemoryPickleTests(_tp.InMemoryPickleTests):
    # Error tuples as test_pickle sets them for this class.

    def dumps(self, arg, protocol=None, **kwargs):
        return TARGET.dumps(arg, protocol, **kwargs)

    def loads(self, buf, **kwds):
        return TARGET.loads(buf, **kwds)


if hasattr(_tp, "PyPicklingErrorTests"):  # 3.13+

    @_dump_side
    class TestDumpSide_CPicklingErrorTests(_tp.PyPicklingErrorTests):
        pickler = TARGET.Pickler


if hasattr(_tp, "HeapTypesTests"):  # 3.12+

    @_dump_side
    class TestDumpSide_HeapTypesTests(_tp.HeapTypesTests):
        def setUp(self):
            pickler = TARGET.Pickler(io.BytesIO())
            unpickler = TARGET.Unpickler(io.BytesIO())
            self._types = (TARGET.Pickler, TARGET.Unpickler, type(pickler.memo), type(unpickler.memo))

        if TARGET.kind != "reference":

            @unittest.skip(
                "checks that _pickle's heap types carry Py_TPFLAGS_IMMUTABLETYPE (bpo-43916), a C-level "
                "type flag the stable ABI cannot set on PyO3 0.15 classes; not pickling behaviour"
            )
            def test_immutable(self):
                pass


# --------------------------------------------------------------------------
# Known failures of the reference itself (pickle5 0.0.12 on 3.6/3.7), marked
# only when the reference is the target: pickle5_rs must pass them.

_PICKLE5_NEWOBJ_EX = (
    "pickle5 0.0.12's C unpickler raises SystemError (bad argument to internal "
    "function) for NEWOBJ_EX whose args is not a tuple or whose kwargs is not a dict; "
    "3.8.18's suite expects UnpicklingError"
)
_REFERENCE_KNOWN_FAILURES = {
    (3, 6): {
        ("TestLoadSide_CUnpicklerTests", "test_bad_newobj_ex"): (_PICKLE5_NEWOBJ_EX, SystemError),
        ("TestLoadSide_CLoadsTests", "test_bad_newobj_ex"): (_PICKLE5_NEWOBJ_EX, SystemError),
        ("TestDumpSide_InMemoryPickleTests", "test_bad_newobj_ex"): (_PICKLE5_NEWOBJ_EX, SystemError),
    },
}
_REFERENCE_KNOWN_FAILURES[(3, 7)] = _REFERENCE_KNOWN_FAILURES[(3, 6)]


def _mark_known_failure(cls, name, reason, raises):
    inherited = getattr(cls, name)

    # A wrapper of its own: marking the inherited function would mark it in
    # every class that shares it.
    def known_failure(self):
        return inherited(self)

    known_failure.__name__ = name
    known_failure.__qualname__ = cls.__qualname__ + "." + name
    known_failure.__doc__ = inherited.__doc__
    setattr(cls, name, pytest.mark.xfail(reason=reason, raises=raises, strict=True)(known_failure))


if TARGET.kind == "reference":
    for (_class_name, _name), (_reason, _raises) in _REFERENCE_KNOWN_FAILURES.get(
        sys.version_info[:2], {}
    ).items():
        _mark_known_failure(globals()[_class_name], _name, _reason, _raises)


# --------------------------------------------------------------------------
# The harness itself


def test_harness_setup():
    assert TARGET.kind == (os.environ.get(_suite.TARGET_ENV, "").strip() or "pickle5_rs")
    assert _pickle.HIGHEST_PROTOCOL >= 5
    assert os.path.dirname(os.path.abspath(_pt.__file__)) == os.path.abspath(_suite.SUITE.origin)
    if sys.version_info < (3, 8):
        # 3.8's suite, seeing one set of exception classes on the pure-Python
        # side and in the target, as in 3.8 itself.
        assert hasattr(_pt, "AbstractHookTests")
        assert _pickle.UnpicklingError is TARGET.UnpicklingError
        assert _pickle._Unpickler.load.__globals__["UnpicklingError"] is TARGET.UnpicklingError
        assert _pickle._Pickler.dump.__globals__["PicklingError"] is TARGET.PicklingError
        assert "pickle" not in sys.modules or sys.modules["pickle"].HIGHEST_PROTOCOL < 5
