//! The load loop: one arm per opcode, iterative (deeply nested pickles need no recursion), with the
//! C unpickler's checks and error messages.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use pyo3::exceptions::{PyEOFError, PyKeyError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::allow::{AllowNames, ResolvedGlobals};
use super::find_class::find_class;
use super::memo::Memo;
use super::reader::{truncated, Source};
use super::stack::Stack;
use crate::alloc;
use crate::errors;
use crate::ffi::{self, types, Obj};
use crate::lookup::tables;
use crate::opcodes as op;

/// Everything a load consults besides the input: set by the Unpickler's constructor or by
/// `load()`/`loads()` arguments.
pub struct LoadSettings {
    pub fix_imports: bool,
    pub encoding: Obj,
    pub errors: Obj,
    pub persistent_load: Option<Obj>,
    /// A bound `find_class` to call; `None` uses the built-in resolution directly.
    pub find_class: Option<Obj>,
    /// Iterator over out-of-band buffers.
    pub buffers: Option<Obj>,
    /// The globals a restricted load may resolve (`None`: any).
    pub allow: Option<Arc<AllowNames>>,
}

impl LoadSettings {
    /// What `loads(data)` uses: the keyword arguments' defaults, no hooks, no allow-list.
    pub fn defaults() -> LoadSettings {
        LoadSettings {
            fix_imports: true,
            encoding: crate::interned!("ASCII").clone(),
            errors: crate::interned!("strict").clone(),
            persistent_load: None,
            find_class: None,
            buffers: None,
            allow: None,
        }
    }

    fn encoding_is_bytes(&self) -> bool {
        matches!(self.encoding.str_utf8(), Ok(b"bytes"))
    }
}

pub struct Loader<'a, S: Source> {
    pub src: S,
    pub stack: Stack,
    /// Borrowed only for each lookup or store: hooks may read, clear or replace the memo.
    pub memo: &'a RefCell<Memo>,
    pub settings: &'a LoadSettings,
    /// The protocol seen in PROTO (read by `find_class`, which may be called back from Python).
    pub proto: &'a Cell<u8>,
    /// Whether each type BUILD has met resolves attributes plainly and defines no `__setstate__`
    /// (a handful of types per pickle, so a short list searched linearly).
    pub plain_types: Vec<(Obj, SetstateLookup)>,
    /// Under an allow-list, the objects allowed names resolved to (kept across an Unpickler's
    /// loads, like its memo).
    pub resolved: &'a RefCell<ResolvedGlobals>,
}

/// How BUILD finds `__setstate__` on the instances of a type, decided per type and load.
#[derive(Clone, Copy)]
pub enum SetstateLookup {
    /// `getattr(inst, "__setstate__", None)`, looked up quietly: usually absent, or resolved by
    /// the class's own `__getattr__`/`__getattribute__`.
    Generic,
    /// Met once: looked up generically; deciding pays only when the type comes back.
    SeenOnce,
    /// A class defines it and attributes resolve plainly: found by a direct lookup.
    Defined,
    /// Only the instance `__dict__` may hold it.
    InstanceDict,
    /// Instances have no `__dict__` (e.g. `__slots__`) and no class defines it: there is none.
    Absent,
}

impl SetstateLookup {
    /// Reads the type's MRO: which classes define `__setstate__`, `__getattr__` or a custom
    /// `__getattribute__`.
    fn of(ty: &Obj) -> PyResult<SetstateLookup> {
        let object = types::object().as_obj();
        let mro = ty.getattr(crate::interned!("__mro__"))?;
        if !mro.is_tuple() {
            return Ok(SetstateLookup::Generic);
        }
        let (mut defined, mut getattr_hook) = (false, false);
        for klass in mro.tuple_items()? {
            let dict = klass.getattr(crate::interned!("__dict__"))?;
            if !klass.is(&object) && dict.contains(crate::interned!("__getattribute__"))? {
                return Ok(SetstateLookup::Generic);
            }
            defined = defined || dict.contains(crate::interned!("__setstate__"))?;
            getattr_hook = getattr_hook || dict.contains(crate::interned!("__getattr__"))?;
        }
        if defined {
            return Ok(SetstateLookup::Defined);
        }
        if getattr_hook {
            return Ok(SetstateLookup::Generic);
        }
        let dict_offset = ty.getattr(crate::interned!("__dictoffset__"))?.as_ssize()?;
        Ok(if dict_offset == 0 {
            SetstateLookup::Absent
        } else {
            SetstateLookup::InstanceDict
        })
    }
}

