"""Behaviour of ``pickle5_rs.PickleBuffer`` on every interpreter.

On 3.8+ it is ``pickle.PickleBuffer``; on 3.6/3.7 it is our own type, which must behave the same:
these tests hold both to CPython 3.8's semantics (buffer forwarding, ``raw()``, ``release()``,
weak references, GC, refusal to be pickled by reduction).

Runs under pytest or ``python -m unittest``.
"""

import copy
import gc
import pickle
import struct
import sys
import unittest
import weakref

import pickle5_rs
from pickle5_rs import PickleBuffer

try:
    from _testbuffer import ndarray
except ImportError:  # pragma: no cover - CPython builds without test modules
    ndarray = None

try:
    import numpy
except ImportError:
    numpy = None

RELEASED = "operation forbidden on released PickleBuffer object"
needs_testbuffer = unittest.skipIf(ndarray is None, "_testbuffer not available")
needs_numpy = unittest.skipIf(numpy is None, "numpy not installed")


class BytesWithAttrs(bytes):
    """A bytes exporter that can take part in a reference cycle."""


class WeakableBytearray(bytearray):
    """A writable exporter that supports weak references and attributes."""


def layout(view):
    """Everything a consumer can observe about a memoryview's layout and content."""
    return {
        "nbytes": view.nbytes,
        "readonly": view.readonly,
        "itemsize": view.itemsize,
        "format": view.format,
        "ndim": view.ndim,
        "shape": view.shape,
        "strides": view.strides,
        "c_contiguous": view.c_contiguous,
        "f_contiguous": view.f_contiguous,
        "contiguous": view.contiguous,
        "tobytes": view.tobytes(),
    }


class TypeTests(unittest.TestCase):
    def test_identity(self):
        if sys.version_info >= (3, 8):
            self.assertIs(PickleBuffer, pickle.PickleBuffer)
        else:
            self.assertEqual(PickleBuffer.__module__, "pickle5_rs")
            self.assertEqual(PickleBuffer.__qualname__, "PickleBuffer")
            self.assertEqual(PickleBuffer.__name__, "PickleBuffer")
            self.assertIs(pickle5_rs._core.PickleBuffer, PickleBuffer)
        self.assertIn("PickleBuffer", pickle5_rs.__all__)

    def test_public_methods(self):
        public = sorted(name for name in dir(PickleBuffer) if not name.startswith("_"))
        self.assertEqual(public, ["raw", "release"])
        self.assertTrue(PickleBuffer.__doc__)
        self.assertTrue(PickleBuffer.raw.__doc__)
        self.assertTrue(PickleBuffer.release.__doc__)

    def test_not_a_context_manager(self):
        # Like 3.8's type; memoryview(pb) is the context manager.
        self.assertFalse(hasattr(PickleBuffer, "__enter__"))
        self.assertFalse(hasattr(PickleBuffer, "__exit__"))

    def test_not_subclassable(self):
        with self.assertRaises(TypeError):
            type("Sub", (PickleBuffer,), {})

    def test_no_instance_attributes(self):
        pb = PickleBuffer(b"x")
        with self.assertRaises(AttributeError):
            pb.extra = 1
        self.assertFalse(hasattr(pb, "__dict__"))

    def test_identity_semantics(self):
        a, b = PickleBuffer(b"x"), PickleBuffer(b"x")
        self.assertEqual(a, a)
        self.assertNotEqual(a, b)
        self.assertEqual(hash(a), hash(a))
        self.assertIn("PickleBuffer object at", repr(a))


