"""Reading a pickle opcode by opcode, without running it: the opcode table, ``genops`` and ``dis``.

``dis`` prints the same text as ``pickletools.dis`` of Python 3.8 and later (whose output has not
changed since), protocol 5 included, on every version this package supports: ``pickletools`` of 3.6
and 3.7 does not know protocol 5's opcodes. Nothing here imports or calls what a pickle names.
"""

import codecs
import io
import struct
import sys
import warnings

__all__ = ["OPCODES", "Opcode", "genops", "dis"]

# --- arguments ------------------------------------------------------------------------------------


def _read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise ValueError("not enough data in stream to read " + what)
    return data


def _uint1(f):
    return _read_exact(f, 1, "uint1")[0]


def _uint2(f):
    return struct.unpack("<H", _read_exact(f, 2, "uint2"))[0]


def _int4(f):
    return struct.unpack("<i", _read_exact(f, 4, "int4"))[0]


def _uint4(f):
    return struct.unpack("<I", _read_exact(f, 4, "uint4"))[0]


def _uint8(f):
    return struct.unpack("<Q", _read_exact(f, 8, "uint8"))[0]


def _line(f, what):
    data = f.readline()
    if not data.endswith(b"\n"):
        raise ValueError("no newline found when trying to read " + what)
    return data[:-1]


