"""python -m pickle5_rs: dis (the text of 3.8+'s pickletools.dis, on every version), scan, load.

tests/data/dis_corpus.json holds pickles (protocols 0-5, hand-made opcode sequences, malformed and
hostile ones) with the text pickletools.dis of Python 3.8+ prints for them; it is made by
tests/support/make_dis_corpus.py. On 3.8+ the disassembler is also compared with the running pickletools.
"""

import binascii
import contextlib
import io
import json
import os
import random
import subprocess
import sys

import pytest

import pickle5_rs
import safe_corpus
from pickle5_rs import __main__ as cli
from pickle5_rs import _disassembler

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "dis_corpus.json")) as _f:
    CORPUS = json.load(_f)["cases"]


def run_cli(*args, stdin=None):
    """The command in a child process: (exit status, stdout, stderr)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(pickle5_rs.__file__))] + sys.path),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pickle5_rs"] + list(args),
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def main_in_process(*args):
    """The command in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(list(args))
        except SystemExit as exc:  # argparse
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def disassemble(data, indent=4, memo=None):
    out = io.StringIO()
    error = None
    try:
        _disassembler.dis(io.BytesIO(data), out, memo, indent)
    except Exception as exc:
        error = "%s: %s" % (type(exc).__name__, exc)
    return out.getvalue(), error


# --- dis ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=["%s/%d" % (c["id"], c["indent"]) for c in CORPUS])
def test_dis_prints_what_pickletools_38_prints(case):
    pickles = [binascii.unhexlify(p) for p in case["pickles"]]
    if case.get("memo"):
        memo = {}
        assert [disassemble(p, case["indent"], memo)[0] for p in pickles] == case["texts"]
    else:
        assert disassemble(pickles[0], case["indent"]) == (case["text"], case["error"])


def test_corpus_covers_every_opcode():
    text = "".join(c.get("text") or "".join(c.get("texts", [])) for c in CORPUS)
    missing = [op.name for op in _disassembler.OPCODES if " %s" % op.name not in text]
    assert not missing


def test_dis_command_on_files_and_stdin(tmp_path):
    case = next(c for c in CORPUS if c["id"] == "mixed p5" and c["indent"] == 2)
    path = tmp_path / "one.pickle"
    path.write_bytes(binascii.unhexlify(case["pickles"][0]))
    status, out, err = run_cli("dis", "--indent", "2", str(path))
    assert (status, out, err) == (0, case["text"], "")
    status, out, err = run_cli("dis", "-l", "2", "-", stdin=path.read_bytes())
    assert (status, out, err) == (0, case["text"], "")


def test_dis_command_memo_across_files(tmp_path):
    case = next(c for c in CORPUS if c.get("memo"))
    paths = []
    for i, hexdata in enumerate(case["pickles"]):
        paths.append(tmp_path / ("p%d" % i))
        paths[-1].write_bytes(binascii.unhexlify(hexdata))
    status, out, err = main_in_process("dis", "--memo", *map(str, paths))
    expected = "".join("==> %s <==\n%s" % (p, text) for p, text in zip(paths, case["texts"]))
    assert (status, out, err) == (0, expected, "")
    # Without --memo the second pickle refers to a memo entry it never stored.
    status, out, err = main_in_process("dis", *map(str, paths))
    assert status == 2 and "memo key 0 has never been stored into" in err


def test_dis_command_on_malformed_input(tmp_path):
    case = next(c for c in CORPUS if c["id"] == "memo twice")
    path = tmp_path / "bad"
    path.write_bytes(binascii.unhexlify(case["pickles"][0]))
    status, out, err = run_cli("dis", str(path))
    assert status == 2 and out == case["text"]
    assert err.count("\n") == 1 and "memo key 0 already defined" in err and "Traceback" not in err


@pytest.mark.skipif(sys.version_info < (3, 8), reason="pickletools knows protocol 5 from 3.8 on")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pickletools on invalid escapes
def test_dis_equals_the_running_pickletools():
    import pickletools

    rnd = random.Random(7)
    objects = safe_corpus.allowed_objects()
    compared = 0
    for protocol in range(6):
        for obj in objects:
            data = pickle5_rs.dumps(obj, protocol)
            variants = [data]
            for _ in range(3):
                mutated = bytearray(data)
                mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
                variants.append(bytes(mutated))
            for variant in variants:
                for indent in (4, 1):
                    out = io.StringIO()
                    try:
                        pickletools.dis(variant, out, None, indent)
                        error = None
                    except Exception as exc:
                        error = "%s: %s" % (type(exc).__name__, exc)
                    assert disassemble(variant, indent) == (out.getvalue(), error), variant
                    compared += 1
    assert compared > 3000


