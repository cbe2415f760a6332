"""Fuzz target: re-entrancy. Hooks that dump or load again while a dump or load is running.

Each input is a small program. Its first bytes choose a configuration: protocol, fast mode,
``buffer_callback``, which Pickler/Unpickler subclass runs, the recursion limit (up to 10**6: the
extension's native stack guard, not the interpreter's counter, must then stop deep re-entry with
``RecursionError``), how deeply nested a list the graph carries, and whether the case runs in a
thread with a small stack (``threading.stack_size`` 64-256 KiB). The next bytes build an object
graph whose objects call hooks at every point where the pickler or unpickler calls back into
Python: ``persistent_id``, ``reducer_override``, ``__reduce__``, ``__reduce_ex__``,
``__getstate__``, ``__setstate__``, a REDUCE callable, a state setter, ``find_class``,
``persistent_load``, the file's ``write``/``read``/``readline``/``readinto``/``peek``,
``buffer_callback``, a list subclass's ``append``/``extend`` and a dict subclass's
``__setitem__``. The case dumps the graph and loads the result back, both with hooks.

The rest of the input is a table of triggers: "at the n-th call of hook K, do A". The actions:
dump or load again on a new Pickler/Unpickler (whose hooks fire in turn), on the instance whose
hook is running, or on another instance that may itself be in use; clear or replace ``memo``;
set ``fast``; call ``__init__`` again with other arguments; swap ``__class__`` between two
subclasses; swap ``persistent_load``; run the garbage collector; raise; or switch to "deep" mode,
where every hook re-enters with a new round trip until a depth cap (possibly unbounded). A nested
operation's exceptions may be swallowed, so that the outer one goes on with the state it leaves.
Hook calls, actions and output size are capped, so an execution stays short.

Every outcome must be success or an exception that is an instance of Exception; a crash, a hang,
a Rust panic (``pyo3_runtime.PanicException``), a SystemError (raised, or swallowed by a hook)
or an error the interpreter reports instead of raising is a finding. When the case ran in the
main thread with a recursion limit of at most 10**4 and no action touched an instance in use
(so re-entry only went through new instances, and no file hook acted: the two implementations
call the file at different points), the reference C pickler runs the same program, and both must
agree: identical pickle bytes, equal loaded values (identity structure included), or the same
exception class. The reference never performs the actions that rule a comparison out (should its
run take another path and reach one): its C unpickler does not survive them all.

Run through ``python fuzz/run.py SECONDS WORKDIR reentrant`` (see run.py); by hand:
``PYTHONPATH=target/fuzz/pkg:fuzz python fuzz/fuzz_reentrant.py CORPUS_DIR -max_total_time=60``.
"""

import gc
import io
import sys
import threading

import common
from common import Finding, HookError, Reader, check_exception

# Configuration tables, indexed by input bytes.
LIMITS = (3000, 3000, 3000, 200, 1000, 10**4, 10**5, 10**6, 10**6)
STACK_KIB = (64, 96, 128, 192, 256)
DEPTH_CAPS = (1, 2, 3, 8, 32, 1 << 30)
NESTING = (0,) * 12 + (40, 300, 1200, 30000)  # a list nested this deep goes into the graph
COMPARABLE_LIMIT = 10**4  # above it, only pickle5_rs runs (the reference has no stack guard)

MAX_OPS = 24  # graph-building operations
MAX_TRIGGERS = 32
MAX_HOOK_CALLS = 3000  # all hooks of one case together; past it they do nothing
MAX_ACTIONS = 160  # actions performed by one case
OUTPUT_CAP = 1 << 20

# Hook kinds (trigger byte % len(KINDS)); the last one, "any", counts every call of the hooks
# that are not file methods.
KINDS = (
    "persistent_id",
    "reducer_override",
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__setstate__",
    "rebuild",
    "set_state",
    "find_class",
    "persistent_load",
    "append",
    "extend",
    "__setitem__",
    "buffer_callback",
    "write",
    "read",
    "readline",
    "readinto",
    "peek",
    "any",
)
FILE_KINDS = frozenset(("write", "read", "readline", "readinto", "peek"))

