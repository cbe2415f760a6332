"""Runs loads/load on hostile pickles with the address space capped, one JSON line per case.

Usage: python rlimit_child.py {target|reference} LIMIT_BYTES < cases.json
cases.json: [[case_id, hex_data, mode], ...], mode one of loads, BytesIO, read+readline,
BufferedReader. Each output line: [case_id, "ok", type_name, stderr] or
[case_id, "err", class_name, message, is_unpickling_error, stderr].

A crash (signal) shows up in the parent as a missing line for the crashing case and after.
"""

import io
import json
import pickle
import sys

try:
    import resource
except ImportError:  # Windows: no address-space limit; the errors are still checked
    resource = None


def main():
    which, limit = sys.argv[1], int(sys.argv[2])
    import unpickle_support as support

    module = support.TARGET if which == "target" else support.REF
    openers = {
        "BytesIO": io.BytesIO,
        "read+readline": support.ReadReadline,
        "BufferedReader": support.buffered_reader,
    }
    cases = json.load(sys.stdin)
    if resource is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    real_stderr = sys.stderr
    for case_id, hex_data, mode in cases:
        data = bytes(bytearray.fromhex(hex_data))
        captured = io.StringIO()
        sys.stderr = captured  # unraisable-exception reports land here
        try:
            if mode == "loads":
                value = module.loads(data)
            else:
                value = module.load(openers[mode](data))
            line = [case_id, "ok", type(value).__name__]
            del value
        except Exception as exc:
            is_unpickling = isinstance(exc, (pickle.UnpicklingError, module.UnpicklingError))
            line = [case_id, "err", type(exc).__name__, str(exc)[:300], is_unpickling]
        finally:
            sys.stderr = real_stderr
        line.append(captured.getvalue()[:500])
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