/// Little-endian unsigned size (CPython's `calc_binsize`); `None` if it exceeds `isize::MAX`.
#[inline]
fn binsize(bytes: &[u8]) -> Option<usize> {
    let x: u64 = match *bytes {
        [a] => a as u64,
        [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as u64,
        [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64),
    };
    if x > isize::MAX as u64 {
        None
    } else {
        Some(x as usize)
    }
}

/// Little-endian integer; unsigned for 1 and 2 bytes, signed for 4 (CPython's `calc_binint`).
#[inline]
fn binint(bytes: &[u8]) -> i64 {
    match bytes.len() {
        1 => bytes[0] as i64,
        2 => u16::from_le_bytes([bytes[0], bytes[1]]) as i64,
        _ => i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as i64,
    }
}

/// libc `strtol(s, &end, 0)`: the value (None on overflow) and bytes consumed. A NUL stops it
/// like any other non-digit.
fn strtol_base0(s: &[u8]) -> (Option<i64>, usize) {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let mut base = 10u32;
    if i + 1 < s.len()
        && s[i] == b'0'
        && (s[i + 1] | 0x20) == b'x'
        && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        base = 16;
        i += 2;
    } else if i < s.len() && s[i] == b'0' {
        base = 8;
    }
    let digits_start = i;
    let mut value: i128 = 0;
    let mut overflow = false;
    while i < s.len() {
        let d = match (s[i] as char).to_digit(base) {
            Some(d) => d,
            None => break,
        };
        value = value * base as i128 + d as i128;
        if value > (i64::MAX as i128) + 1 {
            overflow = true;
            value = (i64::MAX as i128) + 1;
        }
        i += 1;
    }
    if i == digits_start {
        return (Some(0), 0);
    }
    let v = if negative { -value } else { value };
    if overflow || v > i64::MAX as i128 || v < i64::MIN as i128 {
        return (None, i);
    }
    (Some(v as i64), i)
}

/// Strips the trailing newline of a line read by `readline` (lines shorter than `min` are truncated data).
fn line_body(line: &[u8], min: usize) -> PyResult<&[u8]> {
    if line.len() < min {
        return Err(truncated());
    }
    Ok(&line[..line.len() - 1])
}

#[inline(always)]
fn int_from_signed_le(data: &[u8]) -> PyResult<Obj> {
    if data.len() <= 8 {
        return ffi::new_int(crate::bigint::small_signed(data));
    }
    crate::ffi::number::int_from_signed_le(data)
}

/// A GET of an index the memo lacks: KeyError up to 3.8, UnpicklingError from 3.9 on.
#[cold]
#[inline(never)]
fn memo_missing(key: &Obj) -> PyErr {
    if ffi::version::running() < (3, 9) {
        let py = crate::ffi::gil();
        return ffi::error_with_value(py.get_type::<PyKeyError>(), key);
    }
    errors::unpickling_fmt(format_args!(
        "Memo value not found at index {}",
        key.repr_string()
    ))
}

impl<'a, S: Source> Loader<'a, S> {
    /// Runs until STOP and returns the top of the stack.
    pub fn run(&mut self) -> PyResult<Obj> {
        crate::ffi::stack::check(" while unpickling an object")?;
        self.stack.clear();
        self.proto.set(0);
        loop {
            let code = match self.src.read_opcode() {
                Ok(Some(c)) => c,
                Ok(None) => return Err(PyEOFError::new_err("Ran out of input")),
                Err(e) => return Err(e),
            };
            if code == op::STOP {
                self.src.finish()?;
                return self.stack.pop();
            }
            self.dispatch(code)?;
        }
    }