(
    NOTHING,
    RAISE,
    NEW_DUMP,
    NEW_LOAD,
    ROUND_TRIP,
    SAME,
    CLEAR_MEMO,
    SET_MEMO,
    FAST,
    REINIT,
    SWAP_CLASS,
    RAISE_OTHER,
    OTHER_INSTANCE,
    COLLECT,
    PERSISTENT_LOAD,
    DEEP,
) = range(16)
# Actions after which the two implementations are not expected to agree: they act on an
# instance that may be in the middle of a dump or load, whose semantics then differ by design.
UNCOMPARABLE = frozenset(
    (SAME, CLEAR_MEMO, SET_MEMO, FAST, REINIT, SWAP_CLASS, OTHER_INSTANCE, PERSISTENT_LOAD)
)

OTHER_ERRORS = (
    ValueError,
    TypeError,
    RecursionError,
    KeyError,
    MemoryError,
    StopIteration,
    EOFError,
    AttributeError,
)


# --- the running case ------------------------------------------------------------------------

CURRENT = [None]  # the running case's Plan; None outside a case (hooks then do nothing)


def _hook(kind, inst=None):
    plan = CURRENT[0]
    if plan is None:
        return None
    return plan.hook(kind, inst)


class Plan:
    """One case's program: its configuration, triggers and the state hooks act on."""

    def __init__(self, m, config, triggers, pool):
        self.m = m
        self.ns = CLASSES[m]
        self.c = config
        self.triggers = triggers  # {(kind, n): code}
        self.pool = pool
        self.counts = dict.fromkeys(KINDS, 0)
        self.calls = 0
        self.actions = 0
        self.depth = 0
        self.deep = False
        self.comparable = True
        self.bad = []  # SystemErrors that hooks swallowed
        self.in_use = []  # instances whose dump/load is running, innermost last
        self.buffers = []
        self.spare_pickler = None
        self.spare_unpickler = None

    # -- hooks --

    def hook(self, kind, inst):
        self.calls += 1
        if self.calls > MAX_HOOK_CALLS:
            self.comparable = False  # where the cap falls depends on the call order
            return None
        n = self.counts[kind]
        self.counts[kind] = n + 1
        code = self.triggers.get((kind, n))
        if code is None and kind not in FILE_KINDS:
            n = self.counts["any"]
            self.counts["any"] = n + 1
            code = self.triggers.get(("any", n))
        if code is None and self.deep and kind not in FILE_KINDS and self.depth < self.c["cap"]:
            code = ROUND_TRIP
        if code is None or self.actions >= MAX_ACTIONS:
            return None
        self.actions += 1
        action, arg = code & 15, code >> 4
        if action == NOTHING:
            return None
        if action in UNCOMPARABLE or kind in FILE_KINDS:
            self.comparable = False
            if self.m is not common.pickle5_rs:
                # The reference runs a program only to compare, and such a program no longer
                # compares; its C unpickler does not survive all of them (a memo set to {} makes
                # the next PUT write past the end of its memo table).
                return None
        if inst is None:
            inst = self.in_use[-1] if self.in_use else None
        if arg & 8 and action not in (RAISE, RAISE_OTHER):
            try:
                return self.act(action, arg, kind, inst)
            except Exception as exc:  # swallowed on purpose; judged below
                self.swallowed(exc)
                return None
        return self.act(action, arg, kind, inst)

    def swallowed(self, exc):
        if isinstance(exc, SystemError) or type(exc).__name__ == "PanicException":
            self.bad.append(repr(exc))
        if isinstance(exc, (RecursionError, MemoryError)):
            self.comparable = False

    def act(self, action, arg, kind, inst):
        m, ns = self.m, self.ns
        if action == RAISE:
            raise HookError(kind)
        if action == RAISE_OTHER:
            raise OTHER_ERRORS[arg % len(OTHER_ERRORS)](kind)
        if action == COLLECT:
            gc.collect(0 if arg < 15 or self.c["thread"] else 2)
            return None
        if action == DEEP:
            self.deep = True
            action = ROUND_TRIP
        if action == NEW_DUMP:
            return self.nested(lambda: self.dump_new(self.pick(arg), arg))
        if action == NEW_LOAD:
            return self.nested(lambda: self.load_new(PAYLOADS[arg % len(PAYLOADS)], arg))
        if action == ROUND_TRIP:
            return self.nested(lambda: self.load_new(self.dump_new(self.pick(arg), arg), arg))
        if action == OTHER_INSTANCE:
            if arg & 1:
                if self.spare_pickler is None:
                    self.spare_pickler = ns.PA(HookedFile(), self.c["proto"])
                inst = self.spare_pickler
            else:
                if self.spare_unpickler is None:
                    self.spare_unpickler = ns.UA(HookedReader(PAYLOADS[arg % len(PAYLOADS)]))
                inst = self.spare_unpickler
            action = SAME
        if inst is None:
            return None
        is_pickler = isinstance(inst, m.Pickler)
        if action == SAME:
            if is_pickler:
                return self.nested(lambda: self.run_dump(inst, self.pick(arg)))
            return self.nested(lambda: self.run_load(inst))
        if action == CLEAR_MEMO:
            if is_pickler and arg & 1:
                inst.clear_memo()
            elif arg & 2:
                inst.memo = {}
            else:
                inst.memo.clear()
            return None
        if action == SET_MEMO:
            other = self.spare_pickler if is_pickler else self.spare_unpickler
            if arg & 1 and other is not None:
                inst.memo = other.memo
            elif arg & 2:
                inst.memo = inst.memo.copy()
            elif is_pickler:
                obj = self.pick(arg)
                inst.memo = {id(obj): (arg, obj)}
            else:
                inst.memo = {arg: self.pick(arg), arg * 3: self.pick(arg + 1)}
            return None
        if action == FAST:
            if is_pickler:
                inst.fast = arg & 1
            else:
                inst.persistent_load = None if arg & 1 else _plain_persistent_load
            return None
        if action == REINIT:
            if is_pickler:
                callback = self.buffer_callback() if arg & 1 else None
                inst.__init__(HookedFile(), arg % 7 - 1, buffer_callback=callback)
            else:
                encoding = ("ASCII", "latin1", "bytes")[arg % 3]
                inst.__init__(
                    HookedReader(PAYLOADS[arg % len(PAYLOADS)]),
                    encoding=encoding,
                    buffers=list(self.buffers) if arg & 4 else None,
                )
            return None
        if action == SWAP_CLASS:
            a, b = (ns.PA, ns.PB) if is_pickler else (ns.UA, ns.UB)
            inst.__class__ = b if type(inst) is a else a
            return None
        if action == PERSISTENT_LOAD:
            if is_pickler:
                inst.dispatch_table = {} if arg & 1 else {RNode: _reduce_rnode}
            else:
                inst.persistent_load = _plain_persistent_load if arg & 1 else inst.find_class
            return None
        return None

    def nested(self, fn):
        self.depth += 1
        try:
            return fn()
        finally:
            self.depth -= 1

    def pick(self, arg):
        return self.pool[arg % len(self.pool)] if self.pool else arg

    # -- the operations --

    def buffer_callback(self):
        mode = self.c["callback"]
        if mode == 1:
            return self.buffers.append

        def callback(buf):
            _hook("buffer_callback")
            if mode == 3:
                return True  # in band
            self.buffers.append(buf)
            return None

        return callback

    def run_dump(self, p, obj):
        self.in_use.append(p)
        try:
            p.dump(obj)
        finally:
            self.in_use.pop()

    def run_load(self, u):
        self.in_use.append(u)
        try:
            return u.load()
        finally:
            self.in_use.pop()

    def dump_new(self, obj, arg=0):
        f = HookedFile()
        cls = self.ns.PB if arg & 2 else self.ns.PA
        callback = self.buffer_callback() if self.c["callback"] and self.c["proto"] >= 5 else None
        p = cls(f, self.c["proto"], buffer_callback=callback)
        if self.c["fast"]:
            p.fast = True
        self.run_dump(p, obj)
        return f.getvalue()

    def load_new(self, data, arg=0):
        cls = self.ns.UB if arg & 4 else self.ns.UA
        reader = HookedReader(data) if arg & 1 or self.c["peek"] else ReadOnlyReader(data)
        return self.run_load(cls(reader, buffers=list(self.buffers)))

    def top(self, obj):
        """The case itself: dump `obj` with hooks, then load the result (or, when the dump
        failed, a fixed payload) with hooks. Returns ((ok, bytes | exc), (ok, value | exc))."""
        c = self.c
        f = HookedFile()
        cls = self.ns.PB if c["pickler_b"] else self.ns.PA
        dumped = _attempt(lambda: self._top_dump(cls, f, obj))
        data = dumped[1] if dumped[0] else PAYLOADS[c["payload"]]
        cls = self.ns.UB if c["unpickler_b"] else self.ns.UA
        reader = HookedReader(data) if c["peek"] else ReadOnlyReader(data)
        loaded = _attempt(lambda: self.run_load(cls(reader, buffers=list(self.buffers))))
        return dumped, loaded

    def _top_dump(self, cls, f, obj):
        callback = self.buffer_callback() if self.c["callback"] and self.c["proto"] >= 5 else None
        p = cls(f, self.c["proto"], buffer_callback=callback)
        if self.c["fast"]:
            p.fast = True
        self.run_dump(p, obj)
        if self.c["twice"]:
            self.run_dump(p, obj)  # again with the memo of the first dump
        return f.getvalue()


