"""``python -m pickle5_rs.alias``: pickle5_rs serving as ``pickle5`` on 3.6/3.7.

Each case runs a child interpreter with ``-S`` (no site-packages, so no pickle5 backport and no alias
of this environment) on a sys.path of scratch directories: one with pickle5_rs alone (a symlink to
the installed package), one the alias was installed into (``--site-dir``, added with
``site.addsitedir`` the way Python adds site-packages at start-up), and optionally a stand-in for a
real pickle5. tests/integration/ checks a real installation with cloudpickle, numpy, distributed
and joblib.

The stdlib readers that the alias extends (pickle.load, pickle.loads, pickle.Unpickler) are tested
here too: in children for what a process sees, in this process on readers made with
``_stdlib_read._readers`` (the global ``pickle`` module is not touched), and against the
interpreter's own test.test_pickle (tests/support/stdlib_read_suite.py, in a child).
"""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pickle5_rs
from pickle5_rs import _alias_finder, _stdlib_read, alias

OLD_PYTHON = sys.version_info < (3, 8)
needs_old_python = pytest.mark.skipif(not OLD_PYTHON, reason="the alias only acts on Python 3.6/3.7")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pickle5_rs.alias", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        check=True,
    ).stdout


def listing(directory):
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.fixture
def dirs(tmp_path):
    """Scratch directories: `alias` (site dir for the alias), `only` (pickle5_rs alone), `real`."""
    made = {name: tmp_path / name for name in ("alias", "only", "real")}
    for path in made.values():
        path.mkdir()
    (made["only"] / "pickle5_rs").symlink_to(Path(pickle5_rs.__file__).resolve().parent)
    return made


def child_prelude(dirs, real=False):
    path = [str(dirs["only"])] + ([str(dirs["real"])] if real else [])
    return "import site, sys\nsys.path[:0] = %r\nsite.addsitedir(%r)\n" % (path, str(dirs["alias"]))


def child(dirs, code, real=False, write_bytecode=False):
    """Runs `code` in `python -S` whose sys.path has pickle5_rs alone and the alias site dir."""
    return run_python(child_prelude(dirs, real) + textwrap.dedent(code), write_bytecode)


def run_python(code, write_bytecode=False):
    """Runs `code` in `python -S` (no site-packages), without PYTHONPATH; returns its stdout."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.skipif(OLD_PYTHON, reason="3.8+ only")
def test_nothing_to_do_on_38_plus(tmp_path):
    import pickle

    assert _alias_finder.install() is False
    assert alias.enable() is False
    assert not any(getattr(finder, _alias_finder.MARKER, False) for finder in sys.meta_path)
    assert not any(getattr(finder, _alias_finder.READ_MARKER, False) for finder in sys.meta_path)
    assert _alias_finder.extend_pickle(pickle) is False and _stdlib_read.patch_pickle(pickle) is False
    assert not _alias_finder.stdlib_reads_protocol_5()
    assert "no alias is needed" in run_cli("install", "--site-dir", str(tmp_path))
    assert listing(tmp_path) == []


@needs_old_python
def test_install_writes_two_files_and_remove_restores(dirs):
    site_dir = dirs["alias"]
    (site_dir / "unrelated.txt").write_text("x")
    before = listing(site_dir)
    out = run_cli("install", "--site-dir", str(site_dir))
    assert "installed" in out
    assert listing(site_dir) == sorted(before + ["_pickle5_rs_alias.py", "pickle5_rs-alias.pth"])
    assert (site_dir / "_pickle5_rs_alias.py").read_text() == Path(_alias_finder.__file__).read_text()
    # Start-up compiles the finder module; remove deletes its bytecode as well.
    child(dirs, "import pickle5", write_bytecode=True)
    assert any(name.startswith("__pycache__/_pickle5_rs_alias.") for name in listing(site_dir))
    run_cli("install", "--site-dir", str(site_dir))  # again: idempotent
    run_cli("remove", "--site-dir", str(site_dir))
    assert listing(site_dir) == before
    assert "nothing to remove" in run_cli("remove", "--site-dir", str(site_dir))


@needs_old_python
def test_start_up_installs_only_the_finder(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        print(sorted(name for name in sys.modules if "pickle5" in name))
        print(getattr(sys.meta_path[-1], "_pickle5_rs_alias", False))
        """,
    )
    assert out.split("\n")[:2] == ["['_pickle5_rs_alias']", "True"]


