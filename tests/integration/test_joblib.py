"""joblib's loky backend and the stdlib readers across processes, with the alias installed.

On 3.6/3.7 loky starts each worker with data that cloudpickle writes, at protocol 5 once `pickle5`
is importable, and that the worker reads with the stdlib's `pickle.load`. The alias extends that
reader (python -m pickle5_rs.alias install), so joblib's process pools work. `nox -s integration`
also runs joblib_workload.py and joblib's own test_parallel.py with no pickle5 at all and requires
the same results and counts as here.
"""

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pickle5

HERE = Path(__file__).resolve().parent


def python(code, stdin=None, **kwargs):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(HERE),
        timeout=300,
        **kwargs,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_the_issue_snippet():
    # Defined in __main__, run on two loky workers: this died with TerminatedWorkerError.
    out = python(
        """
        from joblib import Parallel, delayed
        def f(x): return x * 2
        print(Parallel(n_jobs=2, backend="loky")(delayed(f)(i) for i in range(4)))
        """
    )
    assert out == b"[0, 2, 4, 6]\n"


def test_joblib_workload():
    result = subprocess.run(
        [sys.executable, str(HERE / "joblib_workload.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["parent_pickle5"] == "pickle5_rs"
    assert report["worker_pickle5"] == ["pickle5_rs"] and report["worker_pids_differ"]
    results = report["results"]
    assert results["functions"] == [2 * i for i in range(8)]
    assert results["classes"] == [3 * i for i in range(8)]
    assert results["lambdas"] == [i + 5 for i in range(8)]
    big = 300000
    total = big * (big - 1) / 2
    assert results["arrays"] == [{"memmap": True, "shape": [big], "sum": total + big * i} for i in range(4)]
    assert results["returned_arrays"] == [total * i for i in range(3)]


VALUE = """
import collections, numpy as np
VALUE = {
    "array": np.arange(1000, dtype=np.float32).reshape(10, 100),
    "fortran": np.asfortranarray(np.ones((3, 4))),
    "bytearray": bytearray(b"ba" * 1000),
    "bytes": b"by" * 1000,
    "ordered": collections.OrderedDict(a=1),
    "nested": [(1, 2.5, "three", None, True)],
}
def same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and (a[key] == b[key]).all()
            assert a[key].flags.f_contiguous == b[key].flags.f_contiguous
        else:
            assert type(a[key]) is type(b[key]) and a[key] == b[key], key
"""


def test_pickle5_protocol_5_read_by_stdlib_pickle_in_a_child():
    namespace = {}
    exec(VALUE, namespace)
    data = pickle5.dumps(namespace["VALUE"], protocol=5)
    assert data[:2] == b"\x80\x05"
    # The child reads with the stdlib's pickle.loads and pickle.load, and sends the value back
    # written by the stdlib (protocol 4: writing is unchanged).
    out = python(
        VALUE
        + """
import io, pickle, sys
data = sys.stdin.buffer.read()
value = pickle.loads(data)
same(value, VALUE)
same(pickle.load(io.BufferedReader(io.BytesIO(data))), VALUE)
assert pickle.HIGHEST_PROTOCOL == 4
sys.stdout.buffer.write(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
""",
        stdin=data,
    )
    assert out[:2] == b"\x80\x04"
    namespace["same"](pickle5.loads(out), namespace["VALUE"])


def test_stdlib_protocol_4_read_by_pickle5_in_a_child():
    namespace = {}
    exec(VALUE, namespace)
    data = pickle.dumps(namespace["VALUE"], protocol=4)
    out = python(
        VALUE
        + """
import pickle5, sys
same(pickle5.loads(sys.stdin.buffer.read()), VALUE)
print("ok")
""",
        stdin=data,
    )
    assert out == b"ok\n"


def test_multiprocessing_queue_carries_protocol_5(tmp_path):
    # A pickle5 protocol-5 payload through multiprocessing (its reader is pickle.loads, bound at
    # import as ForkingPickler.loads) to a spawned child and back.
    script = tmp_path / "spawned.py"
    script.write_text(
        textwrap.dedent(
            """
        import multiprocessing as mp, pickle5, numpy as np
        def work(q_in, q_out):
            import pickle
            q_out.put(pickle.loads(q_in.get()) * 2)
        if __name__ == "__main__":
            ctx = mp.get_context("spawn")
            q_in, q_out = ctx.Queue(), ctx.Queue()
            p = ctx.Process(target=work, args=(q_in, q_out))
            p.start()
            q_in.put(pickle5.dumps(np.arange(5), protocol=5))
            print(list(q_out.get()))
            p.join()
        """
        )
    )
    out = subprocess.check_output([sys.executable, str(script)], timeout=300)
    assert out == b"[0, 2, 4, 6, 8]\n"
