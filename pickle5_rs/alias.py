"""Serve pickle5_rs as ``pickle5`` on CPython 3.6/3.7, and let the stdlib's ``pickle`` read protocol 5.

cloudpickle, numpy and dask.distributed use protocol 5 on Python 3.6/3.7 only through a module named
``pickle5``. With the C backport absent, pickle5_rs can answer that import::

    python -m pickle5_rs.alias install    # every interpreter of this environment, children too
    python -m pickle5_rs.alias status     # what ``import pickle5`` gives, and whether pickle reads 5
    python -m pickle5_rs.alias remove     # back to how it was (do this before uninstalling)

Libraries that write with cloudpickle then write protocol 5, and some read back with the stdlib
(loky and joblib start their workers that way), so ``install`` also makes the stdlib's readers
``pickle.load``, ``pickle.loads`` and ``pickle.Unpickler`` read protocol 5 with pickle5_rs, whichever
module serves ``pickle5`` (the C backport too); ``--no-stdlib-read`` leaves that out. Writing is left
alone: ``pickle.dump(s)``, ``pickle.Pickler`` and ``pickle.HIGHEST_PROTOCOL`` (4) stay the stdlib's,
and pickles of protocols 0-4 are read by the stdlib's own C unpickler as before.

``install`` writes two files into the site-packages directory that holds pickle5_rs:
``pickle5_rs-alias.pth`` and ``_pickle5_rs_alias.py``. At start-up the .pth file makes Python
import the small module, which puts two finders on ``sys.meta_path`` and nothing else; pickle5_rs
and its extension are imported only when a program imports ``pickle5`` or a stdlib reader meets a
protocol-5 pickle, and ``pickle``'s readers are replaced only when a program imports ``pickle``. The
``pickle5`` finder comes after the regular ones, so an installed pickle5 backport is always
preferred. On Python 3.8 and later nothing is installed and nothing happens: those versions have
protocol 5 in ``pickle``.

For the current process only (no files written; a forked child inherits it, a spawned or
``subprocess`` child does not), call :func:`enable` before the first ``import pickle5`` (and before
other modules bind ``pickle.loads`` and the like, if they are to read protocol 5).
"""

import argparse
import os
import site
import sys
from importlib.machinery import PathFinder
from pathlib import Path

from . import _alias_finder

PTH_NAME = "pickle5_rs-alias.pth"
MODULE_NAME = "_pickle5_rs_alias"
PTH_TEXT = (
    "# Serves pickle5_rs as pickle5 on Python 3.6/3.7 when the pickle5 backport is not installed%s.\n"
    "# From `python -m pickle5_rs.alias install`; `python -m pickle5_rs.alias remove` deletes it.\n"
    "import %s; %s.install(stdlib_read=%s)\n"
)


def pth_text(stdlib_read):
    note = ", and lets pickle.load(s)/Unpickler read protocol 5" if stdlib_read else ""
    return PTH_TEXT % (note, MODULE_NAME, MODULE_NAME, bool(stdlib_read))


NOT_NEEDED = "Python %d.%d has protocol 5 in its own pickle module: no alias is needed."
NOT_NEEDED %= sys.version_info[:2]
STDLIB_READ_ON = "pickle.load/loads/Unpickler read protocol 5 too (with pickle5_rs); writing unchanged"
STDLIB_READ_LEFT_OUT = "pickle.load/loads/Unpickler: unchanged (--no-stdlib-read), protocol 4 at most"


def installed_parts(site_dir):
    """(alias files present, stdlib reading on) for the alias files in ``site_dir``."""
    pth, module = _files(site_dir)
    if not (pth.exists() and module.exists()):
        return False, False
    return True, "stdlib_read=True" in pth.read_text(encoding="utf-8")


def enable(stdlib_read=True):
    """Lets ``import pickle5`` find pickle5_rs in this process; returns False on Python 3.8+.

    With ``stdlib_read`` (the default), ``pickle.load``, ``pickle.loads`` and ``pickle.Unpickler``
    also read protocol 5 (with pickle5_rs), from now on if ``pickle`` is imported already, else
    from its import. Names bound from ``pickle`` before that (``from pickle import loads``) keep the
    stdlib's readers.
    """
    return _alias_finder.install(stdlib_read=stdlib_read)


def real_pickle5():
    """Where the pickle5 backport would be imported from (a path), or None when it is not installed."""
    spec = PathFinder.find_spec("pickle5")
    return None if spec is None else (spec.origin or "pickle5")


