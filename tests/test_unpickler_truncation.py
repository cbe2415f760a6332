"""Every truncation of real pickles fails cleanly, with the exception class the reference raises."""

import io

import pytest

import unpickle_support as support
from unpickle_support import REF, TARGET

SMALL = support.sample_pickles()
LARGE = support.sample_pickles(support.large_objects(), [p for p in support.PROTOCOLS if p in (2, 4, 5)])
HANDMADE = []
if support.DUMP_PROTOCOL >= 4:
    HANDMADE += [
        ("BINBYTES8", 4, support.handmade_counted(b"\x8e", b"\x01" * (1536 * 1024), 4)),
        ("BINUNICODE8", 4, support.handmade_counted(b"\x8d", "\u00e9".encode("utf-8") * (768 * 1024), 4)),
        ("one_big_frame", 4, support.reframe(support.ref_dumps(support.large_objects()[-1][1], 4), 1 << 30)),
    ]
if support.DUMP_PROTOCOL >= 5:
    HANDMADE.append(("BYTEARRAY8", 5, support.handmade_counted(b"\x96", b"\x02" * (1536 * 1024), 5)))


def _ids(cases):
    return ["%s-p%d" % (name, proto) for name, proto, _ in cases]


def _check_every_cut(data, target_load, ref_load, context):
    for cut in support.cut_points(data):
        chunk = data[:cut]
        got = support.run(target_load, chunk)
        where = "%s cut at %d of %d" % (context, cut, len(data))
        assert not got.ok, "%s: truncated pickle loaded as %r" % (where, got.value)
        support.assert_clean_error(got.exc, where)
        if ref_load is not None:
            expected = support.run(ref_load, chunk)
            assert not expected.ok
            support.assert_same_error(expected.exc, got.exc, where)


def _file_loader(module, opener):
    return lambda chunk: module.load(opener(chunk))


@pytest.mark.parametrize("name,proto,data", SMALL, ids=_ids(SMALL))
def test_truncated_loads(name, proto, data):
    _check_every_cut(data, TARGET.loads, REF.loads if REF else None, name)


@pytest.mark.parametrize("name,proto,data", SMALL, ids=_ids(SMALL))
def test_truncated_load_from_bytesio(name, proto, data):
    ref_load = _file_loader(REF, io.BytesIO) if REF else None
    _check_every_cut(data, _file_loader(TARGET, io.BytesIO), ref_load, name)


@pytest.mark.parametrize("kind", ["read+readline", "BufferedReader(peek)", "read+readline+readinto"])
@pytest.mark.parametrize("name", ["nested", "str_300", "bytes_300", "shared", "plain"])
def test_truncated_load_from_other_files(kind, name):
    opener = support.GOOD_FILE_KINDS[kind]
    ref_load = _file_loader(REF, opener) if REF else None
    for case_name, proto, data in SMALL:
        if case_name == name:
            _check_every_cut(data, _file_loader(TARGET, opener), ref_load, "%s-p%d" % (name, proto))


@pytest.mark.parametrize("name,proto,data", LARGE + HANDMADE, ids=_ids(LARGE + HANDMADE))
def test_truncated_large(name, proto, data):
    assert support.same_value(TARGET.loads(data), REF.loads(data) if REF else TARGET.loads(data))
    _check_every_cut(data, TARGET.loads, REF.loads if REF else None, name)


LARGE_FRAMED = [case for case in LARGE if case[1] >= 4] + HANDMADE


@pytest.mark.parametrize("name,proto,data", LARGE_FRAMED, ids=_ids(LARGE_FRAMED))
def test_truncated_large_from_files(name, proto, data):
    for kind in ("BytesIO", "BufferedReader(peek)", "read+readline+readinto"):
        opener = support.GOOD_FILE_KINDS[kind]
        ref_load = _file_loader(REF, opener) if REF else None
        _check_every_cut(data, _file_loader(TARGET, opener), ref_load, "%s via %s" % (name, kind))
