//! Daemon threads at interpreter shutdown.
//!
//! Up to 3.13, a thread that wants the GIL back once the interpreter is finalizing (a daemon
//! thread still pickling at exit) is ended with `pthread_exit`. Its forced unwind passes through
//! the Rust frames of a dump or load, which the Rust runtime answers by aborting the process. So
//! each call from our code into Python code keeps a guard alive whose destructor — run only by such
//! an unwind — parks the thread for good instead: what CPython 3.14 itself does with these threads.
//! The process then exits normally. glibc's and FreeBSD's `pthread_exit` unwind like this; musl,
//! macOS and Windows (`_endthreadex`) end the thread without running its destructors, so there
//! the guard is never dropped.

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

/// Runs a call into Python with the guard alive (see the module notes).
#[inline(always)]
pub(super) fn parked_if_unwound<R>(call: impl FnOnce() -> R) -> R {
    let guard = ParkIfUnwound;
    let result = call();
    std::mem::forget(guard);
    result
}

/// `PyObject_Call`.
#[inline]
pub fn call(callable: *mut PyObject, args: *mut PyObject, kwargs: *mut PyObject) -> *mut PyObject {
    // SAFETY: the caller passes live objects (and a tuple / dict or NULL), as for `PyObject_Call`.
    parked_if_unwound(|| unsafe { raw::PyObject_Call_may_unwind(callable, args, kwargs) })
}

/// `callable(*args)` for one to three positional arguments (`PyObject_CallFunctionObjArgs`).
#[inline]
pub fn call_args(callable: *mut PyObject, args: &[*mut PyObject]) -> *mut PyObject {
    let end = std::ptr::null_mut::<PyObject>();
    if let (Some(vectorcall), 1..=3) = (super::vectorcall::get(), args.len()) {
        // A free slot before the arguments lets a bound method's call put `self` there.
        let mut slots = [end; 4];
        slots[1..=args.len()].copy_from_slice(args);
        let nargsf = args.len() | super::vectorcall::ARGUMENTS_OFFSET;
        // SAFETY: live objects in an array of `args.len()` after the free slot (writable, as the
        // offset flag allows the callee to use it), no keywords.
        return parked_if_unwound(|| unsafe {
            vectorcall(callable, slots.as_mut_ptr().add(1), nargsf, end)
        });
    }
    // SAFETY: live objects, NULL-terminated argument list.
    parked_if_unwound(|| unsafe {
        match *args {
            [a] => raw::PyObject_CallFunctionObjArgs_may_unwind(callable, a, end),
            [a, b] => raw::PyObject_CallFunctionObjArgs_may_unwind(callable, a, b, end),
            [a, b, c] => raw::PyObject_CallFunctionObjArgs_may_unwind(callable, a, b, c, end),
            _ => {
                pyo3::ffi::PyErr_SetString(
                    pyo3::ffi::PyExc_SystemError,
                    c"call_args takes one to three arguments".as_ptr(),
                );
                end
            }
        }
    })
}