    #[inline(always)]
    fn dispatch(&mut self, code: u8) -> PyResult<()> {
        match code {
            op::NONE => self.stack.push(ffi::none())?,
            op::NEWTRUE => self.stack.push(ffi::bool_obj(true))?,
            op::NEWFALSE => self.stack.push(ffi::bool_obj(false))?,
            op::BININT => {
                let v = binint(self.src.read(4)?);
                self.stack.push(ffi::new_int(v)?)?
            }
            op::BININT1 => {
                let v = self.src.read(1)?[0];
                self.stack.push(ffi::new_int(v as i64)?)?
            }
            op::BININT2 => {
                let v = binint(self.src.read(2)?);
                self.stack.push(ffi::new_int(v)?)?
            }
            op::INT => self.load_int()?,
            op::LONG => self.load_long()?,
            op::LONG1 => self.load_counted_long(1)?,
            op::LONG4 => self.load_counted_long(4)?,
            op::FLOAT => self.load_float()?,
            op::BINFLOAT => {
                let s = self.src.read(8)?;
                let v = f64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
                self.stack.push(ffi::new_float(v)?)?
            }
            op::SHORT_BINBYTES => self.load_counted_bytes(1, "BINBYTES", false)?,
            op::BINBYTES => self.load_counted_bytes(4, "BINBYTES", false)?,
            op::BINBYTES8 => self.load_counted_bytes(8, "BINBYTES", false)?,
            op::BYTEARRAY8 => self.load_counted_bytes(8, "BYTEARRAY8", true)?,
            op::NEXT_BUFFER => self.load_next_buffer()?,
            op::READONLY_BUFFER => {
                if let Some(view) = crate::buffer::readonly_view(self.stack.top()?)? {
                    self.stack.replace_top(view)?
                }
            }
            op::SHORT_BINSTRING => self.load_counted_binstring(1)?,
            op::BINSTRING => self.load_counted_binstring(4)?,
            op::STRING => self.load_string()?,
            op::UNICODE => {
                let line = self.src.readline()?;
                let s = ffi::str_from_raw_unicode_escape(line_body(line, 1)?)?;
                self.stack.push(s)?
            }
            op::SHORT_BINUNICODE => self.load_counted_unicode(1)?,
            op::BINUNICODE => self.load_counted_unicode(4)?,
            op::BINUNICODE8 => self.load_counted_unicode(8)?,
            op::EMPTY_TUPLE => self.load_counted_tuple(0)?,
            op::TUPLE1 => self.load_counted_tuple(1)?,
            op::TUPLE2 => self.load_counted_tuple(2)?,
            op::TUPLE3 => self.load_counted_tuple(3)?,
            op::TUPLE => {
                let start = self.stack.pop_mark()?;
                let t = ffi::new_tuple(self.stack.drain_from(start)?)?;
                self.stack.push(t)?
            }
            op::EMPTY_LIST => self.stack.push(ffi::new_list(&[])?)?,
            op::LIST => {
                let start = self.stack.pop_mark()?;
                let l = ffi::new_list_owned(self.stack.drain_from(start)?)?;
                self.stack.push(l)?
            }
            op::EMPTY_DICT => self.stack.push(ffi::new_dict()?)?,
            op::DICT => self.load_dict()?,
            op::EMPTY_SET => self.stack.push(ffi::new_set(&[])?)?,
            op::ADDITEMS => self.load_additems()?,
            op::FROZENSET => {
                let start = self.stack.pop_mark()?;
                let items = self.stack.pop_from(start)?;
                self.stack.push(ffi::new_frozenset(items)?)?
            }
            op::OBJ => self.load_obj()?,
            op::INST => self.load_inst()?,
            op::NEWOBJ => self.load_newobj(false)?,
            op::NEWOBJ_EX => self.load_newobj(true)?,
            op::GLOBAL => self.load_global()?,
            op::STACK_GLOBAL => self.load_stack_global()?,
            op::APPEND => {
                let len = self.stack.len();
                if len == 0 || len - 1 <= self.stack.fence() {
                    return Err(self.stack.underflow());
                }
                self.do_append(len - 1)?
            }
            op::APPENDS => {
                let mark = self.stack.pop_mark()?;
                self.do_append(mark)?
            }
            op::SETITEM => {
                let len = self.stack.len();
                if len < 2 {
                    return Err(self.stack.underflow());
                }
                self.do_setitems(len - 2)?
            }
            op::SETITEMS => {
                let mark = self.stack.pop_mark()?;
                self.do_setitems(mark)?
            }
            op::BUILD => self.load_build()?,
            op::DUP => {
                let top = self.stack.top()?.clone();
                self.stack.push(top)?
            }
            op::BINGET => {
                let idx = self.src.read(1)?[0] as usize;
                self.push_memo(idx)?
            }
            op::LONG_BINGET => {
                let idx = binsize(self.src.read(4)?).unwrap_or(usize::MAX);
                self.push_memo(idx)?
            }
            op::GET => self.load_get()?,
            op::MARK => self.stack.push_mark()?,
            op::BINPUT => {
                let idx = self.src.read(1)?[0] as usize;
                self.memo_put(idx)?
            }
            op::LONG_BINPUT => {
                let idx = binsize(self.src.read(4)?)
                    .ok_or_else(|| PyValueError::new_err("negative LONG_BINPUT argument"))?;
                self.memo_put(idx)?
            }
            op::PUT => self.load_put()?,
            op::MEMOIZE => {
                let idx = self.memo.borrow().next_index();
                self.memo_put(idx)?
            }
            op::POP => {
                if self.stack.mark_at_top() {
                    self.stack.drop_top_mark();
                } else {
                    self.stack.pop()?;
                }
            }
            op::POP_MARK => {
                let mark = self.stack.pop_mark()?;
                self.stack.truncate(mark);
            }
            op::PERSID => self.load_persid()?,
            op::BINPERSID => {
                // From 3.13 on the id is popped before the hook is looked up.
                let (hook, pid) = if ffi::version::running() >= (3, 13) {
                    let pid = self.stack.pop()?;
                    (self.persistent_load()?, pid)
                } else {
                    let hook = self.persistent_load()?;
                    (hook, self.stack.pop()?)
                };
                self.stack.push(hook.call1(&pid)?)?
            }
            op::REDUCE => {
                let args = self.stack.pop()?;
                let callable = self.stack.pop()?;
                if !args.is_tuple() {
                    return Err(PyTypeError::new_err("argument list must be a tuple"));
                }
                self.guard_call("REDUCE", &callable, &args, None)?;
                self.stack.push(callable.call(&args, None)?)?
            }
            op::PROTO => {
                let v = self.src.read(1)?[0];
                if v > op::HIGHEST_PROTOCOL {
                    return Err(crate::errors::new_fmt::<PyValueError>(format_args!(
                        "unsupported pickle protocol: {}",
                        v
                    )));
                }
                self.proto.set(v);
            }
            op::FRAME => {
                let n = binsize(self.src.read(8)?).ok_or_else(|| {
                    crate::errors::new_fmt::<PyOverflowError>(format_args!(
                        "FRAME length exceeds system's maximum of {} bytes",
                        isize::MAX
                    ))
                })?;
                self.src.prefetch_frame(n)?
            }
            op::EXT1 => self.load_extension(1)?,
            op::EXT2 => self.load_extension(2)?,
            op::EXT4 => self.load_extension(4)?,
            other => {
                let msg = if (0x20..=0x7e).contains(&other) && other != b'\'' && other != b'\\' {
                    format!("invalid load key, '{}'.", other as char)
                } else {
                    format!("invalid load key, '\\x{:02x}'.", other)
                };
                return Err(errors::unpickling(msg));
            }
        }
        Ok(())
    }

