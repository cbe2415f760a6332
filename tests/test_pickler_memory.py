"""Memory use of the Pickler with large payloads, measured in a fresh interpreter (peak RSS).

- in-band bytes (and a PickleBuffer over bytes, and a large str): the payload is copied once,
  straight into the result, so the peak grows by the output size plus a small constant;
- out of band: the payload is not copied at all (the buffer goes to buffer_callback as is);
- file pickling: the payload object itself is handed to write(), nothing is copied.

No timing is asserted anywhere.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import pickle5_rs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")

SIZE = 256 << 20
# Interpreter noise (allocator arenas, code objects) allowed on top of the exact expectation.
SLACK = 24 << 20

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import pickle5_rs as p

    SIZE = %(size)d
    case = sys.argv[1]

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    class Sink(object):
        def __init__(self):
            self.total = 0
            self.objects = []

        def write(self, data):
            self.total += len(memoryview(data))
            self.objects.append(data)

    if case == "str":
        payload = "a" * SIZE
    else:
        payload = b"\\xab" * SIZE
    # Warm up everything but the payload: imports, caches, the pickler's own tables.
    p.dumps([b"x" * 100000, "y" * 100000, p.PickleBuffer(b"z" * 100000)], 5)
    before = peak()
    info = {}
    if case in ("bytes", "str"):
        out = p.dumps(payload, 5)
        info["out_len"] = len(out)
    elif case == "picklebuffer_inband":
        out = p.dumps(p.PickleBuffer(payload), 5)
        info["out_len"] = len(out)
    elif case == "picklebuffer_oob":
        buffers = []
        pb = p.PickleBuffer(payload)
        out = p.dumps(pb, 5, buffer_callback=buffers.append)
        info["out_len"] = len(out)
        info["same_memory"] = len(buffers) == 1 and buffers[0] is pb
    elif case == "file":
        sink = Sink()
        p.Pickler(sink, 5).dump([payload])
        info["out_len"] = sink.total
        info["payload_written_as_is"] = any(o is payload for o in sink.objects)
    info["growth"] = peak() - before
    print(json.dumps(info))
    """
) % {"size": SIZE}


def run_child(case):
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(pickle5_rs.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in sys.path if p])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, case],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["bytes", "str", "picklebuffer_inband"])
def test_in_band_payload_is_copied_once(case):
    info = run_child(case)
    assert SIZE < info["out_len"] < SIZE + 64
    # One output-sized allocation; a second copy (or an intermediate buffer) would double this.
    assert info["growth"] <= info["out_len"] + SLACK, info


def test_out_of_band_payload_is_not_copied():
    info = run_child("picklebuffer_oob")
    assert info["out_len"] < 64
    assert info["same_memory"]
    assert info["growth"] <= SLACK, info


def test_file_pickling_hands_the_payload_to_write():
    info = run_child("file")
    assert SIZE < info["out_len"] < SIZE + 64
    assert info["payload_written_as_is"]
    assert info["growth"] <= SLACK, info
