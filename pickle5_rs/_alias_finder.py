"""Lets ``import pickle5`` find pickle5_rs on CPython 3.6/3.7 when the pickle5 backport is absent.

``python -m pickle5_rs.alias install`` copies this file into site-packages as
``_pickle5_rs_alias.py`` next to a one-line ``pickle5_rs-alias.pth`` that imports it, so that every
interpreter of the environment (subprocesses and multiprocessing workers included) runs it at
start-up. It only appends a finder to ``sys.meta_path``: nothing of pickle5_rs is imported until a
program imports ``pickle5``. The finder is consulted after the regular ones, so an installed pickle5
is always found first and the alias then does nothing. On Python 3.8+ importing this does nothing.

Only the standard library may be used here, and nothing heavy at import time.
"""

import sys

# The module names the backport's package provides that pickle5_rs can stand in for.
TOP = "pickle5"
SUBMODULES = ("pickle5.pickle", "pickle5._pickle")
# Marks the finder on sys.meta_path, whichever copy of this file put it there.
MARKER = "_pickle5_rs_alias"


class Pickle5RsAlias:
    """Meta-path finder and loader that serves pickle5_rs under the name ``pickle5``."""

    _pickle5_rs_alias = True

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == TOP:
            pass
        elif fullname in SUBMODULES:
            # Only below our own pickle5, never below a real one.
            parent = sys.modules.get(TOP)
            loader = getattr(getattr(parent, "__spec__", None), "loader", None)
            if not getattr(loader, MARKER, False):
                return None
        else:
            return None
        from importlib.machinery import ModuleSpec
        from importlib.util import find_spec

        if find_spec("pickle5_rs") is None:  # uninstalled since: stay out of the way
            return None
        return ModuleSpec(fullname, cls, origin="pickle5_rs", is_package=fullname == TOP)

    @staticmethod
    def create_module(spec):
        return None  # the default module object

    @classmethod
    def exec_module(cls, module):
        from pickle5_rs._pickle5 import populate

        populate(module)
        if module.__name__ == TOP:
            # As in the backport, ``pickle5.pickle`` and ``pickle5._pickle`` exist once pickle5 is
            # imported.
            from importlib import import_module

            for name in SUBMODULES:
                import_module(name)


def install():
    """Appends the finder to ``sys.meta_path`` (once); nothing on Python 3.8+."""
    if sys.version_info >= (3, 8):
        return False
    if not any(getattr(finder, MARKER, False) for finder in sys.meta_path):
        sys.meta_path.append(Pickle5RsAlias)
    return True


if __name__ == "_pickle5_rs_alias":
    install()