def _escaped_text(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes are kept, as in dis
        return codecs.escape_decode(data)[0].decode("ascii")


def _stringnl(f):
    """STRING: a quoted, escaped line."""
    data = _line(f, "stringnl")
    for quote in (b'"', b"'"):
        if data.startswith(quote):
            if not data.endswith(quote):
                # (sic: the message of pickletools, spelling included)
                raise ValueError("strinq quote %r not found at both ends of %r" % (quote, data))
            return _escaped_text(data[1:-1])
    raise ValueError("no string quotes around %r" % data)


def _stringnl_noescape(f):
    return _escaped_text(_line(f, "stringnl"))


def _stringnl_noescape_pair(f):
    return "%s %s" % (_stringnl_noescape(f), _stringnl_noescape(f))


def _counted(f, count, what):
    data = f.read(count)
    if len(data) != count:
        raise ValueError("expected %d bytes in a %s, but only %d remain" % (count, what, len(data)))
    return data


def _checked_size(count, what):
    if count > sys.maxsize:
        raise ValueError("%s byte count > sys.maxsize: %d" % (what, count))
    return count


def _string1(f):
    return _counted(f, _uint1(f), "string1").decode("latin-1")


def _string4(f):
    count = _int4(f)
    if count < 0:
        raise ValueError("string4 byte count < 0: %d" % count)
    return _counted(f, count, "string4").decode("latin-1")


def _bytes1(f):
    return _counted(f, _uint1(f), "bytes1")


def _bytes4(f):
    return _counted(f, _checked_size(_uint4(f), "bytes4"), "bytes4")


def _bytes8(f):
    return _counted(f, _checked_size(_uint8(f), "bytes8"), "bytes8")


def _bytearray8(f):
    return bytearray(_counted(f, _checked_size(_uint8(f), "bytearray8"), "bytearray8"))


def _unicodestringnl(f):
    return str(_line(f, "unicodestringnl"), "raw-unicode-escape")


def _unicode(f, count, what):
    return str(_counted(f, count, what), "utf-8", "surrogatepass")


def _unicodestring1(f):
    return _unicode(f, _uint1(f), "unicodestring1")


def _unicodestring4(f):
    return _unicode(f, _checked_size(_uint4(f), "unicodestring4"), "unicodestring4")


def _unicodestring8(f):
    return _unicode(f, _checked_size(_uint8(f), "unicodestring8"), "unicodestring8")


def _decimalnl_short(f):
    text = _line(f, "stringnl")
    if text == b"00":
        return False
    if text == b"01":
        return True
    return int(text)


def _decimalnl_long(f):
    text = _line(f, "stringnl")
    if text[-1:] == b"L":
        text = text[:-1]
    return int(text)


def _floatnl(f):
    return float(_line(f, "stringnl"))


def _float8(f):
    return struct.unpack(">d", _read_exact(f, 8, "float8"))[0]


def _long1(f):
    count = _uint1(f)
    data = f.read(count)
    if len(data) != count:
        raise ValueError("not enough data in stream to read long1")
    return int.from_bytes(data, "little", signed=True)


def _long4(f):
    count = _int4(f)
    if count < 0:
        raise ValueError("long4 byte count < 0: %d" % count)
    data = f.read(count)
    if len(data) != count:
        raise ValueError("not enough data in stream to read long4")
    return int.from_bytes(data, "little", signed=True)


# --- the opcodes ----------------------------------------------------------------------------------


class StackItem:
    """What an opcode takes from or leaves on the stack, by kind (its repr is the kind)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_ITEMS = {
    name: StackItem(name)
    for name in (
        "any",
        "int",
        "int_or_bool",
        "bool",
        "float",
        "bytes",
        "bytes_or_str",
        "bytearray",
        "str",
        "None",
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "buffer",
        "mark",
        "stackslice",
    )
}
MARK_ITEM = _ITEMS["mark"]
SLICE_ITEM = _ITEMS["stackslice"]


class Opcode:
    """One opcode: its byte, name, argument reader, stack effect and the protocol that added it."""

    __slots__ = ("code", "name", "reader", "stack_before", "stack_after", "proto")

    def __init__(self, code, name, reader, before, after, proto):
        self.code = code
        self.name = name
        self.reader = reader
        self.stack_before = [_ITEMS[kind] for kind in before.split()]
        self.stack_after = [_ITEMS[kind] for kind in after.split()]
        self.proto = proto

    def __repr__(self):
        return "<opcode %s %r>" % (self.name, self.code)


# (byte, name, argument reader, stack before, stack after, protocol)
_TABLE = [
    (b"I", "INT", _decimalnl_short, "", "int_or_bool", 0),
    (b"J", "BININT", _int4, "", "int", 1),
    (b"K", "BININT1", _uint1, "", "int", 1),
    (b"M", "BININT2", _uint2, "", "int", 1),
    (b"L", "LONG", _decimalnl_long, "", "int", 0),
    (b"\x8a", "LONG1", _long1, "", "int", 2),
    (b"\x8b", "LONG4", _long4, "", "int", 2),
    (b"S", "STRING", _stringnl, "", "bytes_or_str", 0),
    (b"T", "BINSTRING", _string4, "", "bytes_or_str", 1),
    (b"U", "SHORT_BINSTRING", _string1, "", "bytes_or_str", 1),
    (b"B", "BINBYTES", _bytes4, "", "bytes", 3),
    (b"C", "SHORT_BINBYTES", _bytes1, "", "bytes", 3),
    (b"\x8e", "BINBYTES8", _bytes8, "", "bytes", 4),
    (b"\x96", "BYTEARRAY8", _bytearray8, "", "bytearray", 5),
    (b"\x97", "NEXT_BUFFER", None, "", "buffer", 5),
    (b"\x98", "READONLY_BUFFER", None, "buffer", "buffer", 5),
    (b"N", "NONE", None, "", "None", 0),
    (b"\x88", "NEWTRUE", None, "", "bool", 2),
    (b"\x89", "NEWFALSE", None, "", "bool", 2),
    (b"V", "UNICODE", _unicodestringnl, "", "str", 0),
    (b"\x8c", "SHORT_BINUNICODE", _unicodestring1, "", "str", 4),
    (b"X", "BINUNICODE", _unicodestring4, "", "str", 1),
    (b"\x8d", "BINUNICODE8", _unicodestring8, "", "str", 4),
    (b"F", "FLOAT", _floatnl, "", "float", 0),
    (b"G", "BINFLOAT", _float8, "", "float", 1),
    (b"]", "EMPTY_LIST", None, "", "list", 1),
    (b"a", "APPEND", None, "list any", "list", 0),
    (b"e", "APPENDS", None, "list mark stackslice", "list", 1),
    (b"l", "LIST", None, "mark stackslice", "list", 0),
    (b")", "EMPTY_TUPLE", None, "", "tuple", 1),
    (b"t", "TUPLE", None, "mark stackslice", "tuple", 0),
    (b"\x85", "TUPLE1", None, "any", "tuple", 2),
    (b"\x86", "TUPLE2", None, "any any", "tuple", 2),
    (b"\x87", "TUPLE3", None, "any any any", "tuple", 2),
    (b"}", "EMPTY_DICT", None, "", "dict", 1),
    (b"d", "DICT", None, "mark stackslice", "dict", 0),
    (b"s", "SETITEM", None, "dict any any", "dict", 0),
    (b"u", "SETITEMS", None, "dict mark stackslice", "dict", 1),
    (b"\x8f", "EMPTY_SET", None, "", "set", 4),
    (b"\x90", "ADDITEMS", None, "set mark stackslice", "set", 4),
    (b"\x91", "FROZENSET", None, "mark stackslice", "frozenset", 4),
    (b"0", "POP", None, "any", "", 0),
    (b"2", "DUP", None, "any", "any any", 0),
    (b"(", "MARK", None, "", "mark", 0),
    (b"1", "POP_MARK", None, "mark stackslice", "", 1),
    (b"g", "GET", _decimalnl_short, "", "any", 0),
    (b"h", "BINGET", _uint1, "", "any", 1),
    (b"j", "LONG_BINGET", _uint4, "", "any", 1),
    (b"p", "PUT", _decimalnl_short, "", "", 0),
    (b"q", "BINPUT", _uint1, "", "", 1),
    (b"r", "LONG_BINPUT", _uint4, "", "", 1),
    (b"\x94", "MEMOIZE", None, "any", "any", 4),
    (b"\x82", "EXT1", _uint1, "", "any", 2),
    (b"\x83", "EXT2", _uint2, "", "any", 2),
    (b"\x84", "EXT4", _int4, "", "any", 2),
    (b"c", "GLOBAL", _stringnl_noescape_pair, "", "any", 0),
    (b"\x93", "STACK_GLOBAL", None, "str str", "any", 4),
    (b"R", "REDUCE", None, "any any", "any", 0),
    (b"b", "BUILD", None, "any any", "any", 0),
    (b"i", "INST", _stringnl_noescape_pair, "mark stackslice", "any", 0),
    (b"o", "OBJ", None, "mark any stackslice", "any", 1),
    (b"\x81", "NEWOBJ", None, "any any", "any", 2),
    (b"\x92", "NEWOBJ_EX", None, "any any any", "any", 4),
    (b"\x80", "PROTO", _uint1, "", "", 2),
    (b".", "STOP", None, "any", "", 0),
    (b"\x95", "FRAME", _uint8, "", "", 4),
    (b"P", "PERSID", _stringnl_noescape, "", "any", 0),
    (b"Q", "BINPERSID", None, "any", "any", 1),
]

#: Every opcode, in the order of the table above.
OPCODES = [Opcode(*row) for row in _TABLE]
_BY_CODE = {op.code: op for op in OPCODES}


def _name_line(f, encoding):
    line = f.readline()
    if len(line) < 2 or not line.endswith(b"\n"):
        raise ValueError("pickle data was truncated")
    return line[:-1].decode(encoding)


def _names_as_loaded(encoding):
    """GLOBAL's and INST's names as the unpickler reads them (not escape-decoded, as dis shows
    them): a (module, name) pair."""
    return lambda f: (_name_line(f, encoding), _name_line(f, encoding))


_LOADED_NAMES = {"GLOBAL": _names_as_loaded("utf-8"), "INST": _names_as_loaded("ascii")}


def genops(data, names_as_loaded=False):
    """Yield ``(opcode, argument, position)`` for each opcode of the pickle in ``data`` (bytes or a
    binary file), through its STOP. Raises ValueError on an unknown opcode or a missing STOP.
    With ``names_as_loaded``, GLOBAL and INST give the (module, name) pair the unpickler uses."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    while True:
        pos = f.tell()
        code = f.read(1)
        op = _BY_CODE.get(code)
        if op is None:
            if not code:
                raise ValueError("pickle exhausted before seeing STOP")
            raise ValueError("at position %s, opcode %r unknown" % (pos, code))
        reader = op.reader
        if names_as_loaded:
            reader = _LOADED_NAMES.get(op.name, reader)
        arg = reader(f) if reader is not None else None
        yield op, arg, pos
        if op.name == "STOP":
            return


def dis(data, out=None, memo=None, indentlevel=4):
    """Print a symbolic disassembly of the pickle in ``data`` (bytes or a binary file with
    ``tell``), as ``pickletools.dis`` does, and check its stack and memo use on the way. ``memo``
    (a dict) carries the memo over from earlier pickles of the same stream."""
    if out is None:
        out = sys.stdout
    stack = []
    if memo is None:
        memo = {}
    highest = -1
    marks = []  # positions of the MARKs on the stack
    indent = " " * indentlevel
    error = None
    for op, arg, pos in genops(data):
        out.write("%5d: " % pos)
        line = "%-4s %s%s" % (repr(op.code.decode("latin-1"))[1:-1], indent * len(marks), op.name)
        highest = max(highest, op.proto)
        before, after = op.stack_before, op.stack_after
        pop_count = len(before)

        # A MARK is taken off by the opcodes that name one, and by a POP that finds one on top.
        note = None
        if MARK_ITEM in before or (op.name == "POP" and stack and stack[-1] is MARK_ITEM):
            if marks:
                mark_pos = marks.pop()
                note = "(MARK at %d)" % mark_pos
                while stack[-1] is not MARK_ITEM:
                    stack.pop()
                stack.pop()
                pop_count = before.index(MARK_ITEM) if MARK_ITEM in before else 0
            else:
                error = note = "no MARK exists on stack"

        if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if op.name == "MEMOIZE":
                index = len(memo)
                note = "(as %d)" % index
            else:
                index = arg
            if index in memo:
                error = "memo key %r already defined" % arg
            elif not stack:
                error = "stack is empty -- can't store into memo"
            elif stack[-1] is MARK_ITEM:
                error = "can't store markobject in the memo"
            else:
                memo[index] = stack[-1]
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            if arg in memo:
                after = [memo[arg]]
            else:
                error = "memo key %r has never been stored into" % arg

        if arg is not None or note:
            line += " " * (10 - len(op.name))
            if arg is not None:
                line += " " + repr(arg)
            if note:
                line += " " + note
        out.write(line + "\n")
        if error:
            raise ValueError(error)

        if len(stack) < pop_count:
            raise ValueError("tries to pop %d items from stack with only %d items" % (pop_count, len(stack)))
        if pop_count:
            del stack[-pop_count:]
        if MARK_ITEM in after:
            marks.append(pos)
        stack.extend(after)

    out.write("highest protocol among opcodes = %d\n" % highest)
    if stack:
        raise ValueError("stack not empty after STOP: %r" % stack)
