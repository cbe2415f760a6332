"""Loading from file objects: the kinds of file the C unpickler accepts, positions, big payloads."""

import pytest

import unpickle_support as support
from unpickle_support import REF, TARGET, TARGET_IS_REFERENCE

SMALL = support.sample_pickles()
FILE_KINDS = list(support.GOOD_FILE_KINDS)


def _expected(data):
    return REF.loads(data) if REF is not None else TARGET.loads(data)


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_sample_through_every_file_kind(kind):
    opener = support.GOOD_FILE_KINDS[kind]
    for name, proto, data in SMALL:
        got = support.run(TARGET.load, opener(data))
        assert got.ok, "%s-p%d via %s: %r" % (name, proto, kind, got.exc)
        assert support.same_value(got.value, _expected(data)), "%s-p%d via %s" % (name, proto, kind)


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_unpickler_class_reads_the_same(kind):
    opener = support.GOOD_FILE_KINDS[kind]
    for name, proto, data in SMALL:
        value = TARGET.Unpickler(opener(data)).load()
        assert support.same_value(value, _expected(data)), "%s-p%d via %s" % (name, proto, kind)


def _positions(module, make_file, blob, count):
    f = make_file(blob)
    out = []
    for _ in range(count):
        outcome = support.run(module.load, f)
        out.append((outcome, f.tell()))
    return out


def _concatenated():
    pieces = []
    for name, _proto, data in SMALL:
        if name in ("nested", "str_300", "bytes_300", "plain", "shared", "many_ints", "floats"):
            pieces.append(data)
    return pieces


TELL_KINDS = ["BytesIO", "read+readline", "read+readline+readinto", "BufferedReader(peek)"]


@pytest.mark.parametrize("kind", TELL_KINDS)
def test_concatenated_pickles_leave_file_after_each_stop(kind):
    pieces = _concatenated()
    blob = b"".join(pieces) + b"trailing garbage"
    opener = support.GOOD_FILE_KINDS[kind]
    got = _positions(TARGET, opener, blob, len(pieces))
    offset = 0
    for piece, (outcome, tell) in zip(pieces, got):
        offset += len(piece)
        assert outcome.ok, outcome.exc
        assert support.same_value(outcome.value, _expected(piece))
        assert tell == offset, "file left at %d, the pickle ended at %d" % (tell, offset)
    if REF is not None:
        assert [t for _, t in _positions(REF, opener, blob, len(pieces))] == [t for _, t in got]


@pytest.mark.parametrize("kind", TELL_KINDS)
def test_one_unpickler_loads_pickles_one_after_another(ref, kind):
    """One Unpickler over several pickles keeps its memo between loads (MEMOIZE indices shift)."""
    pieces = _concatenated()

    def run_all(module):
        f = support.GOOD_FILE_KINDS[kind](b"".join(pieces))
        unpickler = module.Unpickler(f)
        out = []
        for _ in pieces:
            outcome = support.run(unpickler.load)
            out.append((outcome, f.tell(), sorted(unpickler.memo.copy())))
        out.append((support.run(unpickler.load), f.tell(), None))
        return out

    expected, got = run_all(ref), run_all(TARGET)
    for i, ((e, e_tell, e_memo), (g, g_tell, g_memo)) in enumerate(zip(expected, got)):
        support.assert_same_outcome(e, g, "load #%d" % i)
        assert (g_tell, g_memo) == (e_tell, e_memo), "load #%d" % i
    assert isinstance(got[-1][0].exc, EOFError)


def test_end_of_file_is_eoferror():
    for kind in FILE_KINDS:
        got = support.run(TARGET.load, support.GOOD_FILE_KINDS[kind](b""))
        assert isinstance(got.exc, EOFError), (kind, got)
    assert isinstance(support.run(TARGET.loads, b"").exc, EOFError)


# --- misbehaving files --------------------------------------------------------------------------

ODD_FILES = [
    ("short_reads", support.ShortReads),
    ("str_read", support.StrRead),
    ("str_readline", support.StrReadline),
    ("overlong_read", support.OverlongRead),
    ("bytearray_read", support.BytearrayRead),
]


