"""SafeUnpickler / safe_load / safe_loads: loading restricted to an allow-list of globals.

The hostile corpus (tests/support/safe_corpus.py) names dangerous globals through every opcode that names
or calls one, at every protocol; a child process loads each pickle and then reports which modules
got imported and which marker files got written (none may be). Allowed pickles must load exactly
as ``loads`` loads them.
"""

import binascii
import collections
import copyreg
import datetime
import enum
import functools
import io
import json
import operator
import os
import pickle
import subprocess
import sys

import pytest

import pickle5_rs
import safe_corpus
from pickle5_rs import SAFE_NUMPY, SAFE_STDLIB, AllowList, ForbiddenGlobalError

PROTOCOLS = range(pickle5_rs.HIGHEST_PROTOCOL + 1)


# --- classes pickled by reference (module level) -------------------------------------------------


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __eq__(self, other):
        return type(other) is Slotted and (self.a, self.b) == (other.a, other.b)


class WithState:
    def __init__(self, v):
        self.v = v

    def __getstate__(self):
        return {"v": self.v * 2}

    def __setstate__(self, state):
        self.v = state["v"] // 2

    def __eq__(self, other):
        return type(other) is WithState and self.v == other.v


class MyList(list):
    pass


class MyDict(dict):
    pass


class Color(enum.Enum):
    RED = 1
    GREEN = 2


Pair = collections.namedtuple("Pair", "left right")

USER_CLASSES = [Point, Slotted, WithState, MyList, MyDict, Color, Pair]


def user_objects(protocol):
    objects = [
        Point(1, "a"),
        WithState(21),
        MyList([1, Point(0, 0)]),
        MyDict(k=Pair(1, 2)),
        Color.GREEN,
        Pair(Color.RED, datetime.date(2020, 1, 1)),
    ]
    if protocol >= 2:  # protocols 0-1 cannot pickle __slots__ without __getstate__
        objects.append(Slotted(2, [3]))
    return objects


def dumps(obj, protocol):
    return pickle5_rs.dumps(obj, protocol)


def safe_ways(data, allow=SAFE_STDLIB, **kwargs):
    """The three entry points on the same pickle."""
    return [
        pickle5_rs.safe_loads(data, allow=allow, **kwargs),
        pickle5_rs.safe_load(io.BytesIO(data), allow=allow, **kwargs),
        pickle5_rs.SafeUnpickler(io.BytesIO(data), allow=allow, **kwargs).load(),
    ]


# --- allowed pickles load exactly as loads() does --------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stdlib_values_load_as_loads_does(protocol):
    for obj in safe_corpus.allowed_objects():
        data = dumps(obj, protocol)
        expected = pickle5_rs.loads(data)
        for got in safe_ways(data):
            assert safe_corpus.same(got, expected), (protocol, obj)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_default_allow_list_is_safe_stdlib(protocol):
    data = dumps([datetime.datetime(2020, 1, 2), {1, 2}, bytearray(b"x")], protocol)
    assert pickle5_rs.safe_loads(data) == pickle5_rs.safe_loads(data, allow=SAFE_STDLIB)
    assert pickle5_rs.SafeUnpickler(io.BytesIO(data)).load() == pickle5_rs.loads(data)


@pytest.mark.parametrize(
    "case_id, data, expected",
    safe_corpus.python2_pickles(),
    ids=[c[0] for c in safe_corpus.python2_pickles()],
)
def test_python2_pickles_load_through_the_name_mapping(case_id, data, expected):
    for got in safe_ways(data, encoding="latin1"):
        assert safe_corpus.same(got, pickle5_rs.loads(data, encoding="latin1"))
        assert got == expected


def test_python2_names_are_refused_without_fix_imports():
    data = safe_corpus.python2_pickles()[0][1]
    with pytest.raises(ForbiddenGlobalError, match=r"'__builtin__\.set'"):
        pickle5_rs.safe_loads(data, fix_imports=False)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_user_classes_load_once_allowed(protocol):
    allow = SAFE_STDLIB + USER_CLASSES
    for obj in user_objects(protocol):
        data = dumps(obj, protocol)
        expected = pickle5_rs.loads(data)
        for got in safe_ways(data, allow=allow):
            assert safe_corpus.same(got, expected), (protocol, obj)
            if isinstance(obj, (MyList, MyDict)):
                assert list(got) == list(obj)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_user_classes_are_refused_unless_allowed(protocol):
    for obj in user_objects(protocol):
        data = dumps(obj, protocol)
        name = "%s.%s" % (type(obj).__module__, type(obj).__qualname__)
        with pytest.raises(ForbiddenGlobalError, match="global '%s' is forbidden" % name):
            pickle5_rs.safe_loads(data)