    // ---- scalars ----

    fn load_int(&mut self) -> PyResult<()> {
        let line = self.src.readline()?;
        if line.len() < 2 {
            return Err(truncated());
        }
        let (value, used) = strtol_base0(line);
        let rest = &line[used..];
        // As `_pickle` reads the line as a C string, a NUL ends the number like the newline does.
        let clean_end = rest.first().is_none_or(|&c| c == b'\n' || c == 0);
        let obj = match value {
            Some(x) if clean_end => {
                if line.len() == 3 && (x == 0 || x == 1) {
                    ffi::bool_obj(x == 1)
                } else {
                    ffi::new_int(x)?
                }
            }
            _ => ffi::int_from_text(line, 0)
                .map_err(|_| PyValueError::new_err("could not convert string to int"))?,
        };
        self.stack.push(obj)?;
        Ok(())
    }

    fn load_long(&mut self) -> PyResult<()> {
        let line = self.src.readline()?;
        if line.len() < 2 {
            return Err(truncated());
        }
        // As `_pickle` does: a final 'L' is cut off, else the text keeps its newline (which int()
        // accepts, and which shows in the error message for a bad literal).
        let body = if line[line.len() - 2] == b'L' {
            &line[..line.len() - 2]
        } else {
            line
        };
        let value = ffi::int_from_text(body, 0)?;
        self.stack.push(value)?;
        Ok(())
    }

    fn load_counted_long(&mut self, size: usize) -> PyResult<()> {
        let n = binint(self.src.read(size)?);
        if n < 0 {
            return Err(errors::unpickling("LONG pickle has negative byte count"));
        }
        let value = if n == 0 {
            ffi::new_int(0)?
        } else {
            int_from_signed_le(self.src.read(n as usize)?)?
        };
        self.stack.push(value)?;
        Ok(())
    }

    fn load_float(&mut self) -> PyResult<()> {
        let line = self.src.readline()?;
        if line.len() < 2 {
            return Err(truncated());
        }
        let text = alloc::with_nul(line)?;
        let (value, used) = ffi::parse_float_prefix(&text)?;
        if !matches!(text[used], b'\n' | 0) {
            return Err(PyValueError::new_err("could not convert string to float"));
        }
        self.stack.push(ffi::new_float(value)?)?;
        Ok(())
    }

    // ---- strings and bytes ----

    #[inline(always)]
    fn read_size(&mut self, nbytes: usize, what: &str, unpickling_error: bool) -> PyResult<usize> {
        match binsize(self.src.read(nbytes)?) {
            Some(n) => Ok(n),
            None => {
                let msg = format!(
                    "{} exceeds system's maximum size of {} bytes",
                    what,
                    isize::MAX
                );
                Err(if unpickling_error {
                    errors::unpickling(msg)
                } else {
                    PyOverflowError::new_err(msg)
                })
            }
        }
    }

    #[inline(always)]
    fn load_counted_bytes(&mut self, nbytes: usize, what: &str, bytearray: bool) -> PyResult<()> {
        let n = self.read_size(nbytes, what, false)?;
        let obj = self.src.read_object(n, bytearray)?;
        self.stack.push(obj)?;
        Ok(())
    }

