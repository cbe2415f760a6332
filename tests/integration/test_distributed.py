"""A real dask.distributed LocalCluster with worker processes, pickling through pickle5_rs as
`pickle5`: numpy arrays and locally defined functions and classes travel through tasks.

distributed 2022.2.0 on Python 3.7; on 3.6, 2021.3.0, the last release that supports it.
"""

import os
import sys

import numpy as np
import pickle5
import pytest
from conftest import served_by_pickle5_rs

import pickle5_rs

distributed = pytest.importorskip("distributed")
from distributed.protocol import deserialize, serialize  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        yield client


def report():
    """Which pickle5 the process (a worker, or the scheduler) uses."""
    import distributed.protocol.pickle

    mod = sys.modules.get("pickle5")
    return {
        "pid": os.getpid(),
        "pickle5 is pickle5_rs": served_by_pickle5_rs(mod) and mod.Pickler is pickle5_rs.Pickler,
        "distributed uses it": distributed.protocol.pickle.pickle is mod,
        "protocol": distributed.protocol.pickle.HIGHEST_PROTOCOL,
        "extension loaded": "pickle5_rs._core" in sys.modules,
    }


EXPECTED = {
    "pickle5 is pickle5_rs": True,
    "distributed uses it": True,
    "protocol": 5,
    "extension loaded": True,
}


def test_workers_and_scheduler_use_pickle5_rs(client):
    workers = client.run(report)
    assert len(workers) == 2
    pids = {info.pop("pid") for info in workers.values()}
    assert os.getpid() not in pids and len(pids) == 2  # separate processes
    assert all(info == EXPECTED for info in workers.values())
    scheduler = client.run_on_scheduler(report)
    scheduler.pop("pid")
    assert scheduler == EXPECTED


def arrays():
    base = np.random.RandomState(1).standard_normal((1000, 1000))  # 8 MB
    read_only = base.copy()
    read_only.setflags(write=False)
    return {
        "C-contiguous": base,
        "Fortran-ordered": np.asfortranarray(base),
        "read-only": read_only,
        "non-contiguous": base.copy()[::3, ::2],
        "int32": np.arange(10**6, dtype=np.int32),
    }


def test_numpy_arrays_through_tasks(client):
    data = arrays()
    futures = {name: client.scatter(array) for name, array in data.items()}
    doubled = {name: client.submit(lambda a: a * 2, future) for name, future in futures.items()}
    for name, future in doubled.items():
        np.testing.assert_array_equal(future.result(), data[name] * 2)
    # An array made in a worker and sent back.
    made = client.submit(lambda n: np.asfortranarray(np.arange(n, dtype="f8").reshape(-1, 1000)), 10**6)
    result = made.result()
    assert result.flags.f_contiguous and result.sum() == np.arange(10**6, dtype="f8").sum()


def test_locally_defined_functions_and_classes(client):
    offset = 7

    class Box:
        def __init__(self, array):
            self.array = array

        def total(self):
            return float(self.array.sum()) + offset

    def make_box(n):
        return Box(np.arange(n, dtype="f8"))

    def where_am_i(box):
        return type(box).__name__, os.getpid(), box.total()

    box = client.submit(make_box, 10**6)
    name, pid, total = client.submit(where_am_i, box).result()
    assert name == "Box" and pid != os.getpid()
    assert total == float(np.arange(10**6, dtype="f8").sum()) + offset
    # Back here, cloudpickle maps the worker's copy of the class to the class it came from.
    local = box.result()
    assert type(local) is Box and local.total() == total
    # A local class instance sent from here, holding arrays of each kind.
    results = client.gather([client.submit(Box.total, Box(array)) for array in arrays().values()])
    assert results == [float(array.sum()) + offset for array in arrays().values()]


def out_of_band_frames():
    """distributed's pickle serializer on a local class holding arrays: their memory becomes frames."""

    class Holder:
        def __init__(self, **arrays):
            self.arrays = arrays

    data = arrays()
    holder = Holder(**data)
    header, frames = serialize(holder, serializers=("pickle",))
    shared = sorted(
        name
        for name, array in data.items()
        if any(np.shares_memory(np.frombuffer(frame, dtype=np.uint8), array) for frame in frames[1:])
    )
    back = deserialize(header, frames)
    same = all(np.array_equal(back.arrays[name], array) for name, array in data.items())
    return {"frames": len(frames), "zero-copy": shared, "round trip": same}


def test_pickle_serializer_sends_array_memory_out_of_band(client):
    expected = {
        "frames": 1 + 4,  # the pickle, then one frame per contiguous array
        "zero-copy": ["C-contiguous", "Fortran-ordered", "int32", "read-only"],
        "round trip": True,
    }
    assert out_of_band_frames() == expected
    assert list(client.run(out_of_band_frames).values()) == [expected, expected]


def test_pickle5_is_pickle5_rs_here():
    assert served_by_pickle5_rs(pickle5)
