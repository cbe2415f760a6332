"""The PEP 517 build backend of pickle5_rs: maturin, and a clear refusal where maturin cannot run.

Building from source (the sdist, or a checkout) needs a Rust toolchain and maturin, and maturin
needs Python 3.7 or later. On 3.7+ every hook is maturin's. On 3.6 pyproject.toml's build
requirement is left out by its environment marker, and each hook raises the error below instead of
an unhelpful "no matching distribution for maturin": the wheel is what 3.6 installs.
"""

import sys

if sys.version_info >= (3, 7):
    import maturin as _maturin

    for _hook in (
        "build_wheel",
        "build_sdist",
        "build_editable",
        "get_requires_for_build_wheel",
        "get_requires_for_build_sdist",
        "get_requires_for_build_editable",
        "prepare_metadata_for_build_wheel",
        "prepare_metadata_for_build_editable",
    ):
        if hasattr(_maturin, _hook):
            globals()[_hook] = getattr(_maturin, _hook)
    del _hook
else:
    REFUSAL = (
        "pickle5_rs cannot be built from source on Python %d.%d: its build backend, maturin, "
        "needs Python 3.7 or later. Install the binary wheel instead, which serves every CPython "
        'from 3.6 on: run `python -m pip install --upgrade "pip<22"` first (pip 18.1, which '
        "comes with 3.6, does not know the wheel's manylinux2014 tag), then "
        "`python -m pip install pickle5_rs`. Where no wheel fits the platform, build one with "
        "Python 3.7 or later (`python3.7 -m pip wheel --no-deps pickle5_rs`) and install that "
        "wheel on 3.6: it is an abi3 wheel for 3.6 and later." % sys.version_info[:2]
    )

    def _refuse(*args, **kwargs):
        raise RuntimeError(REFUSAL)

    build_wheel = build_sdist = _refuse
    get_requires_for_build_wheel = get_requires_for_build_sdist = _refuse