    fn decode_py2_string(&self, data: &[u8]) -> PyResult<Obj> {
        if self.settings.encoding_is_bytes() {
            ffi::new_bytes(data)
        } else {
            ffi::decode(data, &self.settings.encoding, &self.settings.errors)
        }
    }

    fn load_counted_binstring(&mut self, nbytes: usize) -> PyResult<()> {
        let n = self.read_size(nbytes, "BINSTRING", true)?;
        let data = self.src.read(n)?;
        let obj = if self.settings.encoding_is_bytes() {
            ffi::new_bytes(data)?
        } else {
            ffi::decode(data, &self.settings.encoding, &self.settings.errors)?
        };
        self.stack.push(obj)?;
        Ok(())
    }

    fn load_string(&mut self) -> PyResult<()> {
        let line = self.src.readline()?;
        let body = &line[..line.len() - 1];
        let quoted = body.len() >= 2
            && body[0] == body[body.len() - 1]
            && (body[0] == b'\'' || body[0] == b'"');
        if !quoted {
            return Err(errors::unpickling(
                "the STRING opcode argument must be quoted",
            ));
        }
        let raw = ffi::bytes_decode_escape(&body[1..body.len() - 1])?;
        let obj = self.decode_py2_string(raw.bytes_data())?;
        self.stack.push(obj)?;
        Ok(())
    }

    #[inline(always)]
    fn load_counted_unicode(&mut self, nbytes: usize) -> PyResult<()> {
        let n = self.read_size(nbytes, "BINUNICODE", false)?;
        let data = self.src.read(n)?;
        let s = ffi::str_from_utf8(data, b"surrogatepass\0")?;
        self.stack.push(s)?;
        Ok(())
    }

    fn load_next_buffer(&mut self) -> PyResult<()> {
        let buffers = self.settings.buffers.as_ref().ok_or_else(|| {
            errors::unpickling(
                "pickle stream refers to out-of-band data but no *buffers* argument was given",
            )
        })?;
        match buffers.next()? {
            Some(buf) => {
                self.stack.push(buf)?;
                Ok(())
            }
            None => Err(errors::unpickling("not enough out-of-band buffers")),
        }
    }

    // ---- containers ----

    fn load_counted_tuple(&mut self, n: usize) -> PyResult<()> {
        let len = self.stack.len();
        if len < n {
            return Err(self.stack.underflow());
        }
        let t = ffi::new_tuple(self.stack.drain_from(len - n)?)?;
        self.stack.push(t)?;
        Ok(())
    }

    fn load_dict(&mut self) -> PyResult<()> {
        let start = self.stack.pop_mark()?;
        let dict = ffi::new_dict()?;
        let items = self.stack.slice_from(start);
        if !items.len().is_multiple_of(2) {
            return Err(errors::unpickling("odd number of items for DICT"));
        }
        for pair in items.chunks_exact(2) {
            dict.dict_set(&pair[0], &pair[1])?;
        }
        self.stack.truncate(start);
        self.stack.push(dict)?;
        Ok(())
    }

    fn do_append(&mut self, x: usize) -> PyResult<()> {
        let len = self.stack.len();
        if x > len || x <= self.stack.fence() {
            return Err(self.stack.underflow());
        }
        if len == x {
            return Ok(());
        }
        let list = self.stack.get(x - 1)?.clone();
        if list.is_exact_type(types::list()) {
            // One resize and one copy for the whole batch, as the C unpickler does.
            return list.list_extend_owned(self.stack.drain_from(x)?);
        }
        self.guard_target("APPENDS", &list)?;
        if let Some(extend) = list.getattr_opt(crate::interned!("extend"))? {
            let items = self.stack.pop_from(x)?;
            extend.call1(&ffi::new_list(&items)?)?;
            return Ok(());
        }
        let append = list.getattr(crate::interned!("append"))?;
        let items = self.stack.pop_from(x)?;
        for item in &items {
            append.call1(item)?;
        }
        Ok(())
    }

    fn do_setitems(&mut self, x: usize) -> PyResult<()> {
        let len = self.stack.len();
        if x > len || x <= self.stack.fence() {
            return Err(self.stack.underflow());
        }
        if len == x {
            return Ok(());
        }
        if !(len - x).is_multiple_of(2) {
            return Err(errors::unpickling("odd number of items for SETITEMS"));
        }
        let target = self.stack.get(x - 1)?.clone();
        let exact_dict = target.is_exact_type(types::dict());
        if !exact_dict {
            self.guard_target("SETITEMS", &target)?;
        }
        let mut result = Ok(());
        for pair in self.stack.slice_from(x).chunks_exact(2) {
            result = if exact_dict {
                target.dict_set(&pair[0], &pair[1])
            } else {
                target.set_item(&pair[0], &pair[1])
            };
            if result.is_err() {
                break;
            }
        }
        self.stack.truncate(x);
        result
    }