class ConstructorTests(unittest.TestCase):
    def test_needs_exactly_one_positional_argument(self):
        with self.assertRaises(TypeError):
            PickleBuffer()
        with self.assertRaises(TypeError):
            PickleBuffer(b"a", b"b")
        with self.assertRaises(TypeError):
            PickleBuffer(obj=b"a")
        with self.assertRaises(TypeError):
            PickleBuffer(b"a", extra=1)

    def test_needs_a_buffer(self):
        for not_a_buffer in ("text", 1, None, [1, 2], object()):
            with self.assertRaises(TypeError):
                PickleBuffer(not_a_buffer)

    def test_released_memoryview_is_refused(self):
        view = memoryview(b"abc")
        view.release()
        with self.assertRaises(ValueError):
            PickleBuffer(view)

    def test_accepts_bytes_likes(self):
        import array

        for obj in (b"", b"abc", bytearray(b"abc"), memoryview(b"abc"), array.array("i", [1, 2])):
            with self.subTest(obj=obj):
                self.assertEqual(bytes(PickleBuffer(obj)), bytes(obj))

    def test_wrapping_a_pickle_buffer(self):
        data = b"inner"
        outer = PickleBuffer(PickleBuffer(data))
        with memoryview(outer) as m:
            self.assertIs(m.obj, data)
            self.assertEqual(m.tobytes(), data)


class BufferProtocolTests(unittest.TestCase):
    def test_readonly_exporter(self):
        data = b"foo"
        pb = PickleBuffer(data)
        self.assertEqual(bytes(pb), b"foo")
        self.assertEqual(bytearray(pb), bytearray(b"foo"))
        with memoryview(pb) as m:
            self.assertTrue(m.readonly)
            self.assertIs(m.obj, data)  # consumers get the exporter's own view
            with self.assertRaises(TypeError):
                m[0] = 1

    def test_writable_exporter(self):
        data = bytearray(b"foo")
        pb = PickleBuffer(data)
        with memoryview(pb) as m:
            self.assertFalse(m.readonly)
            self.assertIs(m.obj, data)
            m[0] = ord("0")
        self.assertEqual(bytes(pb), b"0oo")
        self.assertEqual(data, bytearray(b"0oo"))

    def test_layout_matches_exporter(self):
        import array

        exporters = [b"", b"abc", bytearray(b"abcd"), array.array("d", [1.5, 2.5])]
        base = bytearray(range(12))
        exporters += [memoryview(base)[::2], memoryview(base)[::-3], memoryview(base).cast("i")]
        exporters += [memoryview(base).cast("B", (3, 4)), memoryview(base).cast("H", (2, 3))]
        for obj in exporters:
            with self.subTest(obj=obj):
                with memoryview(PickleBuffer(obj)) as got, memoryview(obj) as expected:
                    self.assertEqual(layout(got), layout(expected))

    @needs_testbuffer
    def test_layout_of_ndarrays(self):
        c_order = ndarray(list(range(12)), shape=(4, 3), format="<i")
        strided = c_order[::2]
        f_order = ndarray(list(range(12)), shape=(3, 4), strides=(4, 12), format="<i")
        scalar = ndarray(7, shape=(), format="<q")
        self.assertTrue(c_order.c_contiguous and not c_order.f_contiguous)
        self.assertFalse(strided.c_contiguous or strided.f_contiguous)
        self.assertTrue(f_order.f_contiguous and not f_order.c_contiguous)
        for arr in (c_order, strided, f_order, scalar):
            with self.subTest(shape=arr.shape, strides=arr.strides):
                with memoryview(PickleBuffer(arr)) as got, memoryview(arr) as expected:
                    self.assertEqual(layout(got), layout(expected))

    def test_other_consumers(self):
        pb = PickleBuffer(b"\x01\x02\x03\x04")
        self.assertEqual(struct.unpack("<I", pb), (0x04030201,))
        self.assertEqual(int.from_bytes(pb, "little"), 0x04030201)
        self.assertEqual(b"".join([b"x", pb]), b"x\x01\x02\x03\x04")
        import hashlib

        self.assertEqual(hashlib.sha1(pb).digest(), hashlib.sha1(b"\x01\x02\x03\x04").digest())

    def test_exports_are_counted_on_the_exporter(self):
        data = bytearray(b"abc")
        pb = PickleBuffer(data)
        with self.assertRaises(BufferError):
            data.append(1)  # PickleBuffer holds an export
        view = memoryview(pb)
        pb.release()
        with self.assertRaises(BufferError):
            data.append(1)  # the consumer's own export remains
        self.assertEqual(view.tobytes(), b"abc")
        view.release()
        data.append(ord("d"))
        self.assertEqual(data, bytearray(b"abcd"))

    def test_dropping_releases_the_export(self):
        data = bytearray(b"abc")
        pb = PickleBuffer(data)
        del pb
        data.extend(b"def")
        self.assertEqual(data, bytearray(b"abcdef"))


