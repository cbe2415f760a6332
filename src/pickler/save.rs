//! The save routines: one function per type, in the order the C pickler (`Modules/_pickle.c`) tries
//! them, emitting the same opcodes and making the same memo decisions.

use std::io::Write as _;

use pyo3::exceptions::{
    PyOverflowError, PyRecursionError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;

use super::globals::{globals, tp_name};
use std::cell::RefCell;

use super::memo::Memo;
use super::plain::{Plain, PlainTypes};
use super::writer::{Payload, Writer, FRAME_SIZE_TARGET};
use crate::errors;
use crate::ffi::bytes::HeldBytes;
use crate::ffi::members::IntSlot;
use crate::ffi::{self, types, Obj};
use crate::opcodes::*;

const BATCHSIZE: usize = 1000;
const FAST_NESTING_LIMIT: i32 = 50;

/// The hooks a pickler consults while saving.
#[derive(Default)]
pub struct Hooks {
    /// `persistent_id`, and the pickler to pass as `self` when it was found as a bound method.
    pub pers_func: Option<Obj>,
    pub pers_self: Option<Obj>,
    pub dispatch_table: Option<Obj>,
    pub reducer_override: Option<Obj>,
    pub buffer_callback: Option<Obj>,
}

/// Settings read from the pickler when a dump starts.
pub struct Settings {
    pub proto: u8,
    pub bin: bool,
    pub fix_imports: bool,
}

/// Fast mode's nesting count and its dict of the ids being saved deeper than the limit. A
/// `Pickler` keeps them from one dump to the next, as `_pickle` does, so a frozenset's enter
/// without a leave carries over too.
#[derive(Default)]
pub struct FastState {
    nesting: i32,
    memo: Option<Obj>,
}

impl FastState {
    pub fn memo(&self) -> Option<&Obj> {
        self.memo.as_ref()
    }
}

pub struct Saver<'m> {
    proto: u8,
    bin: bool,
    fix_imports: bool,
    /// The pickler's `fast` attribute, read at each use as hooks may change it (None: off).
    fast: Option<&'m IntSlot>,
    pub out: Writer,
    /// The pickler's memo, borrowed only for each lookup or insertion: hooks called during the dump
    /// may read, clear or replace it, as in C.
    memo: &'m RefCell<Memo>,
    pub hooks: Hooks,
    pub fast_state: FastState,
    depth: usize,
    depth_limit: usize,
    /// Saving stops (RecursionError) when the stack pointer goes below this address.
    stack_floor: usize,
    /// The `pickle5` backport's PickleBuffer type on 3.6/3.7 when loaded (0 = none): pickled like ours.
    backport_pickle_buffer: usize,
    plain_types: PlainTypes,
    /// The text `save_bytes` made from a bytes object at protocol 0–2, with that bytes object:
    /// protocol 0 escapes the bytes directly instead of going through the text's UTF-8.
    latin1_text: Option<(Obj, Obj)>,
}

/// How deep objects may nest, in calls as `Py_EnterRecursiveCall` counts them: the recursion limit,
/// and from 3.12 on at least the interpreter's fixed C recursion limit, which is what bounds the
/// C pickler there. (The native stack is guarded separately.)
fn nesting_limit() -> usize {
    let c_limit = match ffi::version::running() {
        v if v >= (3, 13) => 10_000,
        v if v >= (3, 12) => 1_500,
        _ => 0,
    };
    ffi::recursion_limit().max(c_limit)
}

const PICKLING: &str = " while pickling an object";

#[cold]
#[inline(never)]
fn recursion_error() -> PyErr {
    PyRecursionError::new_err(format!("maximum recursion depth exceeded{}", PICKLING))
}

/// How much deeper than the object being saved the interpreter's recursion count goes while a
/// reducer runs (the call, the Python frame, what it calls in turn): more than the saves between
/// two calls of a recursion through reducers (4 for a list subclass at protocol 0).
const REDUCER_CALL_DEPTH: usize = 5;