def test_the_class_argument_of_reconstructor_must_be_allowed():
    # Protocols 0-1 pickle a plain instance as copyreg._reconstructor(cls, object, None).
    data = dumps(Point(1, 2), 1)
    assert b"copy_reg\n_reconstructor" in data
    with pytest.raises(ForbiddenGlobalError, match=r"'test_safe_loading\.Point'"):
        pickle5_rs.safe_loads(data)
    # Allowing the class without the reconstructor is not enough either.
    with pytest.raises(ForbiddenGlobalError, match=r"'copyreg\._reconstructor'"):
        pickle5_rs.safe_loads(data, allow=[Point, object])
    # ... nor without its base.
    with pytest.raises(ForbiddenGlobalError, match=r"'builtins\.object'"):
        pickle5_rs.safe_loads(data, allow=[Point, copyreg._reconstructor])
    assert pickle5_rs.safe_loads(data, allow=[Point, copyreg._reconstructor, object]) == Point(1, 2)


def test_memo_is_shared_across_loads_of_one_safe_unpickler():
    # One Pickler, two dump() calls: the second pickle refers to the first one's memo.
    f = io.BytesIO()
    pickler = pickle5_rs.Pickler(f, 2)
    when = datetime.datetime(2020, 1, 1)
    pickler.dump(when)
    pickler.dump([datetime.datetime(2021, 1, 1)])
    assert f.getvalue().count(b"cdatetime\ndatetime") == 1
    unpickler = pickle5_rs.SafeUnpickler(io.BytesIO(f.getvalue()))
    assert unpickler.load() == when
    assert unpickler.load() == [datetime.datetime(2021, 1, 1)]


def test_out_of_band_buffers_and_keywords_pass_through():
    buffers = []
    data = pickle5_rs.dumps([pickle5_rs.PickleBuffer(b"abc"), 1], 5, buffer_callback=buffers.append)
    for got in safe_ways(data, buffers=buffers):
        assert bytes(got[0]) == b"abc" and got[1] == 1
    with pytest.raises(pickle.UnpicklingError, match="out-of-band"):
        pickle5_rs.safe_loads(data)
    assert pickle5_rs.safe_loads(b"U\x02\xe9t.", encoding="latin1") == "\xe9t"
    assert pickle5_rs.safe_loads(b"U\x02\xe9t.", encoding="bytes") == b"\xe9t"


# --- numpy ------------------------------------------------------------------------------------------


def _numpy():
    return pytest.importorskip("numpy")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_numpy_preset_loads_arrays_dtypes_and_scalars(protocol):
    np = _numpy()
    objects = [
        np.arange(6).reshape(2, 3),
        np.zeros((2, 2), dtype="f4").T,
        np.array(["a", "bc"]),
        np.array([1.5, None], dtype=object),
        np.float64(2.5),
        np.int32(-3),
        np.dtype("M8[s]"),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.array([], dtype=bool),
    ]
    for obj in objects:
        data = dumps(obj, protocol)
        expected = pickle5_rs.loads(data)
        with pytest.raises(ForbiddenGlobalError):
            pickle5_rs.safe_loads(data)
        for got in safe_ways(data, allow=SAFE_STDLIB | SAFE_NUMPY):
            assert type(got) is type(expected)
            if isinstance(expected, np.ndarray):
                assert got.dtype == expected.dtype and got.shape == expected.shape
                assert got.tolist() == expected.tolist()
            else:
                assert got == expected


def test_numpy_out_of_band_buffers():
    np = _numpy()
    array = np.arange(1000, dtype="i8")
    buffers = []
    data = pickle5_rs.dumps(array, 5, buffer_callback=buffers.append)
    got = pickle5_rs.safe_loads(data, allow=SAFE_NUMPY, buffers=buffers)
    assert (got == array).all()


def test_numpy_preset_does_not_import_numpy():
    code = "import sys, pickle5_rs; pickle5_rs.SAFE_NUMPY; assert 'numpy' not in sys.modules"
    subprocess.check_call([sys.executable, "-c", code])