def _attempt(fn):
    try:
        return True, fn()
    except BaseException as exc:  # noqa: B902 - judged by check_exception
        return False, exc


# --- files -----------------------------------------------------------------------------------


class OutputCap(HookError):
    """The pickles of a case outgrew what a run may write."""


class HookedFile:
    def __init__(self):
        self.out = bytearray()

    def write(self, data):
        _hook("write")
        n = memoryview(data).nbytes
        if len(self.out) + n > OUTPUT_CAP:
            raise OutputCap("output cap")
        self.out += data
        return n

    def getvalue(self):
        return bytes(self.out)


class ReadOnlyReader:
    """read() and readline() only."""

    def __init__(self, data):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        _hook("read")
        return self._f.read(n)

    def readline(self, n=-1):
        _hook("readline")
        return self._f.readline(n)


class HookedReader(ReadOnlyReader):
    def readinto(self, b):
        _hook("readinto")
        return self._f.readinto(b)

    def peek(self, n=0):
        _hook("peek")
        pos = self._f.tell()
        chunk = self._f.read(max(n, 1))
        self._f.seek(pos)
        return chunk


# --- objects whose (un)pickling calls hooks ----------------------------------------------------


class RNode:
    """Reduces to a REDUCE of `rebuild` (a hook at load time)."""

    def __init__(self, tag, kids):
        self.tag = tag
        self.kids = kids

    def __reduce_ex__(self, proto):
        _hook("__reduce_ex__")
        return rebuild, (self.tag, self.kids)


