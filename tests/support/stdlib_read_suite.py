"""The interpreter's own pickle tests against the stdlib readers the alias extends (3.6/3.7).

Run as a script in a child process (tests/test_alias.py does): it turns the alias's stdlib reading
on, imports ``pickle`` (whose ``load``, ``loads`` and ``Unpickler`` are then the extended ones) and
runs the reading-side test classes of this interpreter's ``test.test_pickle`` (built on
``test.pickletester``) with ``_pickle``'s readers swapped for those of ``pickle``: through the
class (over an in-memory file, a buffered one with ``peek()``, and one with only ``read()`` and
``readline()``), through ``loads`` and through ``load``. The same classes also run unchanged, on
``_pickle``, for comparison. Prints one line per class and a summary; exits 1 on any failure.

``python stdlib_read_suite.py -v`` (or with unittest arguments, such as a test name) for details.
"""

import io
import sys
import unittest

from pickle5_rs import _alias_finder  # imports pickle too: it is extended at once

assert _alias_finder.install(stdlib_read=True)

import _pickle  # noqa: E402
import pickle  # noqa: E402

assert _alias_finder.stdlib_reads_protocol_5(), "pickle's readers were not extended"
assert pickle.Unpickler is not _pickle.Unpickler and issubclass(pickle.Unpickler, _pickle.Unpickler)
assert pickle.HIGHEST_PROTOCOL == 4 and pickle.Pickler is _pickle.Pickler

from test import test_pickle as tp  # noqa: E402
from test.pickletester import AbstractPickleModuleTests  # noqa: E402


class OnlyReadAndReadline:
    """A file object with nothing but read() and readline(): no peek, no seek."""

    def __init__(self, data):
        self._file = io.BytesIO(data)

    def read(self, n=-1):
        return self._file.read(n)

    def readline(self):
        return self._file.readline()


FILES = {
    "BytesIO": io.BytesIO,
    "Buffered": lambda data: io.BufferedReader(io.BytesIO(data), buffer_size=64),
    "ReadOnly": OnlyReadAndReadline,
}


def with_file(file_factory):
    """A loads() for the test classes that reads through pickle.Unpickler over the given file."""

    def loads(self, buf, **kwds):
        return self.unpickler(file_factory(buf), **kwds).load()

    return loads


def with_load(file_factory):
    def loads(self, buf, **kwds):
        return pickle.load(file_factory(buf), **kwds)

    return loads


class ModuleTests(AbstractPickleModuleTests):
    # As CPickleTests, with the readers of the extended pickle module.
    from _pickle import Pickler, dump, dumps

    load = staticmethod(pickle.load)
    loads = staticmethod(pickle.loads)
    Unpickler = pickle.Unpickler


EXTENDED = {
    "ModuleTests": ModuleTests,
    # pickle.loads and pickle.dumps, both from the pickle module (only loads is extended).
    "InMemoryPickleTests": type("InMemoryPickleTests", (tp.InMemoryPickleTests,), {}),
}
# pickle.Unpickler over each kind of file, in the classes that test _pickle.Unpickler.
for file_name, factory in FILES.items():
    for base, attribute in (
        (tp.CUnpicklerTests, "unpickler"),
        (tp.CPicklerTests, "unpickler"),
        (tp.DumpPickle_CLoadPickle, "unpickler"),
        (tp.CPersPicklerTests, "unpickler"),
        (tp.CIdPersPicklerTests, "unpickler"),
    ):
        name = "%s_%s" % (base.__name__.replace("C", "Extended", 1), file_name)
        namespace = {attribute: pickle.Unpickler, "__module__": __name__}
        if file_name != "BytesIO":
            if base in (tp.CPersPicklerTests, tp.CIdPersPicklerTests):
                continue  # their loads() makes its own BytesIO
            namespace["loads"] = with_file(factory)
        EXTENDED[name] = type(name, (base,), namespace)
    # pickle.load over each kind of file.
    name = "ExtendedLoadTests_%s" % file_name
    EXTENDED[name] = type(name, (tp.CUnpicklerTests,), {"loads": with_load(factory)})
EXTENDED["ExtendedLoadsTests"] = type(
    "ExtendedLoadsTests", (tp.CUnpicklerTests,), {"loads": lambda self, buf, **kw: pickle.loads(buf, **kw)}
)
EXTENDED["ExtendedPicklerUnpicklerObjectTests"] = type(
    "ExtendedPicklerUnpicklerObjectTests",
    (tp.CPicklerUnpicklerObjectTests,),
    {"unpickler_class": pickle.Unpickler},
)


def test_proto(self):
    """pickletester's test_proto, whose "future protocol" is HIGHEST_PROTOCOL + 1 (5): protocol 5
    is what the extended readers read now, so the unsupported protocol is 6 here."""
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        pickled = self.dumps(None, proto)
        if proto >= 2:
            self.assertTrue(pickled.startswith(pickle.PROTO + bytes([proto])))
        else:
            self.assertNotIn(pickle.PROTO, pickled)
    self.assertIsNone(self.loads(pickle.PROTO + bytes([5]) + pickle.NONE + pickle.STOP))
    with self.assertRaisesRegex(ValueError, "unsupported pickle protocol: 6"):
        self.loads(pickle.PROTO + bytes([6]) + pickle.NONE + pickle.STOP)


# The one intended difference.
for cls in EXTENDED.values():
    if hasattr(cls, "test_proto"):
        cls.test_proto = test_proto

# The same tests on _pickle's own readers, for comparison.
UNCHANGED = {
    name: getattr(tp, name)
    for name in (
        "CPickleTests",
        "CUnpicklerTests",
        "CPicklerTests",
        "DumpPickle_CLoadPickle",
        "CPersPicklerTests",
        "CIdPersPicklerTests",
        "CPicklerUnpicklerObjectTests",
    )
}


def run(classes, verbosity, names):
    loader = unittest.TestLoader()
    totals = {"run": 0, "failed": 0, "skipped": 0}
    for name, cls in sorted(classes.items()):
        suite = loader.loadTestsFromTestCase(cls)
        if names:
            suite = unittest.TestSuite(test for test in suite if any(n in test.id() for n in names))
        stream = io.StringIO()
        result = unittest.TextTestRunner(stream=stream, verbosity=verbosity).run(suite)
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        print("%-48s %4d run, %3d failed, %3d skipped" % (name, result.testsRun, failed, len(result.skipped)))
        if failed or verbosity > 1:
            print(stream.getvalue())
        totals["run"] += result.testsRun
        totals["failed"] += failed
        totals["skipped"] += len(result.skipped)
    return totals


def main(argv):
    verbosity = 2 if "-v" in argv else 1
    names = [arg for arg in argv if not arg.startswith("-")]
    print("Python %s: test.test_pickle's reading tests" % sys.version.split()[0])
    unchanged = run(UNCHANGED, verbosity, names)
    extended = run(EXTENDED, verbosity, names)
    print("unchanged _pickle readers: %(run)d run, %(failed)d failed, %(skipped)d skipped" % unchanged)
    print("extended pickle readers:   %(run)d run, %(failed)d failed, %(skipped)d skipped" % extended)
    return 1 if unchanged["failed"] or extended["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
