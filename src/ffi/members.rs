//! Descriptors on our classes that C types get from `tp_members` and `tp_getset`: member
//! descriptors reading and writing slots at fixed offsets inside each instance ([`ObjectSlot`],
//! [`IntSlot`]), and getset descriptors whose setter also sees deletion.
//!
//! PyO3 0.15's `#[setter]` answers `del obj.attr` itself (AttributeError "can't delete attribute")
//! and hands `None` to an `Option` argument for both deletion and assignment of None; `_pickle`'s
//! setters tell the two apart (TypeError "attribute deletion is not supported" for the first, the
//! usual type check for the second), hence [`install_getset`].

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

use pyo3::ffi::{self, PyObject as RawObject};
use pyo3::prelude::*;

use super::object::Obj;

// ---- member descriptors at fixed offsets (what `PyMemberDef` gives a C type) ----

/// An object slot a `T_OBJECT_EX` member descriptor reads and writes directly; NULL means unset.
/// Holds one reference to its object when set.
#[repr(transparent)]
pub struct ObjectSlot(UnsafeCell<*mut ffi::PyObject>);
// SAFETY: the slot is only read or written with the GIL held (by `get`/`set` here, or by the
// interpreter's member descriptor), which serialises every access.
unsafe impl Send for ObjectSlot {}

impl ObjectSlot {
    pub fn empty() -> Self {
        ObjectSlot(UnsafeCell::new(std::ptr::null_mut()))
    }

    /// The current value (a new reference).
    pub fn get(&self) -> Option<Obj> {
        // SAFETY: a plain read of the slot under the GIL (see `Send`); a non-null value is a live
        // object the slot holds a reference to.
        let p = unsafe { *self.0.get() };
        std::ptr::NonNull::new(p).map(|p| Obj::from_borrowed(p.as_ptr()))
    }

    pub fn set(&self, value: Option<Obj>) {
        let new = value.map_or(std::ptr::null_mut(), Obj::into_raw);
        // SAFETY: a plain write under the GIL (see `Send`); no reference into the cell is alive.
        let old = unsafe { std::mem::replace(&mut *self.0.get(), new) };
        if !old.is_null() {
            // SAFETY: the reference the slot held, released once; the GIL is held.
            unsafe { ffi::Py_DECREF(old) };
        }
    }

    pub fn address(&self) -> usize {
        self.0.get() as usize
    }
}

impl Drop for ObjectSlot {
    fn drop(&mut self) {
        self.set(None);
    }
}

/// A C `int` slot a `T_INT` member descriptor reads and writes directly.
#[repr(transparent)]
pub struct IntSlot(UnsafeCell<c_int>);
// SAFETY: the slot is only read or written with the GIL held (by `get`/`set` here, or by the
// interpreter's member descriptor), which serialises every access.
unsafe impl Send for IntSlot {}

impl IntSlot {
    pub fn new(v: i32) -> Self {
        IntSlot(UnsafeCell::new(v))
    }

    pub fn get(&self) -> i32 {
        // SAFETY: a plain read under the GIL (see `Send`).
        unsafe { *self.0.get() }
    }

    pub fn set(&self, v: i32) {
        // SAFETY: a plain write under the GIL (see `Send`); no reference into the cell is alive.
        unsafe { *self.0.get() = v }
    }

    pub fn address(&self) -> usize {
        self.0.get() as usize
    }
}

/// Kinds of member a type can expose.
#[derive(Clone, Copy)]
pub enum MemberKind {
    /// `T_OBJECT_EX`: an [`ObjectSlot`]; reading an empty slot raises AttributeError.
    Object,
    /// `T_INT`: an [`IntSlot`].
    Int,
}

