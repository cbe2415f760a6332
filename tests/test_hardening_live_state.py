"""Hooks see and change the live state of the pickler/unpickler that calls them, as in C: the memo
during `dump`/`load`, `fast`; another thread is refused while a dump/load runs."""

import io
import threading

import pytest

from unpickle_support import REF, TARGET

pytestmark = pytest.mark.skipif(REF is None, reason="reference pickle module is not installed")

SHARED = [1]


SIZES = []


def _pickler_run(module, hook, graph):
    class Hooked(module.Pickler):
        def persistent_id(self, obj):
            if obj == "probe":
                hook(self)
            return None

    f = io.BytesIO()
    Hooked(f, 2).dump(graph)
    return f.getvalue()


@pytest.mark.parametrize(
    "name, hook",
    [
        ("copy", lambda p: SIZES.append(len(p.memo.copy()))),
        ("clear_memo", lambda p: p.clear_memo()),
        ("proxy_clear", lambda p: p.memo.clear()),
        ("assign_dict", lambda p: setattr(p, "memo", {})),
        ("fast_on", lambda p: setattr(p, "fast", 1)),
    ],
)
def test_pickler_hooks_see_the_live_memo(name, hook):
    graph = [SHARED, [2], "probe", SHARED, [SHARED, 3]]
    del SIZES[:]
    ours = _pickler_run(TARGET, hook, graph)
    ours_sizes = list(SIZES)
    del SIZES[:]
    ref = _pickler_run(REF, hook, graph)
    assert ours == ref
    assert ours_sizes == SIZES


def _unpickler_run(module, data, hook_name):
    seen = []

    class Hooked(module.Unpickler):
        def persistent_load(self, pid):
            seen.append(sorted(self.memo.copy().items(), key=repr))
            return "loaded"

        def find_class(self, mod, name):
            if hook_name == "find_class_resets_memo":
                self.memo = {}
            return super().find_class(mod, name)

    try:
        value = Hooked(io.BytesIO(data)).load()
        outcome = ("ok", repr(value))
    except Exception as exc:
        outcome = (type(exc).__name__, str(exc))
    return outcome, seen


@pytest.mark.parametrize("hook_name", ["persistent_load_reads_memo", "find_class_resets_memo"])
def test_unpickler_hooks_see_the_live_memo(hook_name):
    if hook_name == "persistent_load_reads_memo":
        data = b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00xq\x01Qe."
    else:
        data = REF.dumps([SHARED, SHARED, io.BytesIO, SHARED], 2)
    assert _unpickler_run(TARGET, data, hook_name) == _unpickler_run(REF, data, hook_name)


def _from_another_thread(*actions):
    """Runs each action in a second thread: "ran", or the message of its RuntimeError."""
    results = []

    def other():
        for action in actions:
            try:
                action()
                results.append("ran")
            except RuntimeError as exc:
                results.append(str(exc))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    return results


def test_another_thread_is_refused_while_a_dump_runs():
    results = []

    class Hooked(TARGET.Pickler):
        def persistent_id(self, obj):
            if obj == "probe":
                results.extend(
                    _from_another_thread(
                        self.clear_memo, lambda: self.dump([1]), lambda: setattr(self, "memo", {})
                    )
                )
            return None

    f = io.BytesIO()
    Hooked(f, 2).dump([SHARED, "probe", SHARED])
    assert results == ["Pickler is in use by another thread"] * 3
    assert TARGET.loads(f.getvalue()) == [SHARED, "probe", SHARED]


def test_another_thread_is_refused_while_a_load_runs():
    results = []

    class Hooked(TARGET.Unpickler):
        def persistent_load(self, pid):
            results.extend(
                _from_another_thread(
                    self.load, lambda: self.memo.clear(), lambda: self.__init__(io.BytesIO())
                )
            )
            return "loaded"

    data = b"\x80\x02]q\x00(K\x01X\x01\x00\x00\x00xq\x01Qh\x01e."
    assert Hooked(io.BytesIO(data)).load() == [1, "loaded", "x"]
    assert results == ["Unpickler is in use by another thread"] * 3


def test_reinit_from_a_hook_finishes_the_running_dump_and_load():
    # The C pickler writes an unreadable tail to the new file here and the C unpickler can crash;
    # the running call finishes with what it started with.
    first, second = io.BytesIO(), io.BytesIO()

    class Switching(TARGET.Pickler):
        def persistent_id(self, obj):
            if obj == "switch":
                self.__init__(second, 2)
            return None

    p = Switching(first, 2)
    p.dump([1, "switch", [2, 3]])
    assert TARGET.loads(first.getvalue()) == [1, "switch", [2, 3]]
    assert second.getvalue() == b""
    p.dump("next")
    assert TARGET.loads(second.getvalue()) == "next"

    class Reinit(TARGET.Unpickler):
        def find_class(self, module, name):
            if name == "OrderedDict":
                self.__init__(io.BytesIO(TARGET.dumps(["other"], 2)))
            return super().find_class(module, name)

    import collections

    u = Reinit(io.BytesIO(TARGET.dumps([1, collections.OrderedDict, "rest"], 2)))
    assert u.load() == [1, collections.OrderedDict, "rest"]
    assert u.load() == ["other"]