    fn load_additems(&mut self) -> PyResult<()> {
        let mark = self.stack.pop_mark()?;
        let len = self.stack.len();
        if mark > len || mark <= self.stack.fence() {
            return Err(self.stack.underflow());
        }
        if len == mark {
            return Ok(());
        }
        let target = self.stack.get(mark - 1)?.clone();
        if !target.is_set() {
            self.guard_target("ADDITEMS", &target)?;
        }
        let items = self.stack.pop_from(mark)?;
        if target.is_set() {
            for item in &items {
                target.set_add(item)?;
            }
        } else {
            let add = target.getattr(crate::interned!("add"))?;
            for item in &items {
                add.call1(item)?;
            }
        }
        Ok(())
    }

    // ---- objects ----

    fn load_build(&mut self) -> PyResult<()> {
        if self.stack.len() < self.stack.fence() + 2 {
            return Err(self.stack.underflow());
        }
        let state = self.stack.pop()?;
        let inst = self.stack.top()?.clone();
        self.guard_target("BUILD", &inst)?;
        let (setstate, inst_dict) = self.find_setstate(&inst)?;
        if let Some(setstate) = setstate {
            setstate.call_one(&state)?;
            return Ok(());
        }
        let (state, slotstate) = match state.tuple_pair() {
            Some((state, slotstate)) => (state, Some(slotstate)),
            None => (state, None),
        };
        if !state.is_none() {
            if !state.is_dict() {
                return Err(errors::unpickling("state is not a dictionary"));
            }
            let dict = match inst_dict {
                Some(d) => d,
                None => inst.getattr(crate::interned!("__dict__"))?,
            };
            let exact_dict = dict.is_exact_type(types::dict());
            state.dict_for_each(|key, value| {
                let interned;
                let key = if key.is_exact_type(types::str()) {
                    interned = ffi::intern_in_place(key.clone());
                    &interned
                } else {
                    key
                };
                if exact_dict {
                    dict.dict_set(key, value)
                } else {
                    dict.set_item(key, value)
                }
            })?;
        }
        if let Some(slotstate) = slotstate {
            if !slotstate.is_dict() {
                return Err(errors::unpickling("slot state is not a dictionary"));
            }
            slotstate.dict_for_each(|key, value| inst.setattr(key, value))?;
        }
        Ok(())
    }

    /// `getattr(inst, "__setstate__", None)`, without raising and catching AttributeError for the
    /// common plain classes; also returns the instance `__dict__` when it was looked up.
    fn find_setstate(&mut self, inst: &Obj) -> PyResult<(Option<Obj>, Option<Obj>)> {
        let ty = inst.type_obj();
        let lookup = match self.plain_types.iter_mut().find(|(t, _)| t.is(&ty)) {
            Some((_, lookup @ SetstateLookup::SeenOnce)) => {
                *lookup = SetstateLookup::of(&ty)?;
                *lookup
            }
            Some((_, lookup)) => *lookup,
            None => {
                alloc::push(&mut self.plain_types, (ty, SetstateLookup::SeenOnce))?;
                SetstateLookup::SeenOnce
            }
        };
        match lookup {
            SetstateLookup::Generic | SetstateLookup::SeenOnce => {
                return Ok((
                    inst.getattr_if_present(crate::interned!("__setstate__"))?,
                    None,
                ))
            }
            SetstateLookup::Defined => {
                return Ok((inst.getattr_opt(crate::interned!("__setstate__"))?, None))
            }
            SetstateLookup::Absent => return Ok((None, None)),
            SetstateLookup::InstanceDict => {}
        }
        match inst.getattr_opt(crate::interned!("__dict__"))? {
            Some(dict) if dict.is_dict() => {
                let setstate = dict.dict_get(crate::interned!("__setstate__"))?;
                Ok((setstate, Some(dict)))
            }
            _ => Ok((None, None)),
        }
    }

    fn instantiate(cls: &Obj, args: Obj) -> PyResult<Obj> {
        if args.len()? == 0
            && cls.is_type()
            && cls
                .getattr_if_present(crate::interned!("__getinitargs__"))?
                .is_none()
        {
            let new = cls.getattr(crate::interned!("__new__"))?;
            return new.call1(cls);
        }
        cls.call(&args, None)
    }

    fn load_obj(&mut self) -> PyResult<()> {
        let mark = self.stack.pop_mark()?;
        if self.stack.len() < mark + 1 {
            return Err(self.stack.underflow());
        }
        let args = ffi::new_tuple(self.stack.pop_from(mark + 1)?)?;
        let cls = self.stack.pop()?;
        self.guard_call("OBJ", &cls, &args, None)?;
        let obj = Self::instantiate(&cls, args)?;
        self.stack.push(obj)?;
        Ok(())
    }

