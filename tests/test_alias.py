"""``python -m pickle5_rs.alias``: pickle5_rs serving as ``pickle5`` on 3.6/3.7.

Each case runs a child interpreter with ``-S`` (no site-packages, so no pickle5 backport and no alias
of this environment) on a sys.path of scratch directories: one with pickle5_rs alone (a symlink to
the installed package), one the alias was installed into (``--site-dir``, added with
``site.addsitedir`` the way Python adds site-packages at start-up), and optionally a stand-in for a
real pickle5. tests/integration/ checks a real installation with cloudpickle, numpy and distributed.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pickle5_rs
from pickle5_rs import _alias_finder, alias

OLD_PYTHON = sys.version_info < (3, 8)
needs_old_python = pytest.mark.skipif(not OLD_PYTHON, reason="the alias only acts on Python 3.6/3.7")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "pickle5_rs.alias", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        universal_newlines=True,
        check=True,
    ).stdout


def listing(directory):
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


@pytest.fixture
def dirs(tmp_path):
    """Scratch directories: `alias` (site dir for the alias), `only` (pickle5_rs alone), `real`."""
    made = {name: tmp_path / name for name in ("alias", "only", "real")}
    for path in made.values():
        path.mkdir()
    (made["only"] / "pickle5_rs").symlink_to(Path(pickle5_rs.__file__).resolve().parent)
    return made


def child(dirs, code, real=False, write_bytecode=False):
    """Runs `code` in `python -S` whose sys.path has pickle5_rs alone and the alias site dir."""
    path = [str(dirs["only"])] + ([str(dirs["real"])] if real else [])
    prelude = "import site, sys\nsys.path[:0] = %r\nsite.addsitedir(%r)\n" % (path, str(dirs["alias"]))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(
        [sys.executable, "-S", "-c", prelude + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.skipif(OLD_PYTHON, reason="3.8+ only")
def test_nothing_to_do_on_38_plus(tmp_path):
    assert _alias_finder.install() is False
    assert alias.enable() is False
    assert not any(getattr(finder, _alias_finder.MARKER, False) for finder in sys.meta_path)
    assert "no alias is needed" in run_cli("install", "--site-dir", str(tmp_path))
    assert listing(tmp_path) == []


@needs_old_python
def test_install_writes_two_files_and_remove_restores(dirs):
    site_dir = dirs["alias"]
    (site_dir / "unrelated.txt").write_text("x")
    before = listing(site_dir)
    out = run_cli("install", "--site-dir", str(site_dir))
    assert "installed" in out
    assert listing(site_dir) == sorted(before + ["_pickle5_rs_alias.py", "pickle5_rs-alias.pth"])
    assert (site_dir / "_pickle5_rs_alias.py").read_text() == Path(_alias_finder.__file__).read_text()
    # Start-up compiles the finder module; remove deletes its bytecode as well.
    child(dirs, "import pickle5", write_bytecode=True)
    assert any(name.startswith("__pycache__/_pickle5_rs_alias.") for name in listing(site_dir))
    run_cli("install", "--site-dir", str(site_dir))  # again: idempotent
    run_cli("remove", "--site-dir", str(site_dir))
    assert listing(site_dir) == before
    assert "nothing to remove" in run_cli("remove", "--site-dir", str(site_dir))


@needs_old_python
def test_start_up_installs_only_the_finder(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        print(sorted(name for name in sys.modules if "pickle5" in name))
        print(getattr(sys.meta_path[-1], "_pickle5_rs_alias", False))
        """,
    )
    assert out.split("\n")[:2] == ["['_pickle5_rs_alias']", "True"]


@needs_old_python
def test_import_pickle5_gives_pickle5_rs(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        import pickle5, pickle5_rs
        from pickle5 import pickle as submodule, PickleBuffer
        import pickle5._pickle as accelerator
        assert "pickle5_rs._core" in sys.modules
        for module in (pickle5, submodule, accelerator):
            assert module.Pickler is pickle5_rs.Pickler and module.loads is pickle5_rs.loads
            assert module.PickleBuffer is pickle5_rs.PickleBuffer is pickle5_rs._core.PickleBuffer
            assert module.HIGHEST_PROTOCOL == 5 and module.DEFAULT_PROTOCOL == 4
            assert set(module.__all__) == set(pickle5_rs.__all__)
        assert pickle5.pickle is submodule and pickle5._pickle is accelerator
        import copyreg
        assert pickle5.dispatch_table is copyreg.dispatch_table
        assert pickle5.bytes_types == (bytes, bytearray)
        buffers = []
        data = pickle5.dumps(PickleBuffer(bytearray(b"abc")), protocol=5, buffer_callback=buffers.append)
        assert bytes(pickle5.loads(data, buffers=buffers)) == b"abc"
        print(pickle5)
        """,
    )
    assert out == "<module 'pickle5' (pickle5_rs)>\n"


@needs_old_python
def test_real_pickle5_wins(dirs):
    real = dirs["real"] / "pickle5"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    run_cli("install", "--site-dir", str(dirs["alias"]))
    out = child(
        dirs,
        """
        import pickle5
        print(pickle5.REAL, "pickle5_rs" in sys.modules)
        try:
            import pickle5.pickle
        except ImportError:
            print("no pickle5.pickle below the real pickle5")
        """,
        real=True,
    )
    assert out == "True False\nno pickle5.pickle below the real pickle5\n"


@needs_old_python
def test_stays_out_of_the_way_once_pickle5_rs_is_gone(dirs):
    run_cli("install", "--site-dir", str(dirs["alias"]))
    (dirs["only"] / "pickle5_rs").unlink()
    out = child(
        dirs,
        """
        try:
            import pickle5
        except ImportError as exc:
            print(type(exc).__name__, exc.name)
        """,
    )
    assert out == "ModuleNotFoundError pickle5\n"


@needs_old_python
def test_status_reports_the_backport_or_the_alias(dirs):
    out = run_cli("status", "--site-dir", str(dirs["alias"]))
    assert "alias files in %s: absent" % dirs["alias"] in out
    if alias.real_pickle5() is not None:  # the tests session installs the backport as reference
        assert "import pickle5 -> the pickle5 backport" in out
    run_cli("install", "--site-dir", str(dirs["alias"]))
    assert ": present" in run_cli("status", "--site-dir", str(dirs["alias"]))
