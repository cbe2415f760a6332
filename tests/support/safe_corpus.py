"""Pickles for the safe-loading tests: hostile ones, written opcode by opcode, and allowed ones.

The hostile pickles name dangerous globals through every opcode that names or calls one, at
every protocol. Running any of them unrestricted would run a shell command or import a module;
``safe_loads`` must refuse each before anything is imported. They are plain bytes, built without
importing what they name, so the child process that loads them can check afterwards that nothing
was imported and no marker file was written.
"""

import collections
import datetime
import decimal
import fractions
import struct
import uuid

# --- a small assembler ---------------------------------------------------------------------------

MARK, STOP, TUPLE, REDUCE, BUILD, EMPTY_DICT, NONE = b"(", b".", b"t", b"R", b"b", b"}", b"N"
EMPTY_TUPLE, TUPLE1, TUPLE2, NEWOBJ, NEWOBJ_EX = b")", b"\x85", b"\x86", b"\x81", b"\x92"
APPENDS, SETITEM, ADDITEMS, EMPTY_LIST = b"e", b"s", b"\x90", b"]"
OBJ, STACK_GLOBAL, MEMOIZE, BINGET, POP = b"o", b"\x93", b"\x94", b"h", b"0"


def proto_header(protocol):
    return b"\x80" + bytes([protocol]) if protocol >= 2 else b""


def text(value):
    """A str argument, as BINUNICODE (any protocol's unpickler reads it)."""
    data = value.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(data)) + data


def global_(module, name):
    return b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"


def stack_global(module, name):
    return text(module) + text(name) + STACK_GLOBAL


def args_tuple(args):
    return MARK + b"".join(arg_ops(a) for a in args) + TUPLE


def arg_ops(value):
    if isinstance(value, bytes):  # already opcodes
        return value
    if isinstance(value, str):
        return text(value)
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, list):
        return EMPTY_LIST + MARK + b"".join(arg_ops(v) for v in value) + APPENDS
    if value is None:
        return NONE
    raise TypeError(value)


def ext_ops(code):
    if code < 256:
        return b"\x82" + bytes([code])
    if code < 65536:
        return b"\x83" + struct.pack("<H", code)
    return b"\x84" + struct.pack("<i", code)


# --- what the hostile pickles reach for ----------------------------------------------------------

#: A module the child process can import, which leaves a marker when imported or called.
SENTINEL_MODULE = "p5rs_sentinel_evil"
SENTINEL_SOURCE = (
    "import os\n"
    "open(os.environ['P5RS_MARKER'] + '.imported', 'w').close()\n"
    "def boom(*args):\n"
    "    open(os.environ['P5RS_MARKER'] + '.called', 'w').close()\n"
    "class Boom(object):\n"
    "    def __init__(self, *args):\n"
    "        boom()\n"
)


def dangerous_targets(marker):
    """(module, name, args): each would run something if called."""
    touch = "touch " + marker + ".shell"
    code = "open(%r, 'w').close()" % (marker + ".eval")
    return [
        ("os", "system", [touch]),
        ("posix", "system", [touch]),
        ("subprocess", "check_output", [["sh", "-c", touch]]),
        ("subprocess", "Popen", [["sh", "-c", touch]]),
        ("subprocess", "getoutput", [touch]),
        ("builtins", "eval", [code]),
        ("builtins", "exec", [code]),
        ("builtins", "compile", [code, "<x>", "exec"]),
        ("builtins", "getattr", [None, "__class__"]),
        ("builtins", "__import__", [SENTINEL_MODULE]),
        ("builtins", "open", [marker + ".open", "w"]),
        ("importlib", "import_module", [SENTINEL_MODULE]),
        ("runpy", "run_module", [SENTINEL_MODULE]),
        ("functools", "partial", [None]),
        ("operator", "attrgetter", ["__globals__"]),
        ("operator", "methodcaller", ["system", touch]),
        ("pickle", "loads", [b"C\x00"]),
        ("webbrowser", "open", ["http://example.invalid/"]),
        ("shutil", "rmtree", [marker + ".dir"]),
        ("sys", "exit", [3]),
        (SENTINEL_MODULE, "boom", []),
        (SENTINEL_MODULE, "Boom", []),
    ]


