"""Fuzz target: pickle5_rs.loads/load/Unpickler on arbitrary bytes, against the reference unpickler.

Each input is loaded through every entry point pickle5_rs has: ``loads`` (with and without
``buffers=``), ``load`` from files with and without ``peek``/``readinto``, a buffered stream
that returns short reads, a file whose methods lie or raise, and an ``Unpickler`` subclass with
``find_class``/``persistent_load`` overrides and another encoding; and ``safe_loads``, which must
refuse or end as ``loads`` does (safe_invariant.py). Every outcome is checked:
no crash, no Rust panic, no SystemError, and the same exception class as the reference C
unpickler given the same input the same way (where that is deterministic).

Run through ``nox -s fuzz`` (which builds the coverage-instrumented extension); by hand:
``PYTHONPATH=target/fuzz/pkg:fuzz python fuzz/fuzz_loads.py CORPUS_DIR -max_total_time=60``.
With ``PICKLE5_RS_FUZZ_ALLOC_LIMIT=MiB`` pickle5_rs runs with the address space nearly full
(see common.py): MemoryError is then acceptable, an abort is a finding.
"""

import io
import pickletools
import re
import sys
import zlib

import common  # noqa: E402  (sets nothing up until setup_process)
import safe_invariant
from common import Finding, check_exception, outcome

ENCODINGS = [
    ("ASCII", "strict"),
    ("latin1", "strict"),
    ("bytes", "strict"),
    ("utf-8", "surrogateescape"),
    ("ASCII", "ignore"),
    ("koi8-r", "replace"),
]


def _buffers(pickle_module, plan):
    # No PickleBuffer over a memoryview: on CPython 3.8-3.12 one in a garbage cycle crashes the
    # collector (its tp_clear releases the view first), whichever unpickler produced the cycle.
    pb = pickle_module.PickleBuffer
    items = [
        b"abc",
        bytearray(b"defg"),
        pb(b"hij"),
        pb(bytearray(b"klmn")),
        memoryview(b"opq")[::2],
        7,
        memoryview(bytearray(b"rstu")).toreadonly(),
    ]
    start = plan % len(items)
    items = items[start:] + items[:start]
    return items if plan & 8 else iter(items)


def _make_subclass(module):
    class Sub(module.Unpickler):
        def find_class(self, mod, name):
            if mod == "fuzz_support" and name == "HookError":
                raise common.HookError("find_class")
            return super().find_class(mod, name)

        def persistent_load(self, pid):
            if isinstance(pid, int) and pid % 5 == 0:
                raise common.HookError("persistent_load")
            if isinstance(pid, str) and pid == "memo":
                return self.memo
            return ("pid", pid)

    return Sub


SUBCLASS = {}


def _ways(data, plan):
    encoding, errors = ENCODINGS[plan % len(ENCODINGS)]
    fix = bool(plan & 16)

    def ways(m):
        return [
            ("loads", lambda: m.loads(data)),
            (
                "loads-buffers",
                lambda: m.loads(
                    data, buffers=_buffers(m, plan >> 5), encoding=encoding, errors=errors, fix_imports=fix
                ),
            ),
            ("loads-only-buffers", lambda: m.loads(data, buffers=_buffers(m, plan >> 5))),
            ("BytesIO", lambda: m.load(io.BytesIO(data))),
            ("read+readline", lambda: m.load(common.ReadReadline(data))),
            ("no-peek", lambda: m.load(common.NoPeek(data), encoding=encoding, errors=errors)),
            (
                "buffered",
                lambda: m.load(
                    io.BufferedReader(common.ShortReads(data, 1 + plan % 13), buffer_size=8 + plan % 50)
                ),
            ),
            ("liar", lambda: m.load(common.Liar(data, plan >> 7))),
            (
                "subclass",
                lambda: _load_twice(
                    SUBCLASS[m](io.BytesIO(data * 2), encoding=encoding, errors=errors, fix_imports=fix)
                ),
            ),
        ]

    return ways


def _load_twice(unpickler):
    first = unpickler.load()
    try:
        second = unpickler.load()
    except Exception as exc:  # the second load may fail; only the first must match
        second = type(exc).__name__
    return first, second


def canonical(value):
    """A comparable form of a loaded value: the reference pickler's protocol-4 dump."""
    ok, result = outcome(lambda: common.REF.dumps(value, 4))
    return result if ok else type(result).__name__


