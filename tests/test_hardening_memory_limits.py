"""Running out of memory raises MemoryError; it never aborts the process.

Each case (tests/support/memory_limit_child.py) builds its input, caps the address space (RLIMIT_AS) a
little above what the process uses — less than the operation needs — and runs it in a child
process: the pickler's output buffer, its memo, the unpickler's mark and value stacks, its memo
(dense and sparse), payloads read from files in chunks, FRAME prefetch, protocol-0 text lines and
an error message quoting a huge name. A Rust allocation that could not fail gracefully printed
"memory allocation of N bytes failed" and killed the process with SIGABRT (where the C pickler
raises MemoryError). The reference, when installed, runs the same case: it must raise
MemoryError too, or succeed (it may need less memory); never crash.
"""

import json
import os
import subprocess
import sys

import pytest

import memory_limit_child
import unpickle_support as support

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support")
CASES = sorted(memory_limit_child.CASES)

# Other outcomes the reference has been seen to give. pickle5 on 3.6/3.7: its find_class lets
# getattr's AttributeError through, whose message could not be formatted (an empty message).
REFERENCE_ALSO = {"loads-huge-global-name": ("AttributeError",)}

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs RLIMIT_AS and /proc/self/statm"
)


def _run(which, case):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SUPPORT] + [p for p in sys.path if p])
    proc = subprocess.run(
        [sys.executable, os.path.join(SUPPORT, "memory_limit_child.py"), which, case],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
    )
    stderr = proc.stderr.decode(errors="replace")
    lines = proc.stdout.decode().splitlines()
    result = json.loads(lines[-1]) if lines else None
    return proc.returncode, result, stderr


@pytest.mark.parametrize("case", CASES)
def test_target_raises_memory_error(case):
    code, result, stderr = _run("target", case)
    assert "memory allocation of" not in stderr, stderr[-2000:]
    assert code == 0, "child died (exit %d): %s" % (code, stderr[-2000:])
    assert result is not None, stderr[-2000:]
    assert result["outcome"] == "MemoryError", result


@pytest.mark.parametrize("case", CASES)
def test_reference_raises_memory_error_or_works(case):
    if support.REF is None or support.TARGET_IS_REFERENCE:
        pytest.skip("no separate reference pickle module")
    code, result, stderr = _run("reference", case)
    assert code == 0, "reference child died (exit %d): %s" % (code, stderr[-2000:])
    assert result is not None, stderr[-2000:]
    assert result["outcome"] in ("MemoryError", "ok") + REFERENCE_ALSO.get(case, ()), result


def test_the_cap_leaves_room_for_small_work():
    """The same harness with the operation made small succeeds: the MemoryErrors above come
    from the operation's size, not from a cap too tight for anything to run."""
    code = (
        "import sys, resource, json\n"
        "sys.path.insert(0, %r)\n"
        "import memory_limit_child as c, unpickle_support as s\n"
        "data = b'\\x80\\x05' + b'N' * 1000 + b'\\x94' * 1000 + b'(' * 1000 + b'1' * 1000 + b'.'\n"
        "big = 'a' * (1 << 20)\n"
        "limit = c._address_space_used() + 8 * c.MiB\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "assert s.TARGET.loads(data) is None\n"
        "assert s.TARGET.loads(s.TARGET.dumps(big, protocol=0)) == big\n"
        "assert s.TARGET.loads(s.TARGET.dumps([None] * 100000, protocol=0)) == [None] * 100000\n"
        "print('fine')\n" % SUPPORT
    )
    _assert_child_prints_fine(code)


def _assert_child_prints_fine(code):
    proc = subprocess.run(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([SUPPORT] + [p for p in sys.path if p])),
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert proc.stdout.decode().strip() == "fine"


def test_memory_error_leaves_the_module_usable():
    """After a MemoryError mid-dump and mid-load, the same process pickles and unpickles
    normally again (no poisoned buffer, memo or stack left behind)."""
    code = (
        "import sys, resource\n"
        "sys.path.insert(0, %r)\n"
        "import memory_limit_child as c, unpickle_support as s\n"
        "m = s.TARGET\n"
        "text = 'a' * (64 * c.MiB)\n"
        "marks = b'(' * (32 * c.MiB) + b'.'\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_AS)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (c._address_space_used() + 32 * c.MiB, hard))\n"
        "for attempt in range(3):\n"
        "    try:\n"
        "        m.dumps(text, protocol=0)\n"
        "    except MemoryError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('dumps succeeded under the cap')\n"
        "    try:\n"
        "        m.loads(marks)\n"
        "    except MemoryError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('loads succeeded under the cap')\n"
        "    value = {'k': [1, 2.5, 'x' * 100, (None, True)] * 50}\n"
        "    for proto in range(m.HIGHEST_PROTOCOL + 1):\n"
        "        assert m.loads(m.dumps(value, protocol=proto)) == value\n"
        "resource.setrlimit(resource.RLIMIT_AS, (soft, hard))\n"
        "assert m.loads(m.dumps(text, protocol=0)) == text\n"
        "print('fine')\n" % SUPPORT
    )
    _assert_child_prints_fine(code)