# --- the hostile corpus ------------------------------------------------------------------------------

CHILD = r"""
import copyreg, glob, io, json, os, pickle, sys
sys.path.insert(0, sys.argv[2])
os.environ["P5RS_MARKER"] = sys.argv[3]
import pickle5_rs
with open(sys.argv[1]) as f:
    corpus = json.load(f)
for code, module, name in corpus["extensions"]:
    copyreg.add_extension(module, name, code)
# As if an earlier unrestricted load had resolved one code already.
copyreg._extension_cache[corpus["extensions"][0][0]] = os.system
sys.modules["p5rs_alias_of_os"] = os
# What the allow-lists name may be imported: import it beforehand, so that anything new is not.
for module, _ in pickle5_rs.SAFE_STDLIB:
    __import__(module)
import functools, operator
before = set(sys.modules)
results = []
for case_id, hexdata, extra in corpus["cases"]:
    data = bytes.fromhex(hexdata)
    allow = pickle5_rs.SAFE_STDLIB + extra if extra else pickle5_rs.SAFE_STDLIB
    for way in ("safe_loads", "SafeUnpickler"):
        try:
            if way == "safe_loads":
                pickle5_rs.safe_loads(data, allow=allow)
            else:
                pickle5_rs.SafeUnpickler(io.BytesIO(data), allow=allow).load()
            outcome = ["LOADED", "", False, False]
        except Exception as exc:
            outcome = [type(exc).__name__, str(exc), isinstance(exc, pickle.UnpicklingError),
                       isinstance(exc, pickle5_rs.ForbiddenGlobalError)]
        results.append([case_id, way] + outcome)
print(json.dumps({"results": results, "new_modules": sorted(set(sys.modules) - before),
                  "markers": sorted(glob.glob(sys.argv[3] + "*"))}))
"""


