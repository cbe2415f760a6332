//! The Pickler: `Pickler`, `dump()` and `dumps()` with the signatures and behaviour of CPython
//! 3.8's `_pickle`.
//!
//! `Pickler` mirrors the C type closely because libraries subclass it: `__init__` is a real method
//! (subclasses call `Pickler.__init__(self, file, ...)` with their own signature),
//! `dispatch_table`, `bin` and `fast` are member descriptors reading fixed slots, `memo` is a
//! proxy, `persistent_id` is a property, and `reducer_override` is looked up on the instance at each
//! `dump()`.

mod memo;
mod plain;
mod save;
mod writer;

use std::cell::RefCell;

use pyo3::class::gc::{PyGCProtocol, PyTraverseError, PyVisit};
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::Truth;
use crate::errors;
use crate::ffi::fastcall::{self, Fallback};
use crate::ffi::heap_type;
use crate::ffi::members::{install_member, IntSlot, MemberKind, ObjectSlot};
use crate::ffi::{self, Obj};
use crate::in_use::InUse;
use crate::interned;
use crate::lookup::{Attr, BuiltinAttr, Hook, OptionalAttr};
use crate::opcodes::{DEFAULT_PROTOCOL, HIGHEST_PROTOCOL};
use memo::Memo;
use save::{FastState, Hooks, Saver, Settings};
use writer::Writer;

/// Protocol number from the `protocol` argument: None = default, negative = highest.
fn parse_protocol(protocol: Option<&PyAny>) -> PyResult<u8> {
    let protocol = match protocol {
        None => return Ok(DEFAULT_PROTOCOL),
        Some(p) if p.is_none() => return Ok(DEFAULT_PROTOCOL),
        Some(p) => p,
    };
    // `PyLong_AsLong`, as `_pickle` converts it: what it accepts besides int (`__int__`,
    // `__index__`) and the errors it raises change with the interpreter.
    let value = Obj::of(protocol).as_long()?;
    if value < 0 {
        Ok(HIGHEST_PROTOCOL)
    } else if value > HIGHEST_PROTOCOL as i64 {
        Err(crate::errors::new_fmt::<PyValueError>(format_args!(
            "pickle protocol must be <= {}",
            HIGHEST_PROTOCOL
        )))
    } else {
        Ok(value as u8)
    }
}

fn file_write_method(file: &PyAny) -> PyResult<Obj> {
    match Obj::of(file).getattr_opt(interned!("write"))? {
        Some(w) => Ok(w),
        None => Err(PyTypeError::new_err("file must have a 'write' attribute")),
    }
}

fn parse_buffer_callback(callback: Option<&PyAny>, proto: u8) -> PyResult<Option<Obj>> {
    let callback = callback.filter(|c| !c.is_none()).map(Obj::of);
    if callback.is_some() && proto < 5 {
        return Err(PyValueError::new_err("buffer_callback needs protocol >= 5"));
    }
    Ok(callback)
}

/// Pickles `obj` into memory (or into `file_write` frame by frame) with no pickler object.
fn run_dump(
    obj: &Obj,
    proto: u8,
    fix_imports: bool,
    buffer_callback: Option<Obj>,
    file_write: Option<Obj>,
) -> PyResult<Option<Obj>> {
    let memo = RefCell::new(Memo::new());
    let settings = Settings {
        proto,
        bin: proto > 0,
        fix_imports: fix_imports && proto < 3,
    };
    let hooks = Hooks {
        buffer_callback,
        ..Hooks::default()
    };
    let to_file = file_write.is_some();
    let mut saver = Saver::new(settings, Writer::new(file_write), &memo, None, hooks);
    saver.dump(obj)?;
    if to_file {
        saver.out.flush_to_file()?;
        Ok(None)
    } else {
        saver.out.finish_bytes().map(Some)
    }
}