class ReleaseTests(unittest.TestCase):
    def test_released_buffer_refuses_everything(self):
        pb = PickleBuffer(b"foo")
        pb.release()
        for use in (memoryview, bytes, bytearray, lambda obj: obj.raw()):
            with self.assertRaises(ValueError) as caught:
                use(pb)
            self.assertIn(RELEASED, str(caught.exception))

    def test_release_is_idempotent(self):
        pb = PickleBuffer(bytearray(b"foo"))
        pb.release()
        pb.release()
        self.assertIsNone(pb.release())

    def test_release_drops_the_reference(self):
        data = WeakableBytearray(b"foo")
        ref = weakref.ref(data)
        pb = PickleBuffer(data)
        del data
        self.assertIsNotNone(ref())
        pb.release()
        self.assertIsNone(ref())


class RawTests(unittest.TestCase):
    def check_raw(self, obj, expected_bytes, readonly):
        pb = PickleBuffer(obj)
        with pb.raw() as m:
            self.assertIsInstance(m, memoryview)
            self.assertEqual(m.format, "B")
            self.assertEqual(m.itemsize, 1)
            self.assertEqual(m.ndim, 1)
            self.assertEqual(m.shape, (len(expected_bytes),))
            self.assertEqual(m.strides, (1,))
            self.assertTrue(m.c_contiguous and m.f_contiguous and m.contiguous)
            self.assertEqual(m.nbytes, len(expected_bytes))
            self.assertEqual(m.readonly, readonly)
            self.assertEqual(m.tobytes(), expected_bytes)
            self.assertEqual(bytes(m), expected_bytes)
            self.assertEqual(m.tolist(), list(expected_bytes))
            self.assertEqual(m[1:].tobytes(), expected_bytes[1:])

    def test_raw_bytes_and_bytearray(self):
        self.check_raw(b"foo", b"foo", readonly=True)
        self.check_raw(b"", b"", readonly=True)
        self.check_raw(bytearray(b"foo"), b"foo", readonly=False)

    def test_raw_is_writable_for_writable_exporters(self):
        data = bytearray(b"foo")
        with PickleBuffer(data).raw() as m:
            m[2] = ord("x")
        self.assertEqual(data, bytearray(b"fox"))

    def test_raw_of_typed_and_multidimensional_memoryviews(self):
        base = bytearray(range(12))
        self.check_raw(memoryview(base).cast("i"), bytes(base), readonly=False)
        self.check_raw(memoryview(base).cast("H", (2, 3)), bytes(base), readonly=False)
        self.check_raw(memoryview(bytes(base))[4:8], bytes(base[4:8]), readonly=True)

    @needs_testbuffer
    def test_raw_of_ndarrays(self):
        one_d = ndarray(list(range(3)), shape=(3,), format="<h")
        self.check_raw(one_d, b"\x00\x00\x01\x00\x02\x00", readonly=True)
        c_order = ndarray(list(range(6)), shape=(2, 3), format="<h")
        self.check_raw(c_order, bytes([0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0]), readonly=True)
        # Fortran order: raw() gives memory order, which differs from tobytes()'s logical order.
        f_order = ndarray(list(range(6)), shape=(2, 3), strides=(2, 4), format="<h")
        self.assertNotEqual(f_order.tobytes(), bytes([0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0]))
        self.check_raw(f_order, bytes([0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0]), readonly=True)
        scalar = ndarray(456, shape=(), format="<i")
        self.check_raw(scalar, struct.pack("<i", 456), readonly=True)

    def test_raw_refuses_non_contiguous_memoryview(self):
        base = bytearray(range(12))
        for obj in (memoryview(base)[::2], memoryview(base).cast("B", (3, 4))[::2]):
            with self.subTest(shape=obj.shape):
                with self.assertRaisesRegex(BufferError, "non-contiguous"):
                    PickleBuffer(obj).raw()

    @needs_testbuffer
    def test_raw_refuses_non_contiguous_ndarrays(self):
        one_d = ndarray(list(range(6)), shape=(6,), format="<i")[::2]
        two_d = ndarray(list(range(12)), shape=(4, 3), format="<i")[::2]
        for arr in (one_d, two_d):
            with self.subTest(shape=arr.shape):
                with self.assertRaisesRegex(BufferError, "non-contiguous"):
                    PickleBuffer(arr).raw()

    def test_raw_of_released_buffer(self):
        pb = PickleBuffer(b"foo")
        pb.release()
        with self.assertRaisesRegex(ValueError, RELEASED):
            pb.raw()

    def test_raw_keeps_the_memory_alive(self):
        pb = PickleBuffer(BytesWithAttrs(b"kept"))
        m = pb.raw()
        self.assertIsInstance(m.obj, BytesWithAttrs)
        pb.release()
        del pb
        gc.collect()
        self.assertEqual(m.tobytes(), b"kept")
        m.release()


