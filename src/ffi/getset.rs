//! Getset descriptors whose setter also sees deletion, as C types' `tp_getset` entries do.
//!
//! PyO3 0.15's `#[setter]` answers `del obj.attr` itself (AttributeError "can't delete attribute")
//! and hands `None` to an `Option` argument for both deletion and assignment of None; `_pickle`'s
//! setters tell the two apart (TypeError "attribute deletion is not supported" for the first, the
//! usual type check for the second).

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};

use pyo3::ffi::{self, PyObject as RawObject};
use pyo3::prelude::*;

use super::Obj;

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

unsafe extern "C" fn get_trampoline(slf: *mut RawObject, closure: *mut c_void) -> *mut RawObject {
    let pool = pyo3::GILPool::new();
    let py = pool.python();
    let acc = &*(closure as *const Accessors);
    guarded(py, std::ptr::null_mut(), || {
        let obj: &PyAny = py.from_borrowed_ptr(slf);
        Ok((acc.get)(obj)?.into_ptr())
    })
}

unsafe extern "C" fn set_trampoline(
    slf: *mut RawObject,
    value: *mut RawObject,
    closure: *mut c_void,
) -> c_int {
    let pool = pyo3::GILPool::new();
    let py = pool.python();
    let acc = &*(closure as *const Accessors);
    guarded(py, -1, || {
        let obj: &PyAny = py.from_borrowed_ptr(slf);
        let value: Option<&PyAny> = py.from_borrowed_ptr_or_opt(value);
        (acc.set)(obj, value).map(|()| 0)
    })
}

/// Installs the getset descriptor `name` on the type `ty` (replacing what is there).
pub fn install(ty: &Obj, name: &'static CStr, get: Getter, set: Setter) -> PyResult<()> {
    let closure = Box::leak(Box::new(Accessors { get, set })) as *mut Accessors as *mut c_void;
    let def = Box::leak(Box::new(ffi::PyGetSetDef {
        name: name.as_ptr() as *mut _,
        get: Some(get_trampoline),
        set: Some(set_trampoline),
        doc: std::ptr::null_mut(),
        closure,
    }));
    let descr = Obj::from_owned(unsafe {
        ffi::PyDescr_NewGetSet(ty.as_ptr() as *mut ffi::PyTypeObject, def)
    })?;
    let name_obj = super::new_str(name.to_str().unwrap_or("?"))?;
    ty.setattr(&name_obj, &descr)
}