impl<'m> Saver<'m> {
    pub fn new(
        settings: Settings,
        out: Writer,
        memo: &'m RefCell<Memo>,
        fast: Option<&'m IntSlot>,
        hooks: Hooks,
    ) -> Saver<'m> {
        Saver {
            proto: settings.proto,
            bin: settings.bin,
            fix_imports: settings.fix_imports,
            fast,
            out,
            memo,
            hooks,
            fast_state: FastState::default(),
            depth: 0,
            depth_limit: nesting_limit(),
            stack_floor: ffi::stack::floor(),
            backport_pickle_buffer: crate::buffer::backport_pickle_buffer_type(),
            plain_types: PlainTypes::default(),
            latin1_text: None,
        }
    }

    /// Writes a whole pickle of `obj`: PROTO, the object, STOP, and closes the last frame.
    pub fn dump(&mut self, obj: &Obj) -> PyResult<()> {
        ffi::stack::check(PICKLING)?;
        let result = self.dump_framed(obj);
        // Turning framing off opens nothing, so it cannot fail.
        let off = self.out.set_framing(false);
        result.and(off)
    }

    fn dump_framed(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto >= 2 {
            self.out.write(&[PROTO, self.proto])?;
            if self.proto >= 4 {
                self.out.set_framing(true)?;
            }
        }
        self.save(obj, false)?;
        self.out.write_byte(STOP)?;
        self.out.commit_frame();
        Ok(())
    }

    // ---- recursion bookkeeping (what Py_EnterRecursiveCall does for the C pickler) ----

    #[inline]
    fn enter(&mut self) -> PyResult<()> {
        if self.depth >= self.depth_limit {
            return Err(recursion_error());
        }
        if ffi::stack::pointer() < self.stack_floor {
            return Err(recursion_error());
        }
        self.depth += 1;
        Ok(())
    }

    /// Before calling a reducer: `_pickle` shares the interpreter's recursion count, so when a
    /// recursion goes through reducers (a list or dict subclass at protocols 0-1, an object whose
    /// `__reduce__` returns itself among the arguments) the limit is reached by the reducer's
    /// call, whose RecursionError does not say "while pickling an object".
    #[inline]
    fn check_reducer_depth(&self) -> PyResult<()> {
        if self.depth + REDUCER_CALL_DEPTH > self.depth_limit {
            return Err(PyRecursionError::new_err(
                "maximum recursion depth exceeded",
            ));
        }
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- memo ----

    /// Fast mode on (it disables the memo and checks for cycles instead).
    #[inline(always)]
    fn fast(&self) -> bool {
        self.fast.is_some_and(|f| f.get() != 0)
    }

    /// The memo index of `obj`, if memoized.
    #[inline(always)]
    fn memo_index(&self, obj: &Obj) -> Option<usize> {
        self.memo.borrow().get(obj)
    }

    #[inline(always)]
    fn memo_put(&mut self, obj: &Obj) -> PyResult<()> {
        if self.fast() {
            return Ok(());
        }
        let idx = {
            let mut memo = self.memo.borrow_mut();
            let idx = memo.len();
            memo.insert(obj, idx)?;
            idx
        };
        if self.proto >= 4 {
            self.out.write_byte(MEMOIZE)?;
            return Ok(());
        }
        self.write_put(idx)
    }

    #[inline(never)]
    fn write_put(&mut self, idx: usize) -> PyResult<()> {
        self.write_memo_ref(idx, b'p', BINPUT, LONG_BINPUT, "LONG_BINPUT")
    }

    /// A PUT or GET of memo index `idx` in the form the protocol calls for: text, 1-byte or 4-byte.
    fn write_memo_ref(
        &mut self,
        idx: usize,
        text_op: u8,
        short_op: u8,
        long_op: u8,
        long_name: &str,
    ) -> PyResult<()> {
        if !self.bin {
            self.write_text_line(text_op, idx as i128)?;
        } else if idx < 256 {
            self.out.write(&[short_op, idx as u8])?;
        } else if idx <= 0xffff_ffff {
            let b = (idx as u32).to_le_bytes();
            self.out.write(&[long_op, b[0], b[1], b[2], b[3]])?;
        } else {
            return Err(errors::pickling_fmt(format_args!(
                "memo id too large for {}",
                long_name
            )));
        }
        Ok(())
    }

    /// `op`, the decimal digits of `value` and a newline (protocol 0 text), formatted on the stack.
    fn write_text_line(&mut self, op: u8, value: i128) -> PyResult<()> {
        let mut buf = [0u8; 48];
        buf[0] = op;
        let mut rest = &mut buf[1..];
        let _ = writeln!(rest, "{}", value);
        let len = 48 - rest.len();
        self.out.write(&buf[..len])
    }

    #[inline(always)]
    fn write_memo_get(&mut self, idx: usize) -> PyResult<()> {
        if self.bin && idx < 256 {
            self.out.write_array([BINGET, idx as u8])?;
            return Ok(());
        }
        self.write_memo_get_other(idx)
    }

    #[inline(never)]
    fn write_memo_get_other(&mut self, idx: usize) -> PyResult<()> {
        self.write_memo_ref(idx, b'g', BINGET, LONG_BINGET, "LONG_BINGET")
    }

    fn memo_get(&mut self, obj: &Obj) -> PyResult<()> {
        match self.memo_index(obj) {
            Some(idx) => self.write_memo_get(idx),
            None => Err(pyo3::exceptions::PyKeyError::new_err(obj.clone().into_py())),
        }
    }

    // ---- fast mode guards against cycles ----

    fn fast_save_enter(&mut self, obj: &Obj) -> PyResult<()> {
        self.fast_state.nesting += 1;
        if self.fast_state.nesting >= FAST_NESTING_LIMIT {
            let memo = match &self.fast_state.memo {
                Some(m) => m.clone(),
                None => {
                    let m = ffi::new_dict()?;
                    self.fast_state.memo = Some(m.clone());
                    m
                }
            };
            let key = ffi::number::int_from_addr(obj.addr())?;
            if memo.dict_get(&key)?.is_some() {
                self.fast_state.nesting = -1;
                return Err(crate::errors::new_fmt::<PyValueError>(format_args!(
                    "fast mode: can't pickle cyclic objects including object type {} at {:#x}",
                    tp_name(&obj.type_obj()),
                    obj.addr()
                )));
            }
            memo.dict_set(&key, &ffi::none())?;
        }
        Ok(())
    }

    fn fast_save_leave(&mut self, obj: &Obj) -> PyResult<()> {
        let was = self.fast_state.nesting;
        self.fast_state.nesting -= 1;
        if was >= FAST_NESTING_LIMIT {
            if let Some(memo) = &self.fast_state.memo {
                let key = ffi::number::int_from_addr(obj.addr())?;
                memo.del_item(&key)?;
            }
        }
        Ok(())
    }

    // ---- the dispatcher ----

    /// Saves one item of a container: the common scalar types inline, everything else through
    /// [`Saver::save`]. Emits exactly what `save` would.
    #[inline(always)]
    fn save_item(&mut self, obj: &Obj) -> PyResult<()> {
        if self.hooks.pers_func.is_none() && !self.out.frame_is_full() {
            let ty = obj.type_addr();
            if ty == types::str().addr() {
                if let Some(idx) = self.memo_index(obj) {
                    return self.write_memo_get(idx);
                }
                return self.save_unicode(obj);
            }
            if ty == types::int().addr() {
                return self.save_long(obj);
            }
            if ty == types::float().addr() {
                return self.save_float(obj);
            }
            // Anything but the atoms (never memoized) may be a repeat.
            if !obj.is_none() && ty != types::bool().addr() {
                if let Some(idx) = self.memo_index(obj) {
                    return self.write_memo_get(idx);
                }
                return self.save_unmemoized(obj, ty);
            }
        }
        self.save(obj, false)
    }

    #[inline(never)]
    pub fn save(&mut self, obj: &Obj, pers_save: bool) -> PyResult<()> {
        self.out.opcode_boundary()?;

        if !pers_save && self.hooks.pers_func.is_some() && self.save_pers(obj)? {
            return Ok(());
        }

        let ty = obj.type_addr();
        // Atoms are never memoized.
        if obj.is_none() {
            self.out.write_byte(NONE)?;
            return Ok(());
        }
        if ty == types::bool().addr() {
            return self.save_bool(obj);
        }
        if ty == types::int().addr() {
            return self.save_long(obj);
        }
        if ty == types::float().addr() {
            return self.save_float(obj);
        }

        if let Some(idx) = self.memo_index(obj) {
            return self.write_memo_get(idx);
        }
        self.save_unmemoized(obj, ty)
    }

    /// The rest of [`Saver::save`] for an object that is not an atom and not in the memo.
    #[inline(never)]
    fn save_unmemoized(&mut self, obj: &Obj, ty: usize) -> PyResult<()> {
        if ty == types::str().addr() {
            return self.save_unicode(obj);
        }
        if ty == types::bytes().addr() {
            return self.save_bytes(obj);
        }

        self.enter()?;
        let result = self.save_complex(obj, ty);
        self.leave();
        result
    }

    fn save_complex(&mut self, obj: &Obj, ty: usize) -> PyResult<()> {
        if ty == types::dict().addr() {
            return self.save_dict(obj);
        }
        if ty == types::set().addr() {
            return self.save_set(obj);
        }
        if ty == types::frozenset().addr() {
            return self.save_frozenset(obj);
        }
        if ty == types::list().addr() {
            return self.save_list(obj);
        }
        if ty == types::tuple().addr() {
            return self.save_tuple(obj);
        }
        if ty == types::bytearray().addr() {
            return self.save_bytearray(obj);
        }
        let g = globals();
        if crate::buffer::is_pickle_buffer(obj)
            || (self.backport_pickle_buffer != 0 && ty == self.backport_pickle_buffer)
        {
            return self.save_picklebuffer(obj);
        }

        // reducer_override comes before the type/function special cases and the reduce protocol.
        if let Some(hook) = self.hooks.reducer_override.clone() {
            self.foreign_code();
            let result = self.save_by_hook(obj, &hook);
            self.foreign_code();
            if let Some(done) = result? {
                return Ok(done);
            }
        }

        if ty == types::type_().addr() {
            return self.save_type(obj);
        }
        if ty == g.function_type {
            return self.save_global(obj, None);
        }

        // A reduction callable from the dispatch tables, else __reduce_ex__ / __reduce__.
        let type_obj = obj.type_obj();
        let reduce_func = match &self.hooks.dispatch_table {
            None => g.dispatch_table().dict_get(&type_obj)?,
            Some(table) => {
                let table = table.clone();
                self.foreign_code();
                let found = match table.get_item(&type_obj) {
                    Ok(f) => Some(f),
                    Err(e) if ffi::errors::is_key_error(&e) => None,
                    Err(e) => return Err(e),
                };
                self.foreign_code();
                found
            }
        };
        if reduce_func.is_none() {
            if type_obj.type_is_subtype(types::type_().addr()) {
                return self.save_global(obj, None);
            }
            if let Plain::State(state) = self.plain_check(obj, &type_obj)? {
                return self.save_plain(obj, &type_obj, state);
            }
        }
        self.foreign_code();
        let result = self.save_by_reduce(obj, &type_obj, reduce_func);
        self.foreign_code();
        result
    }

    /// `reducer_override(obj)`: `Some(())` when it handled the object.
    fn save_by_hook(&mut self, obj: &Obj, hook: &Obj) -> PyResult<Option<()>> {
        self.check_reducer_depth()?;
        let value = hook.call_one(obj)?;
        if value.is(globals().not_implemented()) {
            return Ok(None);
        }
        self.save_reduce_value(obj, value).map(Some)
    }

    /// The reduce protocol: the dispatch table's function, else `__reduce_ex__(proto)`, else
    /// `__reduce__()`.
    fn save_by_reduce(
        &mut self,
        obj: &Obj,
        type_obj: &Obj,
        reduce_func: Option<Obj>,
    ) -> PyResult<()> {
        let g = globals();
        self.check_reducer_depth()?;
        let value = if let Some(func) = reduce_func {
            func.call_one(obj)?
        } else if let Some(reduce_ex) = obj.getattr_opt(&g.names.reduce_ex)? {
            reduce_ex.call_one(&ffi::new_int(self.proto as i64)?)?
        } else if let Some(reduce) = obj.getattr_opt(&g.names.reduce)? {
            reduce.call0()?
        } else {
            return Err(errors::pickling_fmt(format_args!(
                "can't pickle '{}' object: {}",
                tp_name(type_obj),
                obj.repr_string()
            )));
        };
        self.save_reduce_value(obj, value)
    }

    /// Marks that Python code may have run (hooks, reducers, attribute lookups on arbitrary
    /// objects, or objects they returned being released): what the plain-object path verified
    /// about classes must be checked again.
    #[inline]
    fn foreign_code(&mut self) {
        self.plain_types.python_may_have_run();
    }

    fn plain_check(&mut self, obj: &Obj, type_obj: &Obj) -> PyResult<Plain> {
        if self.proto < 2 {
            return Ok(Plain::No);
        }
        let stamp = self.out.python_calls();
        self.plain_types.check(obj, type_obj, stamp)
    }

    /// What `save_reduce` does with `(copyreg.__newobj__, (cls,), state, None, None)`.
    fn save_plain(&mut self, obj: &Obj, cls: &Obj, state: Option<Obj>) -> PyResult<()> {
        self.save(cls, false)?;
        self.save(&ffi::new_tuple(vec![])?, false)?;
        self.out.write_byte(NEWOBJ)?;
        if self.memo_index(obj).is_some() {
            self.out.write_byte(POP)?;
            return self.memo_get(obj);
        }
        self.memo_put(obj)?;
        if let Some(state) = state {
            self.save(&state, false)?;
            self.out.write_byte(BUILD)?;
        }
        Ok(())
    }

    /// What a reducer returned: a global name (str) or a reduce tuple.
    fn save_reduce_value(&mut self, obj: &Obj, value: Obj) -> PyResult<()> {
        if value.is_str() {
            return self.save_global(obj, Some(value));
        }
        if !value.is_tuple() {
            return Err(errors::pickling("__reduce__ must return a string or tuple"));
        }
        self.save_reduce(&value, Some(obj))
    }

    // ---- persistent ids ----

    /// Returns true when a persistent id was written for `obj`.
    fn save_pers(&mut self, obj: &Obj) -> PyResult<bool> {
        self.foreign_code();
        let result = self.save_pers_inner(obj);
        self.foreign_code();
        result
    }

    fn save_pers_inner(&mut self, obj: &Obj) -> PyResult<bool> {
        let func = match &self.hooks.pers_func {
            Some(f) => f.clone(),
            None => return Ok(false),
        };
        let pid = match &self.hooks.pers_self {
            Some(s) => func.call_two(s, obj)?,
            None => func.call_one(obj)?,
        };
        if pid.is_none() {
            return Ok(false);
        }
        if self.bin {
            self.save(&pid, true)?;
            self.out.write_byte(BINPERSID)?;
        } else {
            let text = pid.str()?;
            let ascii = match text.str_ascii() {
                Some(a) => a,
                None => {
                    return Err(errors::pickling(
                        "persistent IDs in protocol 0 must be ASCII strings",
                    ))
                }
            };
            self.out.write_byte(PERSID)?;
            self.out.write(ascii)?;
            self.out.write_byte(b'\n')?;
        }
        Ok(true)
    }

    // ---- atoms ----

    fn save_bool(&mut self, obj: &Obj) -> PyResult<()> {
        let value = obj.is(&ffi::bool_obj(true));
        if self.proto >= 2 {
            self.out
                .write_byte(if value { NEWTRUE } else { NEWFALSE })?;
        } else {
            self.out.write(if value { TRUE_LINE } else { FALSE_LINE })?;
        }
        Ok(())
    }

    #[inline(always)]
    fn save_long(&mut self, obj: &Obj) -> PyResult<()> {
        let (value, overflow) = obj.int_as_long_overflow()?;
        if overflow == 0 && self.bin && value as i32 as i64 == value {
            let b = (value as i32).to_le_bytes();
            if b[2] != 0 || b[3] != 0 {
                self.out.write_array([BININT, b[0], b[1], b[2], b[3]])?;
            } else if b[1] != 0 {
                self.out.write_array([BININT2, b[0], b[1]])?;
            } else {
                self.out.write_array([BININT1, b[0]])?;
            }
            return Ok(());
        }
        self.save_long_other(obj, value, overflow)
    }

    #[inline(never)]
    fn save_long_other(&mut self, obj: &Obj, value: i64, overflow: i32) -> PyResult<()> {
        // (Binary protocols write 32-bit values in `save_long`.)
        if overflow == 0 && !self.bin && value >= i32::MIN as i64 && value <= i32::MAX as i64 {
            self.write_text_line(b'I', value as i128)?;
            return Ok(());
        }

        if self.proto >= 2 {
            // Two's-complement little-endian bytes, one more than the magnitude needs, trimmed
            // back when the top byte is only sign extension of a negative number.
            let mut small = [0u8; 9];
            let raw;
            let (sign, mut bytes): (i32, &[u8]) = if overflow == 0 {
                let nbits = 64 - value.unsigned_abs().leading_zeros() as usize;
                let nbytes = (nbits >> 3) + 1;
                small[..8].copy_from_slice(&value.to_le_bytes());
                if value < 0 {
                    small[8] = 0xff;
                }
                (value.signum() as i32, &small[..nbytes])
            } else {
                raw = ffi::number::int_to_pickle_bytes(obj)?;
                if raw.len() > 0x7fff_ffff {
                    return Err(PyOverflowError::new_err("int too large to pickle"));
                }
                (0, &raw[..])
            };
            let n = bytes.len();
            if sign < 0 && n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
                bytes = &bytes[..n - 1];
            }
            let n = bytes.len();
            if n < 256 {
                self.out.write(&[LONG1, n as u8])?;
            } else {
                let l = (n as u32).to_le_bytes();
                self.out.write(&[LONG4, l[0], l[1], l[2], l[3]])?;
            }
            self.out.write(bytes)?;
        } else {
            self.out.write_byte(LONG)?;
            if overflow == 0 {
                let mut buf = [0u8; 24];
                let mut rest = &mut buf[..];
                let _ = write!(rest, "{}", value);
                let len = 24 - rest.len();
                self.out.write(&buf[..len])?;
            } else {
                let repr = obj.repr()?;
                self.out.write(repr.str_utf8()?)?;
            }
            self.out.write(b"L\n")?;
        }
        Ok(())
    }

    #[inline(always)]
    fn save_float(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            let b = obj.float_value().to_be_bytes();
            self.out
                .write_array([BINFLOAT, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])?;
            return Ok(());
        }
        self.save_float_text(obj)
    }

    #[inline(never)]
    fn save_float_text(&mut self, obj: &Obj) -> PyResult<()> {
        let repr = obj.repr()?;
        let text = repr.str_utf8()?;
        self.out.write_byte(FLOAT)?;
        self.out.write(text)?;
        self.out.write_byte(b'\n')?;
        Ok(())
    }

    // ---- bytes-like ----

    #[inline]
    fn bytes_header(&self, size: usize) -> PyResult<([u8; 9], usize)> {
        let mut h = [0u8; 9];
        if size <= 0xff {
            h[0] = SHORT_BINBYTES;
            h[1] = size as u8;
            Ok((h, 2))
        } else if size <= 0xffff_ffff {
            h[0] = BINBYTES;
            h[1..5].copy_from_slice(&(size as u32).to_le_bytes());
            Ok((h, 5))
        } else if self.proto >= 4 {
            h[0] = BINBYTES8;
            h[1..9].copy_from_slice(&(size as u64).to_le_bytes());
            Ok((h, 9))
        } else {
            Err(PyOverflowError::new_err(
                "serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher",
            ))
        }
    }

    fn save_bytes(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 3 {
            // No bytes opcode before protocol 3: pickle as codecs.encode(latin-1 text), which
            // Python 2 also understands (or as bytes() when empty).
            let g = globals();
            let data = obj.bytes_data();
            let value = if data.is_empty() {
                ffi::tuple(&[&types::bytes().as_obj(), &ffi::new_tuple(vec![])?])?
            } else {
                let text = ffi::str::str_from_latin1(data)?;
                let args = ffi::tuple(&[&text, &g.names.latin1])?;
                if !self.bin {
                    self.latin1_text = Some((text, obj.clone()));
                }
                ffi::tuple(&[g.codecs_encode(), &args])?
            };
            let result = self.save_reduce(&value, Some(obj));
            self.latin1_text = None;
            return result;
        }
        let data = obj.bytes_data();
        let (header, n) = self.bytes_header(data.len())?;
        if data.len() < FRAME_SIZE_TARGET {
            self.out.write2(&header[..n], data)?;
        } else {
            self.out
                .write_with_payload(&header[..n], Payload::Held(HeldBytes::of_bytes(obj)))?;
        }
        self.memo_put(obj)
    }

    fn bytearray8_header(size: usize) -> [u8; 9] {
        let mut h = [0u8; 9];
        h[0] = BYTEARRAY8;
        h[1..].copy_from_slice(&(size as u64).to_le_bytes());
        h
    }

    fn save_bytearray(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 5 {
            let bytearray = types::bytearray().as_obj();
            let value = if obj.bytearray_data().is_empty() {
                ffi::tuple(&[&bytearray, &ffi::new_tuple(vec![])?])?
            } else {
                let content = obj.to_bytes_object()?;
                ffi::tuple(&[&bytearray, &ffi::tuple(&[&content])?])?
            };
            return self.save_reduce(&value, Some(obj));
        }
        let data = obj.bytearray_data();
        let header = Self::bytearray8_header(data.len());
        self.out
            .write_with_payload(&header, Payload::Borrowed { data, obj })?;
        self.memo_put(obj)
    }

    fn save_picklebuffer(&mut self, obj: &Obj) -> PyResult<()> {
        self.foreign_code();
        let result = self.save_picklebuffer_inner(obj);
        self.foreign_code();
        result
    }

    fn save_picklebuffer_inner(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 5 {
            let msg = if ffi::version::running() >= (3, 13) {
                "PickleBuffer can only be pickled with protocol >= 5"
            } else {
                "PickleBuffer can only pickled with protocol >= 5"
            };
            return Err(errors::pickling(msg));
        }
        let view = crate::buffer::pickle_buffer_view(obj)?;
        if !view.is_contiguous(b'A') {
            return Err(errors::pickling(
                "PickleBuffer can not be pickled when pointing to a non-contiguous buffer",
            ));
        }
        let mut in_band = true;
        if let Some(callback) = self.hooks.buffer_callback.clone() {
            in_band = callback.call_one(obj)?.is_true()?;
        }
        if in_band {
            let data = view.as_slice();
            if view.readonly() {
                let (header, n) = self.bytes_header(data.len())?;
                let payload = match view.immutable_exporter() {
                    Some(bytes) if data.len() >= FRAME_SIZE_TARGET => Payload::Shared {
                        held: HeldBytes::of_bytes_part(bytes, data),
                        obj,
                    },
                    _ => Payload::Borrowed { data, obj },
                };
                self.out.write_with_payload(&header[..n], payload)?;
            } else {
                let header = Self::bytearray8_header(data.len());
                self.out
                    .write_with_payload(&header, Payload::Borrowed { data, obj })?;
            }
            drop(view);
            self.memo_put(obj)
        } else {
            self.out.write_byte(NEXT_BUFFER)?;
            if view.readonly() {
                self.out.write_byte(READONLY_BUFFER)?;
            }
            Ok(())
        }
    }

    // ---- str ----

    fn save_unicode(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            match obj.str_utf8_fast() {
                Some(data) if data.len() < FRAME_SIZE_TARGET => {
                    let (header, n) = self.unicode_header(data.len())?;
                    self.out.write2(&header[..n], data)?;
                }
                _ => {
                    let payload = obj.str_utf8_payload()?;
                    let (header, n) = self.unicode_header(payload.len())?;
                    self.out
                        .write_with_payload(&header[..n], Payload::Held(payload))?;
                }
            }
        } else {
            self.out.write_byte(UNICODE)?;
            match self.latin1_text.take() {
                Some((text, bytes)) if text.is(obj) => {
                    write_latin1_escaped(&mut self.out, bytes.bytes_data())?
                }
                _ => {
                    let payload = obj.str_utf8_payload()?;
                    write_raw_unicode_escape(&mut self.out, payload.as_slice())?;
                }
            }
            self.out.write_byte(b'\n')?;
        }
        self.memo_put(obj)
    }

    #[inline]
    fn unicode_header(&self, size: usize) -> PyResult<([u8; 9], usize)> {
        let mut h = [0u8; 9];
        if size <= 0xff && self.proto >= 4 {
            h[0] = SHORT_BINUNICODE;
            h[1] = size as u8;
            Ok((h, 2))
        } else if size <= 0xffff_ffff {
            h[0] = BINUNICODE;
            h[1..5].copy_from_slice(&(size as u32).to_le_bytes());
            Ok((h, 5))
        } else if self.proto >= 4 {
            h[0] = BINUNICODE8;
            h[1..9].copy_from_slice(&(size as u64).to_le_bytes());
            Ok((h, 9))
        } else {
            Err(PyOverflowError::new_err(
                "serializing a string larger than 4 GiB requires pickle protocol 4 or higher",
            ))
        }
    }

    // ---- tuple ----

    fn save_tuple_items(&mut self, obj: &Obj, len: usize) -> PyResult<()> {
        for i in 0..len {
            match obj.tuple_get(i) {
                Some(item) => self.save_item(&item)?,
                None => {
                    return Err(PyRuntimeError::new_err(
                        "tuple changed size during pickling",
                    ))
                }
            }
        }
        Ok(())
    }

    fn save_tuple(&mut self, obj: &Obj) -> PyResult<()> {
        let len = obj.tuple_len();
        if len == 0 {
            if self.proto > 0 {
                self.out.write_byte(EMPTY_TUPLE)?;
            } else {
                self.out.write(&[MARK, TUPLE])?;
            }
            return Ok(());
        }

        // If the tuple shows up in the memo after its items are saved, it is recursive: drop what
        // was pushed and fetch it from the memo instead.
        if len <= 3 && self.proto >= 2 {
            self.save_tuple_items(obj, len)?;
            if self.memo_index(obj).is_some() {
                for _ in 0..len {
                    self.out.write_byte(POP)?;
                }
                return self.memo_get(obj);
            }
            self.out
                .write_byte([EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3][len])?;
            return self.memo_put(obj);
        }

        self.out.write_byte(MARK)?;
        self.save_tuple_items(obj, len)?;
        if self.memo_index(obj).is_some() {
            if self.bin {
                self.out.write_byte(POP_MARK)?;
            } else {
                for _ in 0..=len {
                    self.out.write_byte(POP)?;
                }
            }
            return self.memo_get(obj);
        }
        self.out.write_byte(TUPLE)?;
        self.memo_put(obj)
    }

    // ---- list ----

    /// MARK item... APPENDS batches from any iterator (APPEND one by one at protocol 0).
    fn batch_list(&mut self, iter: &Obj) -> PyResult<()> {
        if self.proto == 0 {
            while let Some(item) = iter.next()? {
                self.save(&item, false)?;
                self.out.write_byte(APPEND)?;
            }
            return Ok(());
        }
        loop {
            let first = match iter.next()? {
                Some(x) => x,
                None => return Ok(()),
            };
            let mut next = match iter.next()? {
                Some(x) => x,
                None => {
                    self.save(&first, false)?;
                    self.out.write_byte(APPEND)?;
                    return Ok(());
                }
            };
            self.out.write_byte(MARK)?;
            self.save(&first, false)?;
            let mut n = 1;
            loop {
                self.save(&next, false)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                next = match iter.next()? {
                    Some(x) => x,
                    None => break,
                };
            }
            self.out.write_byte(APPENDS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    /// The same for an exact list, reading it by index (it may change while items are saved).
    fn batch_list_exact(&mut self, obj: &Obj) -> PyResult<()> {
        if obj.list_len() == 1 {
            if let Some(item) = obj.list_get(0) {
                self.save(&item, false)?;
            }
            self.out.write_byte(APPEND)?;
            return Ok(());
        }
        let mut total = 0;
        // The list may change while its items are saved: its length is re-read before going
        // past the length last seen, and every read is bounds-checked.
        let mut seen_len = obj.list_len();
        loop {
            let mut this_batch = 0;
            self.out.write_byte(MARK)?;
            loop {
                if total >= seen_len {
                    seen_len = obj.list_len();
                    if total >= seen_len {
                        break;
                    }
                }
                let item = match obj.list_get(total) {
                    Some(item) => item,
                    None => break,
                };
                self.save_item(&item)?;
                total += 1;
                this_batch += 1;
                if this_batch == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(APPENDS)?;
            if total >= obj.list_len() {
                return Ok(());
            }
        }
    }

    /// Runs `body` inside fast mode's self-reference check (when fast mode is on).
    fn with_fast_guard(
        &mut self,
        obj: &Obj,
        body: fn(&mut Self, &Obj) -> PyResult<()>,
    ) -> PyResult<()> {
        if !self.fast() {
            return body(self, obj);
        }
        if let Err(e) = self.fast_save_enter(obj) {
            let _ = self.fast_save_leave(obj);
            return Err(e);
        }
        let result = body(self, obj);
        // As in C, the leave runs on errors too, and its own error (the KeyError that follows a
        // frozenset's unbalanced enter) replaces the body's.
        self.fast_save_leave(obj).and(result)
    }

    fn save_list(&mut self, obj: &Obj) -> PyResult<()> {
        self.with_fast_guard(obj, Self::save_list_body)
    }

    fn save_list_body(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            self.out.write_byte(EMPTY_LIST)?;
        } else {
            self.out.write(&[MARK, LIST])?;
        }
        let len = obj.list_len();
        self.memo_put(obj)?;
        if len == 0 {
            return Ok(());
        }
        if self.proto > 0 {
            self.enter()?;
            let r = self.batch_list_exact(obj);
            self.leave();
            r
        } else {
            let iter = obj.iter()?;
            self.enter()?;
            let r = self.batch_list(&iter);
            self.leave();
            r
        }
    }

    // ---- dict ----

    fn pair_items(item: &Obj) -> PyResult<(Obj, Obj)> {
        if !item.is_tuple() || item.tuple_len() != 2 {
            return Err(PyTypeError::new_err(
                "dict items iterator must return 2-tuples",
            ));
        }
        match (item.tuple_get(0), item.tuple_get(1)) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(PyTypeError::new_err(
                "dict items iterator must return 2-tuples",
            )),
        }
    }

    fn save_pair(&mut self, item: &Obj) -> PyResult<()> {
        let (k, v) = Self::pair_items(item)?;
        self.save(&k, false)?;
        self.save(&v, false)
    }

    /// MARK key value... SETITEMS batches from an iterator of pairs (SETITEM at protocol 0).
    fn batch_dict(&mut self, iter: &Obj) -> PyResult<()> {
        if self.proto == 0 {
            while let Some(item) = iter.next()? {
                self.save_pair(&item)?;
                self.out.write_byte(SETITEM)?;
            }
            return Ok(());
        }
        loop {
            let first = match iter.next()? {
                Some(x) => x,
                None => return Ok(()),
            };
            Self::pair_items(&first)?;
            let mut next = match iter.next()? {
                Some(x) => x,
                None => {
                    self.save_pair(&first)?;
                    self.out.write_byte(SETITEM)?;
                    return Ok(());
                }
            };
            self.out.write_byte(MARK)?;
            self.save_pair(&first)?;
            let mut n = 1;
            loop {
                self.save_pair(&next)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                next = match iter.next()? {
                    Some(x) => x,
                    None => break,
                };
            }
            self.out.write_byte(SETITEMS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    fn batch_dict_exact(&mut self, obj: &Obj) -> PyResult<()> {
        let size = obj.dict_len();
        let mut pos: isize = 0;
        if size == 1 {
            if let Some((k, v)) = obj.dict_next(&mut pos) {
                self.save(&k, false)?;
                self.save(&v, false)?;
            }
            self.out.write_byte(SETITEM)?;
            return Ok(());
        }
        loop {
            let mut i = 0;
            self.out.write_byte(MARK)?;
            while let Some((k, v)) = obj.dict_next(&mut pos) {
                self.save_item(&k)?;
                self.save_item(&v)?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(SETITEMS)?;
            if obj.dict_len() != size {
                return Err(PyRuntimeError::new_err(
                    "dictionary changed size during iteration",
                ));
            }
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    fn save_dict(&mut self, obj: &Obj) -> PyResult<()> {
        self.with_fast_guard(obj, Self::save_dict_body)
    }

    fn save_dict_body(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            self.out.write_byte(EMPTY_DICT)?;
        } else {
            self.out.write(&[MARK, DICT])?;
        }
        self.memo_put(obj)?;
        if obj.dict_len() == 0 {
            return Ok(());
        }
        if self.proto > 0 {
            self.enter()?;
            let r = self.batch_dict_exact(obj);
            self.leave();
            r
        } else {
            let items = obj.call_method(&globals().names.items, &[])?;
            let iter = items.iter()?;
            self.enter()?;
            let r = self.batch_dict(&iter);
            self.leave();
            r
        }
    }

    // ---- set / frozenset ----

    fn save_set(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 4 {
            let items = obj.to_list()?;
            let value = ffi::tuple(&[&types::set().as_obj(), &ffi::tuple(&[&items])?])?;
            return self.save_reduce(&value, Some(obj));
        }
        self.out.write_byte(EMPTY_SET)?;
        self.memo_put(obj)?;
        let size = obj.set_len();
        if size == 0 {
            return Ok(());
        }
        let iter = obj.iter()?;
        loop {
            let mut i = 0;
            self.out.write_byte(MARK)?;
            loop {
                let item = match iter.next() {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    // The set iterator notices a size change first; `_pickle` walks the table
                    // and reports it after the batch, in its own words.
                    Err(_) if obj.set_len() != size => {
                        return Err(PyRuntimeError::new_err("set changed size during iteration"))
                    }
                    Err(e) => return Err(e),
                };
                self.save(&item, false)?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(ADDITEMS)?;
            if obj.set_len() != size {
                return Err(PyRuntimeError::new_err("set changed size during iteration"));
            }
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    fn save_frozenset(&mut self, obj: &Obj) -> PyResult<()> {
        // Like the C pickler, fast mode counts frozensets as nesting without undoing it.
        if self.fast() {
            self.fast_save_enter(obj)?;
        }
        if self.proto < 4 {
            let items = obj.to_list()?;
            let value = ffi::tuple(&[&types::frozenset().as_obj(), &ffi::tuple(&[&items])?])?;
            return self.save_reduce(&value, Some(obj));
        }
        self.out.write_byte(MARK)?;
        let iter = obj.iter()?;
        while let Some(item) = iter.next()? {
            self.save(&item, false)?;
        }
        if self.memo_index(obj).is_some() {
            self.out.write_byte(POP_MARK)?;
            return self.memo_get(obj);
        }
        self.out.write_byte(FROZENSET)?;
        self.memo_put(obj)
    }

    // ---- globals: classes, functions, and names returned by __reduce__ ----

    /// Python 3 names mapped back to Python 2's for protocols < 3.
    fn fix_imports(&self, module_name: &mut Obj, global_name: &mut Obj) -> PyResult<()> {
        let g = globals();
        let key = ffi::tuple(&[module_name, global_name])?;
        if let Some(item) = g.name_mapping_3to2().dict_get(&key)? {
            if !item.is_tuple() || item.tuple_len() != 2 {
                return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                    "_compat_pickle.REVERSE_NAME_MAPPING values should be 2-tuples, not {}",
                    tp_name(&item.type_obj())
                )));
            }
            let (m, n) = match (item.tuple_get(0), item.tuple_get(1)) {
                (Some(m), Some(n)) => (m, n),
                _ => return Err(PyRuntimeError::new_err("bad REVERSE_NAME_MAPPING entry")),
            };
            if !m.is_str() || !n.is_str() {
                return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                    "_compat_pickle.REVERSE_NAME_MAPPING values should be pairs of str, not ({}, {})",
                    tp_name(&m.type_obj()),
                    tp_name(&n.type_obj())
                )));
            }
            *module_name = m;
            *global_name = n;
            return Ok(());
        }
        if let Some(item) = g.import_mapping_3to2().dict_get(module_name)? {
            if !item.is_str() {
                return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                    "_compat_pickle.REVERSE_IMPORT_MAPPING values should be strings, not {}",
                    tp_name(&item.type_obj())
                )));
            }
            *module_name = item;
        }
        Ok(())
    }

    fn save_global(&mut self, obj: &Obj, name: Option<Obj>) -> PyResult<()> {
        self.foreign_code();
        let result = self.save_global_inner(obj, name);
        self.foreign_code();
        result
    }

    fn save_global_inner(&mut self, obj: &Obj, name: Option<Obj>) -> PyResult<()> {
        let g = globals();
        let mut global_name = match name {
            Some(n) => n,
            None => match obj.getattr_opt(&g.names.qualname)? {
                Some(q) => q,
                None => obj.getattr(&g.names.name)?,
            },
        };

        let dotted_path = get_dotted_path(None, &global_name)?;
        let mut module_name = whichmodule(obj, &dotted_path)?;

        let module = match ffi::import(&module_name) {
            Ok(m) => m,
            Err(_) => {
                return Err(errors::pickling_fmt(format_args!(
                    "Can't pickle {}: import of module {} failed",
                    obj.repr_string(),
                    module_name.repr_string()
                )))
            }
        };
        let lastname = match dotted_path.last() {
            Some(l) => l.clone(),
            None => global_name.clone(),
        };
        let (found, parent) = match get_deep_attribute(&module, &dotted_path) {
            Ok(Some((found, parent))) => (found, parent),
            _ => {
                return Err(errors::pickling_fmt(format_args!(
                    "Can't pickle {}: attribute lookup {} on {} failed",
                    obj.repr_string(),
                    str_of(&global_name),
                    str_of(&module_name)
                )))
            }
        };
        if !found.is(obj) {
            return Err(errors::pickling_fmt(format_args!(
                "Can't pickle {}: it's not the same object as {}.{}",
                obj.repr_string(),
                str_of(&module_name),
                str_of(&global_name)
            )));
        }

        if self.proto >= 2 {
            let key = ffi::tuple(&[&module_name, &global_name])?;
            if let Some(code_obj) = g.extension_registry().dict_get(&key)? {
                let since_313 = ffi::version::running() >= (3, 13);
                if !code_obj.is_int() {
                    if since_313 {
                        return Err(crate::errors::new_fmt::<PyTypeError>(format_args!(
                            "'{}' object cannot be interpreted as an integer",
                            code_obj.type_name()
                        )));
                    }
                    return Err(errors::pickling_fmt(format_args!(
                        "Can't pickle {}: extension code {} isn't an integer",
                        obj.repr_string(),
                        code_obj.repr_string()
                    )));
                }
                let (code, overflow) = code_obj.int_as_long_overflow()?;
                if overflow != 0 {
                    return Err(PyOverflowError::new_err(
                        "Python int too large to convert to C long",
                    ));
                }
                if code <= 0 || code > 0x7fff_ffff {
                    if since_313 {
                        return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                            "extension code {} is out of range",
                            code
                        )));
                    }
                    return Err(errors::pickling_fmt(format_args!(
                        "Can't pickle {}: extension code {} is out of range",
                        obj.repr_string(),
                        code
                    )));
                }
                let c = (code as u32).to_le_bytes();
                if code <= 0xff {
                    self.out.write(&[EXT1, c[0]])?;
                } else if code <= 0xffff {
                    self.out.write(&[EXT2, c[0], c[1]])?;
                } else {
                    self.out.write(&[EXT4, c[0], c[1], c[2], c[3]])?;
                }
                return Ok(());
            }
        }

        let parent_is_module = parent.is(&module);
        if parent_is_module {
            global_name = lastname.clone();
        }
        if self.proto >= 4 {
            self.save(&module_name, false)?;
            self.save(&global_name, false)?;
            self.out.write_byte(STACK_GLOBAL)?;
        } else if !parent_is_module && ffi::version::running() >= (3, 13) {
            // 3.13+: a nested name before protocol 4 is getattr(getattr(top, a), b)..., with the
            // top-level object written by name.
            let getattr = g.getattr_builtin();
            for _ in 1..dotted_path.len() {
                self.save(getattr, false)?;
                if self.proto < 2 {
                    self.out.write_byte(MARK)?;
                }
            }
            let mut top = dotted_path[0].clone();
            self.write_global_opcode(&mut module_name, &mut top)?;
            for attr in &dotted_path[1..] {
                self.save(attr, false)?;
                self.out
                    .write_byte(if self.proto < 2 { TUPLE } else { TUPLE2 })?;
                self.out.write_byte(REDUCE)?;
            }
        } else if !parent_is_module {
            // A nested name before protocol 4: getattr(parent, lastname), unmemoized.
            let value = ffi::tuple(&[g.getattr_builtin(), &ffi::tuple(&[&parent, &lastname])?])?;
            self.save_reduce(&value, None)?;
        } else {
            self.write_global_opcode(&mut module_name, &mut global_name)?;
        }
        self.memo_put(obj)
    }

    /// GLOBAL module\nname\n, with Python 2 names at protocols < 3 when fix_imports is on.
    fn write_global_opcode(
        &mut self,
        module_name: &mut Obj,
        global_name: &mut Obj,
    ) -> PyResult<()> {
        if self.proto < 3 && self.fix_imports {
            self.fix_imports(module_name, global_name)?;
        }
        let module_bytes = self.encode_identifier(module_name, "module")?;
        let name_bytes = self.encode_identifier(global_name, "global")?;
        self.out.write_byte(GLOBAL)?;
        self.out.write(module_bytes.bytes_data())?;
        self.out.write_byte(b'\n')?;
        self.out.write(name_bytes.bytes_data())?;
        self.out.write_byte(b'\n')?;
        Ok(())
    }

    /// Module and global names are UTF-8 at protocol 3 and ASCII otherwise (for Python 2).
    fn encode_identifier(&self, name: &Obj, what: &str) -> PyResult<Obj> {
        let encoded = if self.proto == 3 {
            name.str_encode_utf8()
        } else {
            name.str_encode_ascii()
        };
        encoded.map_err(|e| {
            if ffi::errors::is_unicode_encode_error(&e) {
                errors::pickling_fmt(format_args!(
                    "can't pickle {} identifier '{}' using pickle protocol {}",
                    what,
                    str_of(name),
                    self.proto
                ))
            } else {
                e
            }
        })
    }

    fn save_singleton_type(&mut self, obj: &Obj, singleton: &Obj) -> PyResult<()> {
        let value = ffi::tuple(&[&types::type_().as_obj(), &ffi::tuple(&[singleton])?])?;
        self.save_reduce(&value, Some(obj))
    }

    fn save_type(&mut self, obj: &Obj) -> PyResult<()> {
        let g = globals();
        let addr = obj.addr();
        if addr == g.none_type {
            return self.save_singleton_type(obj, &ffi::none());
        }
        if addr == g.ellipsis_type {
            return self.save_singleton_type(obj, g.ellipsis());
        }
        if addr == g.not_implemented_type {
            return self.save_singleton_type(obj, g.not_implemented());
        }
        self.save_global(obj, None)
    }

    // ---- the reduce protocol ----

    /// Saves `obj` from the 2..6-tuple its reducer returned; `obj` is None when the result must
    /// not be memoized.
    pub fn save_reduce(&mut self, args: &Obj, obj: Option<&Obj>) -> PyResult<()> {
        self.foreign_code();
        let result = self.save_reduce_inner(args, obj);
        self.foreign_code();
        result
    }

    fn save_reduce_inner(&mut self, args: &Obj, obj: Option<&Obj>) -> PyResult<()> {
        let size = args.tuple_len();
        if !(2..=6).contains(&size) {
            return Err(errors::pickling(
                "tuple returned by __reduce__ must contain 2 through 6 elements",
            ));
        }
        let item = |i: usize| -> Option<Obj> {
            if i < size {
                args.tuple_get(i)
            } else {
                None
            }
        };
        let (callable, argtup) = match (item(0), item(1)) {
            (Some(c), Some(a)) => (c, a),
            _ => {
                return Err(errors::pickling(
                    "tuple returned by __reduce__ is malformed",
                ))
            }
        };
        let not_none = |o: Option<Obj>| o.filter(|x| !x.is_none());
        let state = not_none(item(2));
        let listitems = not_none(item(3));
        let dictitems = not_none(item(4));
        let state_setter = not_none(item(5));

        if !callable.is_callable() {
            return Err(errors::pickling(
                "first item of the tuple returned by __reduce__ must be callable",
            ));
        }
        if !argtup.is_tuple() {
            return Err(errors::pickling(
                "second item of the tuple returned by __reduce__ must be a tuple",
            ));
        }
        if let Some(li) = &listitems {
            if !li.is_iterator() {
                return Err(errors::pickling_fmt(format_args!(
                    "fourth element of the tuple returned by __reduce__ must be an iterator, not {}",
                    tp_name(&li.type_obj())
                )));
            }
        }
        if let Some(di) = &dictitems {
            if !di.is_iterator() {
                return Err(errors::pickling_fmt(format_args!(
                    "fifth element of the tuple returned by __reduce__ must be an iterator, not {}",
                    tp_name(&di.type_obj())
                )));
            }
        }
        if let Some(ss) = &state_setter {
            if !ss.is_callable() {
                return Err(errors::pickling_fmt(format_args!(
                    "sixth element of the tuple returned by __reduce__ must be a function, not {}",
                    tp_name(&ss.type_obj())
                )));
            }
        }

        let g = globals();
        let (mut use_newobj, mut use_newobj_ex) = (false, false);
        if self.proto >= 2 {
            if let Some(name) = callable.getattr_opt(&g.names.name)? {
                if name.is_str() {
                    use_newobj_ex = name.str_eq("__newobj_ex__");
                    if !use_newobj_ex {
                        use_newobj = name.str_eq("__newobj__");
                    }
                }
            }
        }

        if use_newobj_ex {
            let n = argtup.tuple_len();
            if n != 3 {
                return Err(errors::pickling_fmt(format_args!(
                    "length of the NEWOBJ_EX argument tuple must be exactly 3, not {}",
                    n
                )));
            }
            let (cls, cargs, kwargs) = match (
                argtup.tuple_get(0),
                argtup.tuple_get(1),
                argtup.tuple_get(2),
            ) {
                (Some(a), Some(b), Some(c)) => (a, b, c),
                _ => return Err(errors::pickling("NEWOBJ_EX argument tuple is malformed")),
            };
            if !cls.is_type() {
                return Err(errors::pickling_fmt(format_args!(
                    "first item from NEWOBJ_EX argument tuple must be a class, not {}",
                    tp_name(&cls.type_obj())
                )));
            }
            if !cargs.is_tuple() {
                return Err(errors::pickling_fmt(format_args!(
                    "second item from NEWOBJ_EX argument tuple must be a tuple, not {}",
                    tp_name(&cargs.type_obj())
                )));
            }
            if !kwargs.is_dict() {
                return Err(errors::pickling_fmt(format_args!(
                    "third item from NEWOBJ_EX argument tuple must be a dict, not {}",
                    tp_name(&kwargs.type_obj())
                )));
            }
            if self.proto >= 4 {
                self.save(&cls, false)?;
                self.save(&cargs, false)?;
                self.save(&kwargs, false)?;
                self.out.write_byte(NEWOBJ_EX)?;
            } else {
                // partial(cls.__new__, cls, *args, **kwargs)()
                let cls_new = cls.getattr(&g.names.new)?;
                let n = cargs.tuple_len();
                let mut items = crate::alloc::with_capacity(n + 2)?;
                items.push(cls_new);
                items.push(cls.clone());
                items.extend((0..n).filter_map(|i| cargs.tuple_get(i)));
                let partial_args = ffi::new_tuple(items)?;
                let partial = g.partial().call(&partial_args, Some(&kwargs))?;
                self.save(&partial, false)?;
                self.save(&ffi::new_tuple(vec![])?, false)?;
                self.out.write_byte(REDUCE)?;
            }
        } else if use_newobj {
            let cls = match argtup.tuple_get(0) {
                Some(c) => c,
                None => return Err(errors::pickling("__newobj__ arglist is empty")),
            };
            if !cls.is_type() {
                return Err(errors::pickling(
                    "args[0] from __newobj__ args is not a type",
                ));
            }
            if let Some(o) = obj {
                let obj_class = match o.getattr_opt(&g.names.class)? {
                    Some(c) => c,
                    None => o.type_obj(),
                };
                if !obj_class.is(&cls) {
                    return Err(errors::pickling(
                        "args[0] from __newobj__ args has the wrong class",
                    ));
                }
            }
            self.save(&cls, false)?;
            let rest = argtup.tuple_slice_from(1)?;
            self.save(&rest, false)?;
            self.out.write_byte(NEWOBJ)?;
        } else {
            self.save(&callable, false)?;
            self.save(&argtup, false)?;
            self.out.write_byte(REDUCE)?;
        }

        if let Some(o) = obj {
            // Already memoized while its arguments were saved: the object is recursive.
            if self.memo_index(o).is_some() {
                self.out.write_byte(POP)?;
                return self.memo_get(o);
            }
            self.memo_put(o)?;
        }

        if let Some(li) = &listitems {
            self.batch_list(li)?;
        }
        if let Some(di) = &dictitems {
            self.batch_dict(di)?;
        }
        if let Some(state) = &state {
            match &state_setter {
                None => {
                    self.save(state, false)?;
                    self.out.write_byte(BUILD)?;
                }
                Some(setter) => {
                    // state_setter(obj, state), with its result popped: stack-neutral.
                    self.save(setter, false)?;
                    match obj {
                        Some(o) => self.save(o, false)?,
                        None => self.save(&ffi::none(), false)?,
                    }
                    self.save(state, false)?;
                    self.out.write(&[TUPLE2, REDUCE, POP])?;
                }
            }
        }
        Ok(())
    }
}