class WeakrefAndGcTests(unittest.TestCase):
    def test_weak_reference(self):
        pb = PickleBuffer(b"foo")
        calls = []
        ref = weakref.ref(pb, calls.append)
        self.assertIs(ref(), pb)
        proxy = weakref.proxy(pb)
        self.assertEqual(bytes(proxy.raw()), b"foo")
        del pb
        self.assertIsNone(ref())
        self.assertEqual(calls, [ref])

    def test_cycle_through_the_exporter_is_collected(self):
        for cls in (BytesWithAttrs, WeakableBytearray):
            with self.subTest(exporter=cls.__name__):
                data = cls(b"foo")
                pb = PickleBuffer(data)
                data.cycle = pb
                pb_ref = weakref.ref(pb)
                del data, pb
                gc.collect()
                self.assertIsNone(pb_ref())

    def test_cycle_through_a_memoryview_is_collected(self):
        data = WeakableBytearray(b"foo")
        pb = PickleBuffer(data)
        data.cycle = pb
        data.view = memoryview(pb)
        data.raw = pb.raw()
        refs = weakref.ref(pb), weakref.ref(data)
        del data, pb
        gc.collect()
        self.assertEqual([ref() for ref in refs], [None, None])

    def test_gc_sees_the_exporter(self):
        data = BytesWithAttrs(b"foo")
        pb = PickleBuffer(data)
        self.assertIn(data, gc.get_referents(pb))
        pb.release()
        self.assertNotIn(data, gc.get_referents(pb))


class NoReductionTests(unittest.TestCase):
    """Only a pickler's special case handles PickleBuffer; reduction must refuse it."""

    def test_reduce_refuses(self):
        pb = PickleBuffer(b"foo")
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            with self.subTest(protocol=protocol):
                with self.assertRaisesRegex(
                    TypeError, "cannot pickle 'PickleBuffer'|cannot pickle '.*PickleBuffer' object"
                ):
                    pb.__reduce_ex__(protocol)
        with self.assertRaisesRegex(TypeError, "cannot pickle 'PickleBuffer' object"):
            pb.__reduce__()

    def test_copy_refuses(self):
        pb = PickleBuffer(bytearray(b"foo"))
        with self.assertRaises(TypeError):
            copy.copy(pb)
        with self.assertRaises(TypeError):
            copy.deepcopy(pb)

    def test_stdlib_pickler_below_protocol_5_refuses(self):
        # 3.8+: the pickler's own "protocol >= 5" error; 3.6/3.7: reduction refuses.
        for protocol in range(min(pickle.HIGHEST_PROTOCOL, 4) + 1):
            with self.subTest(protocol=protocol):
                with self.assertRaises((TypeError, pickle.PicklingError)):
                    pickle.dumps(PickleBuffer(b"foo"), protocol=protocol)


