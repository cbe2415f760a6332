"""Fixtures for the Unpickler tests.

Run: ``python -m pytest tests`` (imports ``pickle5_rs``; after ``scripts/dev-build`` the work tree's
copy is found from the repository root). ``PICKLE5_RS_TARGET=reference`` runs the same tests against
the reference C unpickler instead (stdlib ``pickle`` on 3.8+, the ``pickle5`` package on 3.6/3.7);
tests the reference is known to fail (it allocates what a length field claims) are then xfail.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import unpickle_support as support  # noqa: E402

# tests/integration/ needs third-party packages and the pickle5 alias: the nox session
# `integration` runs it on its own.
collect_ignore = ["integration"]


def pytest_report_header(config):
    ref = support.REF.__name__ if support.REF is not None else "absent"
    return "unpickler under test: %s; reference: %s" % (support.TARGET_NAME, ref)


@pytest.fixture(scope="session")
def target():
    """The module under test (pickle5_rs, or the reference with PICKLE5_RS_TARGET=reference)."""
    return support.TARGET


@pytest.fixture(scope="session")
def ref():
    """The reference C pickle module; tests that compare with it skip when it is absent."""
    if support.REF is None:
        pytest.skip("reference pickle module (pickle5 on 3.6/3.7) is not installed")
    return support.REF
