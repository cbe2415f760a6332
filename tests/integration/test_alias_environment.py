"""The installed alias: what cloudpickle, numpy and distributed import as `pickle5`, here and in
every kind of child process, that the stdlib's readers read protocol 5 in each of them, and that
start-up stays light."""

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import served_by_pickle5_rs

import pickle5_rs


def pickle5_in_this_process():
    """What a worker reports: is `pickle5`, as the libraries imported it, pickle5_rs?"""
    import os

    # isort: off
    # The libraries first, then pickle5 as they found it, then the stdlib's pickle.
    import cloudpickle.compat
    import distributed.protocol.pickle
    import numpy.compat
    import pickle5
    import pickle

    # isort: on

    return {
        "pid": os.getpid(),
        "pickle5": served_by_pickle5_rs(pickle5) and pickle5.Pickler is pickle5_rs.Pickler,
        "stdlib_reads_5": pickle.loads(pickle5.dumps(b"x", protocol=5)) == b"x"
        and pickle.HIGHEST_PROTOCOL == 4,
        "cloudpickle": cloudpickle.compat.pickle is pickle5
        and cloudpickle.compat.Pickler is pickle5_rs.Pickler,
        "numpy": numpy.compat.pickle is pickle5,
        "distributed": distributed.protocol.pickle.pickle is pickle5,
    }


EVERYTHING = {
    "pickle5": True,
    "stdlib_reads_5": True,
    "cloudpickle": True,
    "numpy": True,
    "distributed": True,
}


def check(report):
    pid = report.pop("pid")
    assert report == EVERYTHING
    return pid


def test_libraries_in_this_process():
    check(pickle5_in_this_process())


def test_start_up_imports_only_the_finder():
    out = subprocess.check_output(
        [sys.executable, "-c", "import sys; print(sorted(m for m in sys.modules if 'pickle5' in m))"],
        universal_newlines=True,
    )
    assert out == "['_pickle5_rs_alias']\n"
    out = subprocess.check_output(
        [sys.executable, "-c", "import sys, pickle; print('pickle5_rs' in sys.modules)"],
        universal_newlines=True,
    )
    assert out == "False\n"  # importing pickle does not load pickle5_rs either


def test_subprocess():
    code = "import test_alias_environment as t; print(t.pickle5_in_this_process())"
    out = subprocess.check_output(
        [sys.executable, "-c", code], cwd=str(Path(__file__).parent), universal_newlines=True
    )
    assert check(eval(out)) != os.getpid()


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_multiprocessing(method):
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert check(pool.apply(pickle5_in_this_process)) != os.getpid()


def test_process_pool_executor():
    with concurrent.futures.ProcessPoolExecutor(1) as executor:
        assert check(executor.submit(pickle5_in_this_process).result()) != os.getpid()


LOKY = """
import loky, test_alias_environment as t
executor = loky.get_reusable_executor(max_workers=1)
print(executor.submit(t.pickle5_in_this_process).result())
executor.shutdown(wait=True)
"""


def run_loky(**env):
    pytest.importorskip("loky")
    return subprocess.run(
        [sys.executable, "-c", LOKY],
        cwd=str(Path(__file__).parent),
        env=dict(os.environ, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
    )


def test_loky_worker():
    result = run_loky(LOKY_PICKLER="pickle")
    assert result.returncode == 0, result.stderr
    assert check(eval(result.stdout)) != os.getpid()


def test_loky_worker_with_cloudpickle():
    # loky sends a worker its start-up data with cloudpickle, at protocol 5 now, and the worker reads
    # it with the stdlib's pickle.load: the alias lets that read protocol 5 (with the C backport
    # alone, or with the alias installed --no-stdlib-read, no worker starts: joblib#1186).
    result = run_loky()
    assert result.returncode == 0, result.stderr
    assert check(eval(result.stdout)) != os.getpid()