/// dumps(obj, protocol=None, *, fix_imports=True, buffer_callback=None)
/// --
///
/// Return the pickled representation of the object as a bytes object.
#[pyfunction(
    protocol = "None",
    "*",
    fix_imports = "Truth(true)",
    buffer_callback = "None"
)]
#[pyo3(text_signature = "(obj, protocol=None, *, fix_imports=True, buffer_callback=None)")]
fn dumps(
    py: Python,
    obj: &PyAny,
    protocol: Option<&PyAny>,
    fix_imports: Truth,
    buffer_callback: Option<&PyAny>,
) -> PyResult<PyObject> {
    let proto = parse_protocol(protocol)?;
    let fix = fix_imports.0;
    let callback = parse_buffer_callback(buffer_callback, proto)?;
    match run_dump(&Obj::of(obj), proto, fix, callback, None)? {
        Some(bytes) => Ok(bytes.into_py()),
        None => Ok(py.None()),
    }
}

/// `dumps` for the usual calls: one or two positional arguments, keywords among `protocol`,
/// `fix_imports` (True or False) and `buffer_callback`; anything else goes to [`dumps`].
fn dumps_fast(args: &[Obj], kwargs: &[(&Obj, &Obj)]) -> Result<PyResult<Obj>, Fallback> {
    let (obj, mut protocol) = match args {
        [obj] => (obj, None),
        [obj, protocol] => (obj, Some(protocol)),
        _ => return Err(Fallback),
    };
    let mut fix_imports = true;
    let mut callback = None;
    for (name, value) in kwargs {
        if name.is(interned!("protocol")) && protocol.is_none() {
            protocol = Some(value);
        } else if name.is(interned!("fix_imports")) {
            fix_imports = if value.is(&ffi::bool_obj(true)) {
                true
            } else if value.is(&ffi::bool_obj(false)) {
                false
            } else {
                return Err(Fallback);
            };
        } else if name.is(interned!("buffer_callback")) {
            callback = Some(*value);
        } else {
            return Err(Fallback);
        }
    }
    let proto = match protocol {
        None => DEFAULT_PROTOCOL,
        Some(p) if p.is_none() => DEFAULT_PROTOCOL,
        Some(p) if p.is_exact_type(ffi::types::int()) => match p.as_ssize() {
            Ok(v) if v < 0 => HIGHEST_PROTOCOL,
            Ok(v) if v <= HIGHEST_PROTOCOL as isize => v as u8,
            _ => return Err(Fallback),
        },
        Some(_) => return Err(Fallback),
    };
    let callback = match callback {
        Some(c) if !c.is_none() => {
            if proto < 5 {
                return Err(Fallback);
            }
            Some(c.clone())
        }
        _ => None,
    };
    Ok(run_dump(obj, proto, fix_imports, callback, None)
        .and_then(|bytes| bytes.ok_or_else(|| PyValueError::new_err("dumps produced no output"))))
}

/// dump(obj, file, protocol=None, *, fix_imports=True, buffer_callback=None)
/// --
///
/// Write a pickled representation of obj to the open file object file.
#[pyfunction(
    protocol = "None",
    "*",
    fix_imports = "Truth(true)",
    buffer_callback = "None"
)]
#[pyo3(text_signature = "(obj, file, protocol=None, *, fix_imports=True, buffer_callback=None)")]
fn dump(
    obj: &PyAny,
    file: &PyAny,
    protocol: Option<&PyAny>,
    fix_imports: Truth,
    buffer_callback: Option<&PyAny>,
) -> PyResult<()> {
    let proto = parse_protocol(protocol)?;
    let fix = fix_imports.0;
    let write = file_write_method(file)?;
    let callback = parse_buffer_callback(buffer_callback, proto)?;
    run_dump(&Obj::of(obj), proto, fix, callback, Some(write)).map(|_| ())
}

/// Everything a Pickler holds besides its member slots.
#[derive(Default)]
struct PicklerState {
    proto: u8,
    fix_imports: bool,
    write: Option<Obj>,
    /// `persistent_id` before 3.13 (a method bound to this pickler is kept unbound).
    persistent_id: Option<Hook>,
    buffer_callback: Option<Obj>,
    fast_state: FastState,
}

