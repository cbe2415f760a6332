"""The life of Pickler/Unpickler instances: class swaps, subclasses in reference cycles, instances
made by `__new__` alone, instances alive at interpreter exit. Each scenario runs in a child
process (a crash must fail the test, not the run) and is checked against the reference."""

import os
import subprocess
import sys

import pytest

from unpickle_support import REF, TARGET

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["Pickler", "Unpickler"]
# With struct layout access forced off, the class's deallocator cannot be wrapped: instances then
# never release their class (a leak, never a crash), so classes are not collected.
API_ONLY = os.environ.get("PICKLE5_RS_API_ONLY", "") not in ("", "0")
needs_layout = pytest.mark.skipif(API_ONLY, reason="classes leak on the forced API path")

_PRELUDE = r"""
import gc, io, sys, weakref
sys.path[:0] = {path!r}
from unpickle_support import TARGET, REF
P = {{"target": TARGET, "reference": REF}}[{which!r}]
BASE = getattr(P, {cls!r})
DATA = b"\x80\x04K\x01."

def make(cls):
    if issubclass(cls, P.Pickler):
        return cls(io.BytesIO(), 4)
    return cls(io.BytesIO(DATA))

def use(obj):
    if isinstance(obj, P.Pickler):
        obj.dump([1])
        return "dumped"
    return obj.load()
"""


def _run(body, which, cls, *args):
    if which == "reference" and REF is None:
        pytest.skip("reference pickle module is not installed")
    code = _PRELUDE.format(path=[HERE] + sys.path, which=which, cls=cls) + body
    out = subprocess.run(
        [sys.executable, "-c", code] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300
    )
    assert out.returncode == 0, (which, out.returncode, out.stderr.decode(errors="replace")[-3000:])
    return out.stdout.decode().split(), out.stderr.decode(errors="replace")


_CLASS_SWAP = r"""
class A(BASE): pass
class B(BASE): pass
before = sys.getrefcount(A), sys.getrefcount(B)
for _ in range(10):
    p = make(A); p.__class__ = B; del p
for _ in range(10):
    p = make(B); p.__class__ = A; p.__class__ = B; del p
make(BASE); gc.collect()
after = sys.getrefcount(A), sys.getrefcount(B)
print(before == after, use(make(A)), use(make(B)))
"""


@pytest.mark.parametrize("cls", CLASSES)
def test_class_swap_releases_the_type_the_instance_dies_with(cls):
    # Reassigning __class__ moves the instance's type reference; releasing the type recorded at
    # creation instead freed a class still in use.
    got, _ = _run(_CLASS_SWAP, "target", cls)
    ref, _ = _run(_CLASS_SWAP, "reference", cls)
    expected_use = "dumped" if cls == "Pickler" else "1"
    assert ref == ["True", expected_use, expected_use]
    # On the forced API path the classes keep the references (counts grow), never lose them.
    assert got == (["False", expected_use, expected_use] if API_ONLY else ref)


_SUBCLASS_CYCLES = r"""
refs = []
for i in range(500):
    class Mine(BASE):
        def method(self):
            pass
    Mine.instance = make(Mine)
    refs.append(weakref.ref(Mine))
del Mine
gc.collect()
print(sum(r() is not None for r in refs))
"""


@needs_layout
@pytest.mark.parametrize("cls", CLASSES)
def test_cycles_through_a_subclass_are_collected(cls):
    got, _ = _run(_SUBCLASS_CYCLES, "target", cls)
    assert got == ["0"]


_NEW_ONLY = r"""
refs = []
for i in range(200):
    class Mine(BASE): pass
    obj = Mine.__new__(Mine)
    refs.append(weakref.ref(Mine))
    del obj, Mine
gc.collect()
print(sum(r() is not None for r in refs))
"""


@needs_layout
@pytest.mark.parametrize("cls", CLASSES)
def test_instances_never_initialised_release_their_class(cls):
    got, _ = _run(_NEW_ONLY, "target", cls)
    assert got == ["0"]


_UNFLUSHED_AT_EXIT = r"""
class MyPickler(P.Pickler):
    def method(self):
        pass
class MyUnpickler(P.Unpickler):
    def method(self):
        pass
p = MyPickler(open(sys.argv[1], "wb"), 5)
p.dump(list(range(100)))
u = MyUnpickler(io.BytesIO(DATA))
plain = P.Pickler(io.BytesIO())
"""