/// Installs a member descriptor `name` on `ty` for the field at `offset` bytes from the start of
/// each instance: the field must be an [`ObjectSlot`] or [`IntSlot`] (as `kind` says) at that
/// offset in every instance of `ty` (a field of a `#[pyclass]`, measured on a sample instance).
/// The offset is checked to lie inside the instance (`ty.__basicsize__`). The name must be
/// NUL-terminated and static.
pub fn install_member(
    ty: &Obj,
    name: &'static [u8],
    kind: MemberKind,
    offset: usize,
) -> PyResult<()> {
    let size = match kind {
        MemberKind::Object => std::mem::size_of::<ObjectSlot>(),
        MemberKind::Int => std::mem::size_of::<IntSlot>(),
    };
    let basicsize = ty.getattr(crate::interned!("__basicsize__"))?.as_ssize()?;
    let inside = offset
        .checked_add(size)
        .is_some_and(|end| offset >= std::mem::size_of::<RawObject>() && end as isize <= basicsize);
    if !inside || name.last() != Some(&0) {
        return Err(pyo3::exceptions::PySystemError::new_err(
            "pickle5_rs: member slot outside the instance",
        ));
    }
    let def = Box::leak(Box::new(ffi::structmember::PyMemberDef {
        name: name.as_ptr() as *mut c_char,
        type_code: match kind {
            MemberKind::Object => ffi::structmember::T_OBJECT_EX,
            MemberKind::Int => ffi::structmember::T_INT,
        },
        offset: offset as ffi::Py_ssize_t,
        flags: 0,
        doc: std::ptr::null_mut(),
    }));
    // SAFETY: `ty` is a live type object; `def` is leaked, so it lives as long as the descriptor
    // (the process), and describes a slot of its kind inside every instance (checked above for
    // the bounds, the caller's contract for the kind).
    let descr = Obj::from_owned(unsafe {
        ffi::PyDescr_NewMember(ty.as_ptr() as *mut ffi::PyTypeObject, def)
    })?;
    let name_obj =
        super::str::new_str(std::str::from_utf8(&name[..name.len() - 1]).unwrap_or("?"))?;
    ty.setattr(&name_obj, &descr)
}

// ---- getset descriptors ----

/// Reads the attribute of `obj`.
pub type Getter = fn(&PyAny) -> PyResult<pyo3::PyObject>;
/// Assigns `Some(value)` to the attribute of `obj`, or deletes it (`None`).
pub type Setter = fn(&PyAny, Option<&PyAny>) -> PyResult<()>;

struct Accessors {
    get: Getter,
    set: Setter,
}

/// Runs `f` with panics caught; an error (or panic) is restored as the current exception.
fn guarded<T>(py: Python, fail: T, f: impl FnOnce() -> PyResult<T>) -> T {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let err = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(_) => pyo3::exceptions::PySystemError::new_err("pickle5_rs: internal error (panic)"),
    };
    err.restore(py);
    fail
}

// The interpreter calls the two trampolines with the GIL held, a live `slf` (and `value`, or NULL
// for deletion) and the `closure` of the `PyGetSetDef`, which `install_getset` points at a leaked
// (so never freed) `Accessors`.

unsafe extern "C" fn get_trampoline(slf: *mut RawObject, closure: *mut c_void) -> *mut RawObject {
    // SAFETY: the GIL is held and the pool dropped before returning; `closure` is a leaked
    // `Accessors` and `slf` a live object (see above).
    unsafe {
        let pool = pyo3::GILPool::new();
        let py = pool.python();
        let acc = &*(closure as *const Accessors);
        guarded(py, std::ptr::null_mut(), || {
            let obj: &PyAny = py.from_borrowed_ptr(slf);
            Ok((acc.get)(obj)?.into_ptr())
        })
    }
}

unsafe extern "C" fn set_trampoline(
    slf: *mut RawObject,
    value: *mut RawObject,
    closure: *mut c_void,
) -> c_int {
    // SAFETY: the GIL is held and the pool dropped before returning; `closure` is a leaked
    // `Accessors`, `slf` a live object and `value` one too, or NULL (see above).
    unsafe {
        let pool = pyo3::GILPool::new();
        let py = pool.python();
        let acc = &*(closure as *const Accessors);
        guarded(py, -1, || {
            let obj: &PyAny = py.from_borrowed_ptr(slf);
            let value: Option<&PyAny> = py.from_borrowed_ptr_or_opt(value);
            (acc.set)(obj, value).map(|()| 0)
        })
    }
}

/// Installs the getset descriptor `name` on the type `ty` (replacing what is there).
pub fn install_getset(ty: &Obj, name: &'static CStr, get: Getter, set: Setter) -> PyResult<()> {
    let closure = Box::leak(Box::new(Accessors { get, set })) as *mut Accessors as *mut c_void;
    let def = Box::leak(Box::new(ffi::PyGetSetDef {
        name: name.as_ptr() as *mut _,
        get: Some(get_trampoline),
        set: Some(set_trampoline),
        doc: std::ptr::null_mut(),
        closure,
    }));
    // SAFETY: `ty` is a live type object; `def`, its name and closure are static or leaked, so they
    // live as long as the descriptor.
    let descr = Obj::from_owned(unsafe {
        ffi::PyDescr_NewGetSet(ty.as_ptr() as *mut ffi::PyTypeObject, def)
    })?;
    let name_obj = super::str::new_str(name.to_str().unwrap_or("?"))?;
    ty.setattr(&name_obj, &descr)
}
