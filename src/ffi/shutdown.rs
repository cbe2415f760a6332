//! Daemon threads at interpreter shutdown.
//!
//! Up to 3.13, a thread that wants the GIL back once the interpreter is finalizing (a daemon
//! thread still pickling at exit) is ended with `pthread_exit`. Its forced unwind passes through
//! the Rust frames of a dump or load, which the Rust runtime answers by aborting the process. So
//! each call from our code into Python code keeps a guard alive whose destructor — run only by such
//! an unwind — parks the thread for good instead: what CPython 3.14 itself does with these threads.
//! The process then exits normally.

use super::raw;
use pyo3::ffi::PyObject;

struct ParkIfUnwound;

impl Drop for ParkIfUnwound {
    fn drop(&mut self) {
        loop {
            #[cfg(unix)]
            // SAFETY: `pause` only suspends the calling thread.
            unsafe {
                libc::pause();
            }
            #[cfg(not(unix))]
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// `PyObject_Call`.
#[inline]
pub fn call(callable: *mut PyObject, args: *mut PyObject, kwargs: *mut PyObject) -> *mut PyObject {
    let guard = ParkIfUnwound;
    // SAFETY: the caller passes live objects (and a tuple / dict or NULL), as for `PyObject_Call`.
    let result = unsafe { raw::PyObject_Call_may_unwind(callable, args, kwargs) };
    std::mem::forget(guard);
    result
}

/// `PyObject_CallFunctionObjArgs(callable, a, NULL)`.
#[inline]
pub fn call_one(callable: *mut PyObject, a: *mut PyObject) -> *mut PyObject {
    let guard = ParkIfUnwound;
    // SAFETY: live objects, NULL-terminated argument list.
    let result = unsafe {
        raw::PyObject_CallFunctionObjArgs_may_unwind(callable, a, std::ptr::null_mut::<PyObject>())
    };
    std::mem::forget(guard);
    result
}

/// `PyObject_CallFunctionObjArgs(callable, a, b, NULL)`.
#[inline]
pub fn call_two(callable: *mut PyObject, a: *mut PyObject, b: *mut PyObject) -> *mut PyObject {
    let guard = ParkIfUnwound;
    // SAFETY: live objects, NULL-terminated argument list.
    let result = unsafe {
        raw::PyObject_CallFunctionObjArgs_may_unwind(
            callable,
            a,
            b,
            std::ptr::null_mut::<PyObject>(),
        )
    };
    std::mem::forget(guard);
    result
}

/// `PyObject_CallFunctionObjArgs(callable, a, b, c, NULL)`.
#[inline]
pub fn call_three(
    callable: *mut PyObject,
    a: *mut PyObject,
    b: *mut PyObject,
    c: *mut PyObject,
) -> *mut PyObject {
    let guard = ParkIfUnwound;
    // SAFETY: live objects, NULL-terminated argument list.
    let result = unsafe {
        raw::PyObject_CallFunctionObjArgs_may_unwind(
            callable,
            a,
            b,
            c,
            std::ptr::null_mut::<PyObject>(),
        )
    };
    std::mem::forget(guard);
    result
}
