"""Regression tests for what fuzzing (fuzz/, `nox -s fuzz`) found: each input, and how
pickle5_rs must handle it (as the reference C unpickler/pickler does, where that is sane)."""

import io
import pickle

import pytest

from unpickle_support import REF, TARGET

# (id, pickle) pairs that must load to the same value as with the reference, from bytes and files.
SAME_AS_REFERENCE = [
    # INT's argument is read as a C string by _pickle: a NUL ends the number like the newline.
    ("INT-leading-NULs", b"(I1\nI" + b"\x00" * 20 + b"2\ntp0\n."),
    ("INT-NUL-after-digits", b"I12\x00junk\n."),
    ("INT-only-NUL", b"I\x00\n."),
    ("INT-bool-with-NUL", b"I0\x00\n."),
    ("INT-overflow-then-NUL", b"I99999999999999999999\x00x\n."),
    ("LONG-NUL-after-digits", b"L12\x00junk\n."),
]


def _outcome(fn):
    try:
        value = fn()
    except Exception as exc:  # compared by class with the reference
        return ("error", type(exc).__name__)
    return ("ok", type(value).__name__, repr(value))


@pytest.mark.parametrize("data", [d for _, d in SAME_AS_REFERENCE],
                         ids=[i for i, _ in SAME_AS_REFERENCE])
@pytest.mark.parametrize("way", ["loads", "BytesIO"])
def test_same_as_reference(data, way):
    if REF is None:
        pytest.skip("no reference pickle module")

    def run(module):
        if way == "loads":
            return _outcome(lambda: module.loads(data))
        return _outcome(lambda: module.load(io.BytesIO(data)))

    assert run(TARGET) == run(REF)