// ---- name lookup helpers (save_global) ----

fn str_of(obj: &Obj) -> ffi::Text {
    match obj.str() {
        Ok(s) if s.str_utf8().is_ok() => ffi::Text::of_str(s),
        Ok(s) => s.repr_string(),
        Err(_) => obj.repr_string(),
    }
}

/// `name.split(".")`, refusing names of local objects.
fn get_dotted_path(obj: Option<&Obj>, name: &Obj) -> PyResult<Vec<Obj>> {
    let parts = name.str_split_dots()?;
    for part in &parts {
        if part.str_eq("<locals>") {
            let verb = if ffi::version::running() >= (3, 13) {
                "get"
            } else {
                "pickle"
            };
            type E = pyo3::exceptions::PyAttributeError;
            return Err(match obj {
                None => errors::new_fmt::<E>(format_args!(
                    "Can't {} local object {}",
                    verb,
                    name.repr_string()
                )),
                Some(o) => errors::new_fmt::<E>(format_args!(
                    "Can't pickle local attribute {} on {}",
                    name.repr_string(),
                    o.repr_string()
                )),
            });
        }
    }
    Ok(parts)
}

/// Follows `names` from `obj`; `Ok(None)` when an attribute is missing. Returns the final object
/// and its parent.
fn get_deep_attribute(obj: &Obj, names: &[Obj]) -> PyResult<Option<(Obj, Obj)>> {
    let mut current = obj.clone();
    let mut parent = obj.clone();
    for name in names {
        match current.getattr_opt(name)? {
            Some(next) => {
                parent = std::mem::replace(&mut current, next);
            }
            None => return Ok(None),
        }
    }
    Ok(Some((current, parent)))
}

