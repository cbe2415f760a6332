"""The ``safe.*`` rows of bench/run.py: loading restricted to an allow-list.

Each row times ``pickle5_rs.safe_loads`` (or ``SafeUnpickler``, "ours") against something else in
the reference column, so a row's ratio reads as in the rest of the matrix (reference time / our
time):

- ``... vs loads`` rows: plain ``pickle5_rs.loads`` on the same pickle. The cost of the checks;
  the target is >= 0.95.
- ``... vs recipe`` rows: the standard library's recipe, an ``Unpickler`` subclass (of the
  reference C unpickler) whose Python ``find_class`` checks the same allow-list before calling the
  base class's; the target is >= 3 where globals are many. The recipe's list also holds the
  Python 2 spellings of the names (``__builtin__.set``, ``copy_reg._reconstructor``), which
  protocols 0-2 write and its ``find_class`` sees before the base class maps them.

Only ``loads`` cells exist; ``dumps`` cells are n/a.
"""

import _compat_pickle
import collections
import datetime
import decimal
import io
import uuid


def _recipe_names(allow):
    names = set(allow)
    reverse_names = {v: k for k, v in _compat_pickle.NAME_MAPPING.items()}
    reverse_modules = {v: k for k, v in _compat_pickle.IMPORT_MAPPING.items()}
    for module, name in allow:
        if (module, name) in reverse_names:
            names.add(reverse_names[(module, name)])
        if module in reverse_modules:
            names.add((reverse_modules[module], name))
    names.add(("__builtin__", "set"))  # the pickler's own 3-to-2 mapping
    return frozenset(names)


def recipe_unpickler(reference, allow):
    """The stdlib recipe: a find_class override checking an allow-list in Python."""
    names = _recipe_names(allow)
    error = reference.UnpicklingError

    class RestrictedUnpickler(reference.Unpickler):
        def find_class(self, module, name):
            if (module, name) in names:
                return super().find_class(module, name)
            raise error("global '%s.%s' is forbidden" % (module, name))

    return RestrictedUnpickler


def _ours():
    import pickle5_rs

    return pickle5_rs


class _SafeWay:
    ops = ("loads",)

    def pickle(self, mod, obj, protocol):
        return mod.dumps(obj, protocol)

    def dumps_call(self, mod, obj, protocol):  # pragma: no cover (dumps cells are n/a)
        return mod.dumps, (obj, protocol), None

    def same_dumps(self, out, data):  # pragma: no cover
        return out == data

    @staticmethod
    def is_ours(mod):
        return mod is _ours()


class SafeVsLoads(_SafeWay):
    name = "safe_loads vs loads"

    def loads_call(self, mod, data):
        p5 = _ours()
        return (p5.safe_loads if self.is_ours(mod) else p5.loads), (data,), None


class SafeVsRecipe(_SafeWay):
    name = "safe_loads vs the stdlib recipe"

    def loads_call(self, mod, data):
        p5 = _ours()
        if self.is_ours(mod):
            return p5.safe_loads, (data,), None
        unpickler = recipe_unpickler(mod, p5.SAFE_STDLIB)

        def recipe_loads():
            return unpickler(io.BytesIO(data)).load()

        return recipe_loads, (), None


class SafeStream(_SafeWay):
    """Many one-object pickles in one file, read by one unpickler: a global resolved per pickle."""

    def __init__(self, against):
        self.against = against
        self.name = "SafeUnpickler stream vs " + against

    def pickle(self, mod, obj, protocol):
        f = io.BytesIO()
        for item in obj:
            mod.dump(item, f, protocol)
        self.count = len(obj)
        return f.getvalue()

    def loads_call(self, mod, data):
        p5 = _ours()
        count = self.count
        if self.is_ours(mod):
            unpickler = p5.SafeUnpickler
        elif self.against == "loads":
            unpickler = p5.Unpickler
        else:
            unpickler = recipe_unpickler(mod, p5.SAFE_STDLIB)

        def call():
            u = unpickler(io.BytesIO(data))
            return [u.load() for _ in range(count)]

        return call, (), None