/// Pickler(file, protocol=None, fix_imports=True, buffer_callback=None)
/// --
///
/// This takes a binary file for writing a pickle data stream.
#[pyclass(subclass, module = "pickle5_rs")]
pub struct Pickler {
    /// Read and written by the `dispatch_table` member descriptor.
    dispatch_table: ObjectSlot,
    /// Read and written by the `bin` member descriptor.
    bin: IntSlot,
    /// Read and written by the `fast` member descriptor.
    fast: IntSlot,
    state: RefCell<PicklerState>,
    /// Outside `state`: a running dump uses it while hooks may read, clear or replace it.
    memo: RefCell<Memo>,
    in_use: InUse,
}

impl Pickler {
    fn blank() -> Pickler {
        Pickler {
            dispatch_table: ObjectSlot::empty(),
            bin: IntSlot::new(0),
            fast: IntSlot::new(0),
            state: RefCell::new(PicklerState::default()),
            memo: RefCell::new(Memo::new()),
            in_use: InUse::default(),
        }
    }

    /// Puts `memo` in place; the old entries are released after the borrow ends, as releasing
    /// them may run Python code that looks at the memo.
    fn replace_memo(&self, memo: Memo) -> PyResult<()> {
        self.in_use.replace("Pickler", &self.memo, memo)
    }

    fn state(&self) -> PyResult<std::cell::RefMut<'_, PicklerState>> {
        self.state
            .try_borrow_mut()
            .map_err(|_| PyValueError::new_err("Pickler is in use"))
    }
}

#[pymethods]
impl Pickler {
    #[new]
    #[args(_args = "*", _kwargs = "**")]
    fn new(_args: &PyTuple, _kwargs: Option<&PyDict>) -> Pickler {
        Pickler::blank()
    }

    #[pyo3(name = "__init__")]
    #[args(
        protocol = "None",
        fix_imports = "Truth(true)",
        buffer_callback = "None"
    )]
    fn init(
        slf: &PyCell<Self>,
        file: &PyAny,
        protocol: Option<&PyAny>,
        fix_imports: Truth,
        buffer_callback: Option<&PyAny>,
    ) -> PyResult<()> {
        let this = slf.borrow();
        this.in_use.check("Pickler")?;
        let proto = parse_protocol(protocol)?;
        let fix = fix_imports.0;
        {
            // A second __init__ starts from scratch, as in C.
            let mut st = this.state()?;
            if st.write.is_some() {
                drop(std::mem::take(&mut *st));
                this.dispatch_table.set(None);
            }
            st.proto = proto;
            st.fix_imports = fix && proto < 3;
        }
        this.bin.set((proto > 0) as i32);
        let write = file_write_method(file)?;
        let callback = parse_buffer_callback(buffer_callback, proto)?;
        {
            let mut st = this.state()?;
            st.write = Some(write);
            st.buffer_callback = callback;
        }
        this.replace_memo(Memo::new())?;
        this.fast.set(0);

        // persistent_id: a method of a subclass is kept unbound, to avoid a reference cycle.
        // (From 3.13 on it is looked up at each dump instead: see `overridden_persistent_id`.)
        // Where the class's own descriptors answer, they give back what was assigned: there is
        // nothing to look up.
        let me = Obj::of(slf.as_ref());
        let persistent_id = if ffi::version::running() < (3, 13) {
            PERSISTENT_ID_DESCRIPTOR.lookup(&me, interned!("persistent_id"))?
        } else {
            Attr::Builtin
        };
        if let Attr::Other(found) = persistent_id {
            let hook = match found {
                Some(f) => Some(Hook::from_attr(&me, f)?),
                None => None,
            };
            this.state()?.persistent_id = hook;
        }
        if let Attr::Other(table) =
            DISPATCH_TABLE_MEMBER.lookup(&me, interned!("dispatch_table"))?
        {
            this.dispatch_table.set(table);
        }
        Ok(())
    }

    /// Write a pickled representation of the given object to the open file.
    #[pyo3(text_signature = "($self, obj, /)")]
    fn dump(slf: &PyCell<Self>, obj: &PyAny) -> PyResult<()> {
        let this = slf.borrow();
        let _running = this.in_use.enter("Pickler")?;
        let me = Obj::of(slf.as_ref());
        let (settings, hooks, write, fast_state) = {
            let mut st = this.state()?;
            let write = match &st.write {
                Some(w) => w.clone(),
                None => {
                    return Err(errors::pickling_fmt(format_args!(
                        "Pickler.__init__() was not called by {}.__init__()",
                        errors::tp_name(&me.type_obj())
                    )))
                }
            };
            let settings = Settings {
                proto: st.proto,
                bin: this.bin.get() != 0,
                fix_imports: st.fix_imports,
            };
            let (pers_func, pers_self) = if ffi::version::running() >= (3, 13) {
                (overridden_persistent_id(slf)?, None)
            } else {
                match &st.persistent_id {
                    None => (None, None),
                    Some(Hook::Callable(f)) => (Some(f.clone()), None),
                    Some(Hook::MethodOf(f)) => (Some(f.clone()), Some(me.clone())),
                }
            };
            let hooks = Hooks {
                pers_func,
                pers_self,
                dispatch_table: this.dispatch_table.get(),
                reducer_override: None,
                buffer_callback: st.buffer_callback.clone(),
            };
            let fast_state = std::mem::take(&mut st.fast_state);
            (settings, hooks, write, fast_state)
        };
        let out = Writer::new(Some(write));
        let mut saver = Saver::new(settings, out, &this.memo, Some(&this.fast), hooks);
        saver.fast_state = fast_state;
        let result = REDUCER_OVERRIDE
            .lookup(&me, interned!("reducer_override"))
            .and_then(|ro| {
                saver.hooks.reducer_override = ro;
                saver.dump(&Obj::of(obj))?;
                saver.out.flush_to_file()
            });
        let fast_state = saver.fast_state;
        if let Ok(mut st) = this.state() {
            st.fast_state = fast_state;
        }
        result
    }

    /// Clears the pickler's "memo".
    #[pyo3(text_signature = "($self, /)")]
    fn clear_memo(&self) -> PyResult<()> {
        self.replace_memo(Memo::new())
    }

    /// Returns size in memory, in bytes.
    fn __sizeof__(&self) -> usize {
        std::mem::size_of::<Self>() + 16
    }

    /// The default `persistent_id` of 3.13+, where it is a method: no persistent IDs.
    fn _persistent_id_default(&self, _obj: &PyAny) -> Option<PyObject> {
        None
    }
}

