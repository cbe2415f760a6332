"""The namespace pickle5_rs gives the modules ``pickle5``, ``pickle5.pickle`` and ``pickle5._pickle``
when it stands in for the pickle5 backport (see ``pickle5_rs.alias``).

What libraries take from ``pickle5``: cloudpickle (``Pickler`` to subclass, ``HIGHEST_PROTOCOL``,
``load(s)``, ``PicklingError``, opcode constants), numpy's C code (``PickleBuffer``, for arrays at
protocol 5) and ``numpy.compat.pickle`` (``dump(s)``/``load(s)``), dask.distributed
(``HIGHEST_PROTOCOL``, ``dumps(..., buffer_callback=)``, ``loads(..., buffers=)``). All of it is
pickle5_rs's public surface; the backport's extra package names ``bytes_types`` and
``dispatch_table`` are added. Not provided: the backport's pure-Python ``_Pickler``/``_Unpickler``
(and ``_dump(s)``/``_load(s)``) and its ``pickletools``.
"""

import copyreg

import pickle5_rs

NAMES = dict((name, getattr(pickle5_rs, name)) for name in pickle5_rs.__all__)
NAMES["bytes_types"] = (bytes, bytearray)
NAMES["dispatch_table"] = copyreg.dispatch_table


def populate(module):
    """Fills a fresh module object with the names above."""
    module.__dict__.update(NAMES)
    module.__all__ = list(pickle5_rs.__all__)
    module.__doc__ = "pickle5_rs, serving as pickle5 (python -m pickle5_rs.alias status)."