@pytest.mark.parametrize("kind,opener", ODD_FILES, ids=[k for k, _ in ODD_FILES])
def test_misbehaving_file_matches_reference(ref, kind, opener):
    for name, proto, data in SMALL:
        got = support.run(TARGET.load, opener(data))
        expected = support.run(ref.load, opener(data))
        support.assert_same_outcome(expected, got, "%s-p%d via %s" % (name, proto, kind))


def test_read_returning_str_is_typeerror():
    got = support.run(TARGET.load, support.StrRead(support.ref_dumps([1, "abc"], 2)))
    assert isinstance(got.exc, TypeError), got


def test_peek_returning_str_is_not_systemerror():
    for _name, _proto, data in SMALL[:40]:
        got = support.run(TARGET.load, support.StrPeek(data))
        if TARGET_IS_REFERENCE and isinstance(got.exc, SystemError):
            pytest.xfail("the reference raises SystemError when peek() returns str")
        if not got.ok:
            support.assert_clean_error(got.exc)


class _NoRead:
    def readline(self):
        return b""


class _NoReadline:
    def read(self, n=-1):
        return b""


class _ReadRaises(support.ReadReadline):
    def read(self, n=-1):
        raise OSError("disk on fire")


class _ReadlineRaises(support.ReadReadline):
    def readline(self):
        raise OSError("disk on fire")


def test_file_without_read_or_readline_is_typeerror():
    for cls in (_NoRead, _NoReadline):
        with pytest.raises(TypeError):
            TARGET.Unpickler(cls())
        with pytest.raises(TypeError):
            TARGET.load(cls())


def test_errors_from_the_file_propagate():
    with pytest.raises(OSError, match="disk on fire"):
        TARGET.load(_ReadRaises(support.ref_dumps([1, 2], 2)))
    with pytest.raises(OSError, match="disk on fire"):
        TARGET.load(_ReadlineRaises(b"I12\n."))


# --- large payloads and frames ------------------------------------------------------------------

LARGE = support.sample_pickles(support.large_objects(), [p for p in support.PROTOCOLS if p >= 4])
HANDMADE = []
if support.DUMP_PROTOCOL >= 4:
    HANDMADE += [
        ("BINBYTES8", support.handmade_counted(b"\x8e", b"\x01" * (1536 * 1024), 4), b"\x01" * (1536 * 1024)),
        (
            "BINUNICODE8",
            support.handmade_counted(b"\x8d", "\u00e9".encode("utf-8") * (768 * 1024), 4),
            "\u00e9" * (768 * 1024),
        ),
    ]
if support.DUMP_PROTOCOL >= 5:
    HANDMADE.append(
        (
            "BYTEARRAY8",
            support.handmade_counted(b"\x96", b"\x02" * (1536 * 1024), 5),
            bytearray(b"\x02" * (1536 * 1024)),
        )
    )


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_large_payloads_through_files(kind):
    opener = support.GOOD_FILE_KINDS[kind]
    for name, proto, data in LARGE:
        f = opener(data + b"tail")
        value = TARGET.load(f)
        assert support.same_value(value, _expected(data)), "%s-p%d via %s" % (name, proto, kind)
        if hasattr(f, "tell"):
            assert f.tell() == len(data)
    for name, data, expected in HANDMADE:
        value = TARGET.load(opener(data))
        assert type(value) is type(expected) and value == expected, "%s via %s" % (name, kind)


def _reframed_cases():
    cases = []
    if support.DUMP_PROTOCOL < 4:
        return cases
    sources = [
        (n, d) for n, p, d in SMALL if p == 4 and n in ("nested", "dict", "many_ints", "shared", "plain")
    ]
    sources += [(n, d) for n, p, d in LARGE if p == 4 and n in ("mixed_payloads", "many_frames")]
    for name, data in sources:
        for frame_size in (1, 7, 100, 70000, 1 << 30):
            cases.append(("%s-frame%d" % (name, frame_size), support.reframe(data, frame_size), data))
    return cases


REFRAMED = _reframed_cases()


