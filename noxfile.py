"""Build, test, lint and benchmark pickle5_rs on every supported CPython.

`nox` runs the default sessions (lint, the stub check, the tests on 3.6 ... 3.13, the integration
with cloudpickle, numpy and dask.distributed on 3.6 and 3.7, and a short fuzzing run);
`nox -s tests-3.6 -- -k memo` runs one version with extra pytest arguments;
`nox -s demo`, `nox -s bench` (then `nox -s bench_chart`) and `nox -s integration_reference` are
run on request.
`nox -s rust_tests` runs the Rust unit tests (`cargo test`, part of the default sessions).
`nox -s fuzz` fuzzes the extension (coverage-guided, see fuzz/): `nox -s fuzz -- 3600` for an
hour; the default run (part of CI) is short.
`nox -s sdist` builds the sdist and installs it from source in a fresh venv per interpreter (3.7 ...
3.13; on 3.6 it checks that pip explains why it cannot), then runs the tests against that; CI runs
the 3.6 check, the release workflow all of them. `nox -s targets` runs clippy for every
platform a wheel is built for. A newer CPython is one command away: `nox -s tests -P 3.14` (any
`python3.14` on PATH, or pyenv's).

The release wheel is built once per nox run and installed (never editable) in
each session, so the tests see exactly what users install. Building needs
maturin and ziglang next to nox: `pip install -r .ci/tools.txt`, or let
`bash .ci/run` set that up. `PICKLE5_RS_WHEEL=path/to.whl nox` tests a given
wheel instead of building one (the release workflow does so on macOS and Windows), and
`PICKLE5_RS_SDIST=path/to.tar.gz nox -s sdist` a given sdist.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from importlib.util import find_spec
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
PYTHONS = ["3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
DEMO_PYTHONS = ["3.6", "3.13"]
# On 3.6/3.7 the reference C pickler is the pickle5 backport; 3.8+ has it in the stdlib.
REFERENCE_BACKPORT = {"3.6": "pickle5==0.0.12", "3.7": "pickle5==0.0.12"}
# pytest releases that still support each interpreter (environment markers).
PYTEST_REQUIREMENTS = ROOT / "tests" / "requirements-pytest.txt"
# The tag of the wheel nox builds; a wheel given in PICKLE5_RS_WHEEL needs only the abi3 part.
WHEEL_TAG = "-cp36-abi3-manylinux2014_x86_64"
ABI3_TAG = "-cp36-abi3-"
# Where pickle5_rs stands in for the pickle5 backport (python -m pickle5_rs.alias install).
INTEGRATION_PYTHONS = ["3.6", "3.7"]
INTEGRATION_TESTS = ROOT / "tests" / "integration"
# cloudpickle's own test suite comes from its sdist on PyPI (fetched once, kept next to the venvs).
CLOUDPICKLE_SDIST = (
    "cloudpickle==2.2.1",
    "cloudpickle-2.2.1.tar.gz",
    "d89684b8de9e34a2a43b3460fbca07d09d6e25ce858df4d5a44240403b6178f5",
)
# The suite's result with the C backport as pickle5 (`nox -s integration_reference`, same packages):
# with pickle5_rs as pickle5 it must pass at least as many tests and skip no more.
CLOUDPICKLE_REFERENCE = {"3.6": {"passed": 255, "skipped": 5}, "3.7": {"passed": 257, "skipped": 3}}
SYSTEM_TMP = tempfile.gettempdir()

nox.needs_version = ">=2024.4.15"
# Of the sdist, CI runs only the 3.6 check (seconds: it builds the sdist and checks that pip explains
# why it cannot build it there). Building and testing it from source takes two minutes per
# interpreter, fourteen for all seven: more than a run that must stay under half an hour can take
# (it took 29 minutes without it on a loaded 2-core machine). `nox -s sdist` runs all of it, and the
# release workflow does on every push and pull request.
SDIST_CI_SESSIONS = ["sdist-3.6"]
nox.options.sessions = [
    "lint",
    "stubtest",
    "rust_tests",
    "tests",
    "tests_api_only",
    "integration",
    "fuzz",
    *SDIST_CI_SESSIONS,
]
nox.options.default_venv_backend = "venv"
# A missing interpreter is a failure, not a skip: CI must test every version.
nox.options.error_on_missing_interpreters = True
if hasattr(nox.options, "download_python"):
    nox.options.download_python = "never"


def _pyenv_prefix(version):
    pyenv = shutil.which("pyenv") or str(Path.home() / ".pyenv" / "bin" / "pyenv")
    try:
        result = subprocess.run(
            [pyenv, "prefix", version],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        )
    except OSError:
        return None
    prefix = result.stdout.strip()
    return Path(prefix) if result.returncode == 0 and prefix else None


def _pyenv_minor_versions():
    """The CPython minor versions pyenv has besides PYTHONS, e.g. a new 3.14 (`nox -P 3.14`)."""
    pyenv = shutil.which("pyenv") or str(Path.home() / ".pyenv" / "bin" / "pyenv")
    try:
        out = subprocess.run(
            [pyenv, "versions", "--bare"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        ).stdout
    except OSError:
        return []
    minors = {
        ".".join(line.split(".")[:2])
        for line in out.split()
        if line[:2] == "3." and line.replace(".", "").isdigit()
    }
    return sorted(minors - set(PYTHONS), key=lambda v: tuple(map(int, v.split("."))))


# pyenv's install of each version, or None where pyenv has none.
PYENV_PREFIXES = {version: _pyenv_prefix(version) for version in PYTHONS + _pyenv_minor_versions()}
# Only one pyenv version is global; its shims hide the others, so nox would not
# find python3.6 etc. Their real bin directories go in front of PATH instead.
# A version pyenv lacks is left out, and nox then looks for it on PATH (where
# actions/setup-python puts it) or fails on it.
os.environ["PATH"] = os.pathsep.join(
    [str(prefix / "bin") for prefix in PYENV_PREFIXES.values() if prefix is not None]
    + [os.environ.get("PATH", "")]
)

# The wheel under test, or why there is none: set by the first session that needs it.
_wheel_outcome = {}


def _wheel(session):
    """Path of the wheel under test: built into dist/ on first use in this run."""
    if "error" in _wheel_outcome:
        session.error(_wheel_outcome["error"])
    if "path" not in _wheel_outcome:
        try:
            _wheel_outcome["path"] = _given_or_built_wheel(session)
        except BaseException:
            _wheel_outcome["error"] = "building the wheel failed earlier in this run"
            raise
    return _wheel_outcome["path"]


def _given_or_built_wheel(session):
    given = os.environ.get("PICKLE5_RS_WHEEL")
    if given:
        wheel = Path(given).resolve()
        if not wheel.is_file():
            session.error(f"PICKLE5_RS_WHEEL={given} does not exist")
    else:
        missing = [name for name in ("maturin", "ziglang") if find_spec(name) is None]
        if missing:
            session.error(
                f"{' and '.join(missing)} must be installed next to nox ({sys.executable}): "
                "pip install -r .ci/tools.txt, or run `bash .ci/run`"
            )
        DIST.mkdir(exist_ok=True)
        for old in DIST.glob("pickle5_rs-*.whl"):
            old.unlink()
        # nox puts the session's venv first on PATH; maturin must use nox's own
        # interpreter instead, which also runs `python -m ziglang` for zig.
        session.run(
            sys.executable,
            "-m",
            "maturin",
            "build",
            "--release",
            "--zig",
            "--compatibility",
            "manylinux2014",
            "--interpreter",
            sys.executable,
            "--manifest-path",
            str(ROOT / "Cargo.toml"),
            "--out",
            str(DIST),
            env={
                "VIRTUAL_ENV": None,
                "CARGO_ZIGBUILD_PYTHON_PATH": sys.executable,
                "RUSTFLAGS": _link_system_unwinder(session),
            },
            external=True,
        )
        wheels = sorted(DIST.glob("pickle5_rs-*.whl"))
        if len(wheels) != 1:
            session.error(f"expected one wheel in {DIST}, found {[w.name for w in wheels]}")
        wheel = wheels[0]
        # 3.6's pip only installs a manylinux2014 wheel; a manylinux_2_3x one is refused.
        if WHEEL_TAG not in wheel.name:
            session.error(f"{wheel.name} does not carry the tag {WHEEL_TAG[1:]}")
    if ABI3_TAG not in wheel.name:
        session.error(f"{wheel.name} is not a cp36-abi3 wheel")
    return wheel


def _link_system_unwinder(session):
    """RUSTFLAGS that link the extension to the system's libgcc_s.so.1 (a manylinux2014 library).

    zig (cargo-zigbuild) otherwise links a private static libunwind, which cannot unwind the
    `pthread_exit` CPython < 3.14 ends daemon threads with at interpreter exit: the process then
    crashes instead of exiting (docs/design.md). Only libgcc_s goes on the search path, from a
    directory of its own, so nothing else of the build machine's libraries can be linked.
    """
    candidates = [
        Path("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
        Path("/usr/lib64/libgcc_s.so.1"),
        Path("/lib64/libgcc_s.so.1"),
        Path("/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"),
    ]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        session.error("libgcc_s.so.1 not found (looked in %s)" % ", ".join(map(str, candidates)))
    private = ROOT / "target" / "system-unwinder"
    private.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found, private / "libgcc_s.so.1")
    flags = os.environ.get("RUSTFLAGS", "")
    return f"{flags} -C link-arg=-L{private} -C link-arg=-l:libgcc_s.so.1".strip()


def _install(session, *requirements, source=None):
    """Install the package under test, then `requirements`, into the session's venv: the wheel,
    or else `source` (the sdist), which pip builds in its isolated build environment, without its
    wheel cache, so that each interpreter runs the build itself."""
    package = [str(_wheel(session))] if source is None else ["--no-cache-dir", str(source)]
    if session.python == "3.6":
        # pip 18.1, bundled with 3.6, predates manylinux2014.
        session.run("python", "-m", "pip", "install", "--upgrade", "pip<22", silent=True)
    session.install("--force-reinstall", "--no-deps", *package)
    if requirements:
        session.install(*requirements)


def _reference_backport(session):
    return [REFERENCE_BACKPORT[session.python]] if session.python in REFERENCE_BACKPORT else []


def _requirements_file(path):
    """pip arguments for an optional requirements file (per-version pins use environment markers)."""
    return ["--requirement", str(path)] if path.is_file() else []


def _pickletester_38(session):
    """CPython 3.8's Lib/test, where tests on 3.6/3.7 load pickletester.py from: as given in
    $PICKLE5_RS_PICKLETESTER_38, else pyenv's 3.8, else the python3.8 on PATH (the py launcher's
    3.8 on Windows)."""
    given = os.environ.get("PICKLE5_RS_PICKLETESTER_38")
    prefix = PYENV_PREFIXES["3.8"]
    test_dir = Path(given) if given else prefix / "lib" / "python3.8" / "test" if prefix else None
    if test_dir is None:
        python38 = shutil.which("python3.8")
        command = [python38] if python38 else ["py", "-3.8"] if shutil.which("py") else None
        if command:
            out = subprocess.run(
                command + ["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                stdout=subprocess.PIPE,
                universal_newlines=True,
            ).stdout.strip()
            test_dir = Path(out) / "test" if out else None
    if test_dir is None or not (test_dir / "pickletester.py").is_file():
        message = "CPython 3.8's Lib/test/pickletester.py not found (pyenv prefix 3.8, python3.8 on PATH)"
        if os.environ.get("PICKLE5_RS_CPYTHON_SUITE") == "optional":
            session.warn(f"{message}: CPython's suite is left out (tests/conftest.py)")
            return None
        session.error(message)
    return str(test_dir)


@nox.session(python=PYTHONS, venv_backend="venv")
def tests(session):
    """pytest tests/ against the installed wheel."""
    _run_tests(session, {})


# Where struct layouts are read or written directly (3.8+ under a version allow-list), the tests
# also run once with that forced off, so the API path stays tested.
API_ONLY_PYTHON = "3.12"


@nox.session(python=API_ONLY_PYTHON, venv_backend="venv")
def tests_api_only(session):
    """pytest tests/ with PICKLE5_RS_API_ONLY=1: no struct layout access."""
    _run_tests(session, {"PICKLE5_RS_API_ONLY": "1"})


def _run_tests(session, extra_env, source=None):
    requirements = ["--requirement", str(PYTEST_REQUIREMENTS), *_reference_backport(session)]
    _install(session, *requirements, *_requirements_file(ROOT / "tests" / "requirements.txt"), source=source)
    env = {
        # Lets tests/test_module.py check that the wheel, not the source tree, is imported.
        "PICKLE5_RS_EXPECT_INSTALLED": "1",
        **extra_env,
    }
    tester_38 = _pickletester_38(session) if session.python in ("3.6", "3.7") else None
    if tester_38:
        env["PICKLE5_RS_PICKLETESTER_38"] = tester_38
    # From a scratch directory, so the source tree's pickle5_rs/ (which has no
    # extension module) is not on sys.path. Exit code 5 (no tests) fails the run.
    scratch = Path(session.create_tmp()).resolve()
    session.chdir(scratch)
    session.run(
        "python",
        "-m",
        "pytest",
        str(ROOT / "tests"),
        "-q",
        "--rootdir",
        str(ROOT),
        "-o",
        f"cache_dir={scratch / '.pytest_cache'}",
        *session.posargs,
        env=env,
    )


# The sdist under test, or why there is none: set by the first session that needs it.
_sdist_outcome = {}


def _sdist(session):
    """Path of the sdist under test: $PICKLE5_RS_SDIST, or built into dist/ on first use."""
    if "error" in _sdist_outcome:
        session.error(_sdist_outcome["error"])
    if "path" not in _sdist_outcome:
        try:
            _sdist_outcome["path"] = _given_or_built_sdist(session)
        except BaseException:
            _sdist_outcome["error"] = "building the sdist failed earlier in this run"
            raise
    return _sdist_outcome["path"]


def _given_or_built_sdist(session):
    given = os.environ.get("PICKLE5_RS_SDIST")
    if given:
        sdist = Path(given).resolve()
        if not sdist.is_file():
            session.error(f"PICKLE5_RS_SDIST={given} does not exist")
        return sdist
    if find_spec("maturin") is None:
        session.error(
            f"maturin must be installed next to nox ({sys.executable}): "
            "pip install -r .ci/tools.txt, or run `bash .ci/run`"
        )
    DIST.mkdir(exist_ok=True)
    for old in DIST.glob("pickle5_rs-*.tar.gz"):
        old.unlink()
    session.run(
        sys.executable,
        "-m",
        "maturin",
        "sdist",
        "--manifest-path",
        str(ROOT / "Cargo.toml"),
        "--out",
        str(DIST),
        env={"VIRTUAL_ENV": None},
        external=True,
    )
    sdists = sorted(DIST.glob("pickle5_rs-*.tar.gz"))
    if len(sdists) != 1:
        session.error(f"expected one sdist in {DIST}, found {[s.name for s in sdists]}")
    return sdists[0]


# What pip must say when asked to build the sdist on 3.6, where maturin cannot run: the pip 3.6
# comes with (no PEP 517) runs setup.py; pip 19-21 runs build_backend/pickle5_rs_build.py.
SDIST_REFUSALS_36 = {
    "pip==18.1": "pickle5_rs: this pip is too old to install it",
    "pip<22": "pickle5_rs cannot be built from source on Python 3.6: its build backend, maturin, "
    "needs Python 3.7 or later.",
}


@nox.session(python=PYTHONS, venv_backend="venv")
def sdist(session):
    """The sdist, installed from source in a fresh venv (pip's PEP 517 build: maturin from PyPI,
    the Rust toolchain on PATH), then the tests against it. On 3.6, where maturin cannot run, pip
    must fail and say why instead, with 3.6's own pip and with pip 21."""
    source = _sdist(session)
    if session.python != "3.6":
        _run_tests(session, {}, source=source)
        return
    for pip, expected in SDIST_REFUSALS_36.items():
        session.run("python", "-m", "pip", "install", "--quiet", "--upgrade", pip, silent=True)
        out = session.run(
            "python", "-m", "pip", "install", "--no-cache-dir", str(source), silent=True, success_codes=[1]
        )
        if expected not in " ".join(out.split()):
            session.error(f"with {pip}, pip's output lacks {expected!r}:\n{out}")
        session.log(f"with {pip}: pip refuses to build the sdist and says why")
    session.chdir(session.create_tmp())  # not the source tree, whose pickle5_rs/ would be found
    session.run("python", "-c", "import importlib.util as u; assert not u.find_spec('pickle5_rs')")


