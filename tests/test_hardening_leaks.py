"""Leaks: RSS, tracemalloc and the GC's object count stay flat over many dumps/loads, on success
paths and on error paths (unpicklable object mid-graph, truncated input, raising hooks), and
Pickler/Unpickler objects in reference cycles are freed by gc.collect().

Each scenario runs in its own process (tests/support/hardening_leak_child.py). The default iteration
count keeps CI fast; PICKLE5_RS_LEAK_ITERATIONS=1000000 gives the long run.
"""

import gc
import io
import json
import os
import subprocess
import sys
import weakref

import pytest

from unpickle_support import TARGET, TARGET_IS_REFERENCE

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support")
ITERATIONS = int(os.environ.get("PICKLE5_RS_LEAK_ITERATIONS", "5000"))
SCENARIOS = [
    "dumps_ok",
    "dumps_all_protocols",
    "loads_ok",
    "loads_oob",
    "load_file_ok",
    "dump_file_ok",
    "unpicklable_mid_graph",
    "truncated_input",
    "truncated_file",
    "raising_persistent_id",
    "raising_reducer_override",
    "raising_find_class",
    "raising_persistent_load",
    "raising_buffer_callback",
    "bad_opcode_after_objects",
    "cycles_pickler",
    "cycles_unpickler",
]
# Allowed growth over ITERATIONS (after a warm-up): far below one leaked object per iteration.
RSS_SLACK_KB = 2 * 1024
TRACED_SLACK = 64 * 1024
GC_OBJECTS_SLACK = 100

pytestmark = pytest.mark.skipif(TARGET_IS_REFERENCE, reason="measures pickle5_rs")


@pytest.fixture(scope="module")
def measurements():
    """All scenarios, measured one after the other in one child process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SUPPORT] + sys.path)
    out = subprocess.run(
        [sys.executable, os.path.join(SUPPORT, "hardening_leak_child.py"), str(ITERATIONS)] + SCENARIOS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=3600,
    )
    results = {}
    for line in out.stdout.decode().splitlines():
        r = json.loads(line)
        results[r["scenario"]] = r
    results["stderr"] = out.stderr.decode(errors="replace")[-3000:]
    return results


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_memory_flat(measurements, scenario):
    assert scenario in measurements, measurements["stderr"]
    r = measurements[scenario]
    rss_growth = r["rss_kb"][1] - r["rss_kb"][0]
    traced_growth = r["traced"][1] - r["traced"][0]
    gc_growth = r["gc_objects"][1] - r["gc_objects"][0]
    report = "%s over %d iterations: %s" % (scenario, ITERATIONS, r)
    assert traced_growth < TRACED_SLACK, report
    assert gc_growth < GC_OBJECTS_SLACK, report
    assert rss_growth < RSS_SLACK_KB, report


@pytest.mark.skipif(
    os.environ.get("PICKLE5_RS_API_ONLY", "") not in ("", "0"), reason="classes leak on the forced API path"
)
def test_subclass_made_per_call_is_freed():
    # Each instance's reference on its heap type must be released (3.8+), or subclasses made at run
    # time would never be freed.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SUPPORT] + sys.path)
    out = subprocess.run(
        [sys.executable, os.path.join(SUPPORT, "hardening_leak_child.py"), "1000", "subclass_per_call"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=600,
    )
    r = json.loads(out.stdout.decode().splitlines()[-1])
    assert r["gc_objects"][1] - r["gc_objects"][0] < GC_OBJECTS_SLACK, r


class _File(io.BytesIO):
    """A weakly referenceable file, to see whether a cycle through it was collected."""


def _collected(make_cycle):
    gc.collect()
    ref = make_cycle()
    for _ in range(3):
        gc.collect()
    return ref() is None


def test_pickler_in_cycle_through_file_is_collected():
    def make():
        f = _File()
        p = TARGET.Pickler(f, 4)
        f.pickler = p  # file -> pickler -> file
        p.dump([1, 2])
        return weakref.ref(f)

    assert _collected(make)


class _Pickler(TARGET.Pickler):
    """Instances have a __dict__ (3.13's base class makes persistent_id read-only)."""


def test_pickler_in_cycle_through_hooks_is_collected():
    def make():
        f = _File()
        p = _Pickler(f, 4)
        p.persistent_id = lambda obj: (p, None)[1]  # pickler -> hook -> pickler
        p.dispatch_table = {_File: lambda obj: (p, ())}
        p.me = p
        p.dump([f.getvalue()])
        return weakref.ref(f)

    assert _collected(make)


class _PidPickler(TARGET.Pickler):
    def persistent_id(self, obj):
        return "handle" if isinstance(obj, (_File, TARGET.Pickler)) else None


def test_pickler_memo_holding_the_file_is_collected():
    def make():
        f = _File()
        p = _PidPickler(f, 4)
        holder = [f, p]
        p.dump(holder)  # the memo keeps holder (and so the file and the pickler) alive
        return weakref.ref(f)

    assert _collected(make)


def test_unpickler_in_cycle_is_collected():
    def make():
        class U(TARGET.Unpickler):
            pass

        f = _File(TARGET.dumps([1, 2, 3], 4))
        u = U(f)
        f.unpickler = u  # file -> unpickler -> file
        u.persistent_load = lambda pid: u
        u.load()
        return weakref.ref(f)

    assert _collected(make)


def test_unpickler_memo_holding_the_file_is_collected():
    def make():
        f = _File()
        u = TARGET.Unpickler(f)
        u.memo = {0: f, 1: u}
        return weakref.ref(f)

    assert _collected(make)


def test_pickler_and_unpickler_after_errors_are_collected():
    def make():
        f = _File(b"\x80\x04]\x94(K\x01")  # truncated
        u = TARGET.Unpickler(f)
        f.u = u
        with pytest.raises((TARGET.UnpicklingError, EOFError)):
            u.load()
        g = _File()
        p = TARGET.Pickler(g, 4)
        g.p = p
        # PicklingError or AttributeError, depending on the version.
        with pytest.raises(Exception):  # noqa: B017
            p.dump([1, lambda: None])
        return weakref.ref(f), weakref.ref(g)

    gc.collect()
    refs = make()
    gc.collect()
    gc.collect()
    assert all(r() is None for r in refs)