def _datetimes(count):
    return [datetime.datetime(2020, 1 + i % 12, 1 + i % 28, i % 24, i % 60, i % 60, i) for i in range(count)]


def _records(count):
    return [
        {
            "when": datetime.datetime(2021, 1 + i % 12, 1 + i % 28, i % 24),
            "day": datetime.date(2020, 1, 1 + i % 28),
            "amount": decimal.Decimal("%d.%02d" % (i, i % 100)),
            "id": uuid.UUID(int=i * 0x9E3779B97F4A7C15 % (1 << 128)),
            "tags": {"a", "b%d" % (i % 3)},
            "order": collections.OrderedDict([("x", i), ("y", -i)]),
            "z": complex(i, 1),
            "raw": b"\x00\x01" * (i % 5),
        }
        for i in range(count)
    ]


def _docs(count):
    return [
        {
            "id": i,
            "name": "user%d" % i,
            "score": i * 0.5,
            "tags": ["x", "y"],
            "ok": i % 2 == 0,
            "nested": {"a": [i, i + 1], "b": None},
        }
        for i in range(count)
    ]


def rows(workload):
    """The safe.* workloads, made with bench/run.py's Workload class."""
    W = workload
    return [
        W("safe.datetime", lambda q: _datetimes(10000), "10,000 datetimes, vs loads", SafeVsLoads),
        W("safe.datetime_r", lambda q: _datetimes(10000), "10,000 datetimes, vs recipe", SafeVsRecipe),
        W("safe.records", lambda q: _records(1000), "1,000 mixed stdlib records, vs loads", SafeVsLoads),
        W("safe.records_r", lambda q: _records(1000), "1,000 mixed records, vs recipe", SafeVsRecipe),
        W("safe.docs", lambda q: _docs(2000), "2,000 docs, no globals, vs loads", SafeVsLoads),
        W(
            "safe.tiny_dt",
            lambda q: datetime.datetime(2020, 5, 17, 12, 30, 45),
            "one datetime, vs loads",
            SafeVsLoads,
        ),
        W(
            "safe.tiny_dt_r",
            lambda q: datetime.datetime(2020, 5, 17, 12, 30, 45),
            "one datetime, vs recipe",
            SafeVsRecipe,
        ),
        W(
            "safe.stream_dt",
            lambda q: _datetimes(2000),
            "2,000 pickles in a file, vs Unpickler",
            lambda: SafeStream("loads"),
        ),
        W(
            "safe.stream_dt_r",
            lambda q: _datetimes(2000),
            "2,000 pickles in a file, vs recipe",
            lambda: SafeStream("recipe"),
        ),
    ]


def is_safe_row(name):
    return name.startswith("safe.")


def _geomean(values):
    values = [v for v in values if v > 0]
    if not values:
        return None
    product = 1.0
    for v in values:
        product *= v
    return product ** (1.0 / len(values))


def summary(cells):
    """Per comparison (vs loads, vs recipe): geomean and lowest cell of the safe.* rows."""
    out = {}
    for against, suffix in (("loads", ""), ("recipe", "_r")):
        timed = [c for c in cells if "ratio" in c and c["workload"].endswith("_r") == (suffix == "_r")]
        if timed:
            lowest = min(timed, key=lambda c: c["ratio"])
            highest = max(timed, key=lambda c: c["ratio"])
            out[against] = {
                "geomean": _geomean([c["ratio"] for c in timed]),
                "lowest": [lowest["workload"], lowest["protocol"], lowest["ratio"]],
                "highest": [highest["workload"], highest["protocol"], highest["ratio"]],
            }
    return out


def summary_lines(cells):
    lines = []
    for against, target in (("loads", "target 0.95"), ("recipe", "target 3 with many globals")):
        row = summary(cells).get(against)
        if row:
            lines.append(
                "safe_loads vs %-6s geomean %.2f, lowest %s p%d %.2f, highest %s p%d %.2f (%s)"
                % (
                    against,
                    row["geomean"],
                    row["lowest"][0],
                    row["lowest"][1],
                    row["lowest"][2],
                    row["highest"][0],
                    row["highest"][1],
                    row["highest"][2],
                    target,
                )
            )
    return lines