#: Python 2 names that the protocol 0-2 name mapping turns into dangerous Python 3 ones.
PY2_TARGETS = [
    ("__builtin__", "eval", ["1"]),
    ("__builtin__", "getattr", [None, "__class__"]),
    ("__builtin__", "__import__", [SENTINEL_MODULE]),
    ("__builtin__", "execfile", ["/dev/null"]),
    ("commands", "getoutput", ["true"]),
    ("cPickle", "loads", [b"C\x00"]),
    ("os", "getcwdu", []),
]

#: Dotted qualnames and module spellings that reach a dangerous object from an innocent start.
DOTTED_TRICKS = [
    ("os.path", "os.system"),
    ("posixpath", "os.system"),
    ("os", "path.os.system"),
    ("builtins", "getattr.__self__.eval"),
    ("builtins", "__builtins__.eval"),
    ("builtins", "set.__init__.__objclass__"),
    ("builtins", "object.__subclasses__"),
    ("builtins", "set.__class__"),
    ("copyreg", "_reconstructor.__globals__"),
    ("copyreg", "sys.modules"),
    ("collections", "OrderedDict.__init__.__globals__"),
    ("collections", "_sys.modules"),
    ("datetime", "sys.modules"),
    ("datetime", "datetime.__class__"),
    ("datetime", "datetime.__reduce_ex__"),
    ("datetime", "datetime.fromtimestamp"),
    ("decimal", "Decimal.__init__"),
    ("uuid", "os.system"),
    ("uuid", "UUID.__init__.__globals__"),
    ("sys", "modules"),
    ("os ", "system"),
    (" os", "system"),
    (".os", "system"),
    ("os.", "system"),
    ("__main__", "os"),
    ("builtins.os", "system"),
    ("datetime.os", "system"),
    ("datetime", ""),
    ("", "system"),
    ("p5rs_alias_of_os", "system"),
    ("p5rs_alias_of_os", "path"),
    ("pickle5_rs._core", "loads"),
    ("pickle5_rs", "loads"),
    ("_pickle", "loads"),
    ("copyreg", "add_extension"),
    ("copyreg", "_inverted_registry"),
]

#: Extension codes the child registers for dangerous globals (copyreg.add_extension).
EXTENSIONS = [(0xF1, "os", "system"), (0x1234, "builtins", "eval"), (0x123456, SENTINEL_MODULE, "boom")]


def call_forms(module, name, args):
    """Each way a pickle can name (module, name) and call it: (form, opcodes before STOP)."""
    targs = args_tuple(args)
    args_only = b"".join(arg_ops(a) for a in args)
    return [
        ("GLOBAL+REDUCE", global_(module, name) + targs + REDUCE),
        ("STACK_GLOBAL+REDUCE", stack_global(module, name) + targs + REDUCE),
        ("INST", MARK + args_only + b"i" + module.encode() + b"\n" + name.encode() + b"\n"),
        ("OBJ", MARK + global_(module, name) + args_only + OBJ),
        ("STACK_GLOBAL+OBJ", MARK + stack_global(module, name) + args_only + OBJ),
        ("NEWOBJ", global_(module, name) + targs + NEWOBJ),
        ("NEWOBJ_EX", stack_global(module, name) + targs + EMPTY_DICT + NEWOBJ_EX),
        ("memo+REDUCE", global_(module, name) + MEMOIZE + POP + BINGET + b"\x00" + targs + REDUCE),
        ("GLOBAL only", global_(module, name)),
    ]