@needs_old_python
def test_start_up_imports_neither_pickle_nor_pickle5_rs(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        names = [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path]
        print(names[names.index("StdlibReadHook") + 1], names[-1])
        print([name for name in ("pickle", "_pickle", "pickle5_rs", "importlib.util") if name in sys.modules])
        """,
    )
    assert out == "PathFinder Pickle5RsAlias\n[]\n"


@needs_old_python
def test_import_pickle5_gives_pickle5_rs(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        import pickle5, pickle5_rs
        from pickle5 import pickle as submodule, PickleBuffer
        import pickle5._pickle as accelerator
        assert "pickle5_rs._core" in sys.modules
        for module in (pickle5, submodule, accelerator):
            assert module.Pickler is pickle5_rs.Pickler and module.loads is pickle5_rs.loads
            assert module.PickleBuffer is pickle5_rs.PickleBuffer is pickle5_rs._core.PickleBuffer
            assert module.HIGHEST_PROTOCOL == 5 and module.DEFAULT_PROTOCOL == 4
            assert set(module.__all__) == set(pickle5_rs.__all__)
        assert pickle5.pickle is submodule and pickle5._pickle is accelerator
        import copyreg
        assert pickle5.dispatch_table is copyreg.dispatch_table
        assert pickle5.bytes_types == (bytes, bytearray)
        buffers = []
        data = pickle5.dumps(PickleBuffer(bytearray(b"abc")), protocol=5, buffer_callback=buffers.append)
        assert bytes(pickle5.loads(data, buffers=buffers)) == b"abc"
        print(pickle5)
        """,
    )
    assert out == "<module 'pickle5' (pickle5_rs)>\n"


