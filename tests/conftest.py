"""Collection settings and fixtures for the tests in tests/ (tests/integration/ aside).

Run: ``python -m pytest tests`` (imports ``pickle5_rs``; after ``scripts/dev-build`` the work tree's
copy is found from the repository root). ``PICKLE5_RS_TARGET=reference`` runs the same tests against
the reference C unpickler instead (stdlib ``pickle`` on 3.8+, the ``pickle5`` package on 3.6/3.7);
tests the reference is known to fail (it allocates what a length field claims) are then xfail.
"""

import glob
import importlib.util
import os
import sys

import pytest

# The helpers in tests/support/ (shared code, data builders and the scripts tests run in child
# processes) are imported by their module names: `import unpickle_support`.
SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support")
sys.path.insert(0, SUPPORT)

import unpickle_support as support  # noqa: E402

# tests/integration/ needs third-party packages and the pickle5 alias: the nox session
# `integration` runs it on its own.
collect_ignore = ["integration"]
# Left out, with the reason, where they cannot run (reported in the header).
LEFT_OUT = {}

if not sys.platform.startswith("linux"):
    LEFT_OUT["test_hardening_memory_limits.py"] = "needs RLIMIT_AS and /proc (Linux)"
if support.REF is None:
    LEFT_OUT["test_bench_smoke.py"] = "the benchmark needs the reference pickler"


def _cpython_suite_missing():
    """Why CPython's own pickle tests cannot be loaded here, or None (see support/cpython_suite.py)."""
    if sys.version_info >= (3, 8):
        if importlib.util.find_spec("test") is None or importlib.util.find_spec("test.pickletester") is None:
            return "this interpreter has no test.pickletester (its test package was left out)"
        return None
    if importlib.util.find_spec("pickle5") is None:
        return "on 3.6/3.7 it runs 3.8's suite on the pickle5 backport, which is not installed"
    given = os.environ.get("PICKLE5_RS_PICKLETESTER_38")
    if given:
        return (
            None
            if os.path.isfile(os.path.join(given, "pickletester.py"))
            else ("PICKLE5_RS_PICKLETESTER_38 has no pickletester.py")
        )
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    if glob.glob(os.path.join(pyenv_root, "versions", "3.8*")):
        return None
    return "on 3.6/3.7 it needs CPython 3.8's test/pickletester.py: set PICKLE5_RS_PICKLETESTER_38"


# Some interpreters come without CPython's test package (the python Docker images strip it):
# with PICKLE5_RS_CPYTHON_SUITE=optional, test_cpython_suite.py is then left out instead of failing.
if os.environ.get("PICKLE5_RS_CPYTHON_SUITE") == "optional":
    _missing = _cpython_suite_missing()
    if _missing:
        LEFT_OUT["test_cpython_suite.py"] = _missing

# PICKLE5_RS_FAST_TESTS=1: the subset for emulated platforms (the release workflow's Linux aarch64
# legs run under QEMU): everything but CPython's own suite and the files that measure memory, cap
# the address space (which also caps the emulator's) or time the benchmark.
FAST_LEAVES_OUT = [
    "test_cpython_suite.py",
    "test_hardening_leaks.py",
    "test_hardening_memory_limits.py",
    "test_pickler_memory.py",
    "test_unpickler_hostile.py",
    "test_bench_smoke.py",
]
if os.environ.get("PICKLE5_RS_FAST_TESTS", "") not in ("", "0"):
    for _name in FAST_LEAVES_OUT:
        LEFT_OUT.setdefault(_name, "PICKLE5_RS_FAST_TESTS is set")
collect_ignore += sorted(LEFT_OUT)


def pytest_report_header(config):
    ref = support.REF.__name__ if support.REF is not None else "absent"
    lines = ["unpickler under test: %s; reference: %s" % (support.TARGET_NAME, ref)]
    lines += ["left out: %s (%s)" % item for item in sorted(LEFT_OUT.items())]
    return lines


@pytest.fixture(scope="session")
def target():
    """The module under test (pickle5_rs, or the reference with PICKLE5_RS_TARGET=reference)."""
    return support.TARGET


@pytest.fixture(scope="session")
def ref():
    """The reference C pickle module; tests that compare with it skip when it is absent."""
    if support.REF is None:
        pytest.skip("reference pickle module (pickle5 on 3.6/3.7) is not installed")
    return support.REF