def hostile_corpus(marker):
    """(case id, pickle bytes, allow-list names or None for the default): every one must be refused."""
    cases = []
    for protocol in range(6):
        head = proto_header(protocol)
        for module, name, args in dangerous_targets(marker):
            for form, body in call_forms(module, name, args):
                cases.append(("p%d %s %s.%s" % (protocol, form, module, name), head + body + STOP, None))
        for module, name, args in PY2_TARGETS:
            for form, body in call_forms(module, name, args)[:1] + call_forms(module, name, args)[2:3]:
                cases.append(("p%d py2 %s %s.%s" % (protocol, form, module, name), head + body + STOP, None))
        for module, name in DOTTED_TRICKS:
            cases.append(
                (
                    "p%d dotted %s/%s" % (protocol, module, name),
                    head + stack_global(module, name) + EMPTY_TUPLE + REDUCE + STOP,
                    None,
                )
            )
            if module and name:  # GLOBAL cannot spell an empty name
                cases.append(
                    (
                        "p%d dotted-global %s/%s" % (protocol, module, name),
                        head + global_(module, name) + STOP,
                        None,
                    )
                )
        for code, module, name in EXTENSIONS:
            cases.append(
                (
                    "p%d EXT %d %s.%s" % (protocol, code, module, name),
                    head + ext_ops(code) + args_tuple(["1"]) + REDUCE + STOP,
                    None,
                )
            )
        cases.extend(_structural_cases(head, protocol, marker))
    return cases