class RustApiTests(unittest.TestCase):
    """The helpers the Rust pickler/unpickler use, through their test hooks."""

    probe = staticmethod(pickle5_rs._core._pickle_buffer_probe)
    readonly_view = staticmethod(pickle5_rs._core._readonly_view)

    def test_recognises_only_pickle_buffers(self):
        for obj in (b"x", bytearray(b"x"), memoryview(b"x"), None, PickleBuffer):
            self.assertIsNone(self.probe(obj))

    def test_view_of_pickle_buffer(self):
        self.assertEqual(self.probe(PickleBuffer(b"abc")), (True, True, b"abc"))
        self.assertEqual(self.probe(PickleBuffer(bytearray(b"abc"))), (False, True, b"abc"))
        self.assertEqual(self.probe(PickleBuffer(b"")), (True, True, b""))
        base = bytearray(range(8))
        self.assertEqual(self.probe(PickleBuffer(memoryview(base)[::2])), (False, False, None))
        two_d = memoryview(base).cast("B", (2, 4))
        self.assertEqual(self.probe(PickleBuffer(two_d)), (False, True, bytes(base)))

    @needs_testbuffer
    def test_view_of_fortran_ndarray_is_memory_order(self):
        f_order = ndarray(list(range(6)), shape=(2, 3), strides=(2, 4), format="<h")
        memory = bytes([0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0])
        self.assertEqual(self.probe(PickleBuffer(f_order)), (True, True, memory))

    def test_view_of_released_pickle_buffer(self):
        pb = PickleBuffer(b"abc")
        pb.release()
        with self.assertRaisesRegex(ValueError, RELEASED):
            self.probe(pb)

    def test_readonly_view(self):
        self.assertIsNone(self.readonly_view(b"abc"))
        self.assertIsNone(self.readonly_view(PickleBuffer(b"abc")))
        data = bytearray(b"abc")
        for source in (data, PickleBuffer(data), memoryview(data)):
            with self.subTest(source=type(source).__name__):
                view = self.readonly_view(source)
                self.assertIsInstance(view, memoryview)
                self.assertTrue(view.readonly)
                self.assertIs(view.obj, data)
                with self.assertRaises(TypeError):
                    view[0] = 0
                data[0] = ord("z")
                self.assertEqual(view.tobytes(), bytes(data))  # same memory, no copy
                self.assertTrue(view[1:].readonly)
                self.assertTrue(memoryview(view).readonly)
                view.release()
        with self.assertRaises(TypeError):
            self.readonly_view("text")


