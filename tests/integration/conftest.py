"""Integration with cloudpickle, numpy and dask.distributed on Python 3.6/3.7.

Run by `nox -s integration` (noxfile.py), in a venv with the pickle5_rs wheel, the packages of
requirements.txt here, no pickle5 backport, and `python -m pickle5_rs.alias install` done, so that
`import pickle5` gives pickle5_rs in this process and in every child process. The normal test run
leaves this directory out (tests/conftest.py).

`PICKLE5_RS_REFERENCE_PATH` may name a directory holding the C pickle5 backport (pip --target);
tests that compare bytes with it import it in a child process whose PYTHONPATH puts it first.
"""

import os
import subprocess
import sys

import pytest

if sys.version_info >= (3, 8):
    collect_ignore_glob = ["test_*.py"]  # the alias is for 3.6/3.7 only


def served_by_pickle5_rs(module):
    """True when `module` is what pickle5_rs's alias made of `pickle5` (or a submodule)."""
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    return bool(getattr(loader, "_pickle5_rs_alias", False))


@pytest.fixture(scope="session", autouse=True)
def alias_active():
    try:
        import pickle5
    except ImportError:
        pytest.exit("`import pickle5` fails: run `python -m pickle5_rs.alias install` first", 2)
    if not served_by_pickle5_rs(pickle5):
        pytest.exit("`import pickle5` gives %r, not pickle5_rs: uninstall the backport" % pickle5, 2)
    return pickle5


def reference_python(code):
    """Runs `code` in a child interpreter that imports the C pickle5 backport; returns its stdout."""
    path = os.environ.get("PICKLE5_RS_REFERENCE_PATH")
    if not path:
        pytest.skip("PICKLE5_RS_REFERENCE_PATH (a directory with the pickle5 backport) is not set")
    env = dict(os.environ, PYTHONPATH=path)
    result = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout
