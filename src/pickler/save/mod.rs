//! The save routines, emitting the same opcodes and making the same memo decisions as the C
//! pickler (`Modules/_pickle.c`). This file holds the [`Saver`], its dispatch ([`Kind`]: an
//! object's type classified in the order `_pickle` tries them, then one `match` sending each kind
//! to its writer), the memo, persistent ids and the recursion count. The writers live by family:
//!
//! | file | types |
//! | --- | --- |
//! | `scalars.rs` | None, bool, int, float |
//! | `bytes.rs` | bytes, bytearray, PickleBuffer |
//! | `str.rs` | str |
//! | `containers.rs` | tuple, list, dict, set, frozenset (batching, fast mode) |
//! | `globals.rs` | classes and functions, by name (`save_global`, `whichmodule`, `fix_imports`) |
//! | `reduce.rs` | everything else: reducer_override, dispatch tables, plain objects, the reduce protocol |

mod bytes;
mod containers;
mod globals;
mod reduce;
mod scalars;
mod str;

use std::io::Write as _;

use pyo3::exceptions::PyRecursionError;
use pyo3::prelude::*;

use std::cell::RefCell;

use super::memo::Memo;
use super::plain::PlainTypes;
use super::writer::Writer;
use crate::errors;
use crate::ffi::members::IntSlot;
use crate::ffi::{self, types, Obj};
use crate::opcodes::*;

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

/// What [`Saver::save`] does with an object, by its exact type (subclasses are
/// [`Kind::Object`]), in the order `_pickle` tries them. The order of the variants matters: atoms
/// first (never memoized), then str and bytes (memoized), then the kinds that nest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    None,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Dict,
    Set,
    FrozenSet,
    List,
    Tuple,
    ByteArray,
    PickleBuffer,
    /// Anything else: `reduce.rs`'s `save_object` (reducer_override, classes and functions by
    /// name, the dispatch tables, plain objects, the reduce protocol).
    Object,
}

impl Kind {
    /// `backport_pickle_buffer`: the `pickle5` backport's PickleBuffer type (0: none).
    #[inline(always)]
    fn of(obj: &Obj, backport_pickle_buffer: usize) -> Kind {
        // Exact types are disjoint, so the most common come first.
        let ty = obj.type_addr();
        if ty == types::str().addr() {
            Kind::Str
        } else if ty == types::int().addr() {
            Kind::Int
        } else if ty == types::float().addr() {
            Kind::Float
        } else if obj.is_none() {
            Kind::None
        } else if ty == types::bool().addr() {
            Kind::Bool
        } else {
            Kind::of_other(obj, ty, backport_pickle_buffer)
        }
    }

    /// [`Kind::of`] for an object known not to be a str, int, float, None or bool (`ty`: its
    /// type's address).
    #[inline(always)]
    fn of_other(obj: &Obj, ty: usize, backport_pickle_buffer: usize) -> Kind {
        if ty == types::dict().addr() {
            Kind::Dict
        } else if ty == types::list().addr() {
            Kind::List
        } else if ty == types::tuple().addr() {
            Kind::Tuple
        } else if ty == types::bytes().addr() {
            Kind::Bytes
        } else if ty == types::set().addr() {
            Kind::Set
        } else if ty == types::frozenset().addr() {
            Kind::FrozenSet
        } else if ty == types::bytearray().addr() {
            Kind::ByteArray
        } else if crate::buffer::is_pickle_buffer(obj)
            || (backport_pickle_buffer != 0 && ty == backport_pickle_buffer)
        {
            Kind::PickleBuffer
        } else {
            Kind::Object
        }
    }
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

    // ---- the dispatch ----

    /// Saves one item of a container: str, int and float inline, and without [`Saver::save`]'s
    /// frame and `persistent_id` checks when neither applies. Emits exactly what `save` would.
    #[inline(always)]
    fn save_item(&mut self, obj: &Obj) -> PyResult<()> {
        if self.hooks.pers_func.is_none() && !self.out.frame_is_full() {
            let ty = obj.type_addr();
            if ty == types::str().addr() {
                if let Some(idx) = self.memo_index(obj) {
                    return self.write_memo_get(idx);
                }
                return self.save_str(obj);
            }
            if ty == types::int().addr() {
                return self.save_int(obj);
            }
            if ty == types::float().addr() {
                return self.save_float(obj);
            }
            // Anything but the atoms may be a repeat: the memo first, the kind only if not.
            if !obj.is_none() && ty != types::bool().addr() {
                if let Some(idx) = self.memo_index(obj) {
                    return self.write_memo_get(idx);
                }
                return self.save_new(obj, Kind::of_other(obj, ty, self.backport_pickle_buffer));
            }
        }
        self.save(obj, false)
    }