def _structural_cases(head, protocol, marker):
    """Refusals that are not about a name: calls of call results, gateways, changes to globals."""
    p = "p%d " % protocol
    dt = global_("datetime", "datetime")
    odict = global_("collections", "OrderedDict")
    recon = global_("copyreg", "_reconstructor")
    obj = global_("builtins", "object")
    # Kept as written: a pickle's opcodes on a line or two, not one opcode a line.
    # fmt: off
    cases = [
        # copyreg._reconstructor: its class must be allowed (refused by name) ...
        (p + "reconstructor forbidden class",
         head + recon + MARK + global_("subprocess", "Popen") + obj + NONE + TUPLE + REDUCE + STOP, None),
        (p + "reconstructor sentinel class",
         head + recon + MARK + global_(SENTINEL_MODULE, "Boom") + obj + NONE + TUPLE + REDUCE + STOP, None),
        # ... and named by an allowed global, not made by a call (here type(), allowed for the test).
        (p + "reconstructor class made by type()",
         head + recon + MARK + global_("builtins", "type") + MARK + text("Evil") + obj + TUPLE1
         + EMPTY_DICT + TUPLE + REDUCE + obj + NONE + TUPLE + REDUCE + STOP,
         ["builtins.type"]),
        (p + "reconstructor class is a str",
         head + recon + MARK + text("os") + obj + NONE + TUPLE + REDUCE + STOP, None),
        (p + "reconstructor base is a str",
         head + recon + MARK + dt + text("object") + NONE + TUPLE + REDUCE + STOP, None),
        (p + "reconstructor no arguments", head + recon + EMPTY_TUPLE + REDUCE + STOP, None),
        (p + "newobj helper class made by type()",
         head + global_("copyreg", "__newobj__") + global_("builtins", "type") + MARK + text("Evil")
         + obj + TUPLE1 + EMPTY_DICT + TUPLE + REDUCE + TUPLE1 + REDUCE + STOP,
         ["builtins.type"]),
        (p + "newobj_ex helper forbidden class",
         head + global_("copyreg", "__newobj_ex__") + MARK + global_("os", "system") + EMPTY_TUPLE
         + EMPTY_DICT + TUPLE + REDUCE + STOP, None),
        # NEWOBJ / OBJ of a class that a call made.
        (p + "NEWOBJ class made by type()",
         head + global_("builtins", "type") + MARK + text("Evil") + obj + TUPLE1 + EMPTY_DICT + TUPLE
         + REDUCE + EMPTY_TUPLE + NEWOBJ + STOP,
         ["builtins.type"]),
        (p + "OBJ class made by type()",
         head + MARK + global_("builtins", "type") + MARK + text("Evil") + obj + TUPLE1 + EMPTY_DICT
         + TUPLE + REDUCE + OBJ + STOP,
         ["builtins.type"]),
        # A call result is never called, even when the allowed callable makes a callable.
        (p + "call of functools.partial result",
         head + global_("functools", "partial") + MARK + global_("builtins", "str") + TUPLE + REDUCE
         + args_tuple(["x"]) + REDUCE + STOP,
         ["functools.partial", "builtins.str"]),
        (p + "call of operator.attrgetter result",
         head + global_("operator", "attrgetter") + args_tuple(["__class__"]) + REDUCE
         + MARK + dt + TUPLE + REDUCE + STOP,
         ["operator.attrgetter", "datetime.datetime"]),
        (p + "call of operator.methodcaller result",
         head + global_("operator", "methodcaller") + args_tuple(["mro"]) + REDUCE
         + MARK + dt + TUPLE + REDUCE + STOP,
         ["operator.methodcaller", "datetime.datetime"]),
        (p + "call of a call result (str)",
         head + global_("builtins", "str") + args_tuple(["x"]) + REDUCE + EMPTY_TUPLE + REDUCE + STOP, None),
        (p + "call of a str", head + text("os.system") + EMPTY_TUPLE + REDUCE + STOP, None),
        # Codecs are looked up by name, which imports their module.
        (p + "_codecs.encode with a codec to import",
         head + global_("_codecs", "encode") + args_tuple(["x", "uu"]) + REDUCE + STOP, None),
        (p + "_codecs.encode rot13",
         head + global_("_codecs", "encode") + args_tuple(["x", "rot13"]) + REDUCE + STOP, None),
        (p + "bytearray with a codec to import",
         head + global_("builtins", "bytearray") + args_tuple(["x", "idna"]) + REDUCE + STOP, None),
        (p + "bytes with a codec to import",
         head + global_("builtins", "bytes") + args_tuple(["x", "punycode"]) + REDUCE + STOP, None),
        (p + "str with a codec to import",
         head + global_("builtins", "str") + MARK + b"C\x01x" + text("hex") + TUPLE + REDUCE + STOP, None),
        (p + "NEWOBJ_EX str with a keyword encoding",
         head + global_("builtins", "str") + MARK + b"C\x01x" + TUPLE + EMPTY_DICT + text("encoding")
         + text("uu") + SETITEM + NEWOBJ_EX + STOP, None),
        # Globals are not data: no BUILD, APPENDS, SETITEM(S) or ADDITEMS on them.
        (p + "BUILD on an allowed class (slot state)",
         head + odict + NONE + EMPTY_DICT + text("__reduce__") + global_("builtins", "str") + SETITEM
         + TUPLE2 + BUILD + STOP, None),
        (p + "BUILD on an allowed class (dict state)",
         head + dt + EMPTY_DICT + text("x") + text("y") + SETITEM + BUILD + STOP, None),
        (p + "BUILD on an allowed function",
         head + recon + NONE + EMPTY_DICT + text("__defaults__") + EMPTY_TUPLE + SETITEM + TUPLE2
         + BUILD + STOP, None),
        (p + "APPENDS on an allowed class",
         head + global_("collections", "deque") + MARK + EMPTY_LIST + APPENDS + STOP, None),
        (p + "SETITEM on an allowed class",
         head + odict + text("k") + text("v") + SETITEM + STOP, None),
        (p + "ADDITEMS on an allowed class",
         head + global_("builtins", "set") + MARK + text("x") + ADDITEMS + STOP, None),
        # Persistent ids are refused without a persistent_load.
        (p + "PERSID", head + b"P" + b"os.system\n" + STOP, None),
        (p + "BINPERSID", head + text("os.system") + b"Q" + STOP, None),
    ]
    # fmt: on
    return cases


# --- allowed pickles -----------------------------------------------------------------------------