/// `Pickler.memo`: a proxy of the pickler's memo.
fn get_memo(obj: &PyAny) -> PyResult<PyObject> {
    let slf: &PyCell<Pickler> = obj.downcast()?;
    let proxy = PicklerMemoProxy {
        pickler: slf.into(),
    };
    Ok(PyCell::new(obj.py(), proxy)?.into_py(obj.py()))
}

/// `Pickler.memo = value`: a proxy's memo or a dict `{id: (index, obj)}` is copied in.
fn set_memo(obj: &PyAny, value: Option<&PyAny>) -> PyResult<()> {
    let this = obj.downcast::<PyCell<Pickler>>()?.borrow();
    let value = match value {
        None => return Err(PyTypeError::new_err("attribute deletion is not supported")),
        Some(v) => v,
    };
    let new_memo = if let Ok(proxy) = value.downcast::<PyCell<PicklerMemoProxy>>() {
        let proxy = proxy.borrow();
        let other = proxy.pickler.as_ref(value.py()).borrow();
        let copied = other.memo.borrow().try_clone()?;
        copied
    } else if let Ok(dict) = value.downcast::<PyDict>() {
        let mut memo = Memo::new();
        for (_, entry) in dict.iter() {
            let entry = match entry.downcast::<PyTuple>() {
                Ok(t) if t.len() == 2 => t,
                _ => return Err(PyTypeError::new_err("'memo' values must be 2-item tuples")),
            };
            let id = Obj::of(entry.get_item(0)?).long_as_ssize()?;
            memo.insert(&Obj::of(entry.get_item(1)?), id as usize)?;
        }
        memo
    } else {
        return Err(crate::errors::new_fmt::<PyTypeError>(format_args!(
            "'memo' attribute must be a PicklerMemoProxy object or dict, not {}",
            errors::tp_name(&Obj::of(value).type_obj())
        )));
    };
    this.replace_memo(new_memo)
}