@nox.session(python=DEMO_PYTHONS, venv_backend="venv")
def demo(session):
    """examples/demo.py: protocol 5 with an out-of-band buffer."""
    _install(session, *_reference_backport(session))
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


BENCH_RESULTS = ROOT / "bench" / "results"
# The chart is drawn on one interpreter from the JSON results of all of them.
BENCH_CHART_PYTHON = "3.11"
MATPLOTLIB = "matplotlib>=3.8,<4"


@nox.session(python=PYTHONS, venv_backend="venv")
def bench(session):
    """bench/run.py: the benchmark matrix against the reference pickler of the same interpreter.

    Arguments go to bench/run.py (`nox -s bench-3.11 -- --quick --only int --protocol 5`). Unless
    they include --json, the cells are also written to bench/results/<version>.json, which
    `nox -s bench_chart` draws.
    """
    script = ROOT / "bench" / "run.py"
    _install(session, *_reference_backport(session), *_requirements_file(ROOT / "bench" / "requirements.txt"))
    args = list(session.posargs)
    if not any(arg == "--json" or arg.startswith("--json=") for arg in args) and "--list" not in args:
        BENCH_RESULTS.mkdir(exist_ok=True)
        args += ["--json", str(BENCH_RESULTS / f"{session.python}.json")]
    session.run("python", str(script), *args)


