"""The module surface that exists from the start: constants, opcodes, exception classes."""

import os
import pickle
import sys
import types
from pathlib import Path

import pytest

import pickle5_rs


def reference_pickle_module():
    """The pure-Python module holding the 3.8 opcode names: stdlib on 3.8+, the pickle5 backport below."""
    if sys.version_info >= (3, 8):
        return pickle
    return pytest.importorskip("pickle5.pickle")


def opcode_names(module):
    return {name for name in dir(module) if name.isupper() and isinstance(getattr(module, name), bytes)}


@pytest.mark.skipif(
    not os.environ.get("PICKLE5_RS_EXPECT_INSTALLED"), reason="only meaningful when run by nox"
)
def test_imported_from_installed_wheel_not_source_tree():
    source_package = Path(__file__).resolve().parent.parent / "pickle5_rs"
    imported_package = Path(pickle5_rs.__file__).resolve().parent
    assert imported_package != source_package, (
        "pickle5_rs was imported from the source tree, not the installed wheel: keep the "
        "repository root off sys.path (no conftest.py at the root, no tests/__init__.py)"
    )


def test_protocol_constants():
    assert pickle5_rs.HIGHEST_PROTOCOL == 5
    assert pickle5_rs.DEFAULT_PROTOCOL == 4


def test_opcode_constants_match_reference():
    reference = reference_pickle_module()
    assert opcode_names(pickle5_rs) == opcode_names(reference)
    for name in opcode_names(reference):
        assert getattr(pickle5_rs, name) == getattr(reference, name), name


def test_protocol_5_opcodes():
    assert pickle5_rs.BYTEARRAY8 == b"\x96"
    assert pickle5_rs.NEXT_BUFFER == b"\x97"
    assert pickle5_rs.READONLY_BUFFER == b"\x98"


# pickle5_rs's names beyond the stdlib pickle module's: loading restricted to an allow-list.
SAFE_LOADING_NAMES = {
    "SafeUnpickler",
    "safe_load",
    "safe_loads",
    "ForbiddenGlobalError",
    "AllowList",
    "SAFE_STDLIB",
    "SAFE_NUMPY",
}
# What 3.8's pickle added to __all__ (protocol 5): 3.6's and 3.7's stdlib pickle lack them.
PROTOCOL_5_NAMES = {"PickleBuffer", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}


def test_all_is_the_stdlib_pickle_modules_plus_safe_loading():
    names = pickle5_rs.__all__
    assert isinstance(names, list) and len(names) == len(set(names))
    assert set(names) == set(pickle.__all__) | PROTOCOL_5_NAMES | SAFE_LOADING_NAMES
    assert [name for name in names if not hasattr(pickle5_rs, name)] == []
    # Every public name of the module is in __all__ (submodules aside).
    public = {
        name
        for name, value in vars(pickle5_rs).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(names)


def test_exception_classes_are_stdlib_pickle_classes():
    assert pickle5_rs.PickleError is pickle.PickleError
    assert pickle5_rs.PicklingError is pickle.PicklingError
    assert pickle5_rs.UnpicklingError is pickle.UnpicklingError


def test_version_is_a_string():
    assert isinstance(pickle5_rs.__version__, str) and pickle5_rs.__version__[0].isdigit()


@pytest.mark.skipif(
    not os.environ.get("PICKLE5_RS_EXPECT_INSTALLED") or sys.version_info < (3, 8),
    reason="compares with the installed distribution's metadata (importlib.metadata: 3.8+)",
)
def test_version_is_the_distributions():
    # Cargo.toml's version, exported by the extension, is what maturin wrote into the metadata.
    from importlib.metadata import version

    assert pickle5_rs.__version__ == version("pickle5_rs")
