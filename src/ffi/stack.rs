//! The native stack guard: `RecursionError` before the thread's stack runs out.
//!
//! The interpreter's recursion limit counts calls, not bytes, and can be raised at will; a pickle
//! that nests deeply, or hooks that re-enter `dump`/`load`, could otherwise overflow the stack.
//! Every entry into a dump or a load, every nesting level of the pickler and every call from our
//! code into Python checks that the stack pointer is still above this thread's floor: the lowest
//! address of its stack plus a red zone, enough for the deepest stretch of our code between two
//! checks and for the interpreter to raise and unwind.

use std::cell::Cell;

use pyo3::exceptions::PyRecursionError;
use pyo3::PyErr;

/// Red zone bounds: a quarter of the stack, between these two.
const RED_ZONE_MAX: usize = 256 * 1024;
const RED_ZONE_MIN: usize = 8 * 1024;

thread_local! {
    /// This thread's floor; 0 until known, 1 when the stack bounds cannot be read.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// The current stack pointer (approximately: the address of a local).
#[inline(always)]
pub fn pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The address below which this thread must not go deeper (0 when unknown).
#[inline]
pub fn floor() -> usize {
    let floor = FLOOR.with(Cell::get);
    if floor > 1 {
        return floor;
    }
    if floor == 1 {
        return 0;
    }
    let computed = match bounds() {
        Some((low, size)) => low + (size / 4).clamp(RED_ZONE_MIN, RED_ZONE_MAX),
        None => 1,
    };
    FLOOR.with(|f| f.set(computed));
    if computed > 1 {
        computed
    } else {
        0
    }
}

/// `Err(RecursionError)` when the stack is nearly used up; `context` completes the message
/// ("maximum recursion depth exceeded" + context).
#[inline]
pub fn check(context: &'static str) -> Result<(), PyErr> {
    if pointer() < floor() {
        return Err(exhausted(context));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn exhausted(context: &'static str) -> PyErr {
    PyRecursionError::new_err(format!("maximum recursion depth exceeded{}", context))
}

/// Lowest address and size of the current thread's stack.
#[cfg(target_os = "linux")]
fn bounds() -> Option<(usize, usize)> {
    // SAFETY: plain queries on the calling thread's attributes, destroyed after use.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 || addr.is_null() {
            return None;
        }
        Some((addr as usize, size))
    }
}

#[cfg(not(target_os = "linux"))]
fn bounds() -> Option<(usize, usize)> {
    None
}