@needs_old_python
def test_real_pickle5_wins(dirs):
    real = dirs["real"] / "pickle5"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        import pickle5
        print(pickle5.REAL, "pickle5_rs" in sys.modules)
        try:
            import pickle5.pickle
        except ImportError:
            print("no pickle5.pickle below the real pickle5")
        """,
        real=True,
    )
    assert out == "True False\nno pickle5.pickle below the real pickle5\n"


@needs_old_python
def test_stays_out_of_the_way_once_pickle5_rs_is_gone(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    (dirs["only"] / "pickle5_rs").unlink()
    out = child(
        dirs,
        """
        try:
            import pickle5
        except ImportError as exc:
            print(type(exc).__name__, exc.name)
        """,
    )
    assert out == "ModuleNotFoundError pickle5\n"


@needs_old_python
def test_status_reports_the_backport_or_the_alias(dirs):
    out = run_cli("status", "--site-dir", str(dirs["alias"]))
    assert "alias files in %s: absent" % dirs["alias"] in out
    if alias.real_pickle5() is not None:  # the tests session installs the backport as reference
        assert "import pickle5 -> the pickle5 backport" in out
    run_cli("install", "--site-dir", str(dirs["alias"]))
    assert ": present" in run_cli("status", "--site-dir", str(dirs["alias"]))


# --- The stdlib's readers: what a process of the environment sees --------------------------------

# What pickle5_rs writes at protocol 5 for [1, b"ab", bytearray(b"cd")]: stdlib pickle stops at 4.
P5_DATA = (
    b"\x80\x05\x95\x18\x00\x00\x00\x00\x00\x00\x00]\x94(K\x01C\x02ab\x94\x96\x02\x00"
    b"\x00\x00\x00\x00\x00\x00cd\x94e."
)
P5_VALUE = [1, b"ab", bytearray(b"cd")]


def test_protocol_5_sample_is_what_pickle5_rs_writes():
    assert pickle5_rs.dumps(P5_VALUE, protocol=5) == P5_DATA


READERS = """
import io, pickle, _pickle
data = %r
print(pickle.HIGHEST_PROTOCOL, pickle.Pickler is _pickle.Pickler, pickle.dumps is _pickle.dumps)
print(pickle.loads(data), pickle.load(io.BytesIO(data)), pickle.Unpickler(io.BytesIO(data)).load())
""" % (P5_DATA,)


@needs_old_python
def test_stdlib_reads_protocol_5_from_its_import_on(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        textwrap.dedent(
            """
        import pickle, io
        print("pickle5_rs" in sys.modules, "_pickle5_rs_stdlib_read" in sys.modules)
        print(pickle.Unpickler.__module__, pickle.loads.__module__)
        # Protocols 0-4 do not even import pickle5_rs.
        for proto in range(5):
            data = pickle.dumps([proto], proto)
            assert pickle.loads(data) == pickle.load(io.BytesIO(data)) == [proto]
            assert pickle.Unpickler(io.BufferedReader(io.BytesIO(data))).load() == [proto]
        print("pickle5_rs" in sys.modules)
        """
        )
        + READERS
        + 'print("pickle5_rs" in sys.modules, pickle._Unpickler.__module__, pickle._loads.__module__)\n',
    )
    assert out == (
        "False True\npickle pickle\nFalse\n4 True True\n"
        "[1, b'ab', bytearray(b'cd')] [1, b'ab', bytearray(b'cd')] [1, b'ab', bytearray(b'cd')]\n"
        "True pickle pickle\n"
    )


@needs_old_python
def test_stdlib_reads_protocol_5_when_pickle_came_first(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    # Imported before the alias's start-up code runs (here: before site.addsitedir).
    code = "import pickle, multiprocessing.reduction as r\n" + child_prelude(dirs) + READERS
    code += "print(r.ForkingPickler.loads is pickle.loads)\n"
    out = run_python(code)
    assert out.endswith(
        "[1, b'ab', bytearray(b'cd')] [1, b'ab', bytearray(b'cd')] [1, b'ab', bytearray(b'cd')]\nTrue\n"
    )


@needs_old_python
def test_no_stdlib_read_leaves_pickle_alone(dirs):
    out = run_cli("install", "--no-stdlib-read", "--site-dir", str(dirs["alias"]))
    assert "unchanged (--no-stdlib-read)" in out
    assert "install(stdlib_read=False)" in (dirs["alias"] / "pickle5_rs-alias.pth").read_text()
    out = child(
        dirs,
        """
        import pickle, _pickle, pickle5
        print(pickle.loads is _pickle.loads, pickle.Unpickler is _pickle.Unpickler)
        print(pickle5.loads(%r))
        try:
            pickle.loads(%r)
        except ValueError as exc:
            print(exc)
        """
        % (P5_DATA, P5_DATA),
    )
    assert out == "True True\n[1, b'ab', bytearray(b'cd')]\nunsupported pickle protocol: 5\n"
    status = run_cli("status", "--site-dir", str(dirs["alias"]))
    assert "present (import pickle5, no stdlib reading: --no-stdlib-read)" in status


@needs_old_python
def test_stdlib_reads_protocol_5_next_to_the_backport(dirs):
    # A user of the C backport installs pickle5_rs to have the stdlib read protocol 5.
    real = dirs["real"] / "pickle5"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(dirs, "import pickle5\nprint(pickle5.REAL)\n" + READERS, real=True)
    assert out.startswith("True\n4 True True\n[1, b'ab', bytearray(b'cd')] ")


@needs_old_python
def test_enable_chooses_stdlib_read(dirs):
    out = child(
        dirs,
        """
        import pickle5_rs.alias, pickle
        pickle5_rs.alias.enable(stdlib_read=False)
        print(pickle.loads is __import__("_pickle").loads)
        pickle5_rs.alias.enable()
        print(pickle.loads(%r))
        """
        % (P5_DATA,),
    )
    assert out == "True\n[1, b'ab', bytearray(b'cd')]\n"


@needs_old_python
def test_status_says_which_parts_are_on(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = run_cli("status", "--site-dir", str(dirs["alias"]))
    assert "present (import pickle5, stdlib reading of protocol 5)" in out
    # This process (the test venv) has no alias of its own.
    assert "pickle.load/loads/Unpickler -> unchanged, protocol 4 at most" in out
    out = child(dirs, "from pickle5_rs import alias\nalias.status(alias.Path(%r))" % str(dirs["alias"]))
    assert "pickle.load/loads/Unpickler -> protocols 0-4 by pickle's own, 5 by pickle5_rs" in out


@needs_old_python
def test_classes_and_functions_pickle_by_reference(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        import pickle, _pickle
        for obj in (pickle.load, pickle.loads, pickle.Unpickler):
            data = pickle.dumps(obj, 2)
            assert pickle.loads(data) is obj, data
            print(data)
        print(isinstance(pickle.Unpickler(__import__("io").BytesIO()), _pickle.Unpickler))
        """,
    )
    assert out == (
        "b'\\x80\\x02cpickle\\nload\\nq\\x00.'\n"
        "b'\\x80\\x02cpickle\\nloads\\nq\\x00.'\n"
        "b'\\x80\\x02cpickle\\nUnpickler\\nq\\x00.'\nTrue\n"
    )


