"""numpy arrays at protocol 5 with out-of-band buffers: zero copies, through pickle5_rs directly, as
`pickle5`, and through cloudpickle.

numpy's C code imports `pickle5` for `PickleBuffer` when an array is reduced at protocol 5, so these
tests also show that numpy gets pickle5_rs's PickleBuffer from the alias. An array that is neither
C- nor Fortran-contiguous goes in band, as with the C pickler; the byte-for-byte comparison with the
C pickle5 backport runs when `PICKLE5_RS_REFERENCE_PATH` names a directory that holds it.
"""

import io
import os

import cloudpickle
import numpy as np
import pickle5
import pytest
from conftest import reference_python

import pickle5_rs

SHAPE = (512, 1024)  # 4 MiB of float64: far more than any pickle of its metadata


def c_contiguous():
    return np.random.RandomState(0).standard_normal(SHAPE)


def fortran_ordered():
    return np.asfortranarray(c_contiguous())


def read_only():
    array = c_contiguous()
    array.setflags(write=False)
    return array


def non_contiguous():
    return c_contiguous()[::2, ::3]


ZERO_COPY = {"C-contiguous": c_contiguous, "Fortran-ordered": fortran_ordered, "read-only": read_only}
PICKLERS = {
    "pickle5_rs": (pickle5_rs.dumps, pickle5_rs.loads),
    "pickle5": (pickle5.dumps, pickle5.loads),
    "cloudpickle": (cloudpickle.dumps, cloudpickle.loads),
}


def addresses(array):
    """The first byte and the extent of an array's memory."""
    low, high = np.byte_bounds(array)
    return low, high - low


def test_numpy_reduces_to_pickle5_rs_picklebuffer():
    reduced = c_contiguous().__reduce_ex__(5)
    assert type(reduced[1][0]) is pickle5_rs.PickleBuffer is pickle5_rs._core.PickleBuffer


@pytest.mark.parametrize("pickler", sorted(PICKLERS))
@pytest.mark.parametrize("kind", sorted(ZERO_COPY))
def test_out_of_band_zero_copy(kind, pickler):
    dumps, loads = PICKLERS[pickler]
    array = ZERO_COPY[kind]()
    buffers = []
    data = dumps(array, protocol=5, buffer_callback=buffers.append)

    # One buffer, the array's own memory; the pickle stream holds only the metadata.
    assert len(buffers) == 1 and isinstance(buffers[0], pickle5_rs.PickleBuffer)
    raw = buffers[0].raw()
    assert raw.readonly == (not array.flags.writeable)
    assert addresses(np.frombuffer(raw, dtype=np.uint8)) == addresses(array)
    assert len(data) < 300

    loaded = loads(data, buffers=buffers)
    assert addresses(loaded) == addresses(array) and np.shares_memory(loaded, array)
    assert loaded.flags.c_contiguous == array.flags.c_contiguous
    assert loaded.flags.f_contiguous == array.flags.f_contiguous
    assert loaded.flags.writeable == array.flags.writeable
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    if array.flags.writeable:  # the same memory: a write shows through
        array[1, 2] = 12345.0
        assert loaded[1, 2] == 12345.0


@pytest.mark.parametrize("pickler", sorted(PICKLERS))
def test_non_contiguous_goes_in_band(pickler):
    dumps, loads = PICKLERS[pickler]
    array = non_contiguous()
    buffers = []
    data = dumps(array, protocol=5, buffer_callback=buffers.append)
    assert buffers == [] and len(data) > array.nbytes  # numpy copies it into the stream
    loaded = loads(data)
    assert not np.shares_memory(loaded, array)
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint64", "complex128", "U3", "i4,f8"])
def test_out_of_band_dtypes(dtype):
    array = np.zeros((64, 3), dtype=dtype)
    buffers = []
    data = pickle5_rs.dumps(array, protocol=5, buffer_callback=buffers.append)
    loaded = pickle5_rs.loads(data, buffers=buffers)
    assert len(buffers) == 1 and np.shares_memory(loaded, array)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("dtype", ["object", "M8[ns]"])
def test_in_band_dtypes(dtype):
    # numpy's own choice (the same with the C backport): object arrays and datetimes go in band.
    array = np.array([1, 2, 3]).astype(dtype)
    buffers = []
    data = pickle5_rs.dumps(array, protocol=5, buffer_callback=buffers.append)
    assert buffers == []
    np.testing.assert_array_equal(pickle5_rs.loads(data), array)


def test_without_buffer_callback_one_copy_in_band():
    array = c_contiguous()
    data = pickle5_rs.dumps(array, protocol=5)
    assert len(data) > array.nbytes
    loaded = pickle5_rs.loads(data)
    assert not np.shares_memory(loaded, array)
    np.testing.assert_array_equal(loaded, array)


def test_cloudpickle_locally_defined_class_holding_arrays():
    class Frame:
        def __init__(self, **columns):
            self.columns = columns

        def total(self):
            return sum(float(column.sum()) for column in self.columns.values())

    frame = Frame(c=c_contiguous(), f=fortran_ordered(), strided=non_contiguous())
    buffers = []
    data = cloudpickle.dumps(frame, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 2  # the strided column went in band
    loaded = pickle5.loads(data, buffers=buffers)
    assert type(loaded).__name__ == "Frame" and loaded.total() == frame.total()
    assert np.shares_memory(loaded.columns["c"], frame.columns["c"])
    assert np.shares_memory(loaded.columns["f"], frame.columns["f"])
    assert not np.shares_memory(loaded.columns["strided"], frame.columns["strided"])


def test_dump_to_file_and_load_from_file():
    array = fortran_ordered()
    buffers = []
    stream = io.BytesIO()
    pickle5_rs.Pickler(stream, protocol=5, buffer_callback=buffers.append).dump(array)
    stream.seek(0)
    loaded = pickle5_rs.Unpickler(stream, buffers=buffers).load()
    assert np.shares_memory(loaded, array)


def dumps_every_kind(module):
    """One line per array kind: the number of out-of-band buffers and the pickle, in hex."""
    lines = []
    for kind, make in sorted(dict(ZERO_COPY, **{"non-contiguous": non_contiguous}).items()):
        for array in (make(), np.array([1, 2, 3]).astype("M8[ns]"), np.zeros(5, "i4,f8")):
            buffers = []
            data = module.dumps(array, protocol=5, buffer_callback=buffers.append)
            lines.append("%s %d %s" % (kind, len(buffers), data.hex()))
    return lines


def test_same_bytes_as_the_c_backport():
    reference = reference_python(
        "import sys; sys.path.insert(0, %r)\n"
        "import pickle5, test_numpy_zero_copy as t\n"
        "assert pickle5.__spec__.origin != 'pickle5_rs', pickle5  # the backport, not the alias\n"
        "print('\\n'.join(t.dumps_every_kind(pickle5)))" % os.path.dirname(os.path.abspath(__file__))
    )
    assert reference.decode().splitlines() == dumps_every_kind(pickle5_rs)