@nox.session(python=BENCH_CHART_PYTHON, venv_backend="venv")
def bench_chart(session):
    """bench/chart.py: a PNG of per-workload ratios from the `bench` sessions' JSON results.

    Without arguments: every bench/results/*.json into bench/ratios.png; otherwise the
    arguments go to bench/chart.py (JSON paths, --out, --protocol, --only).
    """
    session.install(MATPLOTLIB)
    args = list(session.posargs)
    if not any(not arg.startswith("-") for arg in args):
        results = sorted(str(path) for path in BENCH_RESULTS.glob("*.json"))
        if not results:
            session.error("no bench/results/*.json: run `nox -s bench` first")
        args = results + args
    if not any(arg == "--out" or arg.startswith("--out=") for arg in args):
        args += ["--out", str(ROOT / "bench" / "ratios.png")]
    session.run("python", str(ROOT / "bench" / "chart.py"), *args)


# atheris ships libFuzzer in its wheels; 3.12 is the newest interpreter both it and the
# extension support here.
FUZZ_PYTHON = "3.12"
ATHERIS = "atheris==3.1.0"
FUZZ_SMOKE_RUNS = 20000
FUZZ_SECONDS_DEFAULT = 60
FUZZ_TARGET = "x86_64-unknown-linux-gnu"
# Sanitizer coverage on stable rustc: inline 8-bit edge counters and the PC table are what
# libFuzzer (inside atheris) reads; comparison tracing lets it solve magic bytes and lengths.
# With an explicit --target, RUSTFLAGS apply to the extension and its dependencies only, not to
# build scripts or proc macros (which could not link the sanitizer hooks).
FUZZ_RUSTFLAGS = " ".join(
    [
        "-C passes=sancov-module",
        "-C llvm-args=-sanitizer-coverage-level=3",
        "-C llvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-C llvm-args=-sanitizer-coverage-pc-table",
        "-C llvm-args=-sanitizer-coverage-trace-compares",
    ]
)