@pytest.mark.parametrize("which", [pytest.param("target", marks=needs_layout), "reference"])
def test_pickler_alive_at_exit_flushes_its_file_and_says_nothing(which, tmp_path):
    # The file is closed (and flushed) only when the pickler in the cycle through its class is
    # collected at exit. On 3.8 a pickler freed during shutdown printed a SystemError.
    path = str(tmp_path / "out.pkl")
    _, err = _run(_UNFLUSHED_AT_EXIT, which, "Pickler", path)
    assert err == ""
    with open(path, "rb") as f:
        assert TARGET.load(f) == list(range(100))


_TRAVERSE_SEES_TYPE = r"""
class Mine(BASE): pass
obj = make(Mine)
print(any(r is Mine for r in gc.get_referents(obj)), sys.version_info >= (3, 9))
"""


@needs_layout
@pytest.mark.parametrize("cls", CLASSES)
def test_traverse_visits_the_type_where_cpython_requires_it(cls):
    got, _ = _run(_TRAVERSE_SEES_TYPE, "target", cls)
    # From 3.9 on the class's own traverse visits the heap type; before, subtype_traverse does
    # (gc.get_referents shows both ways).
    assert got[0] == "True"


_ALIVE_AT_SHUTDOWN = r"""
class MyPickler(P.Pickler):
    def persistent_id(self, obj):
        return None
class MyUnpickler(P.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)
MyPickler.instance = MyPickler(io.BytesIO(), 5)
MyUnpickler.instance = MyUnpickler(io.BytesIO(DATA))
MyPickler.instance.dump({"a": [1, 2]})
proxies = [MyPickler.instance.memo, MyUnpickler.instance.memo]
cycle = [P.Pickler(io.BytesIO()), P.Unpickler(io.BytesIO(DATA))]
cycle.append(cycle)
never_initialised = [MyPickler.__new__(MyPickler), MyUnpickler.__new__(MyUnpickler)]
print("exiting")
"""

_DAEMONS_AT_SHUTDOWN = r"""
import threading, time
class WithDel:
    def __del__(self):
        sum(range(100))
class Hooked(P.Pickler):
    def persistent_id(self, obj):
        return None
class Finding(P.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name)
def dumping():
    p = Hooked(io.BytesIO(), 2)
    while True:
        p.dump(list(range(50)))
        p.clear_memo()
def loading():
    data = P.dumps([io.BytesIO, {"k": [1, 2]}, WithDel], 2)
    while True:
        Finding(io.BytesIO(data)).load()
        P.loads(P.dumps([WithDel() for _ in range(20)], 2))
def to_file(path=sys.argv[1]):
    while True:
        with open(path, "wb") as f:
            P.dump([b"x" * 100000, WithDel()], f, 5)
for target in (dumping, loading, to_file):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.05)
print("exiting")
"""


@pytest.mark.parametrize("which", ["target", "reference"])
def test_instances_alive_at_shutdown_exit_cleanly(which):
    # Pickler/Unpickler instances in cycles through their classes, memo proxies and instances never
    # initialised when the interpreter exits: exit status 0 and nothing on stderr (3.8 printed a
    # SystemError for every instance freed during shutdown).
    out, err = _run(_ALIVE_AT_SHUTDOWN, which, "Pickler")
    assert out == ["exiting"]
    assert err == ""


def _bundles_its_own_unwinder():
    """Whether the extension carries a private unwinder (the zig-linked release wheel) instead of
    resolving the system's libgcc_s, which is what pthread_exit unwinds with. Only glibc's
    pthread_exit unwinds the thread's stack: on musl, macOS and Windows no unwinder takes part."""
    import ctypes
    import platform

    core = getattr(TARGET, "_core", None)
    if core is None or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    return not hasattr(ctypes.CDLL(core.__file__), "_Unwind_GetIP")


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 parks such threads itself")
@pytest.mark.parametrize("which", ["target", "reference"])
def test_daemon_threads_pickling_at_exit(which, tmp_path):
    # Before 3.14 a daemon thread that wants the GIL back during finalization is ended by
    # pthread_exit, whose forced unwind through a dump or load aborted the process; calls into
    # Python now park the thread instead. The unwind must go through the system's unwinder.
    if which == "target" and _bundles_its_own_unwinder():
        # The wheel nox builds links the system's libgcc_s (noxfile: _link_system_unwinder).
        assert not os.environ.get("PICKLE5_RS_EXPECT_INSTALLED"), "the wheel bundles an unwinder"
        pytest.skip(
            "this build links a private unwinder, which cannot unwind pthread_exit "
            "(README: Differences from the C pickler)"
        )
    for _attempt in range(5):
        out, err = _run(_DAEMONS_AT_SHUTDOWN, which, "Pickler", str(tmp_path / "out.pkl"))
        assert out == ["exiting"]
        assert err == ""