@pytest.mark.skipif(sys.version_info < (3, 8), reason="pickletools knows protocol 5 from 3.8 on")
def test_opcode_table_equals_pickletools():
    import pickletools

    ours = [
        (
            op.code,
            op.name,
            op.proto,
            [s.name for s in op.stack_before],
            [s.name for s in op.stack_after],
            op.reader is None,
        )
        for op in _disassembler.OPCODES
    ]
    theirs = [
        (
            op.code.encode("latin-1"),
            op.name,
            op.proto,
            [s.name for s in op.stack_before],
            [s.name for s in op.stack_after],
            op.arg is None,
        )
        for op in pickletools.opcodes
    ]
    assert ours == theirs


def test_opcode_table_matches_the_extension():
    ours = {(op.name, op.code[0], op.proto) for op in _disassembler.OPCODES}
    assert ours == set(pickle5_rs._core.OPCODE_TABLE)


# --- scan --------------------------------------------------------------------------------------------


def scan_of(data, *options):
    path = SCRATCH / "scan.pickle"
    path.write_bytes(data)
    return main_in_process("scan", *options, str(path))


@pytest.fixture(autouse=True)
def scratch(tmp_path):
    global SCRATCH
    SCRATCH = tmp_path


def test_scan_passes_allowed_pickles():
    for protocol in range(6):
        data = pickle5_rs.dumps(safe_corpus.allowed_objects(), protocol)
        status, out, err = scan_of(data)
        assert (status, err) == (0, ""), out
        assert "verdict: everything is within the allow-list" in out
        assert "datetime.datetime" in out and "FORBIDDEN" not in out


def test_scan_reports_hostile_pickles(tmp_path):
    marker = str(tmp_path / "marker")
    for case_id, data, extra in safe_corpus.hostile_corpus(marker):
        options = ["--allow", "stdlib"] + (["--allow", ",".join(extra)] if extra else [])
        status, out, err = scan_of(data, *options)
        if "EXT" in case_id:
            assert status == 1 and "extension code" in out, case_id
            continue
        assert (status, err) == (1, ""), (case_id, out, err)
        assert "verdict: " in out and "problem" in out


def test_scan_lists_globals_calls_buffers_and_persistent_ids():
    buffers = []
    data = pickle5_rs.dumps(
        [pickle5_rs.PickleBuffer(b"abc"), safe_corpus.allowed_objects()[-2]],
        5,
        buffer_callback=buffers.append,
    )
    status, out, err = scan_of(data, "--json")
    report = json.loads(out)
    assert status == 0 and report["ok"]
    assert len(report["out_of_band_buffers"]) == 1
    names = {g["global"] for g in report["globals"]}
    assert {"datetime.datetime", "decimal.Decimal", "uuid.UUID"} <= names
    calls = {(c["opcode"], c["target"]) for c in report["calls"]}
    assert ("REDUCE", "datetime.datetime") in calls and ("NEWOBJ", "uuid.UUID") in calls
    assert ("BUILD", "on uuid.UUID(...)") in calls

    status, out, err = scan_of(b"\x80\x02X\x03\x00\x00\x00pidQ.", "--json")
    report = json.loads(out)
    assert status == 1 and report["persistent_ids"] == [{"at": 10, "id": "pid"}]


def test_scan_names_python2_globals_as_mapped():
    status, out, err = scan_of(safe_corpus.python2_pickles()[0][1])
    assert status == 0 and "builtins.set" in out and "written __builtin__.set" in out
    status, out, err = scan_of(safe_corpus.python2_pickles()[0][1], "--no-fix-imports")
    assert status == 1 and "__builtin__.set" in out


def test_scan_allow_option():
    data = pickle5_rs.dumps(pickle5_rs.SafeUnpickler, 4)
    assert scan_of(data)[0] == 1
    assert scan_of(data, "--allow", "pickle5_rs.SafeUnpickler")[0] == 0
    assert scan_of(data, "--allow", "none,pickle5_rs:SafeUnpickler")[0] == 0
    assert scan_of(pickle5_rs.dumps(1, 4), "--allow", "none")[0] == 0
    status, out, err = scan_of(data, "--allow", "nodot")
    assert status == 2 and err.count("\n") == 1