@nox.session(python=FUZZ_PYTHON, venv_backend="venv")
def fuzz(session):
    """Coverage-guided fuzzing of loads/load/dumps (atheris + sancov-instrumented extension).

    Three targets (fuzz/run.py): ``loads``, ``dumps``, and ``reentrant``, where hooks dump or load
    again (same, other or new Pickler/Unpickler), reset the memo, re-run ``__init__``, swap
    ``__class__`` or raise mid-dump/load, under recursion limits up to 10**6 and in threads with
    64-256 KiB stacks (deep re-entry must end in RecursionError, never in a crash).
    Budget in seconds: the first positional argument, else $PICKLE5_RS_FUZZ_SECONDS. Without
    either (the run CI makes) it is a repeatable smoke run: a fixed seed and a fixed number of
    executions per target, so CI's verdict does not depend on the machine's speed.
    Corpus, logs and crashing inputs are kept in target/fuzz/.

    Allocation-limit mode: PICKLE5_RS_FUZZ_ALLOC_LIMIT=MiB (e.g. 256) runs every pickle5_rs
    call with the address space capped between 64 KiB and that many MiB above what the process
    uses, so allocations fail in every growth path: MemoryError is then an acceptable outcome,
    an abort or a panic is a finding (``PICKLE5_RS_FUZZ_ALLOC_LIMIT=256 nox -s fuzz -- 600``).
    """
    env = {}
    if session.posargs:
        seconds = int(session.posargs[0])
    elif "PICKLE5_RS_FUZZ_SECONDS" in os.environ:
        seconds = int(os.environ["PICKLE5_RS_FUZZ_SECONDS"])
    else:
        seconds = FUZZ_SECONDS_DEFAULT * 4  # a ceiling; the execution count ends the run first
        env = {"PICKLE5_RS_FUZZ_SEED": "1", "PICKLE5_RS_FUZZ_RUNS": str(FUZZ_SMOKE_RUNS)}
    session.install(ATHERIS)
    workdir = ROOT / "target" / "fuzz"
    session.run(
        "cargo",
        "build",
        "--profile",
        "fuzz",
        "--target",
        FUZZ_TARGET,
        "--manifest-path",
        str(ROOT / "Cargo.toml"),
        "--target-dir",
        str(workdir),
        env={"RUSTFLAGS": FUZZ_RUSTFLAGS},
        external=True,
    )
    pkg = workdir / "pkg" / "pickle5_rs"
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(ROOT / "pickle5_rs", pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy2(workdir / FUZZ_TARGET / "fuzz" / "libpickle5_rs.so", pkg / "_core.abi3.so")
    session.run("python", str(ROOT / "fuzz" / "run.py"), str(seconds), str(workdir), env=env)


WORKFLOWS = ROOT / ".github" / "workflows"
TOOLS = ROOT / ".ci" / "tools.txt"


def _tool(session, name):
    """The executable `name` installed next to nox (.ci/tools.txt)."""
    bindir = Path(sys.executable).parent
    for candidate in (bindir / name, bindir / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    return session.error(
        f"{name} must be installed next to nox ({sys.executable}): "
        "pip install -r .ci/tools.txt, or run `bash .ci/run`"
    )


def _tool_pins():
    """{name: version} of the `name==version` lines of .ci/tools.txt."""
    pins = {}
    for line in TOOLS.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.strip().lower()] = version.strip()
    return pins


# The Python code ruff checks and formats (pyproject.toml's [tool.ruff]).
PYTHON_SOURCES = [
    "pickle5_rs",
    "tests",
    "bench",
    "fuzz",
    "scripts",
    "examples",
    "build_backend",
    "setup.py",
    "noxfile.py",
]


@nox.session(python=False)
def lint(session):
    """rustfmt and clippy, warnings as errors; ruff's checks and formatting of the Python code;
    the GitHub workflows against GitHub's workflow schema and through zizmor's audits (offline),
    and the maturin they build with against .ci/tools.txt, so that the release wheels come from
    the maturin the tests use."""
    session.chdir(ROOT)
    session.run("cargo", "fmt", "--check", external=True)
    session.run("cargo", "clippy", "--release", "--", "-D", "warnings", external=True)
    ruff = _tool(session, "ruff")
    session.run(ruff, "check", *PYTHON_SOURCES, external=True)
    session.run(ruff, "format", "--check", *PYTHON_SOURCES, external=True)
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    if not workflows:
        session.error(f"no workflows in {WORKFLOWS}")
    session.run(
        _tool(session, "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, workflows),
        external=True,
    )
    session.run(_tool(session, "zizmor"), "--offline", "--no-progress", str(WORKFLOWS), external=True)
    maturin = _tool_pins()["maturin"]
    for workflow in workflows:
        for number, line in enumerate(workflow.read_text().splitlines(), 1):
            _, sep, value = line.partition("maturin-version:")
            if sep and value.split("#")[0].strip().lstrip("v") != maturin:
                session.error(
                    f"{workflow.name}:{number}: maturin {value.strip()}, but "
                    f".ci/tools.txt pins maturin=={maturin}"
                )
    session.log(f"workflows: schema, zizmor and maturin {maturin} as in .ci/tools.txt")


# mypy's stubtest imports the package, so it runs where the wheel is installed: on 3.12 and on 3.13,
# the two sides of the stub's `sys.version_info >= (3, 13)` branches.
STUBTEST_PYTHONS = ["3.12", "3.13"]
MYPY = "mypy==2.4.1"
STUBTEST_ALLOWLIST = ROOT / ".ci" / "stubtest-allowlist.txt"


@nox.session(python=STUBTEST_PYTHONS, venv_backend="venv")
def stubtest(session):
    """mypy's stubtest: pickle5_rs/*.pyi against the installed wheel's modules.

    PEP 800's @disjoint_base is left out of the stubs (type checkers before 2025 do not know it),
    so stubtest does not ask for it; .ci/stubtest-allowlist.txt lists, with reasons, the rest of
    what it cannot see."""
    _install(session, MYPY)
    # Out of the source tree, whose pickle5_rs/ has no extension module.
    session.chdir(session.create_tmp())
    session.run(
        "python",
        "-m",
        "mypy.stubtest",
        "pickle5_rs",
        "--ignore-disjoint-bases",
        "--allowlist",
        str(STUBTEST_ALLOWLIST),
        env={"PYTHONPATH": None, "MYPYPATH": None},
    )


# The Rust targets a wheel is built for (.github/workflows/release.yml; Linux x86_64 is the host
# `lint` checks), and the Windows GNU target, whose objects GNU nm reads for the import check.
RELEASE_TARGETS = [
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
]
WINDOWS_IMPORT_TARGET = "x86_64-pc-windows-gnu"
WINDOWS_IMPORTS = ROOT / ".ci" / "windows-python3-imports.txt"
# What PyO3 needs to know of the interpreter when there is none for the target: the abi3 of 3.6.
PYO3_ABI3_CONFIG = "implementation=CPython\nversion=3.6\nshared=true\nabi3=true\nlib_name=python3\n"


@nox.session(python=False)
def targets(session):
    """clippy, warnings as errors, for every target a wheel is built for (rustup adds their
    standard libraries: this needs the network), then the Windows import check: every C-API name
    the extension imports from python3.dll must be in .ci/windows-python3-imports.txt, whose names
    python3.dll exports from CPython 3.6.1 on (src/ffi/raw.rs)."""
    session.chdir(ROOT)
    session.run("rustup", "target", "add", *RELEASE_TARGETS, WINDOWS_IMPORT_TARGET, external=True)
    work = ROOT / "target" / "targets"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "pyo3-abi3-3.6.txt"
    config.write_text(PYO3_ABI3_CONFIG)
    for target in RELEASE_TARGETS:
        # As maturin builds for musl: a shared library, not a static executable.
        flags = "-C target-feature=-crt-static" if target.endswith("-musl") else ""
        session.run(
            "cargo",
            "clippy",
            "--release",
            "--target",
            target,
            "--target-dir",
            str(work),
            "--",
            "-D",
            "warnings",
            env={"PYO3_CONFIG_FILE": str(config), "RUSTFLAGS": flags},
            external=True,
        )
    nm = shutil.which("nm")
    if nm is None:
        session.error("GNU nm (binutils) is needed for the Windows import check")
    session.run(
        "cargo",
        "rustc",
        "--release",
        "--lib",
        "--crate-type",
        "staticlib",
        "--target",
        WINDOWS_IMPORT_TARGET,
        "--target-dir",
        str(work),
        env={"PYO3_CONFIG_FILE": str(config), "RUSTFLAGS": ""},
        external=True,
    )
    archive = str(work / WINDOWS_IMPORT_TARGET / "release" / "libpickle5_rs.a")

    def symbols(*options):
        out = subprocess.run(
            [nm, *options, archive],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        ).stdout
        return {line.split()[-1] for line in out.splitlines() if line.strip()}

    imported = {
        name[len("__imp_") :] if name.startswith("__imp_") else name for name in symbols("--undefined-only")
    }
    python = {name for name in imported - symbols("--defined-only") if name.startswith(("Py", "_Py"))}
    allowed = {
        line.strip()
        for line in WINDOWS_IMPORTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    unchecked = sorted(python - allowed)
    if unchecked:
        session.error(
            f"imported from python3.dll but not in {WINDOWS_IMPORTS.name}: {unchecked} "
            "(see that file's notes)"
        )
    session.log(f"Windows: {len(python)} C-API names imported, all in {WINDOWS_IMPORTS.name}")


def _cloudpickle_sources(session, scratch):
    """cloudpickle's sdist, unpacked into `scratch`: the path of its root."""
    requirement, name, sha256 = CLOUDPICKLE_SDIST
    downloads = Path(session.virtualenv.location).parent / "_downloads"
    archive = downloads / name
    if not archive.is_file() or hashlib.sha256(archive.read_bytes()).hexdigest() != sha256:
        session.run(
            "python",
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(downloads),
            requirement,
        )
    if hashlib.sha256(archive.read_bytes()).hexdigest() != sha256:
        session.error(f"{archive} does not have the sha256 {sha256}")
    root = scratch / name[: -len(".tar.gz")]
    shutil.rmtree(root, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        if any(m.name.startswith(("/", "..")) or "/../" in m.name for m in members):
            session.error(f"{archive} has paths outside its root")
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            tar.extractall(scratch, members=members, filter="data")
        else:
            tar.extractall(scratch, members=members)
    return root


def _integration_venv(session, sdist, *extra):
    _install(
        session,
        "--requirement",
        str(INTEGRATION_TESTS / "requirements.txt"),
        str(sdist / "tests" / "cloudpickle_testpkg"),  # a package its tests import
        *extra,
    )


CLOUDPICKLE_BACKEND = """
import sys, cloudpickle, cloudpickle.compat
assert cloudpickle.__file__.startswith(sys.argv[1]), cloudpickle  # the sdist's copy, under test
ours = getattr(cloudpickle.compat.pickle.__spec__.loader, "_pickle5_rs_alias", False)
assert cloudpickle.compat.pickle.__name__ == "pickle5" and ours == (sys.argv[2] == "pickle5_rs")
print("cloudpickle.compat.pickle:", cloudpickle.compat.pickle)
"""


def _cloudpickle_suite(session, sdist, scratch, backend):
    """Runs cloudpickle's test suite from its sdist; checks it against CLOUDPICKLE_REFERENCE."""
    report = scratch / "cloudpickle-junit.xml"
    session.chdir(sdist)
    session.run("python", "-c", CLOUDPICKLE_BACKEND, str(sdist), backend, env={"PYTHONPATH": None})
    # -s: one test pickles sys.stdout and sys.stderr, which pytest's capture replaces.
    session.run(
        "python",
        "-m",
        "pytest",
        "tests",
        "-q",
        "-s",
        "-rs",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        env={"PYTHONPATH": None},
    )
    session.chdir(scratch)
    root = ElementTree.parse(str(report)).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    failed = counts["failures"] + counts["errors"]
    session.log(
        f"cloudpickle 2.2.1 test suite, pickle5 = {backend}: "
        f"{passed} passed, {counts['skipped']} skipped, {failed} failed"
    )
    reference = CLOUDPICKLE_REFERENCE[session.python]
    if failed or passed < reference["passed"] or counts["skipped"] > reference["skipped"]:
        session.error(f"expected no failures and at least the C backport's result: {reference}")


ALIAS_CHECK = """
import sys
import cloudpickle.compat, numpy.compat, distributed.protocol.pickle
import pickle5, pickle5_rs
assert getattr(pickle5.__spec__.loader, "_pickle5_rs_alias", False), pickle5
assert cloudpickle.compat.pickle is pickle5 and cloudpickle.compat.Pickler is pickle5_rs.Pickler
assert numpy.compat.pickle is pickle5 and distributed.protocol.pickle.pickle is pickle5
print("pickle5 is pickle5_rs for cloudpickle, numpy and distributed")
"""


def _site_packages(session):
    out = session.run(
        "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", silent=True
    )
    return Path(out.strip().splitlines()[-1])


def _alias_traces(site_packages):
    """Everything in site-packages, and any bytecode of the alias's finder module."""
    names = sorted(path.name for path in site_packages.iterdir())
    return names, sorted(path.name for path in site_packages.glob("__pycache__/_pickle5_rs_alias.*"))


def _junit_counts(report):
    root = ElementTree.parse(str(report)).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {
        key: sum(int(suite.get(key, 0)) for suite in suites)
        for key in ("tests", "failures", "errors", "skipped")
    }
    return {
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        "skipped": counts["skipped"],
        "failed": counts["failures"] + counts["errors"],
    }


# Left out of joblib's test_parallel.py: with a threading parent, these two record the other thread's
# warnings now and then ("warning handling is not thread safe", says the test), and on this
# 2-core machine under load they fail about half the time with or without pickle5 (measured on 3.6:
# 4 of 8 runs with the alias, 3 of 8 with no pickle5), which no count comparison survives.
JOBLIB_RACY_TESTS = "test_nested_parallel_warnings and threading"


def _joblib_runs(session, scratch, site_packages, label):
    """tests/integration/joblib_workload.py's results, and the counts of joblib's own
    joblib/test/test_parallel.py (shipped in its wheel; the whole module but JOBLIB_RACY_TESTS,
    3-5 minutes here)."""
    session.chdir(scratch)
    out = session.run(
        "python",
        str(INTEGRATION_TESTS / "joblib_workload.py"),
        silent=True,
        env={"PYTHONPATH": None, "TMPDIR": SYSTEM_TMP},
    )
    report = json.loads(out.strip().splitlines()[-1])
    session.log(
        f"joblib workload, {label}: pickle5 = {report.pop('parent_pickle5')} "
        f"(workers: {report.pop('worker_pickle5')})"
    )
    junit = scratch / "joblib-test_parallel.xml"
    test_file = site_packages / "joblib" / "test" / "test_parallel.py"
    session.run(
        "python",
        "-m",
        "pytest",
        str(test_file),
        "-q",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--rootdir",
        str(scratch),
        f"--junitxml={junit}",
        "-k",
        f"not ({JOBLIB_RACY_TESTS})",
        env={"PYTHONPATH": None, "TMPDIR": SYSTEM_TMP},
        success_codes=[0, 1],  # failures are compared, not fatal: they must be the same
    )
    counts = _junit_counts(junit)
    session.log(
        f"joblib's test_parallel.py, {label}: "
        f"{counts['passed']} passed, {counts['skipped']} skipped, {counts['failed']} failed"
    )
    return {"workload": report, "test_parallel": counts}


@nox.session(python=INTEGRATION_PYTHONS, venv_backend="venv")
def integration(session):
    """pickle5_rs as pickle5 (no C backport): cloudpickle's test suite, numpy, dask.distributed,
    joblib (loky), and the stdlib's readers at protocol 5."""
    scratch = Path(session.create_tmp()).resolve()
    sdist = _cloudpickle_sources(session, scratch)
    _integration_venv(session, sdist)
    # Out of the source tree, whose pickle5_rs/ has no extension module.
    session.chdir(scratch)
    session.run(
        "python",
        "-c",
        "import pickle5_rs.alias as a; assert a.real_pickle5() is None, 'the pickle5 backport is installed'",
    )
    site_packages = _site_packages(session)
    session.run("python", "-m", "pickle5_rs.alias", "remove", silent=True)  # a reused venv
    before = _alias_traces(site_packages)
    # joblib with no pickle5 at all: what it must give with the alias too.
    joblib_without = _joblib_runs(session, scratch, site_packages, "no pickle5")
    session.run("python", "-m", "pickle5_rs.alias", "install")
    session.run("python", "-c", ALIAS_CHECK)

    _cloudpickle_suite(session, sdist, scratch, "pickle5_rs")

    # tests/integration/, with the C backport on the side for byte comparisons in a child process.
    reference = scratch / "pickle5-backport"
    shutil.rmtree(reference, ignore_errors=True)
    session.run(
        "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(reference),
        REFERENCE_BACKPORT[session.python],
    )
    session.run(
        "python",
        "-m",
        "pytest",
        str(INTEGRATION_TESTS),
        "-v",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(INTEGRATION_TESTS),
        "--confcutdir",
        str(INTEGRATION_TESTS),
        *session.posargs,
        # A short TMPDIR: multiprocessing's forkserver socket lives there (AF_UNIX paths are short).
        env={"PICKLE5_RS_REFERENCE_PATH": str(reference), "PYTHONPATH": None, "TMPDIR": SYSTEM_TMP},
    )

    joblib_with = _joblib_runs(session, scratch, site_packages, "pickle5_rs alias")
    for key in ("workload", "test_parallel"):
        if joblib_with[key] != joblib_without[key]:
            session.error(
                f"joblib {key} differs with the alias: {joblib_with[key]} (no pickle5: {joblib_without[key]})"
            )
    session.log("joblib: the same results and test_parallel counts as with no pickle5")

    session.run("python", "-m", "pickle5_rs.alias", "remove")
    after = _alias_traces(site_packages)
    if after != before:
        session.error(f"`alias remove` left site-packages changed: {before} -> {after}")
    session.run("python", "-c", "import importlib.util as u; assert u.find_spec('pickle5') is None")
    session.log("alias removed: site-packages is as before, `import pickle5` fails again")


@nox.session(python=INTEGRATION_PYTHONS, venv_backend="venv")
def integration_reference(session):
    """cloudpickle's test suite with the C pickle5 backport: the result `integration` must match."""
    scratch = Path(session.create_tmp()).resolve()
    sdist = _cloudpickle_sources(session, scratch)
    _integration_venv(session, sdist, REFERENCE_BACKPORT[session.python])
    _cloudpickle_suite(session, sdist, scratch, "the C backport " + REFERENCE_BACKPORT[session.python])


# The Rust unit tests are an executable, so they link libpython (the extension leaves the Python
# symbols to the interpreter that loads it): pyenv's CPython of this version, whose builds are shared.
RUST_TESTS_PYTHON = "3.11"


@nox.session(python=False)
def rust_tests(session):
    """The Rust unit tests (`cargo test`): frame sizing, protocol 0's escapes and number parsing,
    the memo tables; those that need objects run in an embedded CPython 3.11 (pyenv's). The
    `extension-module` feature is turned off so that the test binary links libpython."""
    prefix = _pyenv_prefix(RUST_TESTS_PYTHON)
    if prefix is None:
        session.error(f"the Rust unit tests need pyenv's CPython {RUST_TESTS_PYTHON}")
    python = prefix / "bin" / f"python{RUST_TESTS_PYTHON}"
    libdir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        stdout=subprocess.PIPE,
        universal_newlines=True,
        check=True,
    ).stdout.strip()
    library_path = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p)
    session.chdir(ROOT)
    session.run(
        "cargo",
        "test",
        "--no-default-features",
        *session.posargs,
        env={"PYO3_PYTHON": str(python), "LD_LIBRARY_PATH": library_path, "DYLD_LIBRARY_PATH": library_path},
        external=True,
    )