    /// Saves `obj` (`pers_save`: it is a persistent id, not to be offered to `persistent_id`).
    #[inline(never)]
    pub fn save(&mut self, obj: &Obj, pers_save: bool) -> PyResult<()> {
        self.out.opcode_boundary()?;
        if !pers_save && self.hooks.pers_func.is_some() && self.save_pers(obj)? {
            return Ok(());
        }
        // The commonest atoms without the dispatch (set items and reduce arguments come here).
        let ty = obj.type_addr();
        if ty == types::int().addr() {
            return self.save_int(obj);
        }
        if ty == types::float().addr() {
            return self.save_float(obj);
        }
        self.save_as(obj, Kind::of(obj, self.backport_pickle_buffer))
    }

    /// The dispatch: the memo, the nesting count, and the one `match` sending each kind to its
    /// writer.
    #[inline(always)]
    fn save_as(&mut self, obj: &Obj, kind: Kind) -> PyResult<()> {
        // Atoms are never memoized; anything else may be a repeat.
        if kind >= Kind::Str {
            if let Some(idx) = self.memo_index(obj) {
                return self.write_memo_get(idx);
            }
        }
        self.save_new(obj, kind)
    }

    /// [`Saver::save_as`] for an object the memo does not hold.
    #[inline(never)]
    fn save_new(&mut self, obj: &Obj, kind: Kind) -> PyResult<()> {
        // Containers and reduced objects count as a level of nesting.
        if kind >= Kind::Dict {
            self.enter()?;
        }
        let result = match kind {
            Kind::None => self.out.write_byte(NONE),
            Kind::Bool => self.save_bool(obj),
            Kind::Int => self.save_int(obj),
            Kind::Float => self.save_float(obj),
            Kind::Str => self.save_str(obj),
            Kind::Bytes => self.save_bytes(obj),
            Kind::Dict => self.save_dict(obj),
            Kind::Set => self.save_set(obj),
            Kind::FrozenSet => self.save_frozenset(obj),
            Kind::List => self.save_list(obj),
            Kind::Tuple => self.save_tuple(obj),
            Kind::ByteArray => self.save_bytearray(obj),
            Kind::PickleBuffer => self.save_picklebuffer(obj),
            Kind::Object => self.save_object(obj),
        };
        if kind >= Kind::Dict {
            self.leave();
        }
        result
    }

    // ---- persistent ids ----

    /// `persistent_id(obj)`, and the persistent id it returned: true when one was written.
    fn save_pers(&mut self, obj: &Obj) -> PyResult<bool> {
        let func = match &self.hooks.pers_func {
            Some(f) => f.clone(),
            None => return Ok(false),
        };
        self.with_python_run(|this| {
            let pid = match &this.hooks.pers_self {
                Some(s) => func.call_two(s, obj)?,
                None => func.call_one(obj)?,
            };
            if pid.is_none() {
                return Ok(false);
            }
            if this.bin {
                this.save(&pid, true)?;
                this.out.write_byte(BINPERSID)?;
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
                this.out.write_byte(PERSID)?;
                this.out.write(ascii)?;
                this.out.write_byte(b'\n')?;
            }
            Ok(true)
        })
    }

    // ---- Python code may run ----

    /// Notes that Python code may have run (hooks, reducers, attribute lookups on arbitrary
    /// objects, or objects they returned being released): what the plain-object path verified
    /// about classes must be checked again.
    #[inline]
    fn note_python_run(&mut self) {
        self.plain_types.note_python_run();
    }

    /// Runs `body`, which may run Python code, between two [`Saver::note_python_run`]s (what it
    /// returns is released inside).
    #[inline(always)]
    fn with_python_run<R>(&mut self, body: impl FnOnce(&mut Self) -> R) -> R {
        self.note_python_run();
        let result = body(self);
        self.note_python_run();
        result
    }
}