def allowed_objects():
    """Objects that SAFE_STDLIB loads at every protocol (values of the types it names)."""
    utc = datetime.timezone.utc
    plus2 = datetime.timezone(datetime.timedelta(hours=2), "EET")
    objects = [
        None,
        True,
        False,
        0,
        1,
        -1,
        255,
        65535,
        2**31,
        -(2**31) - 1,
        2**64,
        -(2**200),
        10**300,
        0.0,
        -1.5,
        1e300,
        float("inf"),
        1.0 / 3,
        "",
        "a",
        "héllo wörld €",
        "\udcff surrogate",
        "x" * 300,
        b"",
        b"\x00\xff",
        b"abc" * 100,
        bytearray(),
        bytearray(b"\x00ab\xff"),
        (),
        (1,),
        (1, 2),
        (1, 2, 3),
        (1, 2, 3, 4),
        [],
        [1, [2, [3]]],
        {},
        {"a": 1, 2: "b", (3,): [4]},
        set(),
        {1, 2, 3},
        frozenset(),
        frozenset({"a", "b"}),
        complex(1, -2),
        complex(0, 0),
        range(3),
        range(1, 10, 3),
        slice(1, 2, 3),
        slice(None),
        Ellipsis,
        NotImplemented,
        datetime.date(2020, 2, 29),
        datetime.time(12, 30, 45, 123456),
        datetime.time(1, 2, tzinfo=utc),
        datetime.datetime(2021, 12, 31, 23, 59, 59, 999999),
        datetime.datetime(2021, 1, 1, tzinfo=plus2),
        datetime.datetime(2000, 1, 1, tzinfo=utc),
        datetime.datetime(2021, 11, 7, 1, 30, fold=1),
        datetime.timedelta(days=-3, seconds=5, microseconds=7),
        utc,
        plus2,
        decimal.Decimal("3.14159"),
        decimal.Decimal("-0"),
        decimal.Decimal("NaN"),
        decimal.Decimal("1e-999"),
        fractions.Fraction(22, 7),
        fractions.Fraction(-1, 3),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.UUID(int=0),
        collections.OrderedDict([("b", 1), ("a", [2])]),
        collections.deque([1, "2", 3.0]),
        collections.deque([1, 2], maxlen=5),
        collections.Counter("abracadabra"),
    ]
    shared = [1, 2]
    objects.append([shared, shared, {"again": shared}])
    objects.append(
        {
            "when": datetime.datetime(2020, 5, 17),
            "amount": decimal.Decimal("9.99"),
            "tags": {"x", "y"},
            "id": uuid.UUID(int=12345),
            "raw": b"\x01\x02",
        }
    )
    objects.append([datetime.datetime(2020, 1, 1 + i % 28, i % 24) for i in range(50)])
    return objects


def same(a, b):
    """Equal and of the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a:
        return b != b
    if isinstance(a, decimal.Decimal) and a.is_nan():
        return b.is_nan()
    if isinstance(a, (list, tuple, collections.deque)):
        return (
            len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b))
            and (not isinstance(a, collections.deque) or a.maxlen == b.maxlen)
        )
    if isinstance(a, dict):
        return list(a.keys()) == list(b.keys()) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, datetime.datetime):
        return a == b and a.fold == b.fold and a.tzinfo == b.tzinfo
    return a == b


def python2_pickles():
    """Pickles as Python 2 writes them (names mapped on load): (id, bytes, expected value)."""
    return [
        ("py2 set p0", b"c__builtin__\nset\np0\n((lp1\nI1\naI2\natp2\nRp3\n.", {1, 2}),
        ("py2 set p2", b"\x80\x02c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.", {1, 2}),
        ("py2 frozenset p2", b"\x80\x02c__builtin__\nfrozenset\n]K\x03a\x85R.", frozenset([3])),
        (
            "py2 datetime p2",
            b"\x80\x02cdatetime\ndatetime\nU\n\x07\xe4\x01\x02\x03\x04\x05\x00\x00\x06\x85R.",
            datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        ),
        ("py2 decimal p0", b"cdecimal\nDecimal\n(S'1.5'\ntR.", decimal.Decimal("1.5")),
        (
            "py2 OrderedDict p2",
            b"\x80\x02ccollections\nOrderedDict\n]U\x01aK\x01\x86a\x85R.",
            collections.OrderedDict([("a", 1)]),
        ),
        ("py2 xrange p2", b"\x80\x02c__builtin__\nxrange\nK\x00K\x05K\x01\x87R.", range(5)),
    ]