def compare(way, ours, ref):
    ok_ours, v_ours = ours
    ok_ref, v_ref = ref
    if not ok_ours:
        check_exception(v_ours, way)
    for ok, v in (ours, ref):
        if not ok and isinstance(v, (RecursionError, MemoryError)):
            return  # depends on stack depth / address space, not on the input alone
    if not ok_ref and isinstance(v_ref, SystemError):
        return  # the reference's own bug (e.g. readinto() returning a non-int); ours was checked
    if ok_ours != ok_ref:
        raise Finding(
            "%s: pickle5_rs %s, reference %s"
            % (
                way,
                "returned" if ok_ours else "raised %r" % (v_ours,),
                "returned" if ok_ref else "raised %r" % (v_ref,),
            )
        )
    if not ok_ours:
        if not common.same_class(v_ours, v_ref):
            raise Finding("%s: pickle5_rs raised %r, reference %r" % (way, v_ours, v_ref))
        return
    if way == "subclass" and "MemoryError" in (v_ours[1], v_ref[1]):
        # the reference grows its memo to a huge index in the second pickle; compare the first
        v_ours, v_ref = v_ours[0], v_ref[0]
    a, b = canonical(v_ours), canonical(v_ref)
    if a != b:
        raise Finding("%s: results differ:\n  ours %r\n  ref  %r" % (way, a, b))


# Counted opcodes: byte -> width of the little-endian length that follows.
_COUNTED = {b"T": 4, b"B": 4, b"X": 4, b"\x8b": 4, b"\x8d": 8, b"\x8e": 8, b"\x96": 8, b"\x95": 8}
_PUT_INDEX = re.compile(rb"p(\d{6,})\n")


def reference_is_safe(data):
    """False for inputs the reference C unpickler mishandles itself.

    - A length field claiming more than the input holds: the reference allocates what is
      claimed before reading (bytes and bytearray payloads even from in-memory data; ``read(n)``
      from files), a MemoryError under the fuzzer's address-space cap, after which it and
      CPython's BufferedReader leave buffers exported.
    - A truncated BYTEARRAY8: the C unpickler of 3.8-3.13 raises MemoryError and frees a
      bytearray that still has exports ("SystemError: deallocated bytearray object has exported
      buffers"), corrupting the heap: ``pickle.load(io.BytesIO(b"\\x96" + (5).to_bytes(8,
      "little") + b"abc"))``.
    pickle5_rs never allocates more than is there. Such inputs run through pickle5_rs alone,
    for the invariants.
    """
    return _reference_is_safe(data) and _reference_is_safe(data * 2)  # see the "subclass" way


def _reference_is_safe(data):
    # Memo indices the reference would grow its table to, even where genops stops earlier.
    for i in range(len(data)):
        if data[i] == 0x72 and int.from_bytes(data[i + 1 : i + 5], "little") > (1 << 16):
            return False
    for digits in _PUT_INDEX.findall(data):
        if int(digits) > (1 << 16):
            return False
    f = io.BytesIO(data)
    pos = 0
    try:
        for opcode, arg, _ in pickletools.genops(f):
            if opcode.name == "FRAME" and arg > len(data):
                return False
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and arg > (1 << 16):
                return False  # the reference grows its memo table to the index
            pos = f.tell()
    except Exception:
        op = data[pos : pos + 1]
        width = _COUNTED.get(op)
        if op == b"\x96":
            return False
        if width is not None and len(data) >= pos + 1 + width:
            claim = int.from_bytes(data[pos + 1 : pos + 1 + width], "little", signed=(width == 4))
            if claim > len(data):
                return False
    return True


def test_one_input(data):
    common.begin_input(data)
    plan = zlib.crc32(data)
    ways = _ways(data, plan)
    safe = reference_is_safe(data)
    for (way, ours), (_, ref) in zip(ways(common.pickle5_rs), ways(common.REF)):
        result = outcome(ours, "pickle5_rs")
        if way == "liar":
            # Which call misbehaves depends on the call sequence, and pickle5_rs reads large
            # payloads in bounded chunks where the reference allocates the claimed size and
            # calls readinto() once: only the invariants apply, the reference is not run.
            pass
        elif not result[0] and isinstance(result[1], MemoryError) and common.alloc_limit_mode():
            pass  # the cap at work: the reference is not run
        elif safe:
            try:
                compare(way, result, outcome(ref, "reference"))
                continue
            except common.ReferenceFailure as exc:
                print("fuzz_loads: %s (way %s, input %r)" % (exc, way, data[:64]), file=sys.stderr)
        if not result[0]:
            check_exception(result[1], way)
    safe_invariant.check(data, canonical)


def main():
    import atheris

    common.setup_process()
    SUBCLASS[common.pickle5_rs] = _make_subclass(common.pickle5_rs)
    SUBCLASS[common.REF] = _make_subclass(common.REF)
    atheris.Setup(sys.argv, test_one_input, internal_libfuzzer=True)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