@needs_old_python
def test_interpreters_own_pickle_tests_pass_on_the_extended_readers():
    script = Path(__file__).resolve().parent / "support" / "stdlib_read_suite.py"
    result = subprocess.run(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout
    assert "extended pickle readers:" in result.stdout
    assert ", 0 failed," in result.stdout.splitlines()[-1]


# --- The stdlib's readers, in this process (made apart from the global pickle module) ------------


@pytest.fixture(scope="module")
def readers():
    if not OLD_PYTHON:
        pytest.skip("the alias only acts on Python 3.6/3.7")
    import _pickle

    load, loads, unpickler = _stdlib_read._readers(_pickle)
    return {"load": load, "loads": loads, "Unpickler": unpickler}


class Outer:
    class Inner:
        pass


class OnlyRead:
    """read() and readline() only: no peek, no seek."""

    def __init__(self, data):
        self.file = io.BytesIO(data)

    def read(self, n=-1):
        return self.file.read(n)

    def readline(self):
        return self.file.readline()


class PeekOneByte(OnlyRead):
    """peek() shows one byte at most: the next pickle's protocol stays hidden behind PROTO."""

    def peek(self, n=0):
        return self.file.getvalue()[self.file.tell() : self.file.tell() + 1]


FILE_KINDS = {
    "bytesio": io.BytesIO,
    "buffered": lambda data: io.BufferedReader(io.BytesIO(data), buffer_size=16),
    "only-read": OnlyRead,
    "peek-one-byte": PeekOneByte,
}


def stream(*items):
    """Pickles written one after another: (obj, protocol) pairs; 5 is written by pickle5_rs."""
    import pickle

    out = io.BytesIO()
    for obj, proto in items:
        (pickle5_rs if proto == 5 else pickle).dump(obj, out, protocol=proto)
    return out.getvalue()


MIXED = [([0], 0), ({"a": 1}, 2), (Outer.Inner, 5), ("x" * 300, 4), (b"y" * 70000, 5), ((1, 2), 3), (None, 5)]


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_mixed_stream_through_load_and_unpickler(readers, kind):
    data = stream(*MIXED) + b"tail"
    f = FILE_KINDS[kind](data)
    assert [readers["load"](f) for _ in MIXED] == [obj for obj, _ in MIXED]
    assert f.read() == b"tail"  # each load stops right after its pickle
    f = FILE_KINDS[kind](data)
    u = readers["Unpickler"](f)
    assert [u.load() for _ in MIXED] == [obj for obj, _ in MIXED]
    assert f.read() == b"tail"


@pytest.mark.parametrize("kind", sorted(FILE_KINDS))
def test_protocol_5_through_every_reader(readers, kind):
    for data in (P5_DATA, bytearray(P5_DATA), memoryview(P5_DATA)):
        assert readers["loads"](data) == P5_VALUE
        assert readers["loads"](data=data) == P5_VALUE
    assert readers["load"](FILE_KINDS[kind](P5_DATA)) == P5_VALUE
    assert readers["load"](file=FILE_KINDS[kind](P5_DATA)) == P5_VALUE
    assert readers["Unpickler"](FILE_KINDS[kind](P5_DATA)).load() == P5_VALUE
    assert readers["Unpickler"](file=FILE_KINDS[kind](P5_DATA), encoding="latin1").load() == P5_VALUE


def test_errors_are_the_stdlibs(readers):
    import pickle

    for reader in (
        readers["loads"],
        lambda d: readers["load"](io.BytesIO(d)),
        lambda d: readers["Unpickler"](io.BytesIO(d)).load(),
    ):
        with pytest.raises(pickle.UnpicklingError):
            reader(P5_DATA[:-1])  # truncated
        with pytest.raises(pickle.UnpicklingError):
            reader(b"\x80\x05\xff.")  # invalid opcode
        with pytest.raises(ValueError, match="unsupported pickle protocol: 6"):
            reader(b"\x80\x06N.")
        with pytest.raises(EOFError):
            reader(b"")
    with pytest.raises(TypeError):
        readers["loads"]("not bytes")
    with pytest.raises(TypeError):
        readers["load"](object())
    with pytest.raises(TypeError):
        readers["Unpickler"](object())


def test_subclass_find_class_sees_protocol_5_globals(readers):
    import pickle

    seen = []

    class Restricted(readers["Unpickler"]):
        def find_class(self, module, name):
            seen.append((module, name))
            if name == "Nope_":
                raise pickle.UnpicklingError("global %s.%s is forbidden" % (module, name))
            return super().find_class(module, name)  # dotted names are fine at protocol 5

    for proto in (2, 4, 5):
        data = stream((Outer.Inner, proto)) if proto != 2 else pickle.dumps(Outer, 2)
        expected = Outer if proto == 2 else Outer.Inner
        assert Restricted(io.BytesIO(data)).load() is expected
    assert seen == [(__name__, "Outer"), (__name__, "Outer.Inner"), (__name__, "Outer.Inner")]
    forbidden = pickle5_rs.dumps(Outer, protocol=5).replace(b"Outer", b"Nope_")
    with pytest.raises(pickle.UnpicklingError, match="Nope_ is forbidden"):
        Restricted(io.BytesIO(forbidden)).load()


def test_subclass_persistent_load_and_init(readers):
    class Pickler(pickle5_rs.Pickler):
        def persistent_id(self, obj):
            return "pid:" + obj if isinstance(obj, str) and obj.startswith("@") else None

    out = io.BytesIO()
    Pickler(out, protocol=5).dump(["@a", "b", "@c"])

    class WithMethod(readers["Unpickler"]):
        def __init__(self, file, prefix):
            super().__init__(file)
            self.prefix = prefix

        def persistent_load(self, pid):
            return self.prefix + pid

    assert WithMethod(io.BytesIO(out.getvalue()), ">").load() == [">pid:@a", "b", ">pid:@c"]
    u = readers["Unpickler"](io.BytesIO(out.getvalue()))
    u.persistent_load = lambda pid: pid.upper()
    assert u.persistent_load("x") == "X"
    assert u.load() == ["PID:@A", "b", "PID:@C"]
    import pickle

    with pytest.raises(pickle.UnpicklingError, match="no persistent_load"):
        readers["Unpickler"](io.BytesIO(out.getvalue())).load()

    class NoInit(readers["Unpickler"]):
        def __init__(self):
            pass

    with pytest.raises(pickle.UnpicklingError, match="__init__"):
        NoInit().load()


def test_memo_carries_over_between_pickles(readers):
    shared = ["shared"]
    out = io.BytesIO()
    pickler = pickle5_rs.Pickler(out, protocol=5)
    pickler.dump(shared)
    pickler.dump([shared, shared])  # refers to the first pickle's memo
    for kind in sorted(FILE_KINDS):
        u = readers["Unpickler"](FILE_KINDS[kind](out.getvalue()))
        first = u.load()
        second = u.load()
        assert second == [first, first] and second[0] is first and second[1] is first
        assert first in u.memo.copy().values()
    # Priming a memo with another unpickler's, as pickletester does, whichever side holds each.
    import pickle

    for first_proto, second_proto in ((4, 5), (5, 5), (5, 4)):

        def two_pickles(proto):
            """[shared] and [shared, shared], the second referring to the first's memo."""
            out = io.BytesIO()
            pickler = (pickle5_rs if proto == 5 else pickle).Pickler(out, protocol=proto)
            pickler.dump(shared)
            middle = out.tell()
            pickler.dump([shared, shared])
            return out.getvalue()[:middle], out.getvalue()[middle:]

        first = readers["Unpickler"](io.BytesIO(two_pickles(first_proto)[0]))
        loaded = first.load()
        second = readers["Unpickler"](io.BytesIO(two_pickles(second_proto)[1]))
        second.memo = first.memo
        assert second.load() == [loaded, loaded]
