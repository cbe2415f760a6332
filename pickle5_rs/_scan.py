"""Vetting a pickle without running it: every global it names, every call it makes.

``scan`` follows the pickle opcode by opcode with a symbolic stack (nothing is imported, nothing
is called) and applies the safe loader's rules to what it sees: each global must be on the
allow-list (after the Python 2 name mapping of protocols 0-2); only objects named by globals may be
called (REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST); ``copyreg._reconstructor`` and the ``__newobj__``
helpers need an allowed class; codecs may only be the built-in ones; globals are never the target
of BUILD or of APPEND(S)/SETITEM(S)/ADDITEMS; persistent ids are refused. A pickle the scan passes
may still fail to load (the scan does not know what the allowed callables accept), and where it
cannot tell statically (a STACK_GLOBAL whose names a call made) it reports a problem.
"""

import _compat_pickle
import collections
import copyreg

from ._disassembler import genops

__all__ = ["scan", "Report"]

_BUILTIN_CODECS = ("latin1", "latin-1", "utf-8", "utf8", "ascii")
_CLASS_HELPERS = {
    ("copyreg", "_reconstructor"): ("class", "base"),
    ("copyreg", "__newobj__"): ("class",),
    ("copyreg", "__newobj_ex__"): ("class",),
}
_CODEC_TAKERS = {("_codecs", "encode"), ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "str")}


def spell(module, name):
    """A global as an allow-list spells it: module.name, or module:qualname for a dotted qualname."""
    return "%s%s%s" % (module, ":" if "." in name else ".", name)


class _Mark:
    __slots__ = ()


_MARK = _Mark()


class _Value:
    """Data the pickle wrote: ``kind`` (str, int, list, ...), with the value for scalars."""

    __slots__ = ("kind", "value")

    def __init__(self, kind, value=None):
        self.kind, self.value = kind, value

    def describe(self):
        if self.kind == "str" and self.value is not None:
            text = repr(self.value)
            return "the str " + (text if len(text) <= 40 else text[:37] + "...")
        return "a " + self.kind


class _Tuple:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def describe(self):
        return "a tuple"


class _Global:
    __slots__ = ("module", "name", "allowed")

    def __init__(self, module, name, allowed):
        self.module, self.name, self.allowed = module, name, allowed

    def describe(self):
        return "global " + spell(self.module, self.name)


class _Made:
    """What a call or a persistent id produced."""

    __slots__ = ("what",)

    def __init__(self, what):
        self.what = what

    def describe(self):
        return self.what


class Report:
    """What a scan found. ``globals``: {(module, name): [count, first position, allowed, written as]};
    ``calls``: {(opcode, target): [count, first position, problem or None]}; ``buffers``: positions
    of out-of-band buffers; ``persistent_ids``: (position, id); ``problems``: (position, text)."""

    def __init__(self):
        self.protocols = []
        self.pickles = 0
        self.globals = collections.OrderedDict()
        self.calls = collections.OrderedDict()
        self.buffers = []
        self.persistent_ids = []
        self.problems = []

    @property
    def ok(self):
        return not self.problems

    def as_dict(self):
        return {
            "pickles": self.pickles,
            "protocols": self.protocols,
            "globals": [
                {
                    "global": spell(m, n),
                    "module": m,
                    "name": n,
                    "count": c,
                    "first_at": at,
                    "allowed": ok,
                    "written_as": written,
                }
                for (m, n), (c, at, ok, written) in self.globals.items()
            ],
            "calls": [
                {"opcode": op, "target": target, "count": c, "first_at": at, "problem": problem}
                for (op, target), (c, at, problem) in self.calls.items()
            ],
            "out_of_band_buffers": self.buffers,
            "persistent_ids": [{"at": at, "id": pid} for at, pid in self.persistent_ids],
            "problems": [{"at": at, "problem": text} for at, text in self.problems],
            "ok": self.ok,
        }