class RefcountTests(unittest.TestCase):
    @unittest.skipUnless(hasattr(sys, "getrefcount"), "needs sys.getrefcount")
    def test_no_leaks(self):
        for data in (b"payload", bytearray(b"payload"), memoryview(bytearray(b"payload")).cast("B", (7, 1))):
            with self.subTest(exporter=type(data).__name__):
                gc.collect()
                before_data = sys.getrefcount(data)
                before_type = sys.getrefcount(PickleBuffer)
                for _ in range(2000):
                    pb = PickleBuffer(data)
                    with memoryview(pb) as m:
                        m.tobytes()
                    with pb.raw() as r:
                        r.tobytes()
                    bytes(pb)
                    bytearray(pb)
                    weakref.ref(pb)
                    pb.release()
                    try:
                        memoryview(pb)
                    except ValueError:
                        pass
                    PickleBuffer(data)  # dropped without release
                    pickle5_rs._core._pickle_buffer_probe(PickleBuffer(data))
                    pickle5_rs._core._readonly_view(data)
                del pb, m, r
                gc.collect()
                self.assertEqual(sys.getrefcount(data), before_data)
                self.assertEqual(sys.getrefcount(PickleBuffer), before_type)

    @unittest.skipUnless(hasattr(sys, "getrefcount"), "needs sys.getrefcount")
    def test_no_leaks_on_errors(self):
        released = memoryview(b"x")
        released.release()
        before = sys.getrefcount(released)
        before_type = sys.getrefcount(PickleBuffer)
        for _ in range(1000):
            for bad in ("text", released):
                try:
                    PickleBuffer(bad)
                except (TypeError, ValueError):
                    pass
            del bad
            try:
                PickleBuffer(memoryview(b"abcd")[::2]).raw()
            except BufferError:
                pass
        self.assertEqual(sys.getrefcount(released), before)
        self.assertEqual(sys.getrefcount(PickleBuffer), before_type)


@needs_numpy
class NumpyTests(unittest.TestCase):
    def test_frombuffer_shares_memory(self):
        data = bytearray(struct.pack("<4i", 1, 2, 3, 4))
        pb = PickleBuffer(data)
        arr = numpy.frombuffer(pb, dtype="<i4")
        self.assertEqual(arr.tolist(), [1, 2, 3, 4])
        self.assertTrue(arr.flags.writeable)
        arr[0] = 100  # numpy writes straight into the bytearray
        self.assertEqual(struct.unpack_from("<i", data)[0], 100)
        data[4:8] = struct.pack("<i", -2)
        self.assertEqual(arr[1], -2)

    def test_readonly_exporter_gives_readonly_array(self):
        arr = numpy.frombuffer(PickleBuffer(struct.pack("<2d", 1.5, 2.5)), dtype="<f8")
        self.assertEqual(arr.tolist(), [1.5, 2.5])
        self.assertFalse(arr.flags.writeable)
        with self.assertRaises(ValueError):
            arr[0] = 0

    def test_asarray_keeps_layout(self):
        source = numpy.arange(12, dtype="<i4").reshape(3, 4)
        for arr in (source, source.T, source[::2, ::3], source[0]):
            with self.subTest(shape=arr.shape, strides=arr.strides):
                pb = PickleBuffer(arr)
                view = numpy.asarray(pb)
                self.assertEqual(view.shape, arr.shape)
                self.assertEqual(view.strides, arr.strides)
                self.assertTrue(numpy.array_equal(view, arr))
                self.assertTrue(numpy.shares_memory(view, source))
                with memoryview(pb) as m, memoryview(arr) as expected:
                    self.assertEqual(layout(m), layout(expected))

    def test_raw_of_arrays(self):
        source = numpy.arange(6, dtype="<i2").reshape(2, 3)
        self.assertEqual(PickleBuffer(source).raw().tobytes(), source.tobytes(order="C"))
        fortran = numpy.asfortranarray(source)
        self.assertEqual(PickleBuffer(fortran).raw().tobytes(), fortran.tobytes(order="F"))
        with self.assertRaisesRegex(BufferError, "non-contiguous"):
            PickleBuffer(source[:, ::2]).raw()
        raw = PickleBuffer(source).raw()
        raw[0] = 7
        self.assertEqual(source[0, 0], 7)

    def test_array_refcount(self):
        arr = numpy.arange(10)
        before = sys.getrefcount(arr)
        for _ in range(1000):
            pb = PickleBuffer(arr)
            numpy.frombuffer(pb, dtype=arr.dtype).sum()
            numpy.asarray(pb).sum()
            pb.raw().tobytes()
            pb.release()
        del pb
        gc.collect()
        self.assertEqual(sys.getrefcount(arr), before)


if __name__ == "__main__":
    unittest.main()
