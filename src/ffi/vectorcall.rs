//! `PyObject_Vectorcall`: calls with the arguments in a C array, without the variadic argument
//! walk of `PyObject_CallFunctionObjArgs` (about 100 instructions a call).
//!
//! It is an exported public function from 3.11 and part of the stable ABI from 3.12; an abi3
//! extension built for 3.6 cannot import it by name (3.6 ... 3.10 would refuse to load it), so it
//! is looked up at import in the running interpreter (3.11 and later only) and called through the
//! pointer found. Not found, or `PICKLE5_RS_API_ONLY` set: calls take `PyObject_CallFunctionObjArgs`.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi::PyObject;
use pyo3::prelude::*;

use super::version;

/// `PyObject_Vectorcall`'s signature; an unwind may come out of it (see `super::shutdown`).
type Vectorcall = unsafe extern "C-unwind" fn(
    *mut PyObject,
    *const *mut PyObject,
    usize,
    *mut PyObject,
) -> *mut PyObject;

/// Set in `nargsf`: the slot before the first argument may be used by the callee.
pub const ARGUMENTS_OFFSET: usize = 1 << (usize::BITS - 1);

static FOUND: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Looks the function up; called once from module initialisation.
pub fn init(py: Python) -> PyResult<()> {
    if version::running() >= (3, 11) && !version::api_only() {
        if let Some(address) = super::raw::find_optional(py, c"PyObject_Vectorcall")? {
            FOUND.store(address, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Whether calls go through `PyObject_Vectorcall` (for tests).
pub fn in_use() -> bool {
    !FOUND.load(Ordering::Relaxed).is_null()
}

/// `PyObject_Vectorcall`, if it was found.
#[inline(always)]
pub fn get() -> Option<Vectorcall> {
    let address = FOUND.load(Ordering::Relaxed);
    if address.is_null() {
        return None;
    }
    // SAFETY: set by `init` to the interpreter's own `PyObject_Vectorcall`, whose signature
    // (unchanged since it became public) is the one above.
    Some(unsafe { std::mem::transmute::<*mut c_void, Vectorcall>(address) })
}