    fn read_ascii_line(&mut self) -> PyResult<Obj> {
        let line = self.src.readline()?;
        let body = line_body(line, 2)?;
        ffi::decode(body, crate::interned!("ascii"), crate::interned!("strict"))
    }

    fn load_inst(&mut self) -> PyResult<()> {
        let mark = self.stack.pop_mark()?;
        let module = self.read_ascii_line()?;
        let name = self.read_ascii_line()?;
        let cls = self.find_class(&module, &name)?;
        let args = ffi::new_tuple(self.stack.pop_from(mark)?)?;
        self.guard_call("INST", &cls, &args, None)?;
        let obj = Self::instantiate(&cls, args)?;
        self.stack.push(obj)?;
        Ok(())
    }

    fn load_newobj(&mut self, with_kwargs: bool) -> PyResult<()> {
        let opname = if with_kwargs { "NEWOBJ_EX" } else { "NEWOBJ" };
        let before_310 = ffi::version::running() < (3, 10);
        if before_310 && !with_kwargs {
            // Up to 3.9 NEWOBJ checks its arguments as it pops them.
            let args = self.stack.pop()?;
            if !args.is_tuple() {
                return Err(errors::unpickling("NEWOBJ expected an arg tuple."));
            }
            let cls = self.stack.pop()?;
            if !cls.is_type() {
                return Err(errors::unpickling(
                    "NEWOBJ class argument isn't a type object",
                ));
            }
            if !ffi::type_has_new(&cls)? {
                return Err(errors::unpickling("NEWOBJ class argument has NULL tp_new"));
            }
            return self.push_new(&cls, &args, None, opname);
        }
        // Everything is popped first, then checked: class, its __new__, args, kwargs.
        let kwargs = if with_kwargs {
            Some(self.stack.pop()?)
        } else {
            None
        };
        let args = self.stack.pop()?;
        let cls = self.stack.pop()?;
        if !cls.is_type() {
            return Err(errors::unpickling_fmt(format_args!(
                "{} class argument must be a type, not {}",
                opname,
                cls.type_name()
            )));
        }
        if !ffi::type_has_new(&cls)? {
            return Err(errors::unpickling(if before_310 {
                format!("{} class argument doesn't have __new__", opname)
            } else {
                // `_pickle` names the class's type here (its metaclass), not the class.
                format!(
                    "{} class argument '{}' doesn't have __new__",
                    opname,
                    cls.type_name()
                )
            }));
        }
        if !args.is_tuple() {
            return Err(errors::unpickling(format!(
                "{} args argument must be a tuple, not {}",
                opname,
                args.type_name()
            )));
        }
        if let Some(kwargs) = &kwargs {
            if !kwargs.is_dict() {
                return Err(errors::unpickling(format!(
                    "{} kwargs argument must be a dict, not {}",
                    opname,
                    kwargs.type_name()
                )));
            }
        }
        self.push_new(&cls, &args, kwargs.as_ref(), opname)
    }

    /// `cls.__new__(cls, *args, **kwargs)` through the type's slot, pushed on the stack.
    fn push_new(
        &mut self,
        cls: &Obj,
        args: &Obj,
        kwargs: Option<&Obj>,
        opname: &str,
    ) -> PyResult<()> {
        self.guard_call(opname, cls, args, kwargs)?;
        match ffi::call_type_new(cls, args, kwargs)? {
            Some(obj) => {
                self.stack.push(obj)?;
                Ok(())
            }
            None => Err(errors::unpickling_fmt(format_args!(
                "{} class argument '{}' doesn't have __new__",
                opname,
                cls.type_name()
            ))),
        }
    }

    fn find_class(&self, module: &Obj, name: &Obj) -> PyResult<Obj> {
        if let Some(names) = &self.settings.allow {
            return self.find_allowed_class(names, module, name);
        }
        match &self.settings.find_class {
            Some(method) => method.call2(module, name),
            None => find_class(module, name, self.proto.get(), self.settings.fix_imports),
        }
    }

    fn load_global(&mut self) -> PyResult<()> {
        let module = {
            let line = self.src.readline()?;
            ffi::str_from_utf8(line_body(line, 2)?, b"strict\0")?
        };
        let name = {
            let line = self.src.readline()?;
            ffi::str_from_utf8(line_body(line, 2)?, b"strict\0")?
        };
        let obj = self.find_class(&module, &name)?;
        self.stack.push(obj)?;
        Ok(())
    }