class _Reduces:
    """Pickles as a call of ``func(*args)``, the way a malicious ``__reduce__`` does."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _pickler_made_hostile_pickles(marker):
    """Hostile pickles as the stdlib pickler writes them for malicious objects, every protocol."""
    touch = "touch " + marker + ".shell"
    objects = [
        ("os.system call", _Reduces(os.system, (touch,))),
        ("subprocess.Popen call", _Reduces(subprocess.Popen, (["sh", "-c", touch],))),
        ("eval call", _Reduces(eval, ("1",))),
        ("exec call", _Reduces(exec, ("1",))),
        ("getattr call", _Reduces(getattr, (str, "format"))),
        ("__import__ call", _Reduces(__import__, (safe_corpus.SENTINEL_MODULE,))),
        ("partial", functools.partial(os.system, touch)),
        ("attrgetter", operator.attrgetter("system")),
        ("os.system", os.system),
        ("Popen class", subprocess.Popen),
        ("os.path.join", os.path.join),
        ("bound classmethod", datetime.datetime.fromtimestamp),
        ("reconstructor of Popen", _Reduces(copyreg._reconstructor, (subprocess.Popen, object, None))),
        ("newobj of Popen", _Reduces(copyreg.__newobj__, (subprocess.Popen, ["true"]))),
    ]
    cases = []
    for protocol in PROTOCOLS:
        for name, obj in objects:
            if name == "newobj of Popen" and protocol >= 2:
                continue  # the pickler writes NEWOBJ there, and checks the class first
            cases.append(("pickler p%d %s" % (protocol, name), dumps(obj, protocol), None))
    return cases


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    marker = str(tmp / "marker")
    sentinel_dir = tmp / "modules"
    sentinel_dir.mkdir()
    (sentinel_dir / (safe_corpus.SENTINEL_MODULE + ".py")).write_text(safe_corpus.SENTINEL_SOURCE)
    cases = safe_corpus.hostile_corpus(marker) + _pickler_made_hostile_pickles(marker)
    corpus = {
        "cases": [(case_id, binascii.hexlify(data).decode(), extra) for case_id, data, extra in cases],
        "extensions": safe_corpus.EXTENSIONS,
    }
    corpus_path = tmp / "corpus.json"
    corpus_path.write_text(json.dumps(corpus))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pickle5_rs.__file__))] + sys.path),
    )
    out = subprocess.check_output(
        [sys.executable, "-c", CHILD, str(corpus_path), str(sentinel_dir), marker], env=env, cwd=str(tmp)
    )
    report = json.loads(out.decode())
    report["case_count"] = len(cases)
    return report


def test_hostile_corpus_is_refused_at_every_protocol(hostile_run):
    results = hostile_run["results"]
    assert len(results) == 2 * hostile_run["case_count"] > 2000
    not_refused = [r for r in results if not r[4]]
    assert not not_refused, not_refused[:10]
    persistent = [r for r in results if "PERSID" in r[0]]
    assert persistent and all("persistent_load" in r[3] for r in persistent)
    wrong_class = [r for r in results if not r[5] and "PERSID" not in r[0]]
    assert not wrong_class, wrong_class[:10]


def test_hostile_corpus_imports_and_runs_nothing(hostile_run):
    assert hostile_run["markers"] == []
    assert hostile_run["new_modules"] == []


def test_refusals_name_the_global(hostile_run):
    messages = {(r[0], r[1]): r[3] for r in hostile_run["results"]}
    assert messages[("p0 GLOBAL+REDUCE os.system", "safe_loads")] == "global 'os.system' is forbidden"
    assert messages[("p4 STACK_GLOBAL+REDUCE builtins.eval", "SafeUnpickler")] == (
        "global 'builtins.eval' is forbidden"
    )
    assert messages[("p2 py2 GLOBAL+REDUCE __builtin__.eval", "safe_loads")] == (
        "global 'builtins.eval' (written '__builtin__.eval' in the pickle) is forbidden"
    )
    assert messages[("p5 EXT 241 os.system", "safe_loads")] == "global 'os.system' is forbidden"
    assert (
        "only objects named by allowed globals may be called"
        in messages[("p5 call of functools.partial result", "safe_loads")]
    )
    assert (
        "the class must be named by an allowed global"
        in messages[("p0 reconstructor class made by type()", "safe_loads")]
    )
    assert messages[("p3 BUILD on an allowed class (slot state)", "safe_loads")] == (
        "BUILD on global 'collections.OrderedDict' is forbidden"
    )
    assert "encoding other than" in messages[("p1 _codecs.encode with a codec to import", "safe_loads")]


# --- the API ------------------------------------------------------------------------------------------


def test_forbidden_global_error():
    assert issubclass(ForbiddenGlobalError, pickle.UnpicklingError)
    assert ForbiddenGlobalError.__module__ == "pickle5_rs"
    with pytest.raises(ForbiddenGlobalError) as info:
        pickle5_rs.safe_loads(b"cos\nsystem\n.")
    assert info.value.module == "os" and info.value.name == "system"
    assert str(info.value) == "global 'os.system' is forbidden"


def test_allow_list_forms():
    expected = {("collections", "OrderedDict"), ("datetime", "datetime.fromtimestamp"), ("a.b", "c")}
    allow = AllowList(["collections.OrderedDict", ("datetime", "datetime.fromtimestamp"), "a.b:c"])
    assert allow == expected and isinstance(allow, frozenset)
    assert AllowList([collections.OrderedDict, Point.__eq__, len]) == {
        ("collections", "OrderedDict"),
        ("test_safe_loading", "Point.__eq__"),
        ("builtins", "len"),
    }
    assert AllowList(allow) is allow
    assert AllowList([]) == frozenset()
    for bad in (None, "datetime.datetime", b"x", 3):
        with pytest.raises(TypeError):
            AllowList(bad)
    for bad in (["nodot"], [".x"], ["x."], [("", "x")], ["m:"]):
        with pytest.raises(ValueError):
            AllowList(bad)
    with pytest.raises(TypeError):
        AllowList([object()])


def test_allow_lists_combine_with_or_and_plus():
    both = SAFE_STDLIB | SAFE_NUMPY
    assert isinstance(both, AllowList) and both == frozenset(SAFE_STDLIB) | frozenset(SAFE_NUMPY)
    assert SAFE_STDLIB + SAFE_NUMPY == both
    more = SAFE_STDLIB + [Point, "x.y"]
    assert isinstance(more, AllowList) and ("test_safe_loading", "Point") in more and ("x", "y") in more
    assert isinstance([Point] + SAFE_STDLIB, AllowList)
    assert ("builtins", "set") in SAFE_STDLIB and ("numpy", "ndarray") in SAFE_NUMPY
    assert "'builtins.set'" in repr(SAFE_STDLIB)
    assert pickle5_rs.loads(pickle5_rs.dumps(SAFE_STDLIB)) == SAFE_STDLIB


def test_presets_allow_nothing_dangerous():
    dangerous = {
        "eval",
        "exec",
        "getattr",
        "setattr",
        "__import__",
        "compile",
        "open",
        "type",
        "globals",
        "vars",
        "system",
        "partial",
        "attrgetter",
        "methodcaller",
        "apply",
    }
    for module, name in SAFE_STDLIB | SAFE_NUMPY:
        assert name not in dangerous and module not in ("os", "sys", "subprocess", "functools", "operator")


def test_allow_argument_is_validated():
    for bad in (None, "builtins.set", 1):
        with pytest.raises(TypeError):
            pickle5_rs.safe_loads(b"N.", allow=bad)
        with pytest.raises(TypeError):
            pickle5_rs.SafeUnpickler(io.BytesIO(b"N."), allow=bad)
    assert pickle5_rs.safe_loads(b"N.", allow=[]) is None
    assert pickle5_rs.safe_loads(b"N.", allow={"datetime.date"}) is None
    assert pickle5_rs.safe_loads(dumps(datetime.date(2020, 1, 1), 4), allow=[datetime.date]) == (
        datetime.date(2020, 1, 1)
    )


def test_exact_names_only():
    data = dumps(collections.OrderedDict(), 4)
    with pytest.raises(ForbiddenGlobalError):
        pickle5_rs.safe_loads(data, allow=["collections.OrderedDic", "collections.OrderedDict.x"])
    with pytest.raises(ForbiddenGlobalError):
        pickle5_rs.safe_loads(data, allow=[("collections", "Ordered"), ("collection", "OrderedDict")])
    method = b"\x80\x04" + safe_corpus.stack_global("datetime", "datetime.fromtimestamp") + b"."
    with pytest.raises(ForbiddenGlobalError):
        pickle5_rs.safe_loads(method, allow=SAFE_STDLIB)
    assert pickle5_rs.safe_loads(method, allow=["datetime:datetime.fromtimestamp"]) == (
        datetime.datetime.fromtimestamp
    )


def test_find_class_override_is_called_for_allowed_names_only():
    seen = []

    class Renaming(pickle5_rs.SafeUnpickler):
        def find_class(self, module, name):
            seen.append((module, name))
            if (module, name) == ("test_safe_loading", "Point"):
                return Point
            return super().find_class(module, name)

    data = dumps([Point(1, 2), datetime.date(2020, 1, 1)], 2)
    with pytest.raises(ForbiddenGlobalError):
        Renaming(io.BytesIO(data)).load()
    assert seen == []
    got = Renaming(io.BytesIO(data), allow=SAFE_STDLIB + [Point]).load()
    assert got == [Point(1, 2), datetime.date(2020, 1, 1)]
    assert ("datetime", "date") in seen
    unpickler = Renaming(io.BytesIO(b""))
    with pytest.raises(ForbiddenGlobalError):
        unpickler.find_class("os", "system")
    assert unpickler.find_class("datetime", "date") is datetime.date


def test_subclass_that_skips_init_allows_nothing():
    class Careless(pickle5_rs.SafeUnpickler):
        def __init__(self, file):
            pickle5_rs.Unpickler.__init__(self, file)

    data = dumps(datetime.date(2020, 1, 1), 2)
    with pytest.raises(ForbiddenGlobalError):
        Careless(io.BytesIO(data)).load()
    assert Careless(io.BytesIO(dumps([1, "a"], 2))).load() == [1, "a"]


def test_persistent_load_only_when_given():
    data = b"\x80\x02X\x03\x00\x00\x00pidQ."
    with pytest.raises(pickle.UnpicklingError, match="persistent_load"):
        pickle5_rs.safe_loads(data)

    class WithHook(pickle5_rs.SafeUnpickler):
        def persistent_load(self, pid):
            return ("resolved", pid)

    assert WithHook(io.BytesIO(data)).load() == ("resolved", "pid")
    if sys.version_info >= (3, 13):
        return  # a method from 3.13 on, read-only on instances (as in _pickle)
    unpickler = pickle5_rs.SafeUnpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda pid: pid.upper()
    assert unpickler.load() == "PID"


def test_plain_loading_is_unrestricted():
    data = dumps(os.getcwd, 2)
    assert pickle5_rs.loads(data) is os.getcwd
    assert pickle5_rs.Unpickler(io.BytesIO(data)).load() is os.getcwd
    with pytest.raises(ForbiddenGlobalError):
        pickle5_rs.safe_loads(data)


def test_restricting_a_plain_unpickler():
    unpickler = pickle5_rs.Unpickler(io.BytesIO(dumps(os.getcwd, 2)))
    unpickler._restrict(["datetime.date"])
    with pytest.raises(ForbiddenGlobalError):
        unpickler.load()


def test_extension_codes_are_checked_by_their_names():
    copyreg.add_extension("datetime", "date", 0x7FFF01)
    try:
        data = b"\x80\x02\x84\x01\xff\x7f\x00K\x07K\x01K\x02\x87R."
        assert pickle5_rs.safe_loads(data) == datetime.date(7, 1, 2)
        with pytest.raises(ForbiddenGlobalError, match="'datetime.date'"):
            pickle5_rs.safe_loads(data, allow=["datetime.datetime"])
    finally:
        copyreg.remove_extension("datetime", "date", 0x7FFF01)


def test_numpy_object_array_from_raw_bytes_is_an_error_not_a_crash():
    _numpy()
    # ndarray.__setstate__ with an object dtype and raw bytes would be pointers made up by the pickle.
    code = r"""