/// `Pickler.persistent_id` before 3.13: the hook found by `__init__` or assigned since.
fn get_persistent_id(obj: &PyAny) -> PyResult<PyObject> {
    let this = obj.downcast::<PyCell<Pickler>>()?.borrow();
    let st = this.state()?;
    match &st.persistent_id {
        None => Err(PyAttributeError::new_err("persistent_id")),
        Some(hook) => Ok(hook.bind(&Obj::of(obj))?.into_py()),
    }
}

fn set_persistent_id(obj: &PyAny, value: Option<&PyAny>) -> PyResult<()> {
    let this = obj.downcast::<PyCell<Pickler>>()?.borrow();
    let value = match value {
        None => return Err(PyTypeError::new_err("attribute deletion is not supported")),
        Some(v) => Obj::of(v),
    };
    if !value.is_callable() {
        return Err(PyTypeError::new_err(
            "persistent_id must be a callable taking one argument",
        ));
    }
    let mut st = this.state()?;
    st.persistent_id = Some(Hook::Callable(value));
    Ok(())
}

#[pyproto]
impl PyGCProtocol for Pickler {
    fn __traverse__(&self, visit: PyVisit) -> Result<(), PyTraverseError> {
        if let Some(t) = self.dispatch_table.get() {
            visit.call(&t)?;
        }
        if let Ok(memo) = self.memo.try_borrow() {
            for (o, _) in memo.entries() {
                visit.call(o)?;
            }
        }
        if let Ok(st) = self.state.try_borrow() {
            let persistent_id = st.persistent_id.as_ref().map(Hook::held);
            for o in [
                st.write.as_ref(),
                persistent_id,
                st.buffer_callback.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                visit.call(o)?;
            }
            if let Some(o) = st.fast_state.memo() {
                visit.call(o)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.dispatch_table.set(None);
        let state = self
            .state
            .try_borrow_mut()
            .map(|mut st| std::mem::take(&mut *st));
        let memo = self
            .memo
            .try_borrow_mut()
            .map(|mut m| std::mem::take(&mut *m));
        drop((state, memo));
    }
}

/// The memo of a Pickler, as `pickler.memo` returns it: supports `clear()`, `copy()` and being
/// assigned back to a pickler's `memo`.
#[pyclass(module = "pickle5_rs")]
pub struct PicklerMemoProxy {
    pickler: Py<Pickler>,
}

#[pymethods]
impl PicklerMemoProxy {
    /// Remove all items from memo.
    fn clear(&self, py: Python) -> PyResult<()> {
        self.pickler.as_ref(py).borrow().replace_memo(Memo::new())
    }

    /// Copy the memo to a new object: {id(obj): (index, obj)}.
    fn copy(&self, py: Python) -> PyResult<PyObject> {
        let pickler = self.pickler.as_ref(py).borrow();
        let entries: Vec<(Obj, usize)> = pickler
            .memo
            .borrow()
            .entries()
            .map(|(obj, idx)| (obj.clone(), idx))
            .collect();
        let out = ffi::new_dict()?;
        for (obj, idx) in &entries {
            let (obj, idx) = (obj, *idx);
            let key = ffi::number::int_from_addr(obj.addr())?;
            let value = ffi::tuple(&[&ffi::new_int(idx as i64)?, obj])?;
            out.dict_set(&key, &value)?;
        }
        Ok(out.into_py())
    }

    fn __reduce__(&self, py: Python) -> PyResult<PyObject> {
        let contents = Obj::of_py(&self.copy(py)?);
        let dict_type = ffi::types::dict().as_obj();
        Ok(ffi::tuple(&[&dict_type, &ffi::tuple(&[&contents])?])?.into_py())
    }
}

#[pyproto]
impl PyGCProtocol for PicklerMemoProxy {
    fn __traverse__(&self, visit: PyVisit) -> Result<(), PyTraverseError> {
        visit.call(&self.pickler)
    }

    fn __clear__(&mut self) {}
}

/// From 3.13 on `_pickle` looks `persistent_id` up as a method at each dump; `None` when it is
/// the default one (which returns None for every object).
fn overridden_persistent_id(slf: &PyCell<Pickler>) -> PyResult<Option<Obj>> {
    let me = Obj::of(slf.as_ref());
    let name = interned!("persistent_id");
    match PERSISTENT_ID_DESCRIPTOR.lookup(&me, name)? {
        Attr::Builtin => Ok(None),
        Attr::Other(Some(found)) => Ok(Some(found)),
        Attr::Other(None) => me.getattr(name).map(Some), // raises Python's AttributeError
    }
}

/// The class's own `persistent_id`: the descriptor before 3.13, the default method from 3.13 on.
static PERSISTENT_ID_DESCRIPTOR: BuiltinAttr = BuiltinAttr::new();
/// `reducer_override`, which only subclasses define.
static REDUCER_OVERRIDE: OptionalAttr = OptionalAttr::new();
/// The class's `dispatch_table` member descriptor.
static DISPATCH_TABLE_MEMBER: BuiltinAttr = BuiltinAttr::new();

/// Adds the pickler's classes and functions to the module.
pub fn register(py: Python, m: &PyModule) -> PyResult<()> {
    m.add_class::<Pickler>()?;
    heap_type::adopt_instance_type_refs::<{ heap_type::PICKLER }>(
        py.get_type::<Pickler>().as_type_ptr(),
    );
    m.add_class::<PicklerMemoProxy>()?;
    m.add_function(wrap_pyfunction!(dump, m)?)?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    // `dumps` itself is a function with a cheaper calling convention, handing unusual calls to
    // the one above.
    let module = Obj::of(m.as_ref());
    let general = Obj::of(m.getattr("dumps")?);
    let fast = fastcall::new_function::<0>(
        &module,
        c"dumps",
        c"dumps(obj, protocol=None, *, fix_imports=True, buffer_callback=None)\n--\n\nReturn the pickled representation of the object as a bytes object.",
        dumps_fast,
        general,
    )?;
    m.add("dumps", fast.as_any(py))?;

    let ty: &PyType = py.get_type::<Pickler>();
    let ty_obj = Obj::of(ty);
    // Re-assigning __init__ makes the type call it on construction (sets the tp_init slot).
    let init = ty.getattr("__dict__")?.get_item("__init__")?;
    ty.setattr("__init__", init)?;
    // Getset descriptors, like the C type's (their setters see deletion).
    ffi::members::install_getset(&ty_obj, c"memo", get_memo, set_memo)?;
    if ffi::version::running() >= (3, 13) {
        // As in 3.13's _pickle: a method that subclasses override (and may call via super()).
        let default = ty.getattr("__dict__")?.get_item("_persistent_id_default")?;
        ty.setattr("persistent_id", default)?;
    } else {
        ffi::members::install_getset(
            &ty_obj,
            c"persistent_id",
            get_persistent_id,
            set_persistent_id,
        )?;
    }

    // Member descriptors, like the C type's, at the slots' offsets inside each instance.
    let sample = PyCell::new(py, Pickler::blank())?;
    let base = Obj::of(sample.as_ref()).addr();
    let (dt, bin, fast) = {
        let p = sample.borrow();
        (
            p.dispatch_table.address() - base,
            p.bin.address() - base,
            p.fast.address() - base,
        )
    };
    install_member(&ty_obj, b"bin\0", MemberKind::Int, bin)?;
    install_member(&ty_obj, b"fast\0", MemberKind::Int, fast)?;
    install_member(&ty_obj, b"dispatch_table\0", MemberKind::Object, dt)?;
    if ffi::version::running() >= (3, 13) {
        PERSISTENT_ID_DESCRIPTOR.record_method(&ty_obj, interned!("persistent_id"))?;
    } else {
        PERSISTENT_ID_DESCRIPTOR.record_data_descriptor(&ty_obj, interned!("persistent_id"))?;
    }
    DISPATCH_TABLE_MEMBER.record_data_descriptor(&ty_obj, interned!("dispatch_table"))?;
    REDUCER_OVERRIDE.record(&ty_obj)?;
    Ok(())
}