    fn load_stack_global(&mut self) -> PyResult<()> {
        let name = self.stack.pop();
        // 3.11's _pickle reports a short stack as such; before, as a type error.
        let name = if ffi::version::running() >= (3, 11) {
            Ok(name?)
        } else {
            name
        };
        let module = self.stack.pop();
        let module = if ffi::version::running() >= (3, 11) {
            Ok(module?)
        } else {
            module
        };
        match (module, name) {
            (Ok(module), Ok(name))
                if module.is_exact_type(types::str()) && name.is_exact_type(types::str()) =>
            {
                let obj = self.find_class(&module, &name)?;
                self.stack.push(obj)?;
                Ok(())
            }
            _ => Err(errors::unpickling("STACK_GLOBAL requires str")),
        }
    }

    fn persistent_load(&self) -> PyResult<Obj> {
        self.settings.persistent_load.clone().ok_or_else(|| {
            errors::unpickling(if ffi::version::running() >= (3, 12) {
                "A load persistent id instruction was encountered, but no persistent_load function was specified."
            } else {
                "A load persistent id instruction was encountered,\nbut no persistent_load function was specified."
            })
        })
    }

    fn load_persid(&mut self) -> PyResult<()> {
        // From 3.13 on the hook is looked up once the id is read.
        let early_hook = if ffi::version::running() >= (3, 13) {
            None
        } else {
            Some(self.persistent_load()?)
        };
        let line = self.src.readline()?;
        let body = line_body(line, 1)?;
        if !body.is_ascii() {
            return Err(errors::unpickling(
                "persistent IDs in protocol 0 must be ASCII strings",
            ));
        }
        let pid = ffi::str_from_utf8(body, b"strict\0")?;
        let hook = match early_hook {
            Some(hook) => hook,
            None => self.persistent_load()?,
        };
        let obj = hook.call1(&pid)?;
        self.stack.push(obj)?;
        Ok(())
    }

    // ---- memo ----

    #[inline(always)]
    fn push_memo(&mut self, idx: usize) -> PyResult<()> {
        let found = self.memo.borrow().get(idx).cloned();
        if let Some(obj) = found {
            self.stack.push(obj)?;
            return Ok(());
        }
        Err(match ffi::new_uint(idx as u64) {
            Ok(key) => memo_missing(&key),
            Err(e) => e,
        })
    }

    #[inline(always)]
    fn memo_put(&mut self, idx: usize) -> PyResult<()> {
        let top = self.stack.top()?.clone();
        let replaced = self.memo.borrow_mut().put(idx, top)?;
        drop(replaced);
        Ok(())
    }

    fn read_decimal_line(&mut self) -> PyResult<Obj> {
        let line = self.src.readline()?;
        if line.len() < 2 {
            return Err(truncated());
        }
        ffi::int_from_text(line, 10)
    }

    fn load_get(&mut self) -> PyResult<()> {
        let key = self.read_decimal_line()?;
        let idx = key.as_ssize()?;
        let found = usize::try_from(idx)
            .ok()
            .and_then(|i| self.memo.borrow().get(i).cloned());
        match found {
            Some(obj) => {
                self.stack.push(obj)?;
                Ok(())
            }
            None => Err(memo_missing(&key)),
        }
    }

    fn load_put(&mut self) -> PyResult<()> {
        let line = self.src.readline()?;
        if line.len() < 2 {
            return Err(truncated());
        }
        self.stack.top()?;
        let idx = ffi::int_from_text(line, 10)?.as_ssize()?;
        if idx < 0 {
            return Err(PyValueError::new_err("negative PUT argument"));
        }
        self.memo_put(idx as usize)
    }

    fn load_extension(&mut self, nbytes: usize) -> PyResult<()> {
        let code = binint(self.src.read(nbytes)?);
        if code <= 0 {
            return Err(errors::unpickling("EXT specifies code <= 0"));
        }
        let t = tables();
        let py_code = ffi::new_int(code)?;
        // A restricted load checks the registered names every time, cached object or not.
        if self.settings.allow.is_none() {
            if let Some(obj) = t.extension_cache.dict_get(&py_code)? {
                self.stack.push(obj)?;
                return Ok(());
            }
        }
        let pair = t.inverted_registry.dict_get(&py_code)?.ok_or_else(|| {
            crate::errors::new_fmt::<PyValueError>(format_args!(
                "unregistered extension code {}",
                code
            ))
        })?;
        let bad = || {
            crate::errors::new_fmt::<PyValueError>(format_args!(
                "_inverted_registry[{}] isn't a 2-tuple of strings",
                code
            ))
        };
        if !pair.is_tuple() || pair.len()? != 2 {
            return Err(bad());
        }
        let parts = pair.tuple_items()?;
        if !parts[0].is_str() || !parts[1].is_str() {
            return Err(bad());
        }
        let obj = self.find_class(&parts[0], &parts[1])?;
        t.extension_cache.dict_set(&py_code, &obj)?;
        self.stack.push(obj)?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