def rebuild(tag, kids):
    _hook("rebuild")
    return RNode(tag, kids)


def _reduce_rnode(obj):
    return rebuild, (obj.tag, [])


class SNode:
    """The default reduction, with hooked __getstate__ and __setstate__ (BUILD)."""

    def __getstate__(self):
        _hook("__getstate__")
        return dict(self.__dict__)

    def __setstate__(self, state):
        _hook("__setstate__")
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state


class QNode:
    """__reduce__ (no __reduce_ex__), with a state setter when its tag is odd."""

    def __init__(self, tag=0):
        self.tag = tag

    def __reduce__(self):
        _hook("__reduce__")
        if self.tag % 2:
            return QNode, (self.tag,), {"tag": self.tag}, None, None, set_state
        return QNode, (self.tag,), {"tag": self.tag}


def set_state(obj, state):
    _hook("set_state")
    obj.__dict__.update(state)


class HList(list):
    """Loaded through APPEND(S), which call its append/extend."""

    def append(self, item):
        _hook("append")
        super().append(item)

    def extend(self, items):
        _hook("extend")
        super().extend(items)


class HDict(dict):
    """Loaded through SETITEM(S), which call its __setitem__."""

    def __setitem__(self, key, value):
        _hook("__setitem__")
        super().__setitem__(key, value)


