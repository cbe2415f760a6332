"""bench/run.py runs: a few tiny cells of the benchmark matrix, against the installed wheel.

Speed is a benchmark, never an assertion: only that the harness works, that our output is
byte-identical to the reference's (the harness checks it, exit status 1 otherwise) and that its
JSON has the cells.
"""

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def bench(*args):
    # bench/ is sys.path[0] of the child: pickle5_rs is the installed wheel, not the source tree.
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
    )


def test_list_names_the_matrix():
    result = bench("--list")
    assert result.returncode == 0, result.stdout
    names = [line.split()[0] for line in result.stdout.splitlines()]
    for name in ("int128", "inst_slots", "bytes_64m_oob", "pickler_subclass", "file_disk", "tiny.doc"):
        assert name in names


def test_quick_run_of_tiny_cells(tmp_path):
    out = tmp_path / "cells.json"
    result = bench(
        "--quick",
        "--rounds",
        "2",
        "--min-time",
        "0.0005",
        "--only",
        r"^tiny\.(int|doc|slots)$",
        "--only",
        "^pickler_subclass$",
        "--protocol",
        "0,5",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stdout
    assert "geomean all" in result.stdout and "lowest cell" in result.stdout
    data = json.loads(out.read_text())
    cells = {(c["workload"], c["protocol"], c["op"]): c for c in data["cells"]}
    assert len(cells) == 4 * 2 * 2
    assert all(not c.get("problem") for c in cells.values())
    assert cells[("tiny.doc", 5, "loads")]["ratio"] > 0
    # The reference refuses __slots__ without __getstate__ at protocol 0: the cell is n/a.
    assert "skipped" in cells[("tiny.slots", 0, "dumps")] and "ratio" in cells[("tiny.slots", 5, "dumps")]


def test_safe_loading_rows(tmp_path):
    out = tmp_path / "cells.json"
    result = bench(
        "--quick",
        "--rounds",
        "2",
        "--min-time",
        "0.0005",
        "--only",
        r"^safe\.tiny_dt(_r)?$",
        "--protocol",
        "2,5",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stdout
    assert "safe_loads vs loads" in result.stdout and "safe_loads vs recipe" in result.stdout
    data = json.loads(out.read_text())
    cells = {(c["workload"], c["protocol"], c["op"]): c for c in data["cells"]}
    assert cells[("safe.tiny_dt_r", 5, "loads")]["ratio"] > 0
    assert "skipped" in cells[("safe.tiny_dt", 2, "dumps")]
    assert set(data["safe_loading"]) == {"loads", "recipe"}
