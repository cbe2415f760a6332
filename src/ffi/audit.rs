//! `PySys_Audit`, the C-level audit hook entry the C pickler raises `pickle.find_class` through.
//!
//! Exported (public, not in the limited API) from 3.8, when audit hooks appeared; an abi3
//! extension built for 3.6 cannot import it by name, so it is looked up at import in the running
//! interpreter. It returns at once when no hook is installed, where calling `sys.audit` costs a
//! Python call. Not found: `sys.audit` is called instead (see `unpickler::find_class::audit`).

use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::prelude::*;

use super::object::Obj;
use super::version;

/// `PySys_Audit`'s signature; a hook may run Python code (and an unwind may come out of it, see
/// `super::shutdown`).
type SysAudit = unsafe extern "C-unwind" fn(*const c_char, *const c_char, ...) -> c_int;

static FOUND: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Looks the function up; called once from module initialisation.
pub fn init(py: Python) -> PyResult<()> {
    if version::running() >= (3, 8) {
        if let Some(address) = super::raw::find_optional(py, c"PySys_Audit")? {
            FOUND.store(address, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Raises the audit event `event` with two object arguments through `PySys_Audit`; `None` when
/// the function was not found (the caller raises it another way).
pub fn two_objects(event: &std::ffi::CStr, a: &Obj, b: &Obj) -> Option<PyResult<()>> {
    let address = FOUND.load(Ordering::Relaxed);
    if address.is_null() {
        return None;
    }
    // SAFETY: set by `init` to the interpreter's own `PySys_Audit`, whose signature is the one
    // above; "OO" takes two live objects (borrowed for the call).
    let status = super::shutdown::parked_if_unwound(|| unsafe {
        let audit = std::mem::transmute::<*mut c_void, SysAudit>(address);
        audit(event.as_ptr(), c"OO".as_ptr(), a.as_ptr(), b.as_ptr())
    });
    Some(if status < 0 {
        Err(super::errors::fetch_error())
    } else {
        Ok(())
    })
}