/// Whether `module` holds `global` under `dotted_path` (and is a usable candidate at all).
fn check_module(
    module_name: &Obj,
    module: &Obj,
    global: &Obj,
    dotted_path: &[Obj],
) -> PyResult<bool> {
    if module.is_none() {
        return Ok(false);
    }
    if module_name.str_eq("__main__") {
        return Ok(false);
    }
    match get_deep_attribute(module, dotted_path)? {
        Some((candidate, _)) => Ok(candidate.is(global)),
        None => Ok(false),
    }
}

/// The module a global lives in: its `__module__`, else a search of `sys.modules`, else __main__.
fn whichmodule(global: &Obj, dotted_path: &[Obj]) -> PyResult<Obj> {
    let g = globals();
    if let Some(name) = global.getattr_opt(&g.names.module)? {
        if !name.is_none() {
            return Ok(name);
        }
    }
    let modules = match ffi::modules::sys_modules() {
        Some(m) => m,
        None => return Err(PyRuntimeError::new_err("unable to get sys.modules")),
    };
    if modules.is_exact_type(types::dict()) {
        for (name, module) in modules.dict_items()? {
            if check_module(&name, &module, global, dotted_path)? {
                return Ok(name);
            }
        }
    } else {
        let iter = modules.iter()?;
        while let Some(name) = iter.next()? {
            let module = modules.get_item(&name)?;
            if check_module(&name, &module, global, dotted_path)? {
                return Ok(name);
            }
        }
    }
    ffi::new_str("__main__")
}

