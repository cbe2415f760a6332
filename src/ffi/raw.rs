//! C-API functions missing from PyO3's abi3 declarations. Each is exported with this exact signature
//! by every CPython from 3.6 to 3.13 and is part of today's stable ABI (checked with `nm -D`).
//!
//! On Windows an abi3 extension imports from `python3.dll`, which forwards only the names that were
//! in the stable ABI of *that* interpreter's release: the five below joined it in 3.10 and 3.11, so
//! importing them by name would keep the extension from loading on 3.6 ... 3.10. There they are
//! looked up at import time in the interpreter's own DLL (`sys.dllhandle`, `python3X.dll`, which
//! exports the whole public C API) and called through the pointers found; `resolve` fails the
//! import with a clear error if one is missing. Elsewhere they are ordinary imports, resolved by
//! the dynamic loader against the running interpreter.

use std::os::raw::{c_char, c_int, c_void};

use pyo3::ffi::{PyObject, Py_ssize_t};
use pyo3::prelude::*;

/// `Py_buffer`, whose layout has not changed since 3.3 (stable ABI since 3.11).
#[repr(C)]
pub struct PyBuffer {
    pub buf: *mut c_void,
    pub obj: *mut PyObject,
    pub len: Py_ssize_t,
    pub itemsize: Py_ssize_t,
    pub readonly: c_int,
    pub ndim: c_int,
    pub format: *mut c_char,
    pub shape: *mut Py_ssize_t,
    pub strides: *mut Py_ssize_t,
    pub suboffsets: *mut Py_ssize_t,
    pub internal: *mut c_void,
}

pub const PYBUF_SIMPLE: c_int = 0;
pub const PYBUF_FORMAT: c_int = 0x0004;
pub const PYBUF_ND: c_int = 0x0008;
pub const PYBUF_STRIDES: c_int = 0x0010 | PYBUF_ND;
pub const PYBUF_INDIRECT: c_int = 0x0100 | PYBUF_STRIDES;
pub const PYBUF_FULL_RO: c_int = PYBUF_INDIRECT | PYBUF_FORMAT;

/// Declares the functions: plain imports, or (Windows) pointers found by [`resolve`].
macro_rules! late_stable {
    ($(pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {
        #[cfg(not(windows))]
        extern "C" {
            $(pub fn $name($($arg: $ty),*) $(-> $ret)?;)*
        }

        /// Nothing to look up: the dynamic loader binds these names.
        #[cfg(not(windows))]
        pub fn resolve(_py: Python) -> PyResult<()> {
            Ok(())
        }

        /// Where each function was found in the interpreter's DLL; null until [`resolve`] ran.
        #[cfg(windows)]
        #[allow(non_upper_case_globals)]
        mod found {
            use std::sync::atomic::AtomicPtr;
            $(pub static $name: AtomicPtr<std::os::raw::c_void> =
                AtomicPtr::new(std::ptr::null_mut());)*
        }

        $(
            #[cfg(windows)]
            #[inline]
            #[allow(non_snake_case)]
            pub unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: set by `resolve` (module initialisation, which fails if any is missing)
                // to the interpreter's own export of this name, whose signature is the one above;
                // the caller meets that function's contract.
                unsafe {
                    let f = std::mem::transmute::<
                        *mut std::os::raw::c_void,
                        unsafe extern "C" fn($($ty),*) $(-> $ret)?,
                    >(found::$name.load(std::sync::atomic::Ordering::Relaxed));
                    f($($arg),*)
                }
            }
        )*

        /// Looks the functions up in the running interpreter's DLL; called first thing at import.
        #[cfg(windows)]
        pub fn resolve(py: Python) -> PyResult<()> {
            let dll = py.import("sys")?.getattr("dllhandle")?.extract::<usize>()?;
            $(windows::find(dll, concat!(stringify!($name), "\0"), &found::$name)?;)*
            Ok(())
        }
    };
}
late_stable! {
    pub fn PyUnicode_AsUTF8AndSize(unicode: *mut PyObject, size: *mut Py_ssize_t) -> *const c_char;
    pub fn PyObject_GetBuffer(obj: *mut PyObject, view: *mut PyBuffer, flags: c_int) -> c_int;
    pub fn PyBuffer_Release(view: *mut PyBuffer);
    pub fn PyBuffer_IsContiguous(view: *const PyBuffer, fort: c_char) -> c_int;
    pub fn PyObject_GenericGetDict(obj: *mut PyObject, context: *mut c_void) -> *mut PyObject;
}

/// The address of the function `name` exported by the running interpreter, if it has one.
pub fn find_optional(py: Python, name: &std::ffi::CStr) -> PyResult<Option<*mut c_void>> {
    #[cfg(unix)]
    {
        let _ = py;
        // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the objects loaded globally,
        // among them the interpreter (executable or libpython) whose names extensions bind to.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        Ok((!address.is_null()).then_some(address))
    }
    #[cfg(windows)]
    {
        let dll = py.import("sys")?.getattr("dllhandle")?.extract::<usize>()?;
        Ok(windows::find_optional(dll, name))
    }
}

#[cfg(windows)]
mod windows {
    use std::os::raw::{c_char, c_void};
    use std::sync::atomic::{AtomicPtr, Ordering};

    use pyo3::exceptions::PyImportError;
    use pyo3::PyResult;

    #[link(name = "kernel32")]
    extern "system" {
        fn GetProcAddress(module: *mut c_void, name: *const c_char) -> *mut c_void;
    }

    /// Stores the address of `name` (NUL-terminated) exported by the DLL `module`.
    pub fn find(module: usize, name: &str, slot: &AtomicPtr<c_void>) -> PyResult<()> {
        // SAFETY: `module` is the interpreter DLL's handle (`sys.dllhandle`), loaded for the life
        // of the process; `name` is NUL-terminated.
        let address = unsafe { GetProcAddress(module as *mut c_void, name.as_ptr().cast()) };
        if address.is_null() {
            return Err(PyImportError::new_err(format!(
                "pickle5_rs: the Python DLL does not export {}",
                name.trim_end_matches('\0')
            )));
        }
        slot.store(address, Ordering::Relaxed);
        Ok(())
    }

    /// The address of `name` exported by the DLL `module`, if it exports it.
    pub fn find_optional(module: usize, name: &std::ffi::CStr) -> Option<*mut c_void> {
        // SAFETY: as in `find`.
        let address = unsafe { GetProcAddress(module as *mut c_void, name.as_ptr()) };
        (!address.is_null()).then_some(address)
    }
}

// The calls into Python code, declared so that an unwind may come out of them: on CPython < 3.14
// a daemon thread that wants the GIL back while the interpreter shuts down is ended by
// `pthread_exit`, whose forced unwind must meet a landing pad (see `super::shutdown`).
#[allow(clashing_extern_declarations)]
extern "C-unwind" {
    #[link_name = "PyObject_Call"]
    pub fn PyObject_Call_may_unwind(
        callable: *mut PyObject,
        args: *mut PyObject,
        kwargs: *mut PyObject,
    ) -> *mut PyObject;
    #[link_name = "PyObject_CallFunctionObjArgs"]
    pub fn PyObject_CallFunctionObjArgs_may_unwind(callable: *mut PyObject, ...) -> *mut PyObject;
}