import pickle5_rs, numpy as np
data = pickle5_rs.dumps(np.array([1, 2], dtype="i8"), 2)
data = data.replace(b"U\x02i8", b"U\x02O8") if b"U\x02i8" in data else data
try:
    pickle5_rs.safe_loads(data, allow=pickle5_rs.SAFE_NUMPY)
    print("loaded")
except Exception as exc:
    print(type(exc).__name__)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() != "loaded"


# --- resolution: the same objects as loads() finds ----------------------------------------------------


def test_an_import_override_is_called_as_loads_calls_it(monkeypatch):
    import builtins

    calls = []
    original = builtins.__import__

    def recording_import(name, *args, **kwargs):
        calls.append(name)
        return original(name, *args, **kwargs)

    data = dumps(datetime.date(2020, 1, 1), 4)
    monkeypatch.setattr(builtins, "__import__", recording_import)
    plain = pickle5_rs.loads(data)
    by_loads = list(calls)
    del calls[:]
    safe = pickle5_rs.safe_loads(data)
    by_safe_loads = list(calls)
    assert plain == safe == datetime.date(2020, 1, 1)
    assert by_loads == by_safe_loads == ["datetime"]


def test_what_sys_modules_holds_now_is_what_resolves(monkeypatch):
    import types

    fake = types.ModuleType("p5rs_fake_module")
    fake.Thing = collections.OrderedDict
    monkeypatch.setitem(sys.modules, "p5rs_fake_module", fake)
    data = b"\x80\x04" + safe_corpus.stack_global("p5rs_fake_module", "Thing") + b"."
    allow = ["p5rs_fake_module.Thing"]
    assert pickle5_rs.safe_loads(data, allow=allow) is collections.OrderedDict
    fake.Thing = collections.deque
    assert pickle5_rs.safe_loads(data, allow=allow) is collections.deque
    replacement = types.ModuleType("p5rs_fake_module")
    replacement.Thing = collections.Counter
    monkeypatch.setitem(sys.modules, "p5rs_fake_module", replacement)
    assert pickle5_rs.safe_loads(data, allow=allow) is collections.Counter is pickle5_rs.loads(data)
    monkeypatch.setitem(sys.modules, "p5rs_fake_module", None)
    with pytest.raises(ImportError):
        pickle5_rs.safe_loads(data, allow=allow)


@pytest.mark.skipif(sys.version_info < (3, 7), reason="module __getattr__ is new in 3.7")
def test_module_level_getattr_is_consulted_as_loads_does(monkeypatch):
    import types

    fake = types.ModuleType("p5rs_lazy_module")
    fake.__getattr__ = lambda name: ("lazy", name)
    monkeypatch.setitem(sys.modules, "p5rs_lazy_module", fake)
    data = b"\x80\x04" + safe_corpus.stack_global("p5rs_lazy_module", "anything") + b"."
    assert pickle5_rs.safe_loads(data, allow=["p5rs_lazy_module.anything"]) == ("lazy", "anything")