SUPPORT = {
    "RNode": RNode,
    "rebuild": rebuild,
    "SNode": SNode,
    "QNode": QNode,
    "set_state": set_state,
    "HList": HList,
    "HDict": HDict,
}


def _plain_persistent_load(pid):
    return ("plain", pid)


def _make_classes(m):
    """Pickler and Unpickler subclasses (two of each, so that __class__ can be swapped)."""

    class PA(m.Pickler):
        def persistent_id(self, obj):
            value = _hook("persistent_id", self)
            if isinstance(value, bytes) and not isinstance(obj, (bytes, str)):
                return value  # the pickle of a nested dump as the persistent id
            if isinstance(obj, int) and obj == 4242:
                return "pid-4242"
            return None

        def reducer_override(self, obj):
            _hook("reducer_override", self)
            if isinstance(obj, QNode) and obj.tag == 3:
                return QNode, (33,)
            return NotImplemented

    class PB(m.Pickler):
        def reducer_override(self, obj):
            value = _hook("reducer_override", self)
            if isinstance(obj, RNode) and value is not None:
                return rebuild, (obj.tag, [])
            return NotImplemented

    class UA(m.Unpickler):
        def find_class(self, module, name):
            _hook("find_class", self)
            return super().find_class(module, name)

        def persistent_load(self, pid):
            value = _hook("persistent_load", self)
            if isinstance(pid, bytes):
                # A nested pickle: load it with a new unpickler (more hooks).
                return self.__class__(HookedReader(pid)).load()
            return ("pid", pid, value is not None)

    class UB(m.Unpickler):
        def persistent_load(self, pid):
            _hook("persistent_load", self)
            return ("pid-b", pid)

    ns = type("Classes", (), {})
    ns.PA, ns.PB, ns.UA, ns.UB = PA, PB, UA, UB
    return ns


CLASSES = {}
PAYLOADS = []


def _make_payloads():
    """Pickles for nested loads, made with the reference pickler while no case runs."""
    ref = common.REF
    h = HList([1, 2, 3])
    h.attr = "x"
    d = HDict(a=1, b=[2])
    s = SNode()
    s.x = [h, d]
    objs = [
        RNode(1, [s, QNode(1)]),
        [h, d, h],
        QNode(2),
        {"k": RNode(2, [])},
        s,
        [QNode(5), SNode(), 4242],
    ]

    class P(ref.Pickler):
        def persistent_id(self, obj):
            return "pid-%d" % obj if isinstance(obj, int) and obj == 4242 else None

    out = []
    for obj in objs:
        for proto in (0, 2, 4, 5):
            f = io.BytesIO()
            P(f, proto).dump(obj)
            out.append(f.getvalue())
    # A persistent id that is itself a pickle (loaded by UA.persistent_load with a new unpickler).
    out.append(b"\x80\x04B" + len(out[4]).to_bytes(4, "little") + out[4] + b"Q.")
    out.append(b"\x80\x02]q\x00(K\x01h\x00e.")  # a list that contains itself (memo get)
    PAYLOADS[:] = out


# --- building a case -------------------------------------------------------------------------