@pytest.mark.parametrize("case_id,data,original", REFRAMED, ids=[c[0] for c in REFRAMED])
def test_frames_of_any_size(case_id, data, original):
    """Frames the pickler would not make (tiny, or one huge frame holding big payloads)."""
    expected = _expected(original)
    assert support.same_value(TARGET.loads(data), expected)
    for kind in FILE_KINDS:
        f = support.GOOD_FILE_KINDS[kind](data + b"\x80")
        assert support.same_value(TARGET.load(f), expected), kind
        if hasattr(f, "tell"):
            assert f.tell() == len(data), kind


def test_opcode_straddling_a_frame_boundary_matches_reference(ref):
    """An opcode split over two frames: the reference reads through; match whatever it does."""
    import struct

    body = b"\x8c\x03abc"
    data = (
        b"\x80\x04\x95" + struct.pack("<Q", 3) + body[:3] + b"\x95" + struct.pack("<Q", 3) + body[3:] + b"."
    )
    for kind in ["loads"] + FILE_KINDS:
        if kind == "loads":
            got, expected = support.run(TARGET.loads, data), support.run(ref.loads, data)
        else:
            opener = support.GOOD_FILE_KINDS[kind]
            got, expected = support.run(TARGET.load, opener(data)), support.run(ref.load, opener(data))
        support.assert_same_outcome(expected, got, kind)


def test_frame_that_ends_early_or_late_matches_reference(ref):
    import struct

    body = b"\x8c\x03abc."
    cases = [
        b"\x80\x04\x95" + struct.pack("<Q", len(body) + 4) + body,  # frame claims more than present
        b"\x80\x04\x95" + struct.pack("<Q", len(body) + 4) + body + b"xxxx",  # STOP inside, junk after
        b"\x80\x04\x95" + struct.pack("<Q", 2) + body,  # STOP after the frame
        b"\x80\x04\x95" + struct.pack("<Q", 20) + b"\x95" + struct.pack("<Q", 5) + body + b"\0" * 6,
    ]
    for data in cases:
        support.assert_same_outcome(support.run(ref.loads, data), support.run(TARGET.loads, data), repr(data))
        for kind in FILE_KINDS:
            opener = support.GOOD_FILE_KINDS[kind]
            support.assert_same_outcome(
                support.run(ref.load, opener(data)), support.run(TARGET.load, opener(data)), kind + repr(data)
            )


def test_loads_accepts_bytes_like(ref):
    data = support.ref_dumps({"a": [1, 2.5, b"x"]}, support.DUMP_PROTOCOL)
    for wrap in (bytes, bytearray, memoryview):
        support.assert_same_outcome(support.run(ref.loads, wrap(data)), support.run(TARGET.loads, wrap(data)))
    for bad in ("N.", 42, None):
        support.assert_same_outcome(support.run(ref.loads, bad), support.run(TARGET.loads, bad), repr(bad))


def test_loads_ignores_data_after_stop():
    data = support.ref_dumps([1, 2], 2)
    assert TARGET.loads(data + b"garbage after the end") == [1, 2]


@pytest.mark.skipif(TARGET_IS_REFERENCE, reason="the C unpickler frees the memory such a view reaches")
@pytest.mark.parametrize("size", [100_000, 3_000_000])  # payloads read outside frames
@pytest.mark.parametrize("short", [True, False])
@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_readinto_keeping_a_view_of_the_buffer(size, short, kind):
    # readinto() keeps a view derived from the one it is given and the load then fails (or goes
    # on): the memory the view reaches must stay valid, not be freed under it.
    import io

    kept = []

    class KeepsView:
        def __init__(self, data):
            self.file = io.BytesIO(data)

        def read(self, n=-1):
            return self.file.read(n)

        def readline(self):
            return self.file.readline()

        def readinto(self, view):
            kept.append(view[:])
            return 0 if short else self.file.readinto(view)

    value = [kind(b"x" * size), "after"]
    data = TARGET.dumps(value, 5)
    if short:
        with pytest.raises(TARGET.UnpicklingError):
            TARGET.load(KeepsView(data))
    else:
        assert TARGET.load(KeepsView(data)) == value
    others = [bytes([7]) * size for _ in range(20)]
    kept[0][:5] = b"HELLO"
    assert bytes(kept[0][:5]) == b"HELLO"
    assert all(o == bytes([7]) * size for o in others)
