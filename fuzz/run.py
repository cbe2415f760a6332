"""Runs the fuzz targets for a time budget and reports what they did.

Usage: python fuzz/run.py SECONDS WORKDIR [TARGET ...]   (targets: loads, dumps, reentrant;
default all three)

``reentrant`` (fuzz_reentrant.py) runs hooks that dump/load again on the same, another or a new
Pickler/Unpickler, clear or replace the memo, re-run ``__init__``, swap ``__class__`` or raise, at
moments the input chooses, under recursion limits up to 10**6 and sometimes in a thread with a
64-256 KiB stack: only Exceptions may come out (RecursionError from the native stack guard), and
where no hook touched an instance in use, the reference pickler must agree.

With PICKLE5_RS_FUZZ_ALLOC_LIMIT=MiB the targets run in allocation-limit mode (see common.py):
each call into pickle5_rs has at most that much address space left, MemoryError is acceptable,
an abort is a finding.

With PICKLE5_RS_FUZZ_PARALLEL=1 the targets run at the same time, each for the whole budget
(one core each: how a long run is made); otherwise one after the other, sharing the budget.

WORKDIR (``target/fuzz`` under nox) holds ``pkg/`` (pickle5_rs with the coverage-instrumented
extension), ``corpus/<target>/`` (kept between runs: libFuzzer adds what it finds there),
``seeds/`` (written afresh by make_corpus.py) and ``artifacts/`` (crashing inputs). Each target
gets a share of the budget. The run fails when a target finds something (its input is kept in
artifacts/, and libFuzzer prints it), or when libFuzzer registered no coverage counters from the
extension — then the instrumentation, not the code, would be what is tested.
"""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
SHARES = {"loads": 0.6, "dumps": 0.4, "reentrant": 0.3}
MIN_COUNTERS = 1000  # the extension has ~15000 edges; atheris itself registers none here


def run_target(target, seconds, workdir):
    corpus = os.path.join(workdir, "corpus", target)
    artifacts = os.path.join(workdir, "artifacts") + os.sep
    log_path = os.path.join(workdir, "fuzz-%s.log" % target)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    dirs = [corpus]
    if target == "loads":
        dirs.append(os.path.join(workdir, "seeds"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(workdir, "pkg"), HERE])
    env["PYTHONHASHSEED"] = "0"
    cmd = [
        sys.executable,
        os.path.join(HERE, "fuzz_%s.py" % target),
        *dirs,
        "-max_total_time=%d" % max(1, seconds),
        "-timeout=30",
        "-rss_limit_mb=3500",
        "-artifact_prefix=" + artifacts,
        "-print_final_stats=1",
        "-max_len=70000",
    ]
    # A fixed seed and execution count make a run repeatable (what CI's short run uses).
    if os.environ.get("PICKLE5_RS_FUZZ_SEED"):
        cmd.append("-seed=%d" % int(os.environ["PICKLE5_RS_FUZZ_SEED"]))
    if os.environ.get("PICKLE5_RS_FUZZ_RUNS"):
        cmd.append("-runs=%d" % int(os.environ["PICKLE5_RS_FUZZ_RUNS"]))
    mode = ""
    if os.environ.get("PICKLE5_RS_FUZZ_ALLOC_LIMIT"):
        mode = " (allocation-limit mode, %s MiB)" % os.environ["PICKLE5_RS_FUZZ_ALLOC_LIMIT"]
    print("fuzz: %s for %ds%s: %s" % (target, seconds, mode, " ".join(cmd)), flush=True)
    started = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=seconds + 600,
        )
    with open(log_path, errors="replace") as log:
        text = log.read()
    counters = re.search(r"Loaded \d+ modules\s+\((\d+) inline 8-bit counters\)", text)
    covs = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", text)
    runs = re.search(r"stat::number_of_executed_units: (\d+)", text)
    summary = {
        "target": target,
        "seconds": round(time.time() - started),
        "counters": int(counters.group(1)) if counters else 0,
        "executions": int(runs.group(1)) if runs else None,
        "edges": int(covs[-1][0]) if covs else None,
        "features": int(covs[-1][1]) if covs else None,
        "corpus": int(covs[-1][2]) if covs else None,
        "exit": proc.returncode,
    }
    print("fuzz: %s" % summary, flush=True)
    ok = True
    if summary["counters"] < MIN_COUNTERS:
        print(
            "fuzz: %s: libFuzzer registered %d counters from the extension; is it built with "
            "sanitizer coverage?" % (target, summary["counters"]),
            flush=True,
        )
        ok = False
    if proc.returncode != 0:
        tail = [line for line in text.splitlines() if "Uses:" not in line][-60:]
        print("\n".join(tail))
        print("fuzz: %s FAILED (exit %d); full log: %s" % (target, proc.returncode, log_path))
        ok = False
    return ok


def main():
    seconds = int(sys.argv[1])
    workdir = os.path.abspath(sys.argv[2])
    targets = sys.argv[3:] or list(SHARES)
    subprocess.run(
        [sys.executable, os.path.join(HERE, "make_corpus.py"), os.path.join(workdir, "seeds")],
        check=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(workdir, "pkg"), HERE])),
    )
    if os.environ.get("PICKLE5_RS_FUZZ_PARALLEL") == "1":
        with ThreadPoolExecutor(len(targets)) as pool:
            results = list(pool.map(lambda t: run_target(t, seconds, workdir), targets))
    else:
        total = sum(SHARES[t] for t in targets)
        results = [run_target(t, int(seconds * SHARES[t] / total), workdir) for t in targets]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