def parse(data, m):
    r = Reader(data)
    b0, b1, b2, b3 = r.byte(), r.byte(), r.byte(), r.byte()
    config = {
        "proto": b0 % 7 - 1,
        "fast": b0 & 0x80 != 0 and b0 & 0x40 != 0,
        "twice": b0 & 0x20 != 0 and b0 & 0x08 == 0,
        "limit": LIMITS[b1 % len(LIMITS)],
        "thread": b1 & 0xC0 == 0xC0,
        "stack": STACK_KIB[(b1 >> 3) % len(STACK_KIB)] * 1024,
        "cap": DEPTH_CAPS[b2 % len(DEPTH_CAPS)],
        "nesting": NESTING[(b2 >> 3) % len(NESTING)],
        "callback": b3 % 4,
        "pickler_b": b3 & 0x04 != 0,
        "unpickler_b": b3 & 0x08 != 0,
        "peek": b3 & 0x10 != 0,
        "payload": (b3 >> 5) % 8,
    }
    if config["fast"] and 0 <= config["proto"] < 4:
        # Fast mode re-pickles shared objects, so output can grow exponentially with the graph;
        # only framed protocols write to the file as they go, where HookedFile stops them.
        config["proto"] = 4
    n_ops = r.byte() % (MAX_OPS + 1)
    ops = r.bytes(2 * n_ops)
    triggers = {}
    for _ in range(min(MAX_TRIGGERS, (len(data) - r.pos) // 3)):
        kind = KINDS[r.byte() % len(KINDS)]
        n = r.byte() % 64
        code = r.byte()
        triggers.setdefault((kind, n), code)
    return config, ops, triggers


def build(ops, config, m):
    """The object graph: a list (the pool, in order) of what `ops` make."""
    pool = []

    def pick(b):
        return pool[b % len(pool)] if pool else b

    for i in range(0, len(ops) - 1, 2):
        op, arg = ops[i] % 16, ops[i + 1]
        if op == 0:
            obj = arg - 128 if arg != 255 else 4242
        elif op == 1:
            obj = "s%d" % arg * (arg % 3)
        elif op == 2:
            obj = bytes([arg]) * (1 + arg % 5)  # (no b"": builtins.bytes is not allowed)
        elif op == 3:
            obj = [pick(arg + k) for k in range(arg % 4)]
        elif op == 4:
            obj = tuple(pick(arg + k) for k in range(arg % 4))
        elif op == 5:
            obj = {"k%d" % k: pick(arg + k) for k in range(arg % 4)}
        elif op == 6:
            obj = RNode(arg, [pick(arg + k) for k in range(arg % 3)])
        elif op == 7:
            obj = SNode()
            obj.a = pick(arg)
            if arg & 1:
                obj.b = pick(arg >> 1)
        elif op == 8:
            obj = QNode(arg % 6)
        elif op == 9:
            obj = HList(pick(arg + k) for k in range(arg % 4))
            if arg & 0x80:
                obj.attr = arg
        elif op == 10:
            obj = HDict(("k%d" % k, pick(arg + k)) for k in range(arg % 4))
        elif op == 11:
            # a container that contains itself
            target = next((x for x in reversed(pool) if isinstance(x, (list, dict))), None)
            if isinstance(target, list):
                target.append(target)
            elif isinstance(target, dict):
                target["self"] = target
            obj = target
        elif op == 12:
            raw = bytearray([arg]) * (arg % 9)
            obj = m.PickleBuffer(raw) if config["proto"] in (-1, 5) else raw
        elif op == 13:
            obj = pick(arg)  # shared
        elif op == 14:
            obj = frozenset(range(arg % 5)) if arg & 1 else {arg, -arg}
        else:
            obj = (RNode, SNode, rebuild, HList, set_state)[arg % 5]
        pool.append(obj)
    return pool


_NESTED = {}


def nested_list(depth):
    """[[...[None]...]], `depth` deep; made once per depth (hooks never change plain lists)."""
    if depth not in _NESTED:
        obj = None
        for _ in range(depth):
            obj = [obj]
        _NESTED[depth] = obj
    return _NESTED[depth]


def run(data, m):
    """Runs the case on module `m` (in the main thread or a small-stack thread, with its
    recursion limit). Returns (plan, (dumped, loaded))."""
    config, ops, triggers = parse(data, m)
    pool = build(ops, config, m)
    obj = list(pool) if len(pool) != 1 else pool[0]
    if config["nesting"]:
        obj = [obj, nested_list(config["nesting"])]
    plan = Plan(m, config, triggers, pool)

    def case():
        old = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(config["limit"])
        except RecursionError:
            pass
        CURRENT[0] = plan
        try:
            return plan.top(obj)
        finally:
            CURRENT[0] = None
            sys.setrecursionlimit(old)

    if not config["thread"]:
        return plan, case()
    box = []

    def target():
        box.append(_attempt(case))

    old = threading.stack_size(config["stack"])
    try:
        t = threading.Thread(target=target)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    ok, value = box[0]
    if not ok:
        raise value  # the harness failed in the thread (its own bug): let libFuzzer report it
    return plan, value


# --- comparing -------------------------------------------------------------------------------


def canonical(value):
    """A comparable form of a loaded value: structure, types by name, and which mutable objects
    are shared."""
    seen = {}

    def walk(x):
        t = type(x)
        if x is None or t in (bool, int, float, complex, str, bytes):
            return t.__name__, repr(x)
        if isinstance(x, type) or callable(x) and not isinstance(x, (list, dict)):
            return "global", getattr(x, "__qualname__", t.__name__)
        mutable = not isinstance(x, (tuple, frozenset))
        if mutable:
            if id(x) in seen:
                return "ref", seen[id(x)]
            seen[id(x)] = len(seen)
        if t is bytearray:
            return t.__name__, bytes(x)
        if isinstance(x, (memoryview, common.REF.PickleBuffer)):
            return t.__name__, bytes(memoryview(x))
        parts = [t.__name__]
        if isinstance(x, (list, tuple)):
            parts.append([walk(i) for i in x])
        elif isinstance(x, dict):
            parts.append([(walk(k), walk(v)) for k, v in x.items()])
        elif isinstance(x, (set, frozenset)):
            parts.append(sorted(repr(walk(i)) for i in x))
        if hasattr(x, "__dict__"):  # (not registered: the same for every instance)
            parts.append([(walk(k), walk(v)) for k, v in vars(x).items()])
        return tuple(parts)

    return walk(value)


def _unstable(exc):
    return isinstance(exc, (RecursionError, MemoryError, OutputCap))


def compare(what, ours, ref, values=False):
    (ok_o, v_o), (ok_r, v_r) = ours, ref
    if (not ok_o and _unstable(v_o)) or (not ok_r and _unstable(v_r)):
        return False
    if ok_o != ok_r:
        raise Finding(
            "%s: pickle5_rs %s, reference %s"
            % (
                what,
                "returned %.300r" % (v_o,) if ok_o else "raised %r" % (v_o,),
                "returned %.300r" % (v_r,) if ok_r else "raised %r" % (v_r,),
            )
        )
    if not ok_o:
        if not common.same_class(v_o, v_r):
            raise Finding("%s: pickle5_rs raised %r, reference %r" % (what, v_o, v_r))
        return True
    if values:
        try:
            v_o, v_r = canonical(v_o), canonical(v_r)
        except RecursionError:
            return False
    if v_o != v_r:
        raise Finding("%s: results differ:\n  ours %.2000r\n  ref  %.2000r" % (what, v_o, v_r))
    return True


def test_one_input(data):
    del common.REPORTED[:]
    plan, (dumped, loaded) = run(data, common.pickle5_rs)
    for ok, value in (dumped, loaded):
        if not ok:
            check_exception(value, "reentrant")
    if plan.bad:
        raise Finding("reentrant: a hook swallowed %s" % ", ".join(plan.bad))
    if common.REPORTED:
        reports, common.REPORTED[:] = list(common.REPORTED), []
        raise Finding("reentrant: errors reported during the case: %r" % (reports,))
    config = plan.c
    if not plan.comparable or config["thread"] or config["limit"] > COMPARABLE_LIMIT:
        return
    ref_plan, (ref_dumped, ref_loaded) = run(data, common.REF)
    if ref_plan.bad or common.REPORTED or not ref_plan.comparable:
        del common.REPORTED[:]
        return
    if compare("dump", dumped, ref_dumped):
        compare("load", loaded, ref_loaded, values=True)


def main():
    import atheris

    common.setup_process()
    support = sys.modules[common.SUPPORT_MODULE]
    for name, obj in SUPPORT.items():
        obj.__module__ = common.SUPPORT_MODULE
        obj.__qualname__ = name
        setattr(support, name, obj)
    common.SUPPORT_NAMES.update(SUPPORT)
    for m in (common.pickle5_rs, common.REF):
        CLASSES[m] = _make_classes(m)
    _make_payloads()
    atheris.Setup(sys.argv, test_one_input, internal_libfuzzer=True)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
