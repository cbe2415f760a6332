"""Protocol 5 with an out-of-band buffer, using pickle5_rs as a drop-in for ``pickle``.

Run it with ``scripts/demo`` (builds and installs the wheel on CPython 3.6 and
3.13), or with ``python examples/demo.py`` wherever pickle5_rs is installed.
"""

import sys

import pickle5_rs as pickle


class Image:
    """A header plus one large pixel buffer: the shape of a numpy array or an Arrow column."""

    def __init__(self, width, height, pixels):
        self.width = width
        self.height = height
        self.pixels = pixels  # anything that exports a buffer

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            # A PickleBuffer lets the pickler hand the pixels to buffer_callback
            # instead of copying them into the pickle.
            return Image, (self.width, self.height, pickle.PickleBuffer(self.pixels))
        return Image, (self.width, self.height, bytes(self.pixels))


def check(condition, what):
    if not condition:
        sys.exit("FAILED: " + what)
    print("  ok:", what)


def reference_module():
    """The C pickler pickle5_rs must match byte for byte, if there is one here."""
    if sys.version_info >= (3, 8):
        import pickle as stdlib_pickle

        return stdlib_pickle
    try:
        import pickle5
    except ImportError:
        return None
    return pickle5


def main():
    print("pickle5_rs on Python %s, from %s" % (sys.version.split()[0], pickle.__file__))
    pixels = bytearray(range(256)) * (1024 * 768 // 256)
    image = Image(1024, 768, pixels)

    print("\n1. In band: the pixels are copied into the pickle.")
    in_band = pickle.dumps(image, protocol=5)
    print("  pickle: %d bytes for %d bytes of pixels" % (len(in_band), len(pixels)))
    restored = pickle.loads(in_band)
    check(type(restored.pixels) is bytearray, "pixels come back as a bytearray")
    check(restored.pixels == pixels, "pixels are equal")
    check((restored.width, restored.height) == (1024, 768), "header is equal")

    print("\n2. Out of band: buffer_callback receives the pixels, the pickle keeps a reference.")
    buffers = []
    out_of_band = pickle.dumps(image, protocol=5, buffer_callback=buffers.append)
    print("  pickle: %d bytes: %r" % (len(out_of_band), out_of_band))
    print("  buffer_callback was called %d time(s) with %s" % (len(buffers), type(buffers[0]).__name__))
    check(len(buffers) == 1 and len(out_of_band) < 200, "the pixels are not in the pickle")
    check(pickle.NEXT_BUFFER in out_of_band, "the pickle has a NEXT_BUFFER opcode")
    restored = pickle.loads(out_of_band, buffers=buffers)
    view = memoryview(restored.pixels)
    check(view.nbytes == len(pixels) and view.tobytes() == bytes(pixels), "pixels are equal")
    pixels[0] = 0xFF
    check(view[0] == 0xFF, "zero copy: the restored pixels share memory with the original")

    print("\n3. Without the buffers, an out-of-band pickle cannot be loaded.")
    try:
        pickle.loads(out_of_band)
        raised = None
    except pickle.UnpicklingError as exc:
        raised = exc
    check(raised is not None, "loads() without buffers= raises pickle.UnpicklingError: %s" % raised)

    print("\n4. Same bytes as the reference C pickler.")
    reference = reference_module()
    if reference is None:
        print("  skipped: pip install pickle5 to compare on Python < 3.8")
        return

    def out_of_band_pickle(module):
        collected = []
        record = {"name": "pixels", "data": module.PickleBuffer(pixels)}
        data = module.dumps(record, protocol=5, buffer_callback=collected.append)
        return data, len(collected)

    name = reference.__name__
    check(out_of_band_pickle(pickle) == out_of_band_pickle(reference), "identical to %s, out of band" % name)
    record = {"name": "pixels", "data": pixels, "sizes": [1, 2.5, None, True]}
    check(
        pickle.dumps(record, protocol=5) == reference.dumps(record, protocol=5),
        "identical to %s, in band" % name,
    )


if __name__ == "__main__":
    main()