def default_site_dir():
    """The site-packages directory that holds pickle5_rs, if Python processes .pth files there."""
    here = Path(__file__).resolve().parent.parent
    candidates = list(getattr(site, "getsitepackages", lambda: [])())
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    for candidate in candidates:
        if Path(candidate).resolve() == here:
            return here
    return None


def _files(site_dir):
    return site_dir / PTH_NAME, site_dir / (MODULE_NAME + ".py")


def _finder_source():
    return Path(_alias_finder.__file__).read_text(encoding="utf-8")


def _drop_bytecode(site_dir):
    """Deletes the compiled finder module (and __pycache__ if nothing else is left in it)."""
    cache_dir = site_dir / "__pycache__"
    caches = sorted(cache_dir.glob(MODULE_NAME + ".*.pyc"))
    for cache in caches:
        cache.unlink()
    if caches and not any(cache_dir.iterdir()):
        cache_dir.rmdir()
    return caches


def _write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(str(tmp), str(path))


def install(site_dir, stdlib_read=True):
    if sys.version_info >= (3, 8):
        print(NOT_NEEDED + " Nothing installed.")
        return 0
    pth, module = _files(site_dir)
    _drop_bytecode(site_dir)  # compiled from an older finder
    _write(module, _finder_source())
    _write(pth, pth_text(stdlib_read))
    print("installed: %s\n           %s" % (pth, module))
    print("import pickle5 -> pickle5_rs when the backport is absent")
    print(STDLIB_READ_ON if stdlib_read else STDLIB_READ_LEFT_OUT)
    real = real_pickle5()
    if real is not None:
        print("note: the pickle5 backport is installed (%s) and is used instead while it is." % real)
    return 0


def remove(site_dir):
    removed = [path for path in _files(site_dir) if path.exists()]
    for path in removed:
        path.unlink()
    removed += _drop_bytecode(site_dir)
    if removed:
        print("removed: %s" % "\n         ".join(map(str, removed)))
    else:
        print("nothing to remove in %s" % site_dir)
    return 0


def status(site_dir):
    if sys.version_info >= (3, 8):
        print(NOT_NEEDED)
        return 0
    pth, module = _files(site_dir)
    installed, stdlib_read = installed_parts(site_dir)
    parts = "absent"
    if installed:
        parts = "present (import pickle5, %s)" % (
            "stdlib reading of protocol 5" if stdlib_read else "no stdlib reading: --no-stdlib-read"
        )
    print("alias files in %s: %s" % (site_dir, parts))
    if installed and module.read_text(encoding="utf-8") != _finder_source():
        print("  its finder is from another pickle5_rs version: run `install` again")
    if installed and pth.read_text(encoding="utf-8") != pth_text(stdlib_read):
        print("  its .pth file is from another pickle5_rs version: run `install` again")
    real = real_pickle5()
    active = any(getattr(finder, _alias_finder.MARKER, False) for finder in sys.meta_path)
    if real is not None:
        print("import pickle5 -> the pickle5 backport (%s)" % real)
    elif active:
        print("import pickle5 -> pickle5_rs")
    else:
        print("import pickle5 -> ImportError (neither the backport nor the alias)")
    # What this very process does, with the .pth file of its site-packages.
    import pickle

    if _alias_finder.stdlib_reads_protocol_5():
        print("pickle.load/loads/Unpickler -> protocols 0-4 by pickle's own, 5 by pickle5_rs")
    else:
        print("pickle.load/loads/Unpickler -> unchanged, protocol %d at most" % pickle.HIGHEST_PROTOCOL)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m pickle5_rs.alias",
        description="Serve pickle5_rs as `pickle5` on Python 3.6/3.7 when the backport is absent, "
        "and let the stdlib's pickle.load(s)/Unpickler read protocol 5.",
    )
    parser.add_argument("command", choices=["install", "remove", "status"])
    parser.add_argument(
        "--no-stdlib-read",
        dest="stdlib_read",
        action="store_false",
        help="install: leave pickle.load(s)/Unpickler as they are (they then stop at protocol 4)",
    )
    parser.add_argument(
        "--site-dir",
        type=Path,
        help="site-packages directory for the two files (default: the one that holds pickle5_rs)",
    )
    args = parser.parse_args(argv)
    site_dir = args.site_dir or default_site_dir()
    if site_dir is None:
        parser.error(
            "pickle5_rs is not installed in a site-packages directory (%s); pass --site-dir"
            % Path(__file__).resolve().parent.parent
        )
    if args.command == "install":
        return install(Path(site_dir), stdlib_read=args.stdlib_read)
    return {"remove": remove, "status": status}[args.command](Path(site_dir))


if __name__ == "__main__":
    sys.exit(main())