class _Scanner:
    def __init__(self, allow, fix_imports, report):
        self.allow = allow
        self.fix_imports = fix_imports
        self.report = report
        self.memo = {}
        self.stack = []
        self.proto = 0

    # -- helpers --

    def problem(self, pos, text):
        self.report.problems.append((pos, text))
        return text

    def pop(self):
        if not self.stack or self.stack[-1] is _MARK:
            raise ValueError("stack underflow")
        return self.stack.pop()

    def pop_mark(self):
        """The items above the topmost MARK, which is removed."""
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1 :]
                del self.stack[i:]
                return items
        raise ValueError("could not find MARK")

    def top(self):
        if not self.stack or self.stack[-1] is _MARK:
            raise ValueError("stack underflow")
        return self.stack[-1]

    def name_global(self, module, name, pos):
        written = None
        if self.proto < 3 and self.fix_imports:
            mapped = _compat_pickle.NAME_MAPPING.get((module, name))
            if mapped is not None:
                written, (module, name) = spell(module, name), mapped
            elif module in _compat_pickle.IMPORT_MAPPING:
                written, module = spell(module, name), _compat_pickle.IMPORT_MAPPING[module]
        allowed = (module, name) in self.allow
        entry = self.report.globals.get((module, name))
        if entry is None:
            self.report.globals[(module, name)] = [1, pos, allowed, written]
            if not allowed:
                self.problem(pos, "global %s is not allowed" % spell(module, name))
        else:
            entry[0] += 1
        return _Global(module, name, allowed)

    def call(self, opname, callable_, args, pos, has_kwargs=False):
        """Records a call; returns what it makes."""
        problem = None
        if isinstance(callable_, _Global):
            target = spell(callable_.module, callable_.name)
            key = (callable_.module, callable_.name)
            if not callable_.allowed:
                problem = "global %s is not allowed" % target
                self.note_call(opname, target, pos, problem, counted=True)
                return _Made("%s(...)" % target)
            elif key in _CLASS_HELPERS or key in _CODEC_TAKERS:
                problem = self.check_arguments(key, target, args, has_kwargs)
        else:
            target = callable_.describe()
            problem = "only objects named by allowed globals may be called"
        self.note_call(opname, target, pos, problem)
        return _Made("%s(...)" % target if isinstance(callable_, _Global) else "a result of " + opname)

    def check_arguments(self, key, target, args, has_kwargs):
        items = args.items if isinstance(args, _Tuple) else None
        if items is None or has_kwargs:
            return "%s with arguments the scan cannot see is refused" % target
        if key in _CLASS_HELPERS:
            for i, role in enumerate(_CLASS_HELPERS[key]):
                arg = items[i] if i < len(items) else None
                if not (isinstance(arg, _Global) and arg.allowed):
                    what = arg.describe() if arg is not None else "nothing"
                    return "%s with %s as its %s: the %s must be an allowed global" % (
                        target,
                        what,
                        role,
                        role,
                    )
            return None
        if len(items) >= 2:
            encoding = items[1]
            if not (
                isinstance(encoding, _Value) and encoding.kind == "str" and encoding.value in _BUILTIN_CODECS
            ):
                return "%s with %s as its encoding: only latin-1, utf-8 or ascii" % (
                    target,
                    encoding.describe(),
                )
        return None

    def note_call(self, opname, target, pos, problem, counted=False):
        """Records a call; its problem too, unless ``counted`` already (a forbidden global)."""
        entry = self.report.calls.get((opname, target))
        if entry is None:
            self.report.calls[(opname, target)] = [1, pos, problem]
        else:
            entry[0] += 1
        if problem is not None and not counted:
            self.problem(pos, "%s %s: %s" % (opname, target, problem))

    def fill(self, opname, target, pos):
        """APPEND(S), SETITEM(S), ADDITEMS, BUILD on ``target``."""
        if isinstance(target, _Value) and opname != "BUILD":
            if target.kind == "dict":
                target.value = "filled"  # (NEWOBJ_EX's keyword arguments are then not empty)
            return  # a list, dict or set the pickle made: nothing is called
        if isinstance(target, _Global):
            self.note_call(opname, "on " + target.describe(), pos, "globals are not data")
        else:
            self.note_call(opname, "on " + target.describe(), pos, None)

    # -- the opcodes --

    def run(self, data_file):
        """Scans one pickle (through its STOP) from the file (the memo carries over, as in an
        Unpickler; the protocol starts again at 0, as each load does)."""
        self.stack = []
        self.proto = 0
        for op, arg, pos in genops(data_file, names_as_loaded=True):
            name = op.name
            handler = getattr(self, "op_" + name, None)
            if handler is not None:
                handler(arg, pos)
            elif op.stack_after and op.stack_after[0].name not in ("any", "mark") and not op.stack_before:
                self.stack.append(_Value(op.stack_after[0].name, arg))
            else:
                raise ValueError("opcode %s is not handled" % name)  # pragma: no cover
        self.report.pickles += 1

    def op_PROTO(self, arg, pos):
        self.proto = arg
        if arg not in self.report.protocols:
            self.report.protocols.append(arg)

    def op_FRAME(self, arg, pos):
        pass

    def op_STOP(self, arg, pos):
        self.pop()

    def op_MARK(self, arg, pos):
        self.stack.append(_MARK)

    def op_POP(self, arg, pos):
        if self.stack and self.stack[-1] is _MARK:
            self.stack.pop()
        else:
            self.pop()

    def op_POP_MARK(self, arg, pos):
        self.pop_mark()

    def op_DUP(self, arg, pos):
        self.stack.append(self.top())

    def op_NEXT_BUFFER(self, arg, pos):
        self.report.buffers.append(pos)
        self.stack.append(_Value("buffer"))

    def op_READONLY_BUFFER(self, arg, pos):
        self.top()

    def op_EMPTY_TUPLE(self, arg, pos):
        self.stack.append(_Tuple([]))

    def _tuple(self, count):
        items = [self.pop() for _ in range(count)][::-1]
        self.stack.append(_Tuple(items))

    def op_TUPLE1(self, arg, pos):
        self._tuple(1)

    def op_TUPLE2(self, arg, pos):
        self._tuple(2)

    def op_TUPLE3(self, arg, pos):
        self._tuple(3)

    def op_TUPLE(self, arg, pos):
        self.stack.append(_Tuple(self.pop_mark()))

    def op_LIST(self, arg, pos):
        self.pop_mark()
        self.stack.append(_Value("list"))

    def op_DICT(self, arg, pos):
        self.pop_mark()
        self.stack.append(_Value("dict"))

    def op_FROZENSET(self, arg, pos):
        self.pop_mark()
        self.stack.append(_Value("frozenset"))

    def op_APPEND(self, arg, pos):
        self.pop()
        self.fill("APPEND", self.top(), pos)

    def op_APPENDS(self, arg, pos):
        self.pop_mark()
        self.fill("APPENDS", self.top(), pos)

    def op_SETITEM(self, arg, pos):
        self.pop()
        self.pop()
        self.fill("SETITEM", self.top(), pos)

    def op_SETITEMS(self, arg, pos):
        self.pop_mark()
        self.fill("SETITEMS", self.top(), pos)

    def op_ADDITEMS(self, arg, pos):
        self.pop_mark()
        self.fill("ADDITEMS", self.top(), pos)

    def op_BUILD(self, arg, pos):
        self.pop()
        self.fill("BUILD", self.top(), pos)

    def _memo_put(self, index):
        self.memo[index] = self.top()

    def op_PUT(self, arg, pos):
        self._memo_put(arg)

    op_BINPUT = op_LONG_BINPUT = op_PUT

    def op_MEMOIZE(self, arg, pos):
        self._memo_put(len(self.memo))

    def op_GET(self, arg, pos):
        if arg not in self.memo:
            raise ValueError("memo key %r has never been stored into" % (arg,))
        self.stack.append(self.memo[arg])

    op_BINGET = op_LONG_BINGET = op_GET

    def op_GLOBAL(self, arg, pos):
        self.stack.append(self.name_global(arg[0], arg[1], pos))

    def op_STACK_GLOBAL(self, arg, pos):
        name, module = self.pop(), self.pop()
        known = [
            v
            for v in (module, name)
            if isinstance(v, _Value) and v.kind in ("str", "bytes_or_str") and isinstance(v.value, str)
        ]
        if len(known) != 2:
            self.problem(
                pos,
                "STACK_GLOBAL with names the scan cannot see (%s, %s)" % (module.describe(), name.describe()),
            )
            self.stack.append(_Made("an unknown global"))
            return
        self.stack.append(self.name_global(module.value, name.value, pos))

    def _extension(self, code, pos):
        pair = copyreg._inverted_registry.get(code)
        if pair is None:
            self.problem(pos, "extension code %d is not registered in this process" % code)
            self.stack.append(_Made("extension %d" % code))
            return
        self.stack.append(self.name_global(pair[0], pair[1], pos))

    op_EXT1 = op_EXT2 = op_EXT4 = _extension

    def op_REDUCE(self, arg, pos):
        args, callable_ = self.pop(), self.pop()
        self.stack.append(self.call("REDUCE", callable_, args, pos))

    def op_NEWOBJ(self, arg, pos):
        args, cls = self.pop(), self.pop()
        self.stack.append(self.call("NEWOBJ", cls, args, pos))

    def op_NEWOBJ_EX(self, arg, pos):
        kwargs, args, cls = self.pop(), self.pop(), self.pop()
        has_kwargs = not (isinstance(kwargs, _Value) and kwargs.kind == "dict" and kwargs.value is None)
        self.stack.append(self.call("NEWOBJ_EX", cls, args, pos, has_kwargs))

    def op_OBJ(self, arg, pos):
        items = self.pop_mark()
        if not items:
            raise ValueError("OBJ without a class")
        self.stack.append(self.call("OBJ", items[0], _Tuple(items[1:]), pos))

    def op_INST(self, arg, pos):
        items = self.pop_mark()
        cls = self.name_global(arg[0], arg[1], pos)
        self.stack.append(self.call("INST", cls, _Tuple(items), pos))

    def _persistent(self, pid, pos):
        self.report.persistent_ids.append((pos, pid))
        self.problem(pos, "persistent id %r: refused without a persistent_load" % (pid,))
        self.stack.append(_Made("a persistent object"))

    def op_PERSID(self, arg, pos):
        self._persistent(arg, pos)

    def op_BINPERSID(self, arg, pos):
        pid = self.pop()
        shown = pid.value if isinstance(pid, _Value) and pid.value is not None else pid.describe()
        self._persistent(shown, pos)

    def op_UNICODE(self, arg, pos):
        self.stack.append(_Value("str", arg))

    op_SHORT_BINUNICODE = op_BINUNICODE = op_BINUNICODE8 = op_UNICODE


def scan(data_file, allow, fix_imports=True):
    """Scans every pickle in the binary file (until its end) against ``allow`` (a set of
    (module, name) pairs). Returns a Report; raises ValueError (or another error of the format's
    readers) on malformed data."""
    report = Report()
    scanner = _Scanner(frozenset(allow), fix_imports, report)
    while True:
        start = data_file.tell()
        if not data_file.read(1):
            break
        data_file.seek(start)
        scanner.run(data_file)
    if report.pickles == 0:
        raise ValueError("no pickle in the input")
    return report