// ---- protocol 0 text for str ----

/// What [`write_raw_unicode_escape`] writes for the text of latin-1 `data`: every byte as it is
/// but the five escaped characters.
fn write_latin1_escaped(out: &mut Writer, data: &[u8]) -> PyResult<()> {
    let mut rest = data;
    while let Some(i) = rest
        .iter()
        .position(|&b| matches!(b, b'\\' | 0 | b'\n' | b'\r' | 0x1a))
    {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = rest[i];
        out.write(&rest[..i])?;
        out.write(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xf) as usize],
        ])?;
        rest = &rest[i + 1..];
    }
    out.write(rest)
}

/// `raw_unicode_escape` plus escapes for `\\`, NUL, `\n`, `\r` and `\x1a`, so the text survives a
/// line-based protocol-0 reader. Input is UTF-8 (possibly with surrogates encoded as 3-byte forms).
/// Long runs of ASCII that need no escape are copied as they are; everything else is gathered in a
/// small local buffer (no temporary as large as the text), one byte-class lookup per character.
fn write_raw_unicode_escape(out: &mut Writer, utf8: &[u8]) -> PyResult<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const CAP: usize = 4096;
    /// A run of ASCII needing no escape at least this long goes to the output directly.
    const DIRECT_RUN: usize = 64;
    const COPY: u8 = 0;
    const ESCAPE: u8 = 1;
    /// Classes 2, 3, 4: the lead byte of a sequence of that many bytes; 5: anything else, kept.
    const OTHER: u8 = 5;
    static CLASS: [u8; 256] = {
        let mut t = [OTHER; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = match b as u8 {
                b'\\' | 0 | b'\n' | b'\r' | 0x1a => ESCAPE,
                0..=0x7f => COPY,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xff => 4,
                _ => OTHER,
            };
            b += 1;
        }
        t
    };
    let mut buf = [0u8; CAP];
    let mut n = 0;
    let mut i = 0;
    let len = utf8.len();
    while i < len {
        if n > CAP - 10 {
            out.write(&buf[..n])?;
            n = 0;
        }
        let b0 = utf8[i];
        let class = CLASS[b0 as usize];
        let (ch, width) = match class {
            COPY => {
                let run = utf8[i..]
                    .iter()
                    .position(|&b| CLASS[b as usize] != COPY)
                    .unwrap_or(len - i);
                if run >= DIRECT_RUN || run > CAP - n {
                    out.write(&buf[..n])?;
                    n = 0;
                    out.write(&utf8[i..i + run])?;
                } else {
                    buf[n..n + run].copy_from_slice(&utf8[i..i + run]);
                    n += run;
                }
                i += run;
                continue;
            }
            2 if i + 1 < len => (((b0 as u32 & 0x1f) << 6) | (utf8[i + 1] as u32 & 0x3f), 2),
            3 if i + 2 < len => (
                ((b0 as u32 & 0x0f) << 12)
                    | ((utf8[i + 1] as u32 & 0x3f) << 6)
                    | (utf8[i + 2] as u32 & 0x3f),
                3,
            ),
            4 if i + 3 < len => (
                ((b0 as u32 & 0x07) << 18)
                    | ((utf8[i + 1] as u32 & 0x3f) << 12)
                    | ((utf8[i + 2] as u32 & 0x3f) << 6)
                    | (utf8[i + 3] as u32 & 0x3f),
                4,
            ),
            // ESCAPE, OTHER, and a truncated sequence: the byte itself.
            _ => (b0 as u32, 1),
        };
        i += width;
        let digits = if ch >= 0x10000 {
            buf[n..n + 2].copy_from_slice(b"\\U");
            8
        } else if ch >= 256 || class == ESCAPE {
            buf[n..n + 2].copy_from_slice(b"\\u");
            4
        } else {
            buf[n] = ch as u8;
            n += 1;
            continue;
        };
        n += 2;
        for shift in (0..digits).rev() {
            buf[n] = HEX[((ch >> (shift * 4)) & 0xf) as usize];
            n += 1;
        }
    }
    out.write(&buf[..n])
}

#[cfg(test)]
#[path = "save_tests.rs"]
mod tests;
