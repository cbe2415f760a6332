//! The pickle opcodes as data: byte, name, and the protocol that introduced each.

/// How an opcode's argument is encoded in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    None,
    /// Fixed-size little-endian integer or raw bytes of this many bytes.
    Fixed(usize),
    /// A newline-terminated text line.
    Line,
    /// Two newline-terminated lines (GLOBAL, INST).
    TwoLines,
    /// A little-endian length of this many bytes, then that many bytes.
    Counted(usize),
}

macro_rules! opcodes {
    ($($name:ident = $byte:literal, $proto:literal, $arg:expr;)*) => {
        $(pub const $name: u8 = $byte;)*
        /// Every opcode: (name, byte, protocol, argument kind).
        pub const ALL: &[(&str, u8, u8, Arg)] = &[$((stringify!($name), $byte, $proto, $arg)),*];
    };
}

opcodes! {
    MARK = b'(', 0, Arg::None;
    STOP = b'.', 0, Arg::None;
    POP = b'0', 0, Arg::None;
    POP_MARK = b'1', 1, Arg::None;
    DUP = b'2', 0, Arg::None;
    FLOAT = b'F', 0, Arg::Line;
    INT = b'I', 0, Arg::Line;
    BININT = b'J', 1, Arg::Fixed(4);
    BININT1 = b'K', 1, Arg::Fixed(1);
    LONG = b'L', 0, Arg::Line;
    BININT2 = b'M', 1, Arg::Fixed(2);
    NONE = b'N', 0, Arg::None;
    PERSID = b'P', 0, Arg::Line;
    BINPERSID = b'Q', 1, Arg::None;
    REDUCE = b'R', 0, Arg::None;
    STRING = b'S', 0, Arg::Line;
    BINSTRING = b'T', 1, Arg::Counted(4);
    SHORT_BINSTRING = b'U', 1, Arg::Counted(1);
    UNICODE = b'V', 0, Arg::Line;
    BINUNICODE = b'X', 1, Arg::Counted(4);
    APPEND = b'a', 0, Arg::None;
    BUILD = b'b', 0, Arg::None;
    GLOBAL = b'c', 0, Arg::TwoLines;
    DICT = b'd', 0, Arg::None;
    EMPTY_DICT = b'}', 1, Arg::None;
    APPENDS = b'e', 1, Arg::None;
    GET = b'g', 0, Arg::Line;
    BINGET = b'h', 1, Arg::Fixed(1);
    INST = b'i', 0, Arg::TwoLines;
    LONG_BINGET = b'j', 1, Arg::Fixed(4);
    LIST = b'l', 0, Arg::None;
    EMPTY_LIST = b']', 1, Arg::None;
    OBJ = b'o', 1, Arg::None;
    PUT = b'p', 0, Arg::Line;
    BINPUT = b'q', 1, Arg::Fixed(1);
    LONG_BINPUT = b'r', 1, Arg::Fixed(4);
    SETITEM = b's', 0, Arg::None;
    TUPLE = b't', 0, Arg::None;
    EMPTY_TUPLE = b')', 1, Arg::None;
    SETITEMS = b'u', 1, Arg::None;
    BINFLOAT = b'G', 1, Arg::Fixed(8);
    PROTO = 0x80, 2, Arg::Fixed(1);
    NEWOBJ = 0x81, 2, Arg::None;
    EXT1 = 0x82, 2, Arg::Fixed(1);
    EXT2 = 0x83, 2, Arg::Fixed(2);
    EXT4 = 0x84, 2, Arg::Fixed(4);
    TUPLE1 = 0x85, 2, Arg::None;
    TUPLE2 = 0x86, 2, Arg::None;
    TUPLE3 = 0x87, 2, Arg::None;
    NEWTRUE = 0x88, 2, Arg::None;
    NEWFALSE = 0x89, 2, Arg::None;
    LONG1 = 0x8a, 2, Arg::Counted(1);
    LONG4 = 0x8b, 2, Arg::Counted(4);
    BINBYTES = b'B', 3, Arg::Counted(4);
    SHORT_BINBYTES = b'C', 3, Arg::Counted(1);
    SHORT_BINUNICODE = 0x8c, 4, Arg::Counted(1);
    BINUNICODE8 = 0x8d, 4, Arg::Counted(8);
    BINBYTES8 = 0x8e, 4, Arg::Counted(8);
    EMPTY_SET = 0x8f, 4, Arg::None;
    ADDITEMS = 0x90, 4, Arg::None;
    FROZENSET = 0x91, 4, Arg::None;
    NEWOBJ_EX = 0x92, 4, Arg::None;
    STACK_GLOBAL = 0x93, 4, Arg::None;
    MEMOIZE = 0x94, 4, Arg::None;
    FRAME = 0x95, 4, Arg::Fixed(8);
    BYTEARRAY8 = 0x96, 5, Arg::Counted(8);
    NEXT_BUFFER = 0x97, 5, Arg::None;
    READONLY_BUFFER = 0x98, 5, Arg::None;
}

/// The text-mode booleans of protocol 0/1 (`INT` with these arguments).
pub const TRUE_LINE: &[u8] = b"I01\n";
pub const FALSE_LINE: &[u8] = b"I00\n";

pub const HIGHEST_PROTOCOL: u8 = 5;
pub const DEFAULT_PROTOCOL: u8 = 4;