def test_scan_imports_nothing(tmp_path):
    data = b"".join(pickle5_rs.dumps(obj, 4) for obj in (subprocess.Popen, pickle5_rs.dumps))
    data = data.replace(b"subprocess", b"p5rs_sentinel")
    path = tmp_path / "p"
    path.write_bytes(b"\x80\x04" + safe_corpus.stack_global("p5rs_sentinel_evil", "boom") + b")R." + data[:0])
    code = (
        "import sys, runpy; sys.argv = ['pickle5_rs', 'scan', %r]\n"
        "try:\n    runpy.run_module('pickle5_rs', run_name='__main__')\nexcept SystemExit as e:\n"
        "    assert e.code == 1, e.code\n"
        "assert 'p5rs_sentinel_evil' not in sys.modules\nprint('ok')" % str(path)
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(tmp_path), os.path.dirname(os.path.dirname(pickle5_rs.__file__))] + sys.path
        ),
    )
    (tmp_path / "p5rs_sentinel_evil.py").write_text("raise SystemExit('imported!')\n")
    out = subprocess.check_output([sys.executable, "-c", code], env=env)
    assert out.strip().endswith(b"ok")


# --- load --------------------------------------------------------------------------------------------


def test_load_pretty_prints_through_the_safe_loader():
    obj = {"when": safe_corpus.allowed_objects()[-2]["when"], "n": [1, 2]}
    path = SCRATCH / "ok.pickle"
    path.write_bytes(pickle5_rs.dumps(obj, 2))
    status, out, err = run_cli("load", str(path))
    assert (status, err) == (0, "")
    assert "datetime.datetime(2020, 5, 17, 0, 0)" in out and "'n': [1, 2]" in out


def test_load_refuses_forbidden_globals_and_unsafe_opts_out():
    path = SCRATCH / "global.pickle"
    path.write_bytes(pickle5_rs.dumps(os.getcwd, 2))
    status, out, err = run_cli("load", str(path))
    assert status == 1 and out == "" and err.count("\n") == 1
    assert "global 'posix.getcwd' is forbidden" in err or "global 'nt.getcwd' is forbidden" in err
    status, out, err = run_cli("load", "--allow", "stdlib,posix.getcwd,nt.getcwd", str(path))
    assert status == 0 and "getcwd" in out
    status, out, err = run_cli("load", "--unsafe", str(path))
    assert status == 0 and "getcwd" in out


def test_load_from_stdin():
    status, out, err = run_cli("load", "-", stdin=pickle5_rs.dumps([1, "x"], 5))
    assert (status, out, err) == (0, "[1, 'x']\n", "")


# --- malformed input: one line, exit status 2, never a traceback --------------------------------------


def test_missing_file():
    for command in ("dis", "scan", "load"):
        status, out, err = main_in_process(command, str(SCRATCH / "absent"))
        assert status == 2 and err.count("\n") == 1 and "absent" in err


def test_malformed_input_everywhere():
    rnd = random.Random(11)
    base = pickle5_rs.dumps(safe_corpus.allowed_objects()[-2], 4)
    inputs = [b"", b"\x80", b"\x80\x05", b".", b"garbage\n", b"\xff" * 10, b"(((((", base[:-1], base[:20]]
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rnd.randrange(1, 5)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        inputs.append(bytes(data))
    for data in inputs:
        path = SCRATCH / "input"
        path.write_bytes(data)
        for command in ("dis", "scan", "load"):
            status, out, err = main_in_process(command, str(path))
            assert status in (0, 1, 2), (command, data)
            if status == 2 or (status == 1 and command == "load"):
                assert err.count("\n") == 1 and "Traceback" not in err, (command, data, err)
            else:
                assert err == ""


def test_malformed_input_in_a_child_process():
    for data in (b"", b"\x80\x05\x95", b"K\x01"):
        for command in ("dis", "scan", "load"):
            status, out, err = run_cli(command, "-", stdin=data)
            assert status == 2, (command, data, out, err)
            assert err.count("\n") == 1 and "Traceback" not in err
