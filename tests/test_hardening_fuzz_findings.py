"""Regression tests for what fuzzing (fuzz/, `nox -s fuzz`) found: each input, and how
pickle5_rs must handle it (as the reference C unpickler/pickler does, where that is sane)."""

import io

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


@pytest.mark.parametrize("data", [d for _, d in SAME_AS_REFERENCE], ids=[i for i, _ in SAME_AS_REFERENCE])
@pytest.mark.parametrize("way", ["loads", "BytesIO"])
def test_same_as_reference(data, way):
    if REF is None:
        pytest.skip("no reference pickle module")

    def run(module):
        if way == "loads":
            return _outcome(lambda: module.loads(data))
        return _outcome(lambda: module.load(io.BytesIO(data)))

    assert run(TARGET) == run(REF)


STACK_GLOBAL_CASES = [b"\x8c\x01C\x93.", b"\x93.", b"K\x01\x8c\x01C\x93.", b"(\x8c\x01C\x93."]


@pytest.mark.parametrize("data", STACK_GLOBAL_CASES)
def test_stack_global_short_stack_message(data):
    """3.11+ report a short stack as underflow; earlier versions as 'STACK_GLOBAL requires str'."""
    if REF is None:
        pytest.skip("no reference pickle module")
    with pytest.raises(TARGET.UnpicklingError) as ours:
        TARGET.loads(data)
    with pytest.raises(REF.UnpicklingError) as ref:
        REF.loads(data)
    assert str(ours.value) == str(ref.value)


def _loads_in_sequence(module, data, count=3):
    unpickler = module.Unpickler(io.BytesIO(data))
    out = []
    for _ in range(count):
        try:
            out.append(("ok", repr(unpickler.load())))
        except Exception as exc:
            out.append(("error", type(exc).__name__, str(exc)))
    return out


# A FRAME that extends past STOP, then more pickles: the rest of the frame is already read from
# the file; the next load() of the same Unpickler starts there (as _pickle's input buffer does).
FRAME_PAST_STOP = [
    b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00K\x01.K\x02.K\x03.K\x04.",
    b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.\x8c\x01C\x93.",
    b"\x80\x04\x95\x08\x00\x00\x00\x00\x00\x00\x00K\x01.K",  # frame cut short
    b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00K\x01.",  # frame claims more than there is
]


@pytest.mark.parametrize("data", FRAME_PAST_STOP)
def test_unpickler_reused_after_frame_past_stop(data):
    if REF is None:
        pytest.skip("no reference pickle module")
    ours = _loads_in_sequence(TARGET, data)
    ref = _loads_in_sequence(REF, data)
    assert [r[:2] for r in ours] == [r[:2] for r in ref]


class _BadStateSetter:
    def __reduce_ex__(self, proto):
        return (_BadStateSetter, (), None, None, None, 5)  # state_setter not callable


@pytest.mark.parametrize("tail", [[], [_BadStateSetter()]], ids=["success", "error-after"])
def test_fast_mode_frozenset_nesting_error_wins_over_item_error(tail):
    """In fast mode the C pickler counts a frozenset as nesting without undoing it, so the
    enclosing list's leave deletes a key that was never added: KeyError. It does so on error
    paths too, replacing the item's PicklingError; pickle5_rs used to report the latter."""
    if REF is None:
        pytest.skip("no reference pickle module")

    def run(module):
        obj = [frozenset({1})] + list(tail)
        for _ in range(52):
            obj = [obj]
        pickler = module.Pickler(io.BytesIO(), 4)
        pickler.fast = True
        return _outcome(lambda: pickler.dump(obj))

    assert run(TARGET) == run(REF) == ("error", "KeyError")


def test_fast_mode_state_carries_over_between_dumps():
    """`_pickle` keeps fast mode's nesting count and id dict from one dump() to the next (and
    clear_memo() leaves them; __init__ resets them): frozensets, which enter without leaving,
    push later dumps of the same Pickler over the limit, where a repeated frozenset counts as a
    cycle. pickle5_rs used to start every dump afresh."""
    if REF is None:
        pytest.skip("no reference pickle module")

    def run(module):
        shared = frozenset({1})
        outcomes = []
        pickler = module.Pickler(io.BytesIO(), 4)
        pickler.fast = True
        for obj in (
            [shared] * 30,
            [shared] * 30,
            "clear_memo",
            [shared] * 30,
            "init",
            [shared] * 30,
            [[shared] * 30],
            [1, 2],
        ):
            if obj == "clear_memo":
                pickler.clear_memo()
            elif obj == "init":
                pickler.__init__(io.BytesIO(), 4)
                pickler.fast = True
            else:
                outcomes.append(_outcome(lambda obj=obj: pickler.dump(obj))[:2])
        return outcomes

    ours = run(TARGET)
    assert ours == run(REF)
    assert ("error", "ValueError") in ours


@pytest.mark.parametrize("way", ["loads", "BytesIO"])
@pytest.mark.parametrize(
    "opcode", [b"C\x01", b"B\x01\x00\x00\x00", b"\x8e\x01" + b"\x00" * 7, b"\x96\x01" + b"\x00" * 7]
)
def test_one_byte_payloads_are_fresh_objects(way, opcode):
    """The C unpickler makes each BINBYTES/BYTEARRAY8 object empty and then fills it, so two
    1-byte payloads load as two objects; pickle5_rs used to hand out CPython's cached 1-byte
    bytes from in-memory data (the identity showed in the loaded list's re-pickling)."""
    if REF is None:
        pytest.skip("no reference pickle module")
    data = b"\x80\x05](" + opcode + b"a" + opcode + b"a" + opcode + b"b" + b"e."

    def identities(module):
        value = module.loads(data) if way == "loads" else module.load(io.BytesIO(data))
        return value, [[x is y for y in value] for x in value]

    ours = identities(TARGET)
    assert ours == identities(REF)
    assert ours[1][0][1] is False
