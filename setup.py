"""Not a setuptools project: pickle5_rs builds with maturin (pyproject.toml, PEP 517).

Only pip older than 19, which predates PEP 517, runs this file. That is the pip Python 3.6 comes
with, which also predates the wheel's manylinux2014 tag and so falls back to the sdist: say what to
do instead of failing on a missing setup.py.
"""

import sys

sys.exit(
    "pickle5_rs: this pip is too old to install it (it predates PEP 517 and the manylinux2014 "
    "wheel tag). Upgrade pip, then install again:\n"
    '    python -m pip install --upgrade "pip<22"\n'
    "    python -m pip install pickle5_rs\n"
    "The new pip installs the binary wheel, one wheel for every CPython from 3.6 on. Building "
    "from source needs Python 3.7 or later and a Rust toolchain."
)
