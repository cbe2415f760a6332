"""joblib's loky backend with what users send it: run as a script, so that the function, the class and
the lambda below live in ``__main__`` (loky then sends them with cloudpickle, by value).

Prints one JSON object: the results, whether numpy arrays reached the workers as memory maps, and
which ``pickle5`` the parent and the workers saw. `nox -s integration` runs it with the alias
installed and with no pickle5 at all, and requires the same results; test_joblib.py checks them.
"""

import json
import os
import sys

import numpy as np
from joblib import Parallel, delayed

# Arrays above joblib's max_nbytes (1 MB by default) reach loky's workers as memory maps.
BIG = 300_000  # float64: 2.4 MB


def double(x):
    return x * 2


class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return x * self.factor


def array_summary(array, offset):
    return {
        "memmap": isinstance(array, np.memmap) or isinstance(getattr(array, "base", None), np.memmap),
        "sum": float((array + offset).sum()),
        "shape": list(array.shape),
    }


def where_pickle5():
    """What `pickle5` is in this process (None if not importable), and this process's id."""
    try:
        import pickle5
    except ImportError:
        return {"pid": os.getpid(), "pickle5": None}
    loader = getattr(getattr(pickle5, "__spec__", None), "loader", None)
    which = "pickle5_rs" if getattr(loader, "_pickle5_rs_alias", False) else "backport"
    return {"pid": os.getpid(), "pickle5": which}


def main():
    parallel = Parallel(n_jobs=2, backend="loky")
    array = np.arange(BIG, dtype=np.float64)
    results = {
        "functions": parallel(delayed(double)(i) for i in range(8)),
        "classes": parallel(delayed(Scaler(3))(i) for i in range(8)),
        "lambdas": parallel(delayed(lambda x, y=5: x + y)(i) for i in range(8)),
        "arrays": parallel(delayed(array_summary)(array, i) for i in range(4)),
        "returned_arrays": [
            float(a.sum()) for a in parallel(delayed(np.multiply)(array, i) for i in range(3))
        ],
    }
    workers = parallel(delayed(where_pickle5)() for _ in range(4))
    print(
        json.dumps(
            {
                "results": results,
                "parent_pickle5": where_pickle5()["pickle5"],
                "worker_pickle5": sorted({w["pickle5"] or "none" for w in workers}),
                "worker_pids_differ": all(w["pid"] != os.getpid() for w in workers),
                "python": "%d.%d" % sys.version_info[:2],
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
